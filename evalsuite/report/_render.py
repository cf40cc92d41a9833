"""``summary.md`` and ``report.html`` of a run, both from the same list of blocks.

A block is ``("h1"|"h2"|"h3"|"p", text)``, ``("table", header, rows)`` or ``("img", path)``;
:func:`blocks` builds them from ``results.json`` and the two writers only format them.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalsuite.metrics import decide
from evalsuite.report._coverage import STATE_MEANING, STATES, with_coverage
from evalsuite.report._examples import largest_drops
from evalsuite.report._stats import CRITERIA, finished, judge_names, primary_judge, recipe_name, research_questions

METRICS = (("exact_match", "EM"), ("f1", "F1"), ("rouge_l", "ROUGE-L"), ("yes_no_correct", "yes/no acc"))


def fmt(x: Any, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _rq_blocks(results: Mapping[str, Any], rq: Mapping[str, Any]) -> list[tuple]:
    judge = rq["judge"]
    out: list[tuple] = [("h2", f"Research questions (judge: {judge})")]
    # 1
    tot = {k: sum(r[k] for r in rq["rq1"]) for k in ("improved", "held", "regressed", "cells")}
    out.append(("h3", "1. Does fine-tuning beat the un-tuned baseline?"))
    if tot["cells"]:
        verdict = (
            "yes, mostly"
            if tot["improved"] > tot["regressed"] + tot["held"]
            else "no: it regressed more often than it improved"
            if tot["regressed"] > tot["improved"]
            else "no clear gain"
        )
        out.append(
            (
                "p",
                f"Answer: {verdict}. Of {tot['cells']} comparisons (fine-tuned cell x criterion), "
                f"{tot['improved']} improved, {tot['held']} held and {tot['regressed']} regressed significantly "
                f"(95% paired bootstrap interval of cell - baseline above 0 / spanning 0 / below 0).",
            )
        )
        out.append(
            (
                "table",
                ["dataset", "model", "criterion", "improved", "held", "regressed"],
                [
                    [r["dataset"], r["model"], r["criterion"], str(r["improved"]), str(r["held"]), str(r["regressed"])]
                    for r in rq["rq1"]
                ],
            )
        )
    else:
        out.append(("p", "No fine-tuned cell was compared with its baseline in this run."))
    # 2
    out.append(("h3", "2. Does more fine-tuning data help?"))
    sig = [r for r in rq["rq2"] if math.isfinite(r["p"]) and r["p"] < 0.05]
    if rq["rq2"]:
        pos = sum(1 for r in sig if r["rho"] > 0)
        neg = sum(1 for r in sig if r["rho"] < 0)
        out.append(
            (
                "p",
                f"Spearman rank correlation between fine-tuning size (0 = baseline) and per-question score: "
                f"{pos} of {len(rq['rq2'])} trends significantly positive, {neg} significantly negative (p < 0.05).",
            )
        )
        recipes = any(r.get("recipe") for r in rq["rq2"])  # one trend per recipe, each with the one baseline
        out.append(
            (
                "table",
                ["dataset", "model", *(["recipe"] if recipes else []), "criterion", "Spearman rho", "p", "n", "sizes"],
                [
                    [
                        r["dataset"],
                        r["model"],
                        *([r.get("recipe") or ""] if recipes else []),
                        r["criterion"],
                        fmt(r["rho"], 3),
                        fmt(r["p"], 3),
                        str(r["n"]),
                        ",".join(map(str, r["sizes"])),
                    ]
                    for r in rq["rq2"]
                ],
            )
        )
    else:
        out.append(("p", "No dataset and model has scores at two or more fine-tuning sizes."))
    # 3
    out.append(("h3", "3. Which model is more susceptible to fine-tuning?"))
    models = rq["rq3"]["models"]
    if models:
        out.append(
            (
                "table",
                ["model", "criterion", "mean diff from baseline", "95% CI", "Wilcoxon p", "n"],
                [
                    [
                        m["model"],
                        m["criterion"],
                        fmt(m["mean"], 3, True),
                        f"[{fmt(m['ci_low'], 3)}, {fmt(m['ci_high'], 3)}]",
                        fmt(m["wilcoxon_p"], 3),
                        str(m["n"]),
                    ]
                    for m in models
                ],
            )
        )
        if rq["rq3"]["pairs"]:
            out.append(
                (
                    "p",
                    "Models compared paired on the questions (dataset, size, question) both answered; "
                    "a negative difference means the first model lost more from fine-tuning:",
                )
            )
            out.append(
                (
                    "table",
                    ["models", "criterion", "diff (a - b)", "95% CI", "Wilcoxon p", "n"],
                    [
                        [
                            f"{p['a']} vs {p['b']}",
                            p["criterion"],
                            fmt(p["mean"], 3, True),
                            f"[{fmt(p['ci_low'], 3)}, {fmt(p['ci_high'], 3)}]",
                            fmt(p["wilcoxon_p"], 3),
                            str(p["n"]),
                        ]
                        for p in rq["rq3"]["pairs"]
                    ],
                )
            )
        else:
            worst = min(models, key=lambda m: m["mean"] if math.isfinite(m["mean"]) else math.inf)
            out.append(
                (
                    "p",
                    f"Only one fine-tuned model in this run ({worst['model']}), so no comparison between models; "
                    f"its mean difference from baseline is given above.",
                )
            )
    else:
        out.append(("p", "No fine-tuned model was compared with its baseline in this run."))
    out += _recipe_blocks(rq.get("rq4") or [])
    return out


def _recipe_blocks(rows: Sequence[Mapping[str, Any]]) -> list[tuple]:
    """4. Does any recipe avoid the degradation? (only for a matrix with named recipes)"""
    if not rows:
        return []
    out: list[tuple] = [("h3", "4. Does any fine-tuning recipe avoid the degradation?")]
    held = sorted(
        {r["recipe"] for r in rows if r["cells"] and r["regressed"] == 0}
        - {r["recipe"] for r in rows if r["regressed"]}
    )
    ran = [r for r in rows if r["cells"]]
    if ran:
        out.append(
            (
                "p",
                "Recipes with no cell regressed significantly on either criterion: "
                + (", ".join(held) if held else "none")
                + ". Per recipe, its fine-tuned cells improved, held or "
                "regressed significantly (95% paired interval above 0 / spanning 0 / below 0), and the mean "
                "per-question difference from the baseline over all its cells.",
            )
        )
    out.append(
        (
            "table",
            [
                "recipe",
                "options",
                "effective batch (per device x accumulation)",
                "criterion",
                "cells",
                "improved",
                "held",
                "regressed",
                "mean diff",
                "95% CI",
                "Wilcoxon p",
                "n",
            ],
            [
                [
                    r["recipe"],
                    _options_text(r.get("options")),
                    _batch_text(r),
                    r["criterion"],
                    str(r["cells"]),
                    str(r["improved"]),
                    str(r["held"]),
                    str(r["regressed"]),
                    fmt(r["mean"], 3, True),
                    f"[{fmt(r['ci_low'], 3)}, {fmt(r['ci_high'], 3)}]",
                    fmt(r["wilcoxon_p"], 3),
                    str(r["n"]),
                ]
                for r in rows
            ],
        )
    )
    skipped = {r["recipe"]: r["skipped"] for r in rows if r.get("skipped")}
    if skipped:
        out.append(
            (
                "p",
                "Recipes that could not run on this machine: "
                + "; ".join(f"{name} ({' / '.join(reasons)})" for name, reasons in skipped.items()),
            )
        )
    return out


def _recipes_not_run_blocks(results: Mapping[str, Any]) -> list[tuple]:
    """The recipes skipped here, with their reasons, for a run without a scored cell (the fourth research
    question lists them otherwise)."""
    skipped: dict[str, set[str]] = {}
    for c in results.get("cells", []):
        if c.get("kind") == "finetuned" and recipe_name(c) and c.get("status") == "skipped":
            skipped.setdefault(recipe_name(c), set()).add(c.get("reason") or "")
    if not skipped:
        return []
    return [
        (
            "p",
            "Recipes that could not run on this machine: "
            + "; ".join(f"{name} ({' / '.join(sorted(reasons))})" for name, reasons in skipped.items()),
        )
    ]


def _batch_text(r: Mapping[str, Any]) -> str:
    if not r.get("effective_batch_size"):
        return "–"
    return f"{r['effective_batch_size']} ({r['per_device_batch_size']} x {r['gradient_accumulation']})"


def _options_text(options: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((options or {}).items())) or "the profile's [finetune]"


_OUTCOME_LABEL = {"pass": "pass", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}


def _outcome_of(g: Mapping[str, Any]) -> str:
    """A criterion's gate outcome; files of older runs have only the interval and the margin."""

    def num(v: Any) -> float:
        return float("nan") if v is None else float(v)

    if g.get("outcome"):
        return g["outcome"]
    try:
        return decide(num(g.get("ci_low")), num(g.get("ci_high")), num(g.get("margin")))
    except (TypeError, ValueError):
        return "inconclusive"


