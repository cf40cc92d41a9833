"""Paired statistics for two cells scored on the same questions, and rank agreement.

A fine-tuned cell is compared with its un-tuned baseline question by question: the
mean of the paired differences, a seeded percentile bootstrap interval of that mean,
the Wilcoxon signed-rank p-value, and a non-inferiority decision (the lower end of the
interval is not below ``-margin``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PairedStats:
    n: int  # pairs used (both sides scored)
    baseline_mean: float
    cell_mean: float
    diff: float  # mean of (cell - baseline)
    ci_low: float  # 95% paired bootstrap interval of diff
    ci_high: float
    wilcoxon_p: float  # two-sided; 1.0 when every difference is zero
    non_inferior: bool  # ci_low >= -margin
    margin: float
    dropped: int = 0  # pairs left out because either side was nan
    seed: int = 0
    n_boot: int = 2000


def _finite_pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} vs {len(b)}); score both cells on the same questions")
    x = np.asarray([float("nan") if v is None else float(v) for v in a], dtype=float)
    y = np.asarray([float("nan") if v is None else float(v) for v in b], dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep], int((~keep).sum())


def wilcoxon_p(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (1.0 if all are zero, nan if none)."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    if not np.any(d != 0):
        return 1.0
    from scipy.stats import wilcoxon

    result = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    p = float(result.pvalue)
    return 1.0 if math.isnan(p) else p


def bootstrap_ci(differences: Sequence[float], *, seed: int = 0, n_boot: int = 2000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``differences`` (resampling pairs), seeded."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def paired_stats(
    baseline: Sequence[float], cell: Sequence[float], *, margin: float, seed: int = 0, n_boot: int = 2000
) -> PairedStats:
    """Compare ``cell`` with ``baseline`` on the same questions (index i is the same question).

    Pairs where either side is nan (unscored) are dropped and counted in ``dropped``.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    x, y, dropped = _finite_pairs(baseline, cell)
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return PairedStats(0, nan, nan, nan, nan, nan, nan, False, float(margin), dropped, seed, n_boot)
    d = y - x
    low, high = bootstrap_ci(d, seed=seed, n_boot=n_boot)
    return PairedStats(
        n=n,
        baseline_mean=float(x.mean()),
        cell_mean=float(y.mean()),
        diff=float(d.mean()),
        ci_low=low,
        ci_high=high,
        wilcoxon_p=wilcoxon_p(d),
        non_inferior=bool(low >= -margin),
        margin=float(margin),
        dropped=dropped,
        seed=seed,
        n_boot=n_boot,
    )


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation over pairs where both are finite; nan if under 3 pairs or a side is constant."""
    x, y, _ = _finite_pairs(a, b)
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)
