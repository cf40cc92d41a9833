"""The study's three research questions, answered from a run's ``results.json``.

1. Does fine-tuning beat the baseline? Per dataset and model, how many fine-tuned cells
   improved (interval above 0), held (interval spans 0) or regressed (interval below 0).
2. Does more fine-tuning data help? Spearman rho (and p) between fine-tuning size
   (0 = baseline) and the per-question score, per dataset and model (and recipe, with the one
   baseline in each recipe's trend).
3. Which model is more susceptible? Mean per-question difference from the baseline per
   model, and each pair of models compared on the questions (dataset, size) both answered.
4. Does any fine-tuning recipe avoid the degradation? (a matrix with named recipes) Per recipe:
   its cells improved, held and regressed, and the mean per-question difference from the
   baseline over all its cells, with its interval.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any, Mapping, Sequence

from evalsuite.judge import CRITERIA as _CRITERIA
from evalsuite.metrics import bootstrap_ci, wilcoxon_p
from evalsuite.records import FINISHED_CELL_STATUSES

CRITERIA = tuple(_CRITERIA)


def finished(cell: Mapping[str, Any]) -> bool:
    return cell.get("status") in FINISHED_CELL_STATUSES and isinstance(cell.get("items"), list)


def primary_judge(results: Mapping[str, Any]) -> str | None:
    """The judge the report opens with: the first gating judge, else the first judge with scores."""
    for j in results.get("judges", []):
        if j.get("gating"):
            return j["name"]
    for cell in results.get("cells", []):
        if finished(cell) and cell.get("judges"):
            return cell["judges"][0]
    return None


def judge_names(results: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    primary = primary_judge(results)
    if primary:
        names.append(primary)
    for cell in results.get("cells", []):
        for name in cell.get("judges") or []:
            if name not in names:
                names.append(name)
    return names


def score(item: Mapping[str, Any], judge: str, criterion: str) -> float:
    v = ((item.get("verdicts") or {}).get(judge) or {}).get(criterion)
    return float("nan") if v is None else float(v)


def recipe_name(cell: Mapping[str, Any]) -> str | None:
    """The fine-tuning recipe of a cell of a matrix with named recipes (None otherwise)."""
    return (cell.get("recipe") or {}).get("name")


def _interval_counts(cells: Sequence[Mapping[str, Any]], judge: str, criterion: str) -> dict[str, int]:
    """Cells whose paired interval lies above 0 (improved), spans it (held) or lies below (regressed)."""
    counts = {"improved": 0, "held": 0, "regressed": 0}
    for c in cells:
        s = (((c.get("gate") or {}).get("judges") or {}).get(judge) or {}).get(criterion)
        if not s or s.get("n", 0) == 0:
            continue
        if s["ci_low"] > 0:
            counts["improved"] += 1
        elif s["ci_high"] < 0:
            counts["regressed"] += 1
        else:
            counts["held"] += 1
    return counts


def item_differences(
    results: Mapping[str, Any], judge: str, criterion: str
) -> dict[str, dict[tuple[str, int, str, str], float]]:
    """Per model: {(dataset, size, recipe, question id): cell score - baseline score} over fine-tuned cells."""
    cells = {c["id"]: c for c in results.get("cells", [])}
    out: dict[str, dict[tuple[str, int, str], float]] = {}
    for cell in results.get("cells", []):
        if cell.get("kind") == "baseline" or not finished(cell):
            continue
        base = cells.get(cell.get("baseline_id"))
        if not base or not finished(base):
            continue
        base_items = {it["id"]: it for it in base["items"]}
        for item in cell["items"]:
            other = base_items.get(item["id"])
            if other is None:
                continue
            d = score(item, judge, criterion) - score(other, judge, criterion)
            if math.isfinite(d):
                key = (cell["dataset"], cell["size"], recipe_name(cell) or "", item["id"])
                out.setdefault(cell["model"], {})[key] = d
    return out


def _stats_of(diffs: Sequence[float], seed: int = 0) -> dict[str, Any]:

    n = len(diffs)
    if n == 0:
        return {
            "n": 0,
            "mean": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "wilcoxon_p": float("nan"),
        }
    low, high = bootstrap_ci(diffs, seed=seed)
    return {"n": n, "mean": sum(diffs) / n, "ci_low": low, "ci_high": high, "wilcoxon_p": wilcoxon_p(diffs)}


def research_questions(results: Mapping[str, Any]) -> dict[str, Any]:
    """Statistics for the three research questions, by the primary judge (see :func:`primary_judge`)."""
    judge = primary_judge(results)
    out: dict[str, Any] = {"judge": judge, "rq1": [], "rq2": [], "rq3": {"models": [], "pairs": []}, "rq4": []}
    if judge is None:
        return out
    cells = [c for c in results.get("cells", []) if finished(c)]
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for cell in cells:
        if cell.get("kind") in ("baseline", "finetuned"):
            groups.setdefault((cell["dataset"], cell["model"]), []).append(cell)
    for (dataset, model), group in groups.items():
        tuned = [c for c in group if c.get("kind") == "finetuned"]
        for criterion in CRITERIA:
            counts = _interval_counts(tuned, judge, criterion)
            if tuned:
                out["rq1"].append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "criterion": criterion,
                        **counts,
                        "cells": sum(counts.values()),
                    }
                )
            # with named recipes, one trend per recipe: its sizes and the one baseline
            for recipe in dict.fromkeys(recipe_name(c) for c in tuned):
                trend = [c for c in group if c.get("kind") != "finetuned" or recipe_name(c) == recipe]
                sizes, scores = [], []
                for c in trend:
                    for item in c["items"]:
                        v = score(item, judge, criterion)
                        if math.isfinite(v):
                            sizes.append(c["size"])
                            scores.append(v)
                rho, p = _spearman_p(sizes, scores)
                out["rq2"].append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "criterion": criterion,
                        "rho": rho,
                        "p": p,
                        "n": len(scores),
                        "sizes": sorted({c["size"] for c in trend}),
                        **({"recipe": recipe} if recipe else {}),
                    }
                )
    for criterion in CRITERIA:
        diffs = item_differences(results, judge, criterion)
        for model, d in diffs.items():
            out["rq3"]["models"].append({"model": model, "criterion": criterion, **_stats_of(list(d.values()))})
        for a, b in combinations(sorted(diffs), 2):
            shared = sorted(set(diffs[a]) & set(diffs[b]))
            paired = [diffs[a][k] - diffs[b][k] for k in shared]
            out["rq3"]["pairs"].append({"a": a, "b": b, "criterion": criterion, **_stats_of(paired)})
    out["rq4"] = recipe_question(results, judge)
    return out


def recipe_question(results: Mapping[str, Any], judge: str) -> list[dict[str, Any]]:
    """Per recipe and criterion: cells improved, held and regressed, and the pooled paired difference."""
    cells = {c["id"]: c for c in results.get("cells", [])}
    tuned = [c for c in results.get("cells", []) if c.get("kind") == "finetuned" and recipe_name(c)]
    names = list(dict.fromkeys(recipe_name(c) for c in tuned))
    out = []
    for name in names:
        mine = [c for c in tuned if recipe_name(c) == name]
        ran = [c for c in mine if finished(c)]
        for criterion in CRITERIA:
            diffs = []
            for c in ran:
                base = cells.get(c.get("baseline_id"))
                if not base or not finished(base):
                    continue
                base_items = {it["id"]: it for it in base["items"]}
                for item in c["items"]:
                    other = base_items.get(item["id"])
                    d = score(item, judge, criterion) - score(other, judge, criterion) if other else float("nan")
                    if math.isfinite(d):
                        diffs.append(d)
            out.append(
                {
                    "recipe": name,
                    "criterion": criterion,
                    "cells": len(ran),
                    "not_run": len(mine) - len(ran),
                    **{
                        k: (
                            next((c for c in mine if "options" in (c.get("recipe") or {})), mine[0]).get("recipe") or {}
                        ).get(k)
                        for k in ("options", "effective_batch_size", "per_device_batch_size", "gradient_accumulation")
                    },
                    "skipped": sorted({c.get("reason", "") for c in mine if c.get("status") == "skipped"}),
                    **_interval_counts(ran, judge, criterion),
                    **_stats_of(diffs),
                }
            )
    return out


def _spearman_p(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan"), float("nan")
    from scipy.stats import spearmanr

    res = spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)
