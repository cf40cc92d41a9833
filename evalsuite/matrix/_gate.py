"""The decision of a cell: compare it with its baseline on the same questions, judge by judge.

Only qualified judges gate. For each of them and each criterion (accuracy, completeness)
the cell must be non-inferior: the lower end of the 95% paired bootstrap interval of
(cell - baseline) is at least ``-margin``. With ``margin = "auto"`` the margin is twice the
judge's measured repeat standard deviation. A baseline cell is checked for validity instead:
every question answered and few unscored verdicts.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from evalsuite.judge import CRITERIA as _CRITERIA
from evalsuite.matrix._config import DEFAULT_MARGIN
from evalsuite.records import to_dict

CRITERIA = tuple(_CRITERIA)


def paired_scores(baseline: Mapping[str, Any], cell: Mapping[str, Any], judge: str, criterion: str) -> tuple[list[str], list[float], list[float]]:
    """Question ids both cells answered (cell order) and the two score lists for one judge and criterion."""
    base_by_id = {item["id"]: item for item in baseline.get("items", [])}
    ids, b, c = [], [], []
    for item in cell.get("items", []):
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


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def auto_margin(results: Sequence[Mapping[str, Any]], judge: str, criterion: str) -> tuple[float, str]:
    """Twice the mean repeat std of ``judge`` over the verdicts of ``results`` (items judged more than once)."""
    stds = []
    for result in results:
        for item in result.get("items", []):
            v = (item.get("verdicts") or {}).get(judge)
            if v and (v.get("runs") or 0) > 1:
                s = _num(v.get(f"{criterion}_std"))
                if math.isfinite(s):
                    stds.append(s)
    if not stds:
        return DEFAULT_MARGIN, f"auto margin: {judge} has no repeated runs to measure, using {DEFAULT_MARGIN}"
    value = 2.0 * sum(stds) / len(stds)
    return value, f"auto margin: 2 x mean repeat std of {judge} over {len(stds)} verdicts = {value:.3f}"


def _gating_map(gating: Sequence[str] | Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``{judge: criteria it gates}``; a plain list of judge names gates both criteria."""
    if isinstance(gating, Mapping):
        return {name: tuple(criteria) for name, criteria in gating.items()}
    return {name: CRITERIA for name in gating}


def compare(cell: Mapping[str, Any], baseline: Mapping[str, Any], *, judges: Sequence[str],
            gating: Sequence[str] | Mapping[str, Sequence[str]], margin: float | str, seed: int = 0) -> dict[str, Any]:
    """Paired statistics of ``cell`` against ``baseline`` for every judge; pass/fail from the gating
    judges, each on the criteria it is qualified to gate (``{judge: criteria}``, or names for both).

    Returns ``{"judges": {name: {criterion: stats-dict}}, "gating": [...], "passed": bool|None, "failures": [...]}``;
    ``passed`` is None when no judge may gate.
    """
    from evalsuite.metrics import paired_stats

    gating = _gating_map(gating)
    out: dict[str, Any] = {"judges": {}, "gating": list(gating), "gating_criteria": {k: list(v) for k, v in gating.items()},
                           "failures": [], "notes": []}
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
            stats["gating"] = criterion in gating.get(judge, ())
            per[criterion] = stats
            if stats["gating"] and not stats["non_inferior"]:
                out["failures"].append((judge, criterion))
        out["judges"][judge] = per
    out["passed"] = (not out["failures"]) if any(gating.values()) else None
    return out


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return f"{x:.{digits}f}"


def row_text(cell_id: str, judge: str, criterion: str, s: Mapping[str, Any]) -> str:
    """One line of the results table: baseline mean, cell mean, difference, interval, Wilcoxon p, n."""
    verdict = "non-inferior" if s["non_inferior"] else f"worse beyond margin {_fmt(s['margin'])}"
    return (f"{cell_id} {criterion} [{judge}]: baseline {_fmt(s['baseline_mean'])}, cell {_fmt(s['cell_mean'])}, "
            f"diff {_fmt(s['diff'], 3)}, 95% CI [{_fmt(s['ci_low'], 3)}, {_fmt(s['ci_high'], 3)}], "
            f"Wilcoxon p={_fmt(s['wilcoxon_p'], 3)}, n={s['n']} -> {verdict}")


def failure_message(cell_id: str, gate: Mapping[str, Any], report_path: str) -> str:
    lines = [row_text(cell_id, j, c, gate["judges"][j][c]) for j, c in gate["failures"]]
    lines.append(f"report: {report_path}")
    return "\n".join(lines)


def baseline_validity(result: Mapping[str, Any], *, gating: Sequence[str] | Mapping[str, Sequence[str]],
                      max_unscored: float) -> list[str]:
    """Problems that make a baseline run invalid (empty list = valid)."""
    problems = []
    items = result.get("items", [])
    if not items:
        return ["no eval questions were answered"]
    empty = sum(1 for item in items if not (item.get("answer") or "").strip())
    if empty / len(items) > max_unscored:
        problems.append(f"{empty} of {len(items)} answers are empty (bound {max_unscored:.0%})")
    for judge, criteria in _gating_map(gating).items():
        unscored = sum(
            1 for item in items
            if any(math.isnan(_num(((item.get("verdicts") or {}).get(judge) or {}).get(c))) for c in criteria)
        )
        if unscored / len(items) > max_unscored:
            problems.append(f"judge {judge} left {unscored} of {len(items)} answers unscored (bound {max_unscored:.0%})")
    return problems
