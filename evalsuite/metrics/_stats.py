"""Paired statistics for two cells scored on the same questions, and rank agreement.

A fine-tuned cell is compared with its un-tuned baseline question by question: the
mean of the paired differences, a seeded percentile bootstrap interval of that mean,
the Wilcoxon signed-rank p-value, and the decision against a non-inferiority margin, which
has three outcomes:

- ``pass``: non-inferiority shown, the lower end of the interval is at least ``-margin``;
- ``fail``: a regression beyond the margin shown, the upper end is below ``-margin``;
- ``inconclusive``: neither; the questions cannot tell. :func:`questions_to_decide` says about
  how many questions, at the observed paired spread, would decide it.

:func:`minimum_detectable_drop` is the true drop the gate fails with 80% power at a given n,
and :func:`questions_for_margin` the questions a margin needs to show non-inferiority of an
unchanged model with 80% power. Both use the normal approximation of the mean difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
OUTCOMES = (PASS, FAIL, INCONCLUSIVE)
_Z_TWO_SIDED_95 = 1.959964  # the 95% interval's half-width in standard errors
_Z_POWER = {0.8: 0.841621, 0.9: 1.281552}  # one-sided normal quantiles of the power


def decide(ci_low: float, ci_high: float, margin: float) -> str:
    """``pass`` (ci_low >= -margin), ``fail`` (ci_high < -margin) or ``inconclusive`` (neither, or no interval)."""
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return INCONCLUSIVE
    if ci_low >= -margin:
        return PASS
    if ci_high < -margin:
        return FAIL
    return INCONCLUSIVE


def _z_power(power: float) -> float:
    if power in _Z_POWER:
        return _Z_POWER[power]
    if not 0.5 <= power < 1:
        raise ValueError(f"power must be in [0.5, 1), got {power}")
    from scipy.stats import norm

    return float(norm.ppf(power))


def minimum_detectable_drop(sd: float, n: int, margin: float, power: float = 0.8) -> float:
    """The smallest true drop (a positive number of points) that the gate fails with ``power``
    at ``n`` paired questions whose differences spread with ``sd``: margin + (z_0.975 + z_power) sd / sqrt(n)."""
    if n <= 0 or not math.isfinite(sd):
        return float("nan")
    return float(margin + (_Z_TWO_SIDED_95 + _z_power(power)) * sd / math.sqrt(n))


def questions_to_decide(diff: float, sd: float, margin: float) -> int | None:
    """About how many paired questions would take the 95% interval of a mean difference ``diff``
    (paired spread ``sd``) clear of ``-margin``; None when ``diff`` sits on the margin or is unknown."""
    if not (math.isfinite(diff) and math.isfinite(sd)):
        return None
    distance = abs(diff + margin)
    if sd == 0:
        return 1
    if distance < 1e-9:
        return None
    return int(math.ceil((_Z_TWO_SIDED_95 * sd / distance) ** 2))


def questions_for_margin(sd: float, margin: float, power: float = 0.8) -> int | None:
    """Paired questions needed to show non-inferiority at ``margin`` with ``power`` when nothing
    changed (true difference 0), at paired spread ``sd``; None for a zero margin or unknown spread."""
    if margin <= 0 or not math.isfinite(sd):
        return None
    return max(1, int(math.ceil(((_Z_TWO_SIDED_95 + _z_power(power)) * sd / margin) ** 2)))


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
    outcome: str = INCONCLUSIVE  # pass | fail | inconclusive (see decide)
    sd: float = float("nan")  # standard deviation of the paired differences
    headroom: float = float("nan")  # ci_low + margin: how far the lower end clears the margin
    mdd: float = float("nan")  # minimum detectable drop at 80% power (minimum_detectable_drop)
    needed_n: int | None = None  # questions that would decide an inconclusive outcome (questions_to_decide)


def _finite_pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    if len(a) != len(b):
        raise ValueError(
            f"paired samples differ in length ({len(a)} vs {len(b)}); score both cells on the same questions"
        )
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


def bootstrap_ci(
    differences: Sequence[float], *, seed: int = 0, n_boot: int = 2000, level: float = 0.95
) -> tuple[float, float]:
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
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    outcome = decide(low, high, margin)
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
        outcome=outcome,
        sd=sd,
        headroom=float(low + margin),
        mdd=minimum_detectable_drop(sd, n, margin),
        needed_n=questions_to_decide(float(d.mean()), sd, margin) if outcome == INCONCLUSIVE else None,
    )


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation over pairs where both are finite; nan if under 3 pairs or a side is constant."""
    x, y, _ = _finite_pairs(a, b)
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)
