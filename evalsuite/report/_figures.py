"""The report's figures (matplotlib, Agg backend, PNG).

Per model and criterion, bars of the mean score by dataset and fine-tuning size (the
study's four figures); and one chart of every compared cell's difference from its baseline
with the 95% interval and the non-inferiority margin.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from evalsuite.report._stats import CRITERIA, finished, primary_judge, recipe_name


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
            fig, ax = plt.subplots(figsize=(max(4.0, 1.8 * len(datasets) + 1), 3.4))
            width = 0.8 / max(1, len(sizes))
            for k, (size, recipe) in enumerate(sizes):
                means, errs, xs = [], [], []
                for i, dataset in enumerate(datasets):
                    c = next((c for c in mine if c["dataset"] == dataset and c["size"] == size
                              and (recipe_name(c) or "") == recipe), None)
                    s = ((((c or {}).get("summary") or {}).get("judges") or {}).get(judge) or {}).get(criterion)
                    if not s or s.get("n", 0) == 0 or s.get("mean") is None or not math.isfinite(s["mean"]):
                        continue
                    xs.append(i - 0.4 + width * (k + 0.5))
                    means.append(s["mean"])
                    errs.append(1.96 * s["std"] / math.sqrt(s["n"]) if s["n"] > 1 else 0.0)
                label = "baseline" if size == 0 else f"fine-tuned {size}" + (f" ({recipe})" if recipe else "")
                ax.bar(xs, means, width * 0.95, yerr=errs, capsize=2, label=label)
            ax.set_xticks(range(len(datasets)), datasets)
            ax.set_ylabel(f"{criterion} (1-5)")
            ax.set_ylim(0, 5.2)
            ax.set_title(f"{model}: {criterion} by dataset and fine-tuning size\njudge {judge}", fontsize=9)
            ax.legend(fontsize=7, loc="lower right")
            fig.tight_layout()
            path = out_dir / f"scores-{model}-{criterion}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def difference_chart(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    judge = primary_judge(results)
    rows = [c for c in results.get("cells", []) if c.get("kind") != "baseline" and
            (((c.get("gate") or {}).get("judges") or {}).get(judge))]
    if judge is None or not rows:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * len(rows) + 1.6), sharey=True)
    for ax, criterion in zip(axes, CRITERIA):
        for y, cell in enumerate(rows):
            s = cell["gate"]["judges"][judge][criterion]
            if s.get("n", 0) == 0 or not math.isfinite(s["diff"]):
                continue
            outcome = s.get("outcome") or ("pass" if s.get("non_inferior") else "fail")
            color = {"pass": "tab:green", "fail": "tab:red"}.get(outcome, "tab:orange")
            ax.errorbar(s["diff"], y, xerr=[[s["diff"] - s["ci_low"]], [s["ci_high"] - s["diff"]]], fmt="o", color=color, capsize=3)
            ax.axvline(-s["margin"], color="grey", linestyle=":", linewidth=0.8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"{criterion}: cell - baseline (95% CI)", fontsize=9)
        ax.set_yticks(range(len(rows)), [c["id"] for c in rows], fontsize=7)
        ax.invert_yaxis()
    fig.suptitle(f"difference from baseline, judge {judge} (dotted: -margin)", fontsize=9)
    fig.tight_layout()
    path = out_dir / "differences.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def recipe_chart(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """A matrix with named recipes: per criterion and dataset, the difference from the baseline by
    fine-tuning size, one line per recipe, with the 95% paired interval and the margin."""
    judge = primary_judge(results)
    cells = [c for c in results.get("cells", []) if c.get("kind") == "finetuned" and recipe_name(c)
             and (((c.get("gate") or {}).get("judges") or {}).get(judge))]
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
                mine = sorted((c for c in cells if c["dataset"] == dataset and recipe_name(c) == recipe),
                              key=lambda c: c["size"])
                stats = [(c["size"], c["gate"]["judges"][judge][criterion]) for c in mine]
                stats = [(size, s) for size, s in stats if s.get("n", 0) and math.isfinite(s["diff"])]
                if not stats:
                    continue
                sizes = [0] + [size for size, _ in stats]
                diffs = [0.0] + [s["diff"] for _, s in stats]
                low = [0.0] + [s["diff"] - s["ci_low"] for _, s in stats]
                high = [0.0] + [s["ci_high"] - s["diff"] for _, s in stats]
                ax.errorbar([x + 0.04 * k * max(sizes) for x in sizes], diffs, yerr=[low, high], marker="o", capsize=3,
                            label=recipe)
                margin = stats[0][1].get("margin")
            ax.axhline(0, color="black", linewidth=0.8)
            if math.isfinite(float(margin or "nan")):
                ax.axhline(-float(margin), color="grey", linestyle="--", linewidth=0.8, label="-margin")
            ax.set_title(f"{dataset}: {criterion}", fontsize=9)
            ax.set_xlabel("fine-tuning pairs (0 = baseline)", fontsize=8)
            ax.set_ylabel("cell - baseline (points, 1-5 scale)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle(f"difference from baseline by size, one line per recipe (judge {judge}; bars: 95% paired "
                 "bootstrap interval)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = out_dir / "recipes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def figures(results: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return score_bars(results, out_dir) + difference_chart(results, out_dir) + recipe_chart(results, out_dir)
