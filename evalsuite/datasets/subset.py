"""A small corpus for a quick run: the documents some questions draw on, plus seeded distractors.

    small = subset_corpus(dataset, eval_items + pool_items, distractors=300, seed=0)
    retriever = get_retriever(small)     # indexes a few hundred passages instead of thousands

The subset keeps every passage of the documents the given questions cite (``doc_ids``) and
of their gold evidence, and adds ``distractors`` passages drawn with ``seed`` from the rest
of the corpus, so retrieval still has to pick the right passages among others. The
questions (and so the pool/eval split) are unchanged. Retrieval over the subset is not
retrieval over the whole corpus: for a corpus-scoped dataset (NQ, BioASQ) the top-k can
differ, so a run that uses a subset must say so. A document-scoped dataset (Qasper, where a
question is searched within its own paper) retrieves exactly as from the whole corpus, and
gets no distractors when every given question names its documents: none would ever be read.
The subset is a different corpus: its ``source`` names the subset, and the index store and
every cache keyed by the corpus or the prompts keep it apart from the whole one.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Iterable

from ..errors import ConfigError
from ..records import Dataset, Example, stable_hash


def subset_corpus(dataset: Dataset, examples: Iterable[Example], distractors: int = 300, seed: int = 0) -> Dataset:
    """``dataset`` with only the passages ``examples`` need and ``distractors`` seeded others, in corpus order."""
    examples = list(examples)
    if distractors < 0:
        raise ConfigError(f"distractors must be >= 0, got {distractors}")
    foreign = [ex.id for ex in examples if ex.dataset != dataset.name]
    if foreign:
        raise ConfigError(
            f"subset_corpus: question {foreign[0]} is not from {dataset.name}; pass that dataset's questions"
        )
    docs = {d for ex in examples for d in ex.doc_ids}
    evidence = {e for ex in examples for e in ex.evidence}
    docs |= {p.doc_id for p in dataset.passages if p.id in evidence}
    needed = [i for i, p in enumerate(dataset.passages) if p.doc_id in docs or p.id in evidence]
    taken = set(needed)
    if dataset.retrieval_scope == "document" and examples and all(ex.doc_ids for ex in examples):
        distractors = 0  # each question is searched within its own documents: a distractor is never read
    rest = sorted((p.id, i) for i, p in enumerate(dataset.passages) if i not in taken)
    drawn = random.Random(seed).sample(rest, min(distractors, len(rest)))
    keep = sorted(taken | {i for _, i in drawn})
    passages = tuple(dataset.passages[i] for i in keep)
    tag = stable_hash(
        {
            "questions": sorted(ex.id for ex in examples),
            "distractors": distractors,
            "seed": seed,
            "passages": len(passages),
        },
        12,
    )
    return replace(
        dataset,
        passages=passages,
        source=f"{dataset.source}#subset-{tag}({len(needed)} needed + {len(drawn)} distractor passages)",
    )
