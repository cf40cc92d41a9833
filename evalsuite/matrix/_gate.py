"""The decision of a cell: compare it with its baseline on the same questions, judge by judge.

Only qualified judges gate. For each of them and each criterion it may gate (accuracy,
completeness) the 95% paired bootstrap interval of (cell - baseline) is set against the margin
(:func:`evalsuite.metrics.decide`):

- pass: the lower end is at least ``-margin`` (not worse beyond the margin);
- fail: the upper end is below ``-margin`` (worse beyond the margin, shown);
- inconclusive: neither.

A cell fails when any gated criterion fails, is inconclusive when none fails and any is
inconclusive, and passes when all pass. Before that, a gated comparison needs enough scored
answers: at least ``min_paired`` questions scored in both arms, and at most
:data:`MAX_UNSCORED_SHARE` of the cell's questions unscored in either arm; otherwise the cell is
not gated ("too few scored answers (k of n)"). With ``margin = "auto"`` the margin is twice the
judge's measured repeat standard deviation. A baseline cell is checked for validity instead:
every question answered and few unscored verdicts.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from evalsuite.judge import CRITERIA as _CRITERIA
from evalsuite.matrix._config import AUTO_MARGIN_FALLBACK
from evalsuite.metrics import FAIL, INCONCLUSIVE, decide, paired_stats
from evalsuite.records import CellResult, to_dict

CRITERIA = tuple(_CRITERIA)
MAX_UNSCORED_SHARE = 0.05  # a gated comparison leaves at most this share of questions unscored in either arm


def paired_scores(
    baseline: CellResult | Mapping[str, Any], cell: CellResult | Mapping[str, Any], judge: str, criterion: str
) -> tuple[list[str], list[float], list[float]]:
    """Question ids both cells answered (cell order) and the two score lists for one judge and criterion."""
    base_by_id = {item["id"]: item for item in _items(baseline)}
    ids, b, c = [], [], []
    for item in _items(cell):
        other = base_by_id.get(item["id"])
        if other is None:
            continue
        bv = (other.get("verdicts") or {}).get(judge)
        cv = (item.get("verdicts") or {}).get(judge)
        if bv is None or cv is None:
            continue
        ids.append(item["id"])
        b.append(_num(bv.get(criterion)))
        c.append(_num(cv.get(criterion)))
    return ids, b, c


def unscored_counts(
    baseline: CellResult | Mapping[str, Any], cell: CellResult | Mapping[str, Any], judge: str, criterion: str
) -> tuple[int, int, int]:
    """``(questions, unscored in the cell, unscored in the baseline)`` over the cell's questions: a
    question is unscored in an arm that has no finite score for it (no verdict, NaN, or not answered)."""
    base_by_id = {item["id"]: item for item in _items(baseline)}
    items = _items(cell)
    cell_missing = base_missing = 0
    for item in items:
        if not math.isfinite(_num(((item.get("verdicts") or {}).get(judge) or {}).get(criterion))):
            cell_missing += 1
        other = base_by_id.get(item["id"])
        if other is None or not math.isfinite(_num(((other.get("verdicts") or {}).get(judge) or {}).get(criterion))):
            base_missing += 1
    return len(items), cell_missing, base_missing


def _items(result: CellResult | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The answered questions of a cell (a :class:`CellResult`, or a cell file's content)."""
    return result.items if isinstance(result, CellResult) else list(result.get("items", []))


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def auto_margin(results: Sequence[CellResult | Mapping[str, Any]], judge: str, criterion: str) -> tuple[float, str]:
    """Twice the mean repeat std of ``judge`` over the verdicts of ``results`` (items judged more than once)."""
    stds = []
    for result in results:
        for item in _items(result):
            v = (item.get("verdicts") or {}).get(judge)
            if v and (v.get("runs") or 0) > 1:
                s = _num(v.get(f"{criterion}_std"))
                if math.isfinite(s):
                    stds.append(s)
    if not stds:
        return AUTO_MARGIN_FALLBACK, (
            f"auto margin: {judge} has no repeated runs to measure, using {AUTO_MARGIN_FALLBACK}"
        )
    value = 2.0 * sum(stds) / len(stds)
    return value, f"auto margin: 2 x mean repeat std of {judge} over {len(stds)} verdicts = {value:.3f}"