_RUN_VERDICT = (
    ("error", "error"),
    ("failed", "regression"),
    ("inconclusive", "inconclusive"),
    ("ungated", "not gated"),
    ("skipped", "not gated"),
    ("scored", "not gated"),
    ("not run", "not gated"),
)
_BADGE = {
    "passed": ("pass", "pass"),
    "failed": ("fail", "FAIL"),
    "inconclusive": ("inconclusive", "INCONCLUSIVE"),
    "ungated": ("ungated", "not gated"),
    "scored": ("ungated", "not gated"),
    "skipped": ("ungated", "skipped"),
    "not run": ("ungated", "not run"),
    "error": ("fail", "error"),
}


def run_verdict(cells: Sequence[Mapping[str, Any]]) -> str:
    """The run's outcome from its cells' statuses: error > failed > inconclusive > not gated > passed."""
    statuses = {c.get("status") for c in cells if c.get("kind") != "baseline" or c.get("status") == "error"}
    for status, verdict in _RUN_VERDICT:
        if status in statuses:
            return verdict
    return "passed" if cells else "not gated"


def _headroom(g: Mapping[str, Any]) -> str:
    h = g.get("headroom")
    if h is None and g.get("ci_low") is not None and g.get("margin") is not None:
        h = float(g["ci_low"]) + float(g["margin"])
    if h is None or not math.isfinite(float(h)):
        return "–"
    return "at the margin" if abs(float(h)) < 0.005 else fmt(float(h), 2, True)


