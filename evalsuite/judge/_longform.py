"""A long-form check of a judge, built at run time from the fine-tune pool (never the eval set).

For each usable pool question the judge sees three answers, scored against the question's
references:

- good: an answer written by another person than the references. Qasper: one annotator's
  answer, the other annotators' answers are the references (questions where any annotator
  said Unanswerable or answered yes/no are left out). BioASQ (factoid, list, summary): one
  expert's ideal answer, the other ideal answers plus the written-out exact answer are the
  references. A good answer that nearly copies a reference (token F1 > 0.8) is not used.
- wrong: on topic and sharing vocabulary: the answer to another pool question on the same
  paper (Qasper) or sharing a PubMed document (BioASQ); when none shares a document, the
  answer to the pool question of the same dataset that shares the most content words with
  this question. Lent answers have at least two words; a candidate that overlaps this question's references (token
  F1 > 0.5) is
  skipped, so "wrong" is not secretly right.
- partial, where the data allows: the first half of the good answer's comma-separated spans
  (Qasper) or sentences; for a one-sentence BioASQ list answer, half the listed items.

Context: the question's first gold evidence passage, clipped to ``CONTEXT_CHARS``. Questions
are taken in a seeded order, at most ``PER_DATASET`` per dataset. The set depends only on
the data files and the seed; ``LongFormSet.questions`` names every question it used (judged
or lending its answer as the wrong one), so a test can check none is in the eval split.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

from evalsuite.datasets import load
from evalsuite.judge._forms import JudgeItem
from evalsuite.metrics import normalize_answer, token_f1
from evalsuite.records import Example, stable_hash
from evalsuite.splits import split

DATASETS = ("qasper", "bioasq")
PER_DATASET = 60
CONTEXT_CHARS = 400
NEAR_COPY_F1 = 0.8  # a good answer this close to a reference is a copy, not another person's answer
WRONG_MAX_F1 = 0.5  # a wrong answer this close to a reference might be right
LABELS = ("good", "partial", "wrong")
_NO_ANSWER = {"unanswerable", "yes", "no"}
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_STOP = frozenset(
    "a an the of in on at to for by with from and or is are was were be been what which who whom how why "
    "when where do does did has have had it its this that these those as their they them can could "
    "there than into about".split()
)


@dataclass(frozen=True)
class LongFormItem:
    item: JudgeItem
    label: str  # good | partial | wrong
    dataset: str
    question_id: str
    source_question_id: str  # whose answer this is (another question's for "wrong")


@dataclass(frozen=True)
class LongFormSet:
    items: tuple[LongFormItem, ...]
    questions: tuple[tuple[str, str], ...]  # (dataset, question id) of every question used, sorted
    seed: int
    digest: str  # hash of the items: changes when the data, the seed or the construction changes

    def pairs(self, better: str, worse: str) -> int:
        have: dict[tuple[str, str], set[str]] = {}
        for x in self.items:
            have.setdefault((x.dataset, x.question_id), set()).add(x.label)
        return sum(better in labels and worse in labels for labels in have.values())


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"longform:{seed}:{key}".encode("utf-8")).hexdigest()


def _clip(text: str, limit: int = CONTEXT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


def _content_words(text: str) -> set[str]:
    return {w for w in normalize_answer(text).split() if w not in _STOP and len(w) > 2}


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def _half_sentences(text: str) -> str | None:
    sentences = _sentences(text)
    return " ".join(sentences[: len(sentences) // 2]) if len(sentences) >= 2 else None


def _usable_answer(ex: Example) -> str | None:
    """The answer a question lends as another question's wrong answer (its first real answer)."""
    if ex.dataset == "bioasq":
        ideals = _bioasq_ideals(ex)
        return ideals[0] if ideals else None
    for ref in ex.references:
        if ref.strip().lower() not in _NO_ANSWER:
            return ref
    return None


def _bioasq_exact(ex: Example) -> str | None:
    if ex.answer_type == "yesno" and ex.exact:
        return ex.exact[0].capitalize()
    return "; ".join(ex.exact) if ex.exact else None


def _bioasq_ideals(ex: Example) -> list[str]:
    exact = _bioasq_exact(ex)
    return [r for r in ex.references if r != exact]


