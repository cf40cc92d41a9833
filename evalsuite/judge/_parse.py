"""Reading a score out of a judge's output: sampled text or the first token's distribution."""

from __future__ import annotations

import math
import re
from typing import Sequence

SCORES = (1, 2, 3, 4, 5)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\d])|\b(one|two|three|four|five)\b", re.IGNORECASE)


def parse_score(text: str) -> float | None:
    """The first number in ``text`` if it lies in [1, 5]; None when there is none or it is out of range.

    The judge's text follows the prefill "Score: ", so the first number is the score
    ("4", "4/5", "4.5", "four"). Never raises.
    """
    if not isinstance(text, str):
        return None
    match = _NUMBER.search(text[:200])
    if match is None:
        return None
    if match.group(1) is not None:
        try:
            value = float(match.group(1))
        except ValueError:
            return None
    else:
        value = float(_WORDS[match.group(2).lower()])
    return value if 1.0 <= value <= 5.0 else None


def score_distribution(top_logprobs: Sequence[tuple[str, float]]) -> dict[int, float] | None:
    """p(s) for s in 1..5 from one generated step's (token, logprob) pairs, renormalized over the digits found.

    Tokens are matched after stripping white space ("4" and " 4" both count as 4; a token
    seen twice adds up). None when no score digit is among the tokens.
    """
    mass = {s: 0.0 for s in SCORES}
    found = False
    for token, logprob in top_logprobs:
        key = token.strip()
        if key in {"1", "2", "3", "4", "5"} and logprob is not None and math.isfinite(logprob):
            mass[int(key)] += math.exp(logprob)
            found = True
    total = sum(mass.values())
    if not found or total <= 0:
        return None
    return {s: p / total for s, p in mass.items()}


def weighted_score(distribution: dict[int, float]) -> float:
    """G-Eval's probability-weighted score: sum of p(s) * s."""
    return float(sum(p * s for s, p in distribution.items()))


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and population std over the finite values, and how many were nan (unscored)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    missing = len(values) - len(finite)
    if not finite:
        return float("nan"), float("nan"), missing
    mean = sum(finite) / len(finite)
    var = sum((v - mean) ** 2 for v in finite) / len(finite)
    return mean, math.sqrt(var), missing