def verdict_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One badge per cell: its label, and for each gating criterion diff, interval, headroom and mdd."""
    rows = []
    for c in results.get("cells", []):
        status = c.get("status") or "not run"
        if c.get("kind") == "baseline":
            ok = status not in ("error", "failed", "not run") and not c.get("problems")
            css, label = ("pass", "valid baseline") if ok else ("fail", "invalid baseline")
        else:
            css, label = _BADGE.get(status, ("ungated", str(status)))
        crit = []
        gate = c.get("gate") or {}
        for judge, per in (gate.get("judges") or {}).items():
            for criterion, g in per.items():
                # results.json written before per-criterion flags: the judges the cell was gated by
                if not (g["gating"] if "gating" in g else judge in (gate.get("gating") or [])):
                    continue
                crit.append(
                    f"{criterion} {fmt(g.get('diff'), 2, True)}, 95% interval [{fmt(g.get('ci_low'))}, "
                    f"{fmt(g.get('ci_high'))}], {_OUTCOME_LABEL.get(_outcome_of(g), '–')}; headroom to the "
                    f"margin {_headroom(g)}; min. detectable drop {fmt(g.get('mdd'))}"
                )
        rows.append({"cell": c["id"], "css": css, "label": label, "criteria": crit})
    return rows


def _paired_counts(cell: Mapping[str, Any]) -> tuple[str, str]:
    """The paired n and the unscored counts (cell / baseline) of the cell's gated criteria."""
    gated = [
        s for per in ((cell.get("gate") or {}).get("judges") or {}).values() for s in per.values() if s.get("gating")
    ]
    if not gated:
        return "", ""
    n = min(int(s.get("n") or 0) for s in gated)
    unscored = "/".join(str(max(int(s.get(k) or 0) for s in gated)) for k in ("unscored_cell", "unscored_baseline"))
    return str(n), unscored


def _cell_text(cell: Mapping[str, Any] | None, judge: str, criterion: str) -> str:
    if cell is None:
        return ""
    status = cell.get("status")
    if status in ("skipped", "error"):
        return status
    if status == "not run" or not finished(cell):
        return status or "–"
    s = ((cell.get("summary") or {}).get("judges") or {}).get(judge, {}).get(criterion) or {}
    text = fmt(s.get("mean"))
    g = ((cell.get("gate") or {}).get("judges") or {}).get(judge, {}).get(criterion)
    if g:
        text += f" ({fmt(g['diff'], 2, True)})"
        if g.get("gating"):
            text += " " + _OUTCOME_LABEL.get(_outcome_of(g), "–")
    elif cell.get("kind") == "baseline":
        text += " (baseline)"
    return text


def score_table(results: Mapping[str, Any], judge: str, criterion: str) -> tuple:
    datasets = list(results.get("config", {}).get("datasets", []))
    cells = results.get("cells", [])
    rows = []
    keys = []
    for c in cells:
        key = (c["model"], c["size"], recipe_name(c))
        if key not in keys:
            keys.append(key)
    keys.sort(key=lambda k: (k[0] == "candidate", [c["model"] for c in cells].index(k[0]), k[1]))
    with_recipes = any(recipe for _, _, recipe in keys)
    for model, size, recipe in keys:
        label = "candidate" if model == "candidate" else f"ft{size}"
        row = [model, label] + ([recipe or ("–" if size == 0 or model == "candidate" else "")] if with_recipes else [])
        for d in datasets:
            cell = next(
                (
                    c
                    for c in cells
                    if c["model"] == model and c["size"] == size and c["dataset"] == d and recipe_name(c) == recipe
                ),
                None,
            )
            row.append(_cell_text(cell, judge, criterion))
        rows.append(row)
    return ("table", ["model", "size", *(["recipe"] if with_recipes else []), *datasets], rows)


def metrics_table(results: Mapping[str, Any]) -> tuple:
    rows = []
    cells = [c for c in results.get("cells", []) if finished(c)]
    recipes = any(recipe_name(c) for c in cells)  # a matrix with named recipes gets a recipe column
    for c in cells:
        m = (c.get("summary") or {}).get("metrics") or {}
        rows.append(
            [
                c["dataset"],
                c["model"],
                "candidate" if c["model"] == "candidate" else f"ft{c['size']}",
                *([recipe_name(c) or "–"] if recipes else []),
                *[fmt((m.get(key) or {}).get("mean"), 3) for key, _ in METRICS],
                str(len(c["items"])),
            ]
        )
    return (
        "table",
        ["dataset", "model", "size", *(["recipe"] if recipes else []), *[label for _, label in METRICS], "n"],
        rows,
    )