def _good_and_references(ex: Example) -> tuple[str, tuple[str, ...]] | None:
    """(good answer, the references it is judged against), or None when the question cannot give one."""
    if ex.dataset == "qasper":
        if ex.unanswerable or ex.yes_no is not None or len(ex.references) < 2:
            return None
        if any(r.strip().lower() in _NO_ANSWER for r in ex.references):
            return None
        authors = list(ex.references)
    else:
        if ex.answer_type == "yesno":
            return None
        authors = _bioasq_ideals(ex)
        if len(authors) < 2:
            return None
    exact = _bioasq_exact(ex) if ex.dataset == "bioasq" else None
    for i, good in enumerate(authors):
        others = [r for j, r in enumerate(authors) if j != i] + ([exact] if exact else [])
        if len(good.split()) >= 2 and all(token_f1(good, [o]) <= NEAR_COPY_F1 for o in others):
            return " ".join(good.split()), tuple(others)
    return None


def _partial(ex: Example, good: str) -> str | None:
    if ex.dataset == "qasper":
        spans = [s.strip() for s in good.split(", ") if s.strip()]
        if len(spans) >= 2:
            return ", ".join(spans[: len(spans) // 2])
        return _half_sentences(good)
    half = _half_sentences(good)
    if half is None and ex.answer_type == "list" and len(ex.exact) >= 2:
        half = "; ".join(ex.exact[: len(ex.exact) // 2])
    return half


def _wrong(
    ex: Example, references: Sequence[str], pool: Sequence[tuple[Example, str, set[str]]], seed: int
) -> tuple[str, str] | None:
    """(wrong answer, id of the question it answers): same document first, else the most shared words.

    ``pool`` holds (question, the answer it lends, its question's content words).
    """
    docs = set(ex.doc_ids)
    words = _content_words(ex.question)
    question = ex.question.strip().lower()
    ranked = []
    for other, answer, other_words in pool:
        if other.id == ex.id or other.question.strip().lower() == question:
            continue
        shares_doc = bool(docs & set(other.doc_ids))
        ranked.append(
            (
                (not shares_doc, 0 if shares_doc else -len(words & other_words), _rank(seed, ex.id + "|" + other.id)),
                other,
                answer,
            )
        )
    ranked.sort(key=lambda r: r[0])
    for _, other, answer in ranked:
        if token_f1(answer, list(references) + [ex.question]) <= WRONG_MAX_F1:
            return " ".join(answer.split()), other.id
    return None


def _context(ex: Example, passages: dict[str, str]) -> tuple[str, ...]:
    for pid in ex.evidence:
        if pid in passages:
            return (_clip(passages[pid]),)
    return ()


def build_longform(seed: int = 0, *, per_dataset: int = PER_DATASET, datasets: Sequence[str] = DATASETS) -> LongFormSet:
    """The long-form items of the pool questions of ``datasets`` (split with ``seed``), built now from the data root."""

    items: list[LongFormItem] = []
    used: set[tuple[str, str]] = set()
    for name in datasets:
        dataset = load(name)
        pool = split(dataset, seed).pool
        passages = {p.id: p.text for p in dataset.passages}
        lenders = [
            (other, answer, _content_words(other.question))
            for other in pool
            for answer in [_usable_answer(other)]
            if answer is not None and len(answer.split()) >= 2
        ]
        taken = 0
        for ex in sorted(pool, key=lambda e: _rank(seed, e.id)):
            if taken == per_dataset:
                break
            made = _good_and_references(ex)
            if made is None:
                continue
            good, references = made
            wrong = _wrong(ex, references, lenders, seed)
            if wrong is None:
                continue
            wrong_answer, wrong_source = wrong
            context = _context(ex, passages)
            answers = [("good", good, ex.id)]
            partial = _partial(ex, good)
            if partial and partial != good:
                answers.append(("partial", partial, ex.id))
            answers.append(("wrong", wrong_answer, wrong_source))
            for label, answer, source in answers:
                judge_item = JudgeItem(f"{name}:{ex.id}:{label}", ex.question, references, context, answer)
                items.append(LongFormItem(judge_item, label, name, ex.id, source))
            used.update({(name, ex.id), (name, wrong_source)})
            taken += 1
    return LongFormSet(tuple(items), tuple(sorted(used)), seed, stable_hash(items, 32))
