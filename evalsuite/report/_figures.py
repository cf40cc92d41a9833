"""The report's figures (matplotlib, Agg backend, PNG).

Per model and criterion, bars of the mean score by dataset and fine-tuning size (the
study's four figures); and one chart of every compared cell's difference from its baseline
with its 95% paired bootstrap interval and a dashed line at -margin, in the tables' row order.
Score bars start at 1, the floor of the judges' 1–5 scale.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from evalsuite.metrics import decide
from evalsuite.report._stats import CRITERIA, finished, primary_judge, recipe_name


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


SCALE_FLOOR = 1.0
INTERVAL_LABEL = "95% paired bootstrap interval"
MEAN_INTERVAL_LABEL = "95% interval of the mean (±1.96 s.e.)"


def score_bars(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    judge = primary_judge(results)
    if judge is None:
        return []
    plt = _plt()
    cells = [c for c in results.get("cells", []) if finished(c) and c.get("kind") in ("baseline", "finetuned")]
    datasets = [d for d in results.get("config", {}).get("datasets", []) if any(c["dataset"] == d for c in cells)]
    paths = []
    for model in sorted({c["model"] for c in cells}):
        mine = [c for c in cells if c["model"] == model]
        sizes = sorted({(c["size"], recipe_name(c) or "") for c in mine})  # (size, recipe) bars
        for criterion in CRITERIA:
            fig, ax = plt.subplots(figsize=(max(4.0, 1.8 * len(datasets) + 1) + 2.4, 3.4))
            width = 0.8 / max(1, len(sizes))
            for k, (size, recipe) in enumerate(sizes):
                means, errs, xs = [], [], []
                for i, dataset in enumerate(datasets):
                    c = next(
                        (
                            c
                            for c in mine
                            if c["dataset"] == dataset and c["size"] == size and (recipe_name(c) or "") == recipe
                        ),
                        None,
                    )
                    s = ((((c or {}).get("summary") or {}).get("judges") or {}).get(judge) or {}).get(criterion)
                    if not s or s.get("n", 0) == 0 or s.get("mean") is None or not math.isfinite(s["mean"]):
                        continue
                    xs.append(i - 0.4 + width * (k + 0.5))
                    means.append(s["mean"])
                    errs.append(1.96 * s["std"] / math.sqrt(s["n"]) if s["n"] > 1 else 0.0)
                label = "baseline" if size == 0 else f"fine-tuned {size}" + (f" ({recipe})" if recipe else "")
                # Bars start at the scale's floor, 1: a score of 1 is the lowest a judge gives.
                ax.bar(
                    xs,
                    [m - SCALE_FLOOR for m in means],
                    width * 0.95,
                    bottom=SCALE_FLOOR,
                    yerr=errs,
                    capsize=2,
                    label=label,
                    error_kw={"elinewidth": 1},
                )
            ax.errorbar([], [], yerr=[], fmt="none", ecolor="black", capsize=2, label=MEAN_INTERVAL_LABEL)
            ax.set_xticks(range(len(datasets)), datasets)
            ax.set_xlabel("dataset")
            ax.set_ylabel(f"{criterion} score, 1–5")
            ax.set_ylim(SCALE_FLOOR, 5.2)
            ax.set_title(f"{model}: {criterion} by dataset and fine-tuning size\njudge {judge}", fontsize=9)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            fig.tight_layout()
            path = out_dir / f"scores-{model}-{criterion}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _outcome(s: Mapping[str, Any]) -> str:
    """The criterion's outcome as stored, or decided from its interval (results.json written before outcomes)."""
    return s.get("outcome") or decide(float(s["ci_low"]), float(s["ci_high"]), float(s["margin"]))