def blocks(results: Mapping[str, Any], figures: Sequence[Path] = ()) -> list[tuple]:
    judge = primary_judge(results)
    cfg = results.get("config", {})
    git = (results.get("provenance") or {}).get("git") or {}
    out: list[tuple] = [("h1", f"evalsuite run {results.get('run_id')} (profile {results.get('profile')})")]
    if results.get("incomplete"):
        out.append(
            (
                "p",
                f"Incomplete run: {results['incomplete']}. The cells below marked 'not run' did not run; "
                "run the same command again to resume (finished cells are reused).",
            )
        )
    cells = results.get("cells", [])
    out.append(("verdict", run_verdict(cells), verdict_rows(results)))
    if figures:
        out.append(("h2", "Figures"))
        out.append(
            (
                "p",
                "Scores on the judge's 1–5 scale, bars from 1; their error bars: 95% interval of the mean "
                "(±1.96 s.e.). "
                "Differences from the baseline: error bars are the 95% paired bootstrap interval, the dashed "
                "line is -margin; "
                "rows in the order of the tables.",
            )
        )
        out += [("img", p) for p in figures]
    counts = {
        s: sum(1 for c in cells if c.get("status") == s)
        for s in ("passed", "failed", "inconclusive", "error", "skipped", "ungated", "scored", "not run")
    }
    out.append(
        (
            "p",
            f"Does fine-tuning make the RAG answers better or worse than the un-tuned model? "
            f"{len(cells)} cells: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['inconclusive']} inconclusive, {counts['error']} could not run, "
            f"{counts['skipped']} skipped, {counts['ungated'] + counts['scored']} scored but not gated, "
            f"{counts['not run']} not run. "
            f"Models: {', '.join(m['name'] + ' = ' + m['spec'] for m in cfg.get('models', []))}; "
            f"{cfg.get('eval_limit')} eval questions per dataset; margin {cfg.get('margin')}; "
            f"commit {str(git.get('commit'))[:12]}{' (dirty)' if git.get('dirty') else ''}; created "
            f"{results.get('created')}.",
        )
    )
    if judge is None:
        out.append(("p", "No cell was scored, so there is nothing to answer yet."))
        out += _recipes_not_run_blocks(results)
    else:
        out += _rq_blocks(results, research_questions(results))
        gating = [j for j in results.get("judges", []) if j.get("gating")]
        for criterion in CRITERIA:
            note = "gating" if any(j["name"] == judge for j in gating) else "not qualified to gate"
            out.append(("h2", f"{criterion.capitalize()} (judge {judge}, {note})"))
            out.append(
                (
                    "p",
                    "Mean score 1-5; in brackets the paired difference from the baseline on the same questions; "
                    "pass = not worse beyond the margin (the interval's lower end is at least -margin), "
                    "FAIL = worse beyond the margin (its upper end is below -margin), INCONCLUSIVE = neither.",
                )
            )
            out.append(score_table(results, judge, criterion))
        out.append(("h2", "Reference metrics"))
        out.append(metrics_table(results))
        for other in judge_names(results)[1:]:
            for criterion in CRITERIA:
                out.append(("h3", f"{criterion.capitalize()} by {other}"))
                out.append(score_table(results, other, criterion))
    out += _dataset_blocks(results)
    out += judge_blocks(results)
    out.append(("h2", "Cells"))
    rows = []
    for c in cells:
        gated = ", ".join((c.get("gate") or {}).get("gating") or c.get("gating") or []) or "–"
        note = c.get("reason") or "; ".join(c.get("problems") or []) or ""
        paired, unscored = _paired_counts(c)
        rows.append(
            [
                c["id"],
                c.get("status", ""),
                gated,
                str(len(c.get("items") or [])) if finished(c) else "",
                paired,
                unscored,
                _short(note, 140),
            ]
        )
    out.append(("table", ["cell", "status", "gated by", "n", "paired n", "unscored (cell/baseline)", "note"], rows))
    drops = largest_drops(results)
    if drops:
        worst = next((g["cell"] for g in drops if g.get("worst")), None)
        out.append(("h2", "The largest drops from the baseline"))
        out.append(
            (
                "p",
                f"For each failed or significantly regressed cell, and for the worst cell ({worst or '–'}: the lowest "
                f"difference from its baseline on the primary judge, whatever its status), the questions whose score "
                f"(judge {drops[0]['judge']}, mean of accuracy and completeness) fell most from the baseline, with "
                "the retrieved passages, both answers and every judge's verdict and raw output. Under each, the "
                "coverage map of the gold answer's claims: each claim "
                + "; ".join(f"{state} = {meaning}" for state, meaning in STATE_MEANING.items())
                + "; with its coverage score (0-1) in the baseline's / the fine-tuned answer.",
            )
        )
        out.append(("examples", with_coverage(drops)))
    prov = results.get("provenance") or {}
    totals = prov.get("totals") or {}
    out.append(("h2", "Provenance"))
    out.append(
        (
            "p",
            f"python {prov.get('python')}; "
            + ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v)
            + f". Tokens: {totals.get('prompt_tokens')} prompt, {totals.get('completion_tokens')} completion; "
            f"model calls {totals.get('model_calls')}, cache hits {totals.get('cache_hits')}; "
            f"session {fmt((prov.get('timings') or {}).get('session_seconds'), 0)} s.",
        )
    )
    return out


