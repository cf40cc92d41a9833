"""Why completeness fell: which claims of the gold answer the fine-tuned answer lost against the baseline's.

For each drop the report shows (only those, so the work is bounded by ``PER_CELL`` per cell), the
gold answers' claims are aligned with the baseline's answer and with the cell's answer
(:func:`evalsuite.judge.claim_coverage`, the bundled sentence embedder plus word recall), and each
gold claim is marked:

- ``lost``: covered by the baseline's answer, not by the cell's;
- ``kept``: covered by both;
- ``gained``: covered by the cell's answer only;
- ``missed``: covered by neither.

Computed when the report is rendered, from ``results.json`` alone, so ``evalsuite report RUN_DIR``
renders it again; nothing is cached beyond the embedder's in-memory vectors, which do not depend
on the batch they were computed in (the same map serially and under pytest-xdist). When the
coverage cannot be computed (the embedder does not load, say), every map of the report says it is
unavailable and why, and the report still renders; after the first failure no further drop tries,
so a missing embedder costs one attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from evalsuite.judge import ClaimCoverage, claim_coverage

STATES = ("lost", "kept", "gained", "missed")
STATE_MEANING = {
    "lost": "covered by the baseline's answer, not by the fine-tuned one",
    "kept": "covered by both answers",
    "gained": "covered by the fine-tuned answer only",
    "missed": "covered by neither answer",
}
REASON_CHARS = 300  # of an error's text shown as the reason a map is unavailable


@dataclass(frozen=True)
class ClaimMark:
    """One gold claim, its state, and its coverage score (0-1) in the baseline's and the cell's answer."""

    text: str
    state: str
    baseline_score: float
    cell_score: float


@dataclass(frozen=True)
class CoverageMap:
    """The gold claims of one drop, in order, each marked; ``unavailable`` says why there are none to show."""

    claims: tuple[ClaimMark, ...] = ()
    unavailable: str | None = None

    @property
    def lost(self) -> int:
        return sum(1 for c in self.claims if c.state == "lost")

    def headline(self) -> str:
        """The drop's line: "lost k of n gold claims" (or why the map is missing)."""
        if self.unavailable is not None:
            return "coverage map unavailable"
        if not self.claims:
            return "no gold claim to map"
        n = len(self.claims)
        return f"lost {self.lost} of {n} gold claim{'s' if n != 1 else ''}"


def _state(in_baseline: bool, in_cell: bool) -> str:
    if in_baseline:
        return "kept" if in_cell else "lost"
    return "gained" if in_cell else "missed"


def coverage_map(
    baseline_answer: Any,
    cell_answer: Any,
    references: Sequence[Any],
    coverage: Callable[..., ClaimCoverage] | None = None,
) -> CoverageMap:
    """Mark each claim of ``references`` (the gold answers) by whether either answer covers it."""
    coverage = coverage or claim_coverage
    references = [r if isinstance(r, str) else "" if r is None else str(r) for r in references]
    base = coverage(baseline_answer if isinstance(baseline_answer, str) else "", references)
    cell = coverage(cell_answer if isinstance(cell_answer, str) else "", references)
    if [c.text for c in base.claims] != [c.text for c in cell.claims]:
        raise ValueError("the two answers were aligned with different gold claims")
    return CoverageMap(
        tuple(
            ClaimMark(b.text, _state(b.covered, c.covered), b.score, c.score) for b, c in zip(base.claims, cell.claims)
        )
    )


def _reason(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def with_coverage(
    drops: Sequence[Mapping[str, Any]], coverage: Callable[..., ClaimCoverage] | None = None
) -> list[dict[str, Any]]:
    """``drops`` (from :func:`largest_drops`) with a ``coverage`` :class:`CoverageMap` on every example."""
    failure: str | None = None
    out = []
    for group in drops:
        examples = []
        for ex in group.get("examples") or []:
            if failure is None:
                try:
                    cmap = coverage_map(
                        ex.get("baseline_answer"), ex.get("cell_answer"), ex.get("references") or [], coverage
                    )
                except Exception as exc:  # the report renders whatever the embedder does
                    failure = _reason(exc)
            if failure is not None:
                cmap = CoverageMap(unavailable=failure)
            examples.append({**ex, "coverage": cmap})
        out.append({**group, "examples": examples})
    return out
