"""Why a cell failed: the questions whose scores dropped most from the baseline to the cell.

For each failed or significantly regressed cell, and always for the worst cell (lowest difference
from its baseline on the primary judge, whatever its status), the items with the largest paired drop on the
judge the report opens with (mean of accuracy and completeness, baseline minus cell), each with
the question, the gold answers, the retrieved passages, the two answers side by side and every
judge's verdict on both, raw output included. Read from ``results.json`` alone.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from evalsuite.report._stats import CRITERIA, finished, primary_judge

PER_CELL = 5


def _overall(item: Mapping[str, Any] | None, judge: str) -> float:
    verdict = ((item or {}).get("verdicts") or {}).get(judge) or {}
    values = [verdict.get(c) for c in CRITERIA]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return float("nan")
    return sum(float(v) for v in values) / len(values)


def regressed(cell: Mapping[str, Any]) -> bool:
    """Failed the gate, or some judge's 95% interval of (cell - baseline) lies below 0."""
    if cell.get("status") == "failed" and cell.get("kind") != "baseline":
        return True
    for per in ((cell.get("gate") or {}).get("judges") or {}).values():
        for stats in per.values():
            high = stats.get("ci_high")
            if isinstance(high, (int, float)) and math.isfinite(high) and high < 0:
                return True
    return False


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def worst_cell(results: Mapping[str, Any], judge: str | None = None) -> str | None:
    """The fine-tuned or candidate cell with the lowest difference from its baseline on the primary judge
    (its lowest criterion, gating criteria first), whatever its status; ``None`` when none was compared."""
    judge = judge or primary_judge(results)
    best: tuple[float, str] | None = None
    for cell in results.get("cells", []):
        if cell.get("kind") == "baseline" or not finished(cell):
            continue
        per = (((cell.get("gate") or {}).get("judges") or {}).get(judge)) or {}
        gating = [g for g in per.values() if g.get("gating")] or list(per.values())
        diffs = [float(g["diff"]) for g in gating if _finite(g.get("diff"))]
        if diffs and (best is None or min(diffs) < best[0]):
            best = (min(diffs), cell["id"])
    return best[1] if best else None


def largest_drops(results: Mapping[str, Any], per_cell: int = PER_CELL) -> list[dict[str, Any]]:
    """``[{cell, status, judge, worst, items: [...]}]`` for every failed or regressed cell and the worst
    cell whatever its status, largest drop first."""
    judge = primary_judge(results)
    if judge is None:
        return []
    cells = {c["id"]: c for c in results.get("cells", [])}
    worst = worst_cell(results, judge)
    out = []
    for cell in results.get("cells", []):
        if cell.get("kind") == "baseline" or not finished(cell) or not (regressed(cell) or cell["id"] == worst):
            continue
        base = cells.get(cell.get("baseline_id"))
        if not base or not finished(base):
            continue
        base_items = {i["id"]: i for i in base.get("items", [])}
        drops = []
        for item in cell.get("items", []):
            other = base_items.get(item["id"])
            drop = _overall(other, judge) - _overall(item, judge)
            if other is not None and math.isfinite(drop) and drop > 0:
                drops.append((drop, item, other))
        drops.sort(key=lambda t: (-t[0], t[1]["id"]))
        examples = []
        for drop, item, other in drops[:per_cell]:
            verdicts = []
            for name in sorted(set(item.get("verdicts") or {}) | set(other.get("verdicts") or {})):
                for side, source in (("baseline", other), ("cell", item)):
                    v = (source.get("verdicts") or {}).get(name) or {}
                    verdicts.append(
                        {
                            "judge": name,
                            "side": side,
                            "accuracy": v.get("accuracy"),
                            "completeness": v.get("completeness"),
                            "raw": list(v.get("raw") or []),
                        }
                    )
            examples.append(
                {
                    "id": item["id"],
                    "drop": drop,
                    "question": item.get("question", ""),
                    "references": list(item.get("references") or []),
                    "passages": list(item.get("passages") or []) or list(item.get("passage_ids") or []),
                    "baseline_answer": other.get("answer", ""),
                    "cell_answer": item.get("answer", ""),
                    "verdicts": verdicts,
                }
            )
        out.append(
            {
                "cell": cell["id"],
                "baseline": base["id"],
                "status": cell.get("status"),
                "judge": judge,
                "worst": cell["id"] == worst,
                "examples": examples,
            }
        )
    return out