def _pair(a: Any, b: Any, digits: int = 3) -> str:
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def _agreement_row(name: str, gates: str, q: Mapping[str, Any], why: str) -> list[str]:
    per = {c["criterion"]: c for c in q.get("criteria") or []}
    acc, comp = per.get("accuracy", {}), per.get("completeness", {})
    share = next((x for x in (q.get("longform") or {}).get("shares", []) if x.get("score") == "overall"), {})
    return [
        name,
        gates,
        _pair(acc.get("auc"), acc.get("auc_long")),
        _pair(comp.get("auc"), comp.get("auc_long")),
        _pair(acc.get("kappa"), acc.get("kappa_long")),
        fmt(acc.get("within_question"), 3),
        fmt(share.get("good_over_wrong"), 3),
        fmt(q.get("items_per_second"), 1),
        why,
    ]


def judge_blocks(results: Mapping[str, Any]) -> list[tuple]:
    """Which judges gated and why the others did not: agreement with people next to the published evaluators."""
    judges = results.get("judges", [])
    out: list[tuple] = [("h2", "Judges: which gated, and why the others did not")]
    rule = next((j["qualification"].get("rule") for j in judges if j.get("qualification")), None)
    if rule:
        out.append(
            (
                "p",
                f"A judge gates only when it agrees with people: ROC AUC of its accuracy score against human "
                f"correctness labels >= {rule['min_auc']:.2f} on all answers of the human set (1,490 NQ answers "
                f"of 12 QA systems, Kamalloo et al. 2023) and >= {rule['min_auc_long']:.2f} on the answers of "
                f"{rule['long_words']}+ words, and a long-form good answer (another annotator's) scored above an "
                f"on-topic wrong one in >= {rule['min_longform_share']:.0%} of pairs built from the fine-tune pools. "
                "A qualified judge gates each criterion whose own AUCs meet the bars. Kappa is at the judge's own "
                "threshold, fitted on the other of two question folds.",
            )
        )
    header = [
        "judge",
        "gates",
        "accuracy AUC (all / 5+ words)",
        "completeness AUC (all / 5+)",
        "kappa (all / 5+)",
        "within-question",
        "long-form good > wrong",
        "answers/s",
        "why",
    ]
    rows = []
    for j in judges:
        q = j.get("qualification") or {}
        gates = ", ".join(j.get("gating_criteria") or []) if j.get("gating") else "no"
        rows.append(_agreement_row(j["name"], gates, q, j["why"]) if q else [j["name"], gates, *["–"] * 6, j["why"]])
    anchors = next(
        (j["qualification"].get("anchors") for j in judges if (j.get("qualification") or {}).get("anchors")), []
    )
    for a in anchors:
        auc = f"balanced accuracy {fmt(a['balanced_accuracy'], 3)}" if a.get("balanced_accuracy") is not None else "–"
        rows.append(
            [
                a["label"],
                "published",
                auc,
                "–",
                _pair(a.get("kappa"), a.get("kappa_long")),
                "–",
                "–",
                "–",
                f"accuracy {fmt(a.get('accuracy'), 3)} / {fmt(a.get('accuracy_long'), 3)} on the same answers",
            ]
        )
    for spec, m in sorted((results.get("judges_measured") or {}).items()):
        rows.append(
            _agreement_row(
                spec,
                "no (not in this run)",
                m.get("qualification") or {},
                f"last measured {m.get('date')} on {m.get('machine')}: "
                + "; ".join((m.get("qualification") or {}).get("reasons") or []),
            )
        )
    out.append(("table", header, rows))
    out += _graded_blocks(results, rule)
    return out


def _with_ci(c: Mapping[str, Any], name: str) -> str:
    if c.get(name) is None:
        return "–"
    return f"{fmt(c.get(name), 3)} [{fmt(c.get(name + '_low'), 3)}, {fmt(c.get(name + '_high'), 3)}]"


def _graded_row(name: str, g: Mapping[str, Any]) -> list[str]:
    per = {c["criterion"]: c for c in g.get("criteria") or []}
    acc, comp = per.get("accuracy", {}), per.get("completeness", {})
    return [
        name,
        _with_ci(acc, "auc"),
        _with_ci(acc, "spearman"),
        _with_ci(comp, "auc"),
        _with_ci(comp, "spearman"),
        f"{g.get('answers')} answers, {g.get('questions')} questions" + (" (subset)" if g.get("subset") else ""),
    ]


