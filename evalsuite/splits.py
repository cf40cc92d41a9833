"""Seeded, leakage-free split of a dataset into a fine-tune pool and an eval set.

Questions that share a source document (a Qasper paper, a BioASQ PubMed document, an
NQ Wikipedia page) or the same normalized question text form one group, and a whole
group goes to one side, so nothing the fine-tune sees gives evidence to an eval question.

The rule: the eval set takes ``max(min_eval, ceil(eval_share * questions))`` questions
(defaults 40 and 25%), filled group by group in a seeded order, a group that would
overshoot that size going to the pool; the pool takes every other question, so it is as large as the data allows while
the eval set stays usable. Both sides are in a seeded order, so ``pool[:N]`` is a
random sample and ``pool[:20]`` is contained in ``pool[:50]`` (nested sizes).
The order depends only on question ids and the seed, never on file order.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from .records import Dataset, Example, normalize_question

MIN_EVAL = 40
EVAL_SHARE = 0.25


@dataclass(frozen=True)
class Split:
    pool: tuple[Example, ...]
    eval: tuple[Example, ...]
    rule: str
    seed: int


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def groups(examples: tuple[Example, ...]) -> list[list[Example]]:
    """Connected components of questions linked by a shared document or question text."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for ex in examples:
        node = f"q:{ex.id}"
        find(node)
        union(node, f"t:{normalize_question(ex.question)}")
        for doc in ex.doc_ids:
            union(node, f"d:{doc}")
    comps: dict[str, list[Example]] = {}
    for ex in examples:
        comps.setdefault(find(f"q:{ex.id}"), []).append(ex)
    return list(comps.values())


def split(dataset: Dataset, seed: int = 0, *, min_eval: int = MIN_EVAL, eval_share: float = EVAL_SHARE) -> Split:
    n = len(dataset.examples)
    target = min(n, max(min_eval, math.ceil(eval_share * n)))
    comps = groups(dataset.examples)
    comps.sort(key=lambda c: _rank(seed, min(e.id for e in c)))
    pool: list[Example] = []
    evals: list[Example] = []
    for comp in comps:  # a group that would overshoot the target goes to the pool
        (evals if len(evals) + len(comp) <= target else pool).extend(comp)
    pool.sort(key=lambda e: _rank(seed, "pool:" + e.id))
    evals.sort(key=lambda e: _rank(seed, "eval:" + e.id))
    rule = (
        f"eval = max({min_eval}, ceil({eval_share:.0%} of {n})) = {target} questions, filled by whole document groups "
        f"(got {len(evals)}); pool = the other {len(pool)} (seed {seed})"
    )
    return Split(tuple(pool), tuple(evals), rule, seed)
