"""Agreement of a judge's scores with human 0/1 labels.

- ROC AUC (the probability that a random correct answer scores above a random wrong one,
  ties counting half), on every answer and on the answers of five words or more;
- Cohen's kappa and accuracy at a decision threshold that is never fitted on the items it
  decides: 2-fold cross-fitting by question (fold = sha256(question_id) mod 2), each fold's
  answers decided by the threshold that maximizes kappa on the other fold;
- the within-question share: over (human-correct, human-wrong) answer pairs of one
  question, the share where the correct answer scores strictly higher (ties and unscored
  answers lose);
- the published evaluators' agreement on the same items (accuracy and kappa of their 0/1
  decisions), as anchors.

Unscored (nan) answers are left out of AUC, kappa and accuracy and counted.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FOLDS = 2
THRESHOLD_METHOD = (
    "2-fold cross-fit by question_id (fold = sha256(question_id) mod 2): each answer is decided by the "
    "threshold that maximizes Cohen's kappa on the other fold's answers (all lengths); the >= 5-word "
    "figures use the same decisions"
)


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """ROC AUC of ``scores`` for the 0/1 ``labels`` (average ranks for ties); nan without both classes."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    positives, negatives = int(y.sum()), int((1 - y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(s)  # average ranks: a tie counts half
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def cohen_kappa(predicted: Sequence[int], labels: Sequence[int]) -> float:
    """Cohen's kappa of two 0/1 raters; 0 when chance agreement is total (one rater constant), nan when empty."""
    p = np.asarray(predicted, dtype=int)
    y = np.asarray(labels, dtype=int)
    n = p.size
    if n == 0:
        return float("nan")
    observed = float((p == y).mean())
    expected = float(p.mean() * y.mean() + (1 - p.mean()) * (1 - y.mean()))
    if expected >= 1.0:
        return 0.0 if observed < 1.0 else 1.0
    return (observed - expected) / (1.0 - expected)


def best_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The cut ``t`` (decide correct when score >= t) that maximizes kappa on these items.

    Candidates are the midpoints between consecutive distinct scores (and one below the
    lowest); among equal kappas the lowest cut wins. nan scores are left out.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    if s.size == 0:
        return float("nan")
    distinct = np.unique(s)
    candidates = np.concatenate([[distinct[0] - 1.0], (distinct[:-1] + distinct[1:]) / 2.0])
    best, best_kappa = candidates[0], -math.inf
    for t in candidates:
        kappa = cohen_kappa((s >= t).astype(int), y)
        if kappa > best_kappa + 1e-12:
            best, best_kappa = float(t), kappa
    return float(best)


def fold_of(question_id: str, folds: int = FOLDS) -> int:
    """The question's fold: a stable hash, the same on every machine and run."""
    return int(hashlib.sha256(question_id.encode("utf-8")).hexdigest(), 16) % folds


@dataclass(frozen=True)
class CrossFit:
    thresholds: tuple[float, ...]  # thresholds[f] decides fold f; fitted on the other folds
    decisions: tuple[int | None, ...]  # per item: 1 correct, 0 wrong, None unscored


def cross_fit(
    scores: Sequence[float], labels: Sequence[int], question_ids: Sequence[str], folds: int = FOLDS
) -> CrossFit:
    """Decide every item with a threshold fitted only on the other folds' items."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    fold = np.asarray([fold_of(q, folds) for q in question_ids])
    thresholds = []
    decisions: list[int | None] = [None] * len(s)
    for f in range(folds):
        others = fold != f
        t = best_threshold(s[others], y[others])
        thresholds.append(t)
        for i in np.flatnonzero(fold == f):
            if math.isfinite(s[i]) and math.isfinite(t):
                decisions[i] = int(s[i] >= t)
    return CrossFit(tuple(thresholds), tuple(decisions))


def decision_agreement(decisions: Sequence[int | None], labels: Sequence[int]) -> tuple[float, float, int]:
    """(accuracy, kappa, n) of 0/1 decisions against labels, leaving out undecided (None) items."""
    pairs = [(d, y) for d, y in zip(decisions, labels) if d is not None]
    if not pairs:
        return float("nan"), float("nan"), 0
    d = np.asarray([p for p, _ in pairs], dtype=int)
    y = np.asarray([t for _, t in pairs], dtype=int)
    return float((d == y).mean()), cohen_kappa(d, y), len(pairs)


def balanced_accuracy(decisions: Sequence[int | None], labels: Sequence[int]) -> float:
    """Mean of the true-positive and true-negative rates of 0/1 decisions (undecided left out): the
    ROC AUC of a binary score. nan when a class is missing."""
    pairs = [(d, y) for d, y in zip(decisions, labels) if d is not None]
    d = np.asarray([p for p, _ in pairs], dtype=int)
    y = np.asarray([t for _, t in pairs], dtype=int)
    if not pairs or y.min() == y.max():
        return float("nan")
    return float(((d[y == 1] == 1).mean() + (d[y == 0] == 0).mean()) / 2)


def within_question(scores: Sequence[float], labels: Sequence[int], question_ids: Sequence[str]) -> tuple[float, int]:
    """Share (and count) of same-question (correct, wrong) pairs where the correct answer scores strictly higher."""
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for score, label, qid in zip(scores, labels, question_ids):
        good, bad = groups.setdefault(qid, ([], []))
        (good if label == 1 else bad).append(float(score))
    wins = total = 0
    for good, bad in groups.values():
        for g in good:
            for b in bad:
                total += 1
                wins += int(math.isfinite(g) and math.isfinite(b) and g > b)
    return (wins / total if total else float("nan")), total