def _graded_blocks(results: Mapping[str, Any], rule: Mapping[str, Any] | None) -> list[tuple]:
    """The judges on graded long answers, and per dataset and criterion which judge gated and why the others did not."""
    judges = results.get("judges", [])
    rows = [
        _graded_row(j["name"], j["qualification"]["graded"])
        for j in judges
        if (j.get("qualification") or {}).get("graded")
    ]
    rows += [
        _graded_row(f"{spec} (not in this run)", m["qualification"]["graded"])
        for spec, m in sorted((results.get("judges_measured") or {}).items())
        if (m.get("qualification") or {}).get("graded")
    ]
    out: list[tuple] = []
    if rows:
        bars = (
            (
                f"accuracy AUC >= {rule.get('min_graded_accuracy_auc', 0.8):.2f}, completeness AUC >= "
                f"{rule.get('min_graded_completeness_auc', 0.7):.2f}, on datasets whose gold answers have a median of "
                f"{rule.get('long_gold_words', 5)}+ words"
            )
            if rule
            else ""
        )
        out.append(("h3", "Long answers graded by experts"))
        out.append(
            (
                "p",
                "Agreement with expert grades of long answers (judge_longform/liveqa_med.jsonl, qualify split: "
                "consumer health questions of TREC 2017 LiveQA-Med, graded 1 incorrect to 4 excellent against "
                "reference answers). Accuracy: ROC AUC of correct (grade 3 or 4) against the rest; completeness: "
                "ROC AUC of excellent against incomplete among the correct answers; Spearman of the score with "
                "the grade. In brackets the 95% bootstrap interval over questions. Bars: " + (bars or "–") + ".",
            )
        )
        out.append(
            (
                "table",
                [
                    "judge",
                    "accuracy AUC",
                    "accuracy Spearman",
                    "completeness AUC",
                    "completeness Spearman",
                    "measured on",
                ],
                rows,
            )
        )
    gating_rows = []
    for d in results.get("dataset_gating") or []:
        length = "–" if d.get("long_answers") is None else ("long" if d["long_answers"] else "short")
        if d.get("error"):
            gating_rows.append([d["dataset"], length, "–", "–", _short(d["error"], 140)])
        for criterion, c in (d.get("criteria") or {}).items():
            why = "; ".join(f"{name}: {reason}" for name, reason in (c.get("not_gating") or {}).items())
            gating_rows.append(
                [d["dataset"], length, criterion, ", ".join(c.get("gating") or []) or "none", why or "–"]
            )
    if gating_rows:
        out.append(("h3", "Which judge gated each dataset"))
        out.append(
            (
                "p",
                "Per dataset and criterion: the gold answers' length (median words of the eval questions' gold "
                "answers, long from " + str((rule or {}).get("long_gold_words", 5)) + "), the judges that gated, "
                "and why the others did not.",
            )
        )
        out.append(
            ("table", ["dataset", "gold answers", "criterion", "gated by", "why the others did not"], gating_rows)
        )
    return out


def _dataset_blocks(results: Mapping[str, Any]) -> list[tuple]:
    """Which data each dataset of the run is, and where the fine-tuning pairs came from."""
    rows = []
    for name in results.get("config", {}).get("datasets", []):
        cells = [c for c in results.get("cells", []) if c.get("dataset") == name and finished(c)]
        if not cells:
            rows.append([name, "–", "–", "–", "–", "–"])
            continue
        spec = cells[0].get("dataset_spec") or {}
        pairs = sorted({c["finetune_pairs"].split(" pairs of ", 1)[1] for c in cells if c.get("finetune_pairs")})
        rows.append(
            [
                name,
                spec.get("format") or "–",
                str(cells[0].get("dataset_source", "–")),
                f"{len(cells[0].get('items') or [])} eval questions; {cells[0].get('split_rule', '')}",
                _retrieval_cell(cells[0].get("retrieval")),
                "; ".join(pairs) or "–",
            ]
        )
    return [
        ("h2", "Datasets"),
        (
            "table",
            [
                "dataset",
                "format",
                "source",
                "evaluated on",
                "retrieval of the eval questions",
                "fine-tuning pairs from",
            ],
            rows,
        ),
    ]


def _retrieval_cell(r: Mapping[str, Any] | None) -> str:
    """recall@k and MRR against the gold evidence, and the index searched (a subset is named in the source)."""
    if not r:
        return "–"
    index = f" from {r['chunks']:,} indexed chunks" if r.get("chunks") else ""
    if not r.get("questions"):
        return f"top {r['k']}{index}; no eval question has gold evidence to score it"
    return (
        f"recall@{r['k']} {fmt(r['recall'], 3)}, MRR {fmt(r['mrr'], 3)} on {r['questions']} questions with gold "
        f"evidence{index}"
    )


