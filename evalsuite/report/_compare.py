"""Cell-by-cell comparison of two runs, paired on the questions both answered."""

from __future__ import annotations

from typing import Any, Mapping

from evalsuite.metrics import paired_stats
from evalsuite.report._render import fmt, to_markdown
from evalsuite.report._stats import CRITERIA, finished, score


def compare_runs(a: Mapping[str, Any], b: Mapping[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """Rows of (cell, judge, criterion, paired stats of B - A) for every cell both runs finished."""

    cells_a = {c["id"]: c for c in a.get("cells", []) if finished(c)}
    cells_b = {c["id"]: c for c in b.get("cells", []) if finished(c)}
    rows = []
    for cid in [c for c in cells_a if c in cells_b]:
        ca, cb = cells_a[cid], cells_b[cid]
        items_b = {it["id"]: it for it in cb["items"]}
        shared = [(it, items_b[it["id"]]) for it in ca["items"] if it["id"] in items_b]
        for judge in [j for j in ca.get("judges", []) if j in cb.get("judges", [])]:
            for criterion in CRITERIA:
                s = paired_stats(
                    [score(x, judge, criterion) for x, _ in shared],
                    [score(y, judge, criterion) for _, y in shared],
                    margin=0.0,
                    seed=seed,
                )
                rows.append(
                    {
                        "cell": cid,
                        "judge": judge,
                        "criterion": criterion,
                        "a_mean": s.baseline_mean,
                        "b_mean": s.cell_mean,
                        "diff": s.diff,
                        "ci_low": s.ci_low,
                        "ci_high": s.ci_high,
                        "wilcoxon_p": s.wilcoxon_p,
                        "n": s.n,
                    }
                )
    return {
        "a": a.get("run_id"),
        "b": b.get("run_id"),
        "rows": rows,
        "only_a": sorted(set(cells_a) - set(cells_b)),
        "only_b": sorted(set(cells_b) - set(cells_a)),
    }


def comparison_markdown(cmp: Mapping[str, Any]) -> str:
    blocks: list[tuple] = [("h2", f"{cmp['b']} minus {cmp['a']}, paired on shared questions")]
    blocks.append(
        (
            "table",
            ["cell", "judge", "criterion", "A", "B", "B - A", "95% CI", "Wilcoxon p", "n"],
            [
                [
                    r["cell"],
                    r["judge"],
                    r["criterion"],
                    fmt(r["a_mean"]),
                    fmt(r["b_mean"]),
                    fmt(r["diff"], 3, True),
                    f"[{fmt(r['ci_low'], 3)}, {fmt(r['ci_high'], 3)}]",
                    fmt(r["wilcoxon_p"], 3),
                    str(r["n"]),
                ]
                for r in cmp["rows"]
            ],
        )
    )
    if cmp["only_a"] or cmp["only_b"]:
        blocks.append(
            ("p", f"Only in A: {', '.join(cmp['only_a']) or '–'}. Only in B: {', '.join(cmp['only_b']) or '–'}.")
        )
    return to_markdown(blocks)
