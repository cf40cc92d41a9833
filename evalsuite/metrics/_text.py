"""Answer-level metrics against gold answers: exact match, token F1, ROUGE-L, yes/no, recall@k.

Every metric normalizes with :func:`normalize_answer` (the SQuAD rule: lower case, drop
punctuation and the articles a/an/the, collapse white space) and takes the best value
over the gold answers, because datasets list several acceptable answers.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD normalization, idempotent: ``normalize_answer(normalize_answer(s)) == normalize_answer(s)``.

    Unlike the original SQuAD script it removes every Unicode punctuation character
    (category P*), not only ASCII ones, so curly quotes and dashes do not count as words.
    """
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    # Lower-casing can expose characters that lower again (rare), so settle it.
    text = unicodedata.normalize("NFC", text).lower()
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def _best(answer: str, references: Sequence[str], score) -> float:
    refs = [r for r in references if r is not None]
    if not refs:
        return float("nan")
    return max(score(answer, ref) for ref in refs)


def exact_match(answer: str, references: Sequence[str]) -> float:
    """1.0 when the normalized answer equals a normalized gold answer, else 0.0 (nan without golds)."""
    return _best(answer, references, lambda a, r: float(normalize_answer(a) == normalize_answer(r)))


def _overlap(answer: str, reference: str) -> tuple[int, int, int]:
    pred, gold = _tokens(answer), _tokens(reference)
    common = sum((Counter(pred) & Counter(gold)).values())
    return common, len(pred), len(gold)


def _f1_one(answer: str, reference: str) -> float:
    common, n_pred, n_gold = _overlap(answer, reference)
    if n_pred == 0 or n_gold == 0:
        return float(n_pred == n_gold)  # both empty: a match; one empty: none
    if common == 0:
        return 0.0
    precision, recall = common / n_pred, common / n_gold
    return 2 * precision * recall / (precision + recall)


def _precision_one(answer: str, reference: str) -> float:
    common, n_pred, n_gold = _overlap(answer, reference)
    if n_pred == 0:
        return float(n_gold == 0)
    return common / n_pred


def _recall_one(answer: str, reference: str) -> float:
    common, n_pred, n_gold = _overlap(answer, reference)
    if n_gold == 0:
        return float(n_pred == 0)
    return common / n_gold


def token_f1(answer: str, references: Sequence[str]) -> float:
    """SQuAD token F1, best over gold answers."""
    return _best(answer, references, _f1_one)


def token_precision(answer: str, references: Sequence[str]) -> float:
    """Share of the answer's tokens found in a gold answer (best over gold answers)."""
    return _best(answer, references, _precision_one)


def token_recall(answer: str, references: Sequence[str]) -> float:
    """Share of a gold answer's tokens found in the answer (best over gold answers)."""
    return _best(answer, references, _recall_one)


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def _rouge_l_one(answer: str, reference: str) -> float:
    pred, gold = _tokens(answer), _tokens(reference)
    if not pred or not gold:
        return float(len(pred) == len(gold))
    lcs = _lcs_length(pred, gold)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(gold)
    return 2 * precision * recall / (precision + recall)


def rouge_l(answer: str, references: Sequence[str]) -> float:
    """ROUGE-L F1 (longest common subsequence of normalized tokens), best over gold answers."""
    return _best(answer, references, _rouge_l_one)


def yes_no_answer(text: str) -> bool | None:
    """The yes/no an answer commits to: its first "yes" or "no" word; None if it says neither."""
    for token in _tokens(text):
        if token == "yes":
            return True
        if token == "no":
            return False
    return None


def yes_no_correct(answer: str, gold: bool | None) -> bool | None:
    """Whether the answer's yes/no matches ``gold``; None when the question has no yes/no gold.

    An answer that says neither yes nor no counts as incorrect.
    """
    if gold is None:
        return None
    return yes_no_answer(answer) == gold


def recall_at_k(retrieved_passage_ids: Iterable[str], evidence_ids: Iterable[str], k: int | None = None) -> float:
    """1.0 when any gold evidence passage is among the first ``k`` retrieved (all if k is None), else 0.0.

    Chunk ids of the form ``"<passage id>#<start>"`` count as their passage. nan when the
    question has no gold evidence (it cannot be scored).
    """
    evidence = set(evidence_ids)
    if not evidence:
        return float("nan")
    retrieved = list(retrieved_passage_ids)
    if k is not None:
        retrieved = retrieved[:k]
    hits = {pid.split("#", 1)[0] for pid in retrieved} | set(retrieved)
    return float(bool(hits & evidence))


def reference_metrics(answer: str, references: Sequence[str], *, yes_no: bool | None = None) -> dict:
    """All answer metrics at once: exact_match, f1, rouge_l, yes_no_correct (None without a yes/no gold)."""
    return {
        "exact_match": exact_match(answer, references),
        "f1": token_f1(answer, references),
        "rouge_l": rouge_l(answer, references),
        "yes_no_correct": yes_no_correct(answer, yes_no),
    }


def is_nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