def difference_chart(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    judge = primary_judge(results)
    rows = [
        c
        for c in results.get("cells", [])
        if c.get("kind") != "baseline" and (((c.get("gate") or {}).get("judges") or {}).get(judge))
    ]
    if judge is None or not rows:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * len(rows) + 1.6), sharey=True)
    for ax, criterion in zip(axes, CRITERIA):
        margins: set[float] = set()
        for y, cell in enumerate(rows):
            s = cell["gate"]["judges"][judge].get(criterion) or {}
            if (
                not s
                or s.get("n", 0) == 0
                or not all(_finite(s.get(k)) for k in ("diff", "ci_low", "ci_high", "margin"))
            ):
                continue
            outcome = _outcome(s)
            color = {"pass": "tab:green", "fail": "tab:red"}.get(outcome, "tab:orange")
            ax.errorbar(
                s["diff"],
                y,
                xerr=[[s["diff"] - s["ci_low"]], [s["ci_high"] - s["diff"]]],
                fmt="o",
                color=color,
                capsize=3,
                label=f"{outcome}: {INTERVAL_LABEL}",
            )
            margins.add(float(s["margin"]))
        for m in sorted(margins):
            ax.axvline(-m, color="grey", linestyle="--", linewidth=0.9, label=f"-margin ({-m:.2f})")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"{criterion}", fontsize=9)
        ax.set_xlabel(f"difference from baseline ({criterion}, cell − baseline)")
        ax.set_yticks(range(len(rows)), [c["id"] for c in rows], fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)  # first cell at the top, the tables' order
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=6, loc="best")
    fig.suptitle(f"difference from baseline, judge {judge}; error bars: {INTERVAL_LABEL}; dashed: -margin", fontsize=9)
    fig.tight_layout()
    path = out_dir / "differences.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def recipe_chart(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """A matrix with named recipes: per criterion and dataset, the difference from the baseline by
    fine-tuning size, one line per recipe, with the 95% paired interval and the margin."""
    judge = primary_judge(results)
    cells = [
        c
        for c in results.get("cells", [])
        if c.get("kind") == "finetuned" and recipe_name(c) and (((c.get("gate") or {}).get("judges") or {}).get(judge))
    ]
    if judge is None or not cells:
        return []
    plt = _plt()
    datasets = [d for d in results.get("config", {}).get("datasets", []) if any(c["dataset"] == d for c in cells)]
    recipes = list(dict.fromkeys(recipe_name(c) for c in cells))
    fig, axes = plt.subplots(len(CRITERIA), len(datasets), figsize=(3.6 * len(datasets) + 0.6, 5.6), squeeze=False)
    for row, criterion in enumerate(CRITERIA):
        for col, dataset in enumerate(datasets):
            ax = axes[row][col]
            margin = None
            for k, recipe in enumerate(recipes):
                mine = sorted(
                    (c for c in cells if c["dataset"] == dataset and recipe_name(c) == recipe), key=lambda c: c["size"]
                )
                stats = [(c["size"], c["gate"]["judges"][judge][criterion]) for c in mine]
                stats = [(size, s) for size, s in stats if s.get("n", 0) and math.isfinite(s["diff"])]
                if not stats:
                    continue
                sizes = [0] + [size for size, _ in stats]
                diffs = [0.0] + [s["diff"] for _, s in stats]
                low = [0.0] + [s["diff"] - s["ci_low"] for _, s in stats]
                high = [0.0] + [s["ci_high"] - s["diff"] for _, s in stats]
                ax.errorbar(
                    [x + 0.04 * k * max(sizes) for x in sizes],
                    diffs,
                    yerr=[low, high],
                    marker="o",
                    capsize=3,
                    label=recipe,
                )
                margin = stats[0][1].get("margin")
            ax.axhline(0, color="black", linewidth=0.8)
            if math.isfinite(float(margin or "nan")):
                ax.axhline(-float(margin), color="grey", linestyle="--", linewidth=0.8, label="-margin")
            ax.set_title(f"{dataset}: {criterion}", fontsize=9)
            ax.set_xlabel("fine-tuning pairs (0 = baseline)", fontsize=8)
            ax.set_ylabel("cell - baseline (points, 1-5 scale)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle(
        f"difference from baseline by size, one line per recipe (judge {judge}; bars: 95% paired bootstrap interval)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = out_dir / "recipes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def figures(results: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return score_bars(results, out_dir) + difference_chart(results, out_dir) + recipe_chart(results, out_dir)