def _md_cell(text: str) -> str:
    """Text in a markdown line or table cell: markup a model wrote (``<script>``, ``<img onerror>``) is
    shown, never rendered, since markdown viewers pass raw HTML through; control characters are dropped."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = "".join(ch if ch.isprintable() or ch == " " else " " for ch in text.replace("\n", " "))
    return text.replace("|", "\\|")


def to_markdown(blocks_: Sequence[tuple]) -> str:
    lines: list[str] = []
    for b in blocks_:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + b[1], ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "table":
            header, rows = b[1], b[2]
            lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(_md_cell(x) for x in row) + " |" for row in rows]
            lines.append("")
        elif kind == "verdict":
            lines += [f"**Verdict: {b[1]}**", "", "| cell | status | gated criteria |", "|---|---|---|"]
            lines += [
                f"| {_md_cell(r['cell'])} | {r['label']} | {_md_cell('; '.join(r['criteria']) or '–')} |" for r in b[2]
            ]
            lines.append("")
        elif kind == "img":
            lines += [f"![{b[1].stem}](figures/{b[1].name})", ""]
        elif kind == "examples":
            lines += _examples_markdown(b[1])
    return "\n".join(lines).rstrip() + "\n"


def _score(x: Any) -> str:
    return fmt(x) if isinstance(x, (int, float)) else "–"


def _examples_markdown(drops: Sequence[Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    for group in drops:
        lines += [f"### {group['cell']} ({group['status']}) vs {group['baseline']}", ""]
        for ex in group["examples"]:
            cmap = ex.get("coverage")
            headline = f"; {cmap.headline()}" if cmap is not None else ""
            lines += [
                f"<details><summary>{html.escape(_short(ex['question'], 100))} (drop {fmt(ex['drop'])}{headline})"
                "</summary>",
                "",
            ]
            lines.append(f"- **Question:** {_md_cell(ex['question'])}")
            lines.append("- **Gold:** " + " / ".join(_md_cell(r) for r in ex["references"]))
            if cmap is not None:
                lines += _coverage_markdown(cmap)
            for i, passage in enumerate(ex["passages"], start=1):
                lines.append(f"- **Passage {i}:** {_md_cell(_short(passage, 400))}")
            lines += [
                "",
                "| baseline answer | fine-tuned answer |",
                "|---|---|",
                f"| {_md_cell(ex['baseline_answer'])} | {_md_cell(ex['cell_answer'])} |",
                "",
                "| judge | answer | accuracy | completeness | raw output |",
                "|---|---|---|---|---|",
            ]
            for v in ex["verdicts"]:
                lines.append(
                    f"| {_md_cell(v['judge'])} | {v['side']} | {_score(v['accuracy'])} | {_score(v['completeness'])} "
                    f"| {_md_cell(_short(' ; '.join(v['raw']), 300))} |"
                )
            lines += ["", "</details>", ""]
    return lines


def _coverage_markdown(cmap: Any) -> list[str]:
    """The coverage map under a drop: one line per gold claim, its state as a plain-text mark."""
    if cmap.unavailable is not None:
        return [f"- **Gold claims:** coverage map unavailable ({_md_cell(cmap.unavailable)})"]
    if not cmap.claims:
        return ["- **Gold claims:** the gold answer has no claim to map"]
    lines = [f"- **Gold claims** ({cmap.headline()}; coverage in the baseline's / the fine-tuned answer):"]
    lines += [f"  - {c.state}: {_md_cell(c.text)} ({fmt(c.baseline_score)} / {fmt(c.cell_score)})" for c in cmap.claims]
    return lines


def _coverage_html(cmap: Any) -> str:
    e = html.escape
    if cmap.unavailable is not None:
        return f"<p class='covmap'><b>Gold claims:</b> coverage map unavailable ({e(cmap.unavailable)})</p>"
    if not cmap.claims:
        return "<p class='covmap'><b>Gold claims:</b> the gold answer has no claim to map</p>"
    items = "".join(
        f"<li class='claim {c.state}'><span class='mark'>{c.state}</span> {e(c.text)} "
        f"<span class='scores'>{fmt(c.baseline_score)} / {fmt(c.cell_score)}</span></li>"
        for c in cmap.claims
    )
    return (
        f"<div class='covmap'><p><b>Gold claims</b> ({e(cmap.headline())}; coverage in the baseline's / the "
        f"fine-tuned answer):</p><ul class='claims'>{items}</ul></div>"
    )


def _coverage_legend() -> str:
    marks = "".join(
        f"<li class='claim {state}'><span class='mark'>{state}</span> {html.escape(STATE_MEANING[state])}</li>"
        for state in STATES
    )
    return f"<div class='legend'><p><b>Gold claims:</b></p><ul class='claims'>{marks}</ul></div>"


def _examples_html(drops: Sequence[Mapping[str, Any]]) -> str:
    e = html.escape
    options = "".join(f"<option value='{e(g['cell'])}'>{e(g['cell'])} ({e(str(g['status']))})</option>" for g in drops)
    parts = [
        "<p><label>Cell: <select id='exfilter' onchange='evalsuiteFilter(this.value)'>"
        f"<option value=''>all failed or regressed cells</option>{options}</select></label></p>"
    ]
    if any(ex.get("coverage") is not None for g in drops for ex in g["examples"]):
        parts.append(_coverage_legend())
    for group in drops:
        parts.append(
            f"<div class='exgroup' data-cell='{e(group['cell'])}'><h3>{e(group['cell'])} ({e(str(group['status']))}) "
            f"vs {e(group['baseline'])}</h3>"
        )
        for ex in group["examples"]:
            passages = "".join(f"<li>{e(p)}</li>" for p in ex["passages"])
            verdicts = "".join(
                f"<tr><td>{e(v['judge'])}</td><td>{v['side']}</td><td>{_score(v['accuracy'])}</td>"
                f"<td>{_score(v['completeness'])}</td><td><pre>{e(chr(10).join(v['raw']))}</pre></td></tr>"
                for v in ex["verdicts"]
            )
            cmap = ex.get("coverage")
            headline = f", {e(cmap.headline())}" if cmap is not None else ""
            parts.append(
                f"<details class='ex'><summary>{e(_short(ex['question'], 120))} <b>drop {fmt(ex['drop'])}</b>{headline}"
                "</summary>"
                f"<p><b>Question:</b> {e(ex['question'])}</p><p><b>Gold:</b> "
                f"{' / '.join(e(r) for r in ex['references'])}</p>"
                + (_coverage_html(cmap) if cmap is not None else "")
                + f"<p><b>Retrieved passages:</b></p><ol>{passages}</ol>"
                f"<div class='scroll'><table class='side'><tr><th>baseline answer</th><th>fine-tuned answer</th></tr>"
                f"<tr><td>{e(ex['baseline_answer'])}</td><td>{e(ex['cell_answer'])}</td></tr></table></div>"
                "<div class='scroll'><table><tr><th>judge</th><th>answer</th><th>accuracy</th>"
                "<th>completeness</th><th>raw output</th></tr>"
                f"{verdicts}</table></div></details>"
            )
        parts.append("</div>")
    parts.append(
        "<script>function evalsuiteFilter(c){document.querySelectorAll('.exgroup').forEach("
        "function(g){g.style.display=(!c||g.dataset.cell===c)?'':'none';});}</script>"
    )
    return "\n".join(parts)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
    "th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}"
    "details.ex{border:1px solid #ddd;border-radius:4px;padding:4px 8px;margin:6px 0}"
    "td.long{max-width:22em}td.long summary{cursor:pointer}"
    "table.side td{width:50%;vertical-align:top}pre{white-space:pre-wrap;margin:0;font-size:12px}"
    ".scroll{overflow-x:auto;max-width:100%}.verdict{margin:.5em 0 1em}.overall{font-size:18px}"
    ".badge{display:inline-block;border-radius:4px;padding:4px 8px;margin:3px;font-size:13px;border:1px solid #888}"
    ".badge.pass{background:#d8f0d8}.badge.fail{background:#f6d0d0}.badge.inconclusive{background:#fbe7b8}"
    ".badge.ungated{background:#e4e4e4}"
    "ul.claims{list-style:none;padding-left:0;margin:.3em 0}li.claim{margin:2px 0;padding:2px 6px;"
    "border-left:4px solid #888;font-size:13px}li.claim .mark{display:inline-block;min-width:4.5em;font-weight:bold}"
    "li.claim .scores{color:#555;font-size:12px}li.claim.lost{background:#f6d0d0;border-color:#b22}"
    "li.claim.kept{background:#d8f0d8;border-color:#282}li.claim.gained{background:#d6e6fa;border-color:#25a}"
    "li.claim.missed{background:#ececec;border-color:#888}.legend{margin:.5em 0 1em}"
)


_LONG_CELL = 80


def _td(text: str) -> str:
    """A table cell; a long text (a judge's reasons) shows its start and opens to the full text, so that
    a narrow screen gets a short column."""
    e = html.escape
    if len(text) <= _LONG_CELL:
        return f"<td>{e(text)}</td>"
    return f"<td class='long'><details><summary>{e(_short(text, 60))}</summary>{e(text)}</details></td>"


def to_html(blocks_: Sequence[tuple], title: str) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, "
        f"initial-scale=1'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>"
    ]
    for b in blocks_:
        kind = b[0]
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(_td(str(x)) for x in row) + "</tr>" for row in b[2])
            parts.append(
                f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
            )
        elif kind == "verdict":
            e = html.escape
            badges = "".join(
                f"<div class='badge {r['css']}'><b>{e(r['cell'])}</b>: {e(r['label'])}"
                + "".join(f"<br><span>{e(x)}</span>" for x in r["criteria"])
                + "</div>"
                for r in b[2]
            )
            parts.append(
                f"<section id='verdict' class='verdict'><p class='overall'>Verdict: <b>{e(b[1])}</b></p>"
                f"{badges}</section>"
            )
        elif kind == "img":
            data = base64.b64encode(Path(b[1]).read_bytes()).decode("ascii")
            parts.append(f"<img alt='{html.escape(b[1].stem)}' src='data:image/png;base64,{data}'>")
        elif kind == "examples":
            parts.append(_examples_html(b[1]))
    parts.append("</body></html>\n")
    return "\n".join(parts)