def _gating_map(gating: Sequence[str] | Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``{judge: criteria it gates}``; a plain list of judge names gates both criteria."""
    if isinstance(gating, Mapping):
        return {name: tuple(criteria) for name, criteria in gating.items()}
    return {name: CRITERIA for name in gating}


def compare(
    cell: CellResult | Mapping[str, Any],
    baseline: CellResult | Mapping[str, Any],
    *,
    judges: Sequence[str],
    gating: Sequence[str] | Mapping[str, Sequence[str]],
    margin: float | str,
    seed: int = 0,
    min_paired: int = 10,
) -> dict[str, Any]:
    """Paired statistics of ``cell`` against ``baseline`` for every judge, and the decision from the
    gating judges, each on the criteria it is qualified to gate (``{judge: criteria}``, or names for both).

    Returns ``{"judges": {name: {criterion: stats}}, "gating": [...], "outcome": ..., "failures": [...],
    "inconclusive": [...], "too_few": [...]}``. ``outcome`` is ``passed``, ``failed``, ``inconclusive``
    or ``ungated`` (no judge may gate, or too few scored answers: ``too_few`` says which and why).
    ``passed`` is kept for readers of older files: True, False, or None when the cell is not decided.
    """
    gating = _gating_map(gating)
    out: dict[str, Any] = {
        "judges": {},
        "gating": list(gating),
        "gating_criteria": {k: list(v) for k, v in gating.items()},
        "failures": [],
        "inconclusive": [],
        "too_few": [],
        "notes": [],
        "min_paired": min_paired,
        "max_unscored_share": MAX_UNSCORED_SHARE,
    }
    for judge in judges:
        per: dict[str, Any] = {}
        for criterion in CRITERIA:
            ids, b, c = paired_scores(baseline, cell, judge, criterion)
            if margin == "auto":
                m, note = auto_margin([baseline, cell], judge, criterion)
                out["notes"].append(note)
            else:
                m = float(margin)
            stats = to_dict(paired_stats(b, c, margin=m, seed=seed))
            questions, stats["unscored_cell"], stats["unscored_baseline"] = unscored_counts(
                baseline, cell, judge, criterion
            )
            stats["questions"] = questions
            stats["gating"] = criterion in gating.get(judge, ())
            per[criterion] = stats
            if stats["gating"]:
                shortfall = scored_shortfall(stats, min_paired=min_paired)
                if shortfall:
                    out["too_few"].append(f"{judge} {criterion}: {shortfall}")
                elif stats["outcome"] == FAIL:
                    out["failures"].append((judge, criterion))
                elif stats["outcome"] == INCONCLUSIVE:
                    out["inconclusive"].append((judge, criterion))
        out["judges"][judge] = per
    if not any(gating.values()) or out["too_few"]:
        out["outcome"] = "ungated"
    elif out["failures"]:
        out["outcome"] = "failed"
    elif out["inconclusive"]:
        out["outcome"] = "inconclusive"
    else:
        out["outcome"] = "passed"
    out["passed"] = {"passed": True, "failed": False}.get(out["outcome"])
    return out


def scored_shortfall(stats: Mapping[str, Any], *, min_paired: int) -> str | None:
    """Why a gated comparison has too few scored answers to decide (None when it has enough)."""
    n, questions = int(stats.get("n") or 0), int(stats.get("questions") or 0)
    worst = max(int(stats.get("unscored_cell") or 0), int(stats.get("unscored_baseline") or 0))
    if n < min_paired:
        return (
            f"too few scored answers ({n} of {questions} questions scored in both arms; "
            f"at least {min_paired} are needed)"
        )
    if questions and worst / questions > MAX_UNSCORED_SHARE:
        return (
            f"too few scored answers ({n} of {questions}; {stats.get('unscored_cell', 0)} unscored in the cell, "
            f"{stats.get('unscored_baseline', 0)} in the baseline, above the bound of {MAX_UNSCORED_SHARE:.0%})"
        )
    return None


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}f}"


_OUTCOME_TEXT = {
    "pass": "pass: not worse beyond the margin",
    "fail": "FAIL: worse beyond the margin",
    "inconclusive": "INCONCLUSIVE: the interval neither clears the margin nor lies beyond it",
}


def _outcome(s: Mapping[str, Any]) -> str:

    return s.get("outcome") or decide(_num(s.get("ci_low")), _num(s.get("ci_high")), _num(s.get("margin")))


def row_text(cell_id: str, judge: str, criterion: str, s: Mapping[str, Any]) -> str:
    """One line of the results table: baseline mean, cell mean, difference, interval, Wilcoxon p, n, outcome."""
    outcome = _outcome(s)
    text = (
        f"{cell_id} {criterion} [{judge}]: baseline {_fmt(s['baseline_mean'])}, cell {_fmt(s['cell_mean'])}, "
        f"diff {_fmt(s['diff'], 3)}, 95% CI [{_fmt(s['ci_low'], 3)}, {_fmt(s['ci_high'], 3)}] against margin "
        f"-{_fmt(s['margin'])}, Wilcoxon p={_fmt(s['wilcoxon_p'], 3)}, n={s['n']}"
    )
    if "unscored_cell" in s:
        text += f" (unscored: cell {s['unscored_cell']}, baseline {s['unscored_baseline']})"
    text += f" -> {_OUTCOME_TEXT[outcome]}"
    if outcome == "inconclusive":
        needed = s.get("needed_n")
        sd = _fmt(s.get("sd"), 2)
        text += (
            f"; about {needed} questions would decide it (paired SD {sd})"
            if needed
            else f"; the difference sits on the margin, so no number of questions decides it (paired SD {sd})"
        )
    return text


def failure_message(cell_id: str, gate: Mapping[str, Any], report_path: str) -> str:
    """The rows of every failed (or, for an inconclusive cell, undecided) gated criterion, then the report."""
    rows = gate.get("failures") or gate.get("inconclusive") or []
    lines = [row_text(cell_id, j, c, gate["judges"][j][c]) for j, c in rows]
    lines.append(f"report: {report_path}")
    return "\n".join(lines)


def baseline_validity(
    result: CellResult | Mapping[str, Any], *, gating: Sequence[str] | Mapping[str, Sequence[str]], max_unscored: float
) -> list[str]:
    """Problems that make a baseline run invalid (empty list = valid)."""
    problems = []
    items = _items(result)
    if not items:
        return ["no eval questions were answered"]
    empty = sum(1 for item in items if not (item.get("answer") or "").strip())
    if empty / len(items) > max_unscored:
        problems.append(f"{empty} of {len(items)} answers are empty (bound {max_unscored:.0%})")
    for judge, criteria in _gating_map(gating).items():
        unscored = sum(
            1
            for item in items
            if any(math.isnan(_num(((item.get("verdicts") or {}).get(judge) or {}).get(c))) for c in criteria)
        )
        if unscored / len(items) > max_unscored:
            problems.append(
                f"judge {judge} left {unscored} of {len(items)} answers unscored (bound {max_unscored:.0%})"
            )
    return problems
