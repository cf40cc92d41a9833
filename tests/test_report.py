"""Report rendering and the research-question statistics, from synthetic cell results."""

import json
import math

import pytest

from evalsuite.matrix import MatrixSession, RunStore, build_config, expand_cells
from evalsuite.matrix._gate import compare
from evalsuite.report import compare_runs, comparison_markdown, load_results, render, research_questions, summary_tables

N = 20


def score_of(model, size, i):
    base = 1.0 + (i % 5) * 0.8
    if model == "worse":  # loses more the more it is tuned
        return max(1.0, base - 0.04 * size - 0.05 * (i % 3))
    return base + (0.1 if (i + size) % 2 else -0.1) * (size > 0)


def synthetic_cell(cell):
    items = []
    for i in range(N):
        s = score_of(cell.model, cell.size, i)
        items.append(
            {
                "id": f"{cell.dataset}-q{i}",
                "question": f"q{i}?",
                "references": ["x"],
                "passage_ids": [f"p{i}"],
                "answer": f"answer {i}",
                "prompt_tokens": 100,
                "completion_tokens": 10,
                "verdicts": {
                    "token-overlap": {
                        "accuracy": s,
                        "completeness": min(5.0, s + 0.5),
                        "accuracy_std": 0.0,
                        "completeness_std": 0.0,
                        "runs": 1,
                        "unscored": 0,
                        "raw": ["f1=0.5"],
                    }
                },
                "metrics": {"exact_match": float(i % 2), "f1": 0.5, "rouge_l": 0.4, "yes_no_correct": None},
            }
        )
    acc = [it["verdicts"]["token-overlap"]["accuracy"] for it in items]
    comp = [it["verdicts"]["token-overlap"]["completeness"] for it in items]

    def ms(v):
        m = sum(v) / len(v)
        return {"mean": m, "std": math.sqrt(sum((x - m) ** 2 for x in v) / len(v)), "n": len(v), "unscored": 0}

    return {
        "id": cell.id,
        "dataset": cell.dataset,
        "model": cell.model,
        "spec": cell.spec,
        "model_spec": cell.spec,
        "model_identity": f"id-{cell.model}",
        "size": cell.size,
        "kind": cell.kind,
        "baseline_id": cell.baseline_id,
        "status": "scored",
        "session": "tok",
        "judges": ["token-overlap"],
        "items": items,
        "summary": {
            "judges": {"token-overlap": {"accuracy": ms(acc), "completeness": ms(comp)}},
            "metrics": {
                "exact_match": ms([it["metrics"]["exact_match"] for it in items]),
                "f1": ms([0.5] * N),
                "rouge_l": ms([0.4] * N),
            },
        },
        "retrieval": {"k": 5, "recall": 0.8, "mrr": 0.6, "questions": N, "chunks": 1234}
        if cell.dataset == "nq"
        else {"k": 5, "recall": None, "mrr": None, "questions": 0, "chunks": 56},
        "timings": {"cell": 1.0},
        "tokens": {"prompt": 100 * N, "completion": 10 * N},
        "model_stats": {"model_calls": 1, "cache_hits": 0},
    }


@pytest.fixture
def run(tmp_path):
    cfg = build_config(
        "synthetic",
        {
            "models": [{"spec": "bundled:worse-1", "name": "worse"}, {"spec": "bundled:steady-1", "name": "steady"}],
            "datasets": ["nq", "bioasq"],
            "sizes": [0, 10, 20, 40],
            "judges": ["token-overlap"],
            "eval_limit": N,
        },
    )
    session = MatrixSession(cfg, report_root=tmp_path / "reports", token="tok")
    store = RunStore(session.run_dir)
    cells = {c.id: synthetic_cell(c) for c in expand_cells(cfg) if c.id != "bioasq-steady-ft40"}
    for c in expand_cells(cfg):
        if c.id not in cells:
            store.write(
                c.id,
                {
                    "id": c.id,
                    "dataset": c.dataset,
                    "model": c.model,
                    "size": c.size,
                    "kind": c.kind,
                    "baseline_id": c.baseline_id,
                    "status": "skipped",
                    "reason": "size 40 is above the pool",
                },
            )
            continue
        data = cells[c.id]
        if c.kind == "baseline":
            data["status"] = "passed"
        else:
            data["gate"] = compare(
                data, cells[c.baseline_id], judges=["token-overlap"], gating=["token-overlap"], margin=0.25
            )
            data["status"] = "passed" if data["gate"]["passed"] else "failed"
        store.write(c.id, data)
    (session.run_dir / "judges").mkdir(parents=True)
    criteria = [
        {"criterion": c, "auc": 0.9, "auc_long": 0.85, "kappa": 0.7, "kappa_long": 0.6, "within_question": 0.8}
        for c in ("accuracy", "completeness")
    ]
    (session.run_dir / "judges" / "ref.json").write_text(
        json.dumps(
            {
                "name": "token-overlap",
                "spec": "token-overlap",
                "config": {},
                "qualification": {
                    "judge": "token-overlap",
                    "qualified": True,
                    "gating_criteria": ["accuracy", "completeness"],
                    "criteria": criteria,
                    "rule": {"min_auc": 0.8, "min_auc_long": 0.75, "min_longform_share": 0.8, "long_words": 5},
                    "longform": {"shares": [{"score": "overall", "good_over_wrong": 0.95, "good_over_partial": 0.6}]},
                    "reasons": ["qualified: accuracy ROC AUC 0.900 >= 0.80 (synthetic)"],
                    "items_per_second": 100.0,
                },
            }
        )
    )
    return session


def test_finalize_writes_results_report_and_latest(run):
    final = run.finalize({c.id: "passed" for c in run.cells})
    results = load_results(run.run_dir)
    assert results["run_id"] == run.run_id and len(results["cells"]) == 16
    assert results["session"]["computed"] and not results["session"]["reused"]
    assert results["judges"][0]["gating"] and "qualified" in results["judges"][0]["why"]
    assert results["provenance"]["totals"]["prompt_tokens"] == 15 * 100 * N
    summary = (run.run_dir / "summary.md").read_text()
    assert summary.index("1. Does fine-tuning beat") < summary.index("2. Does more") < summary.index("3. Which model")
    assert "| worse | ft40 |" in summary and "FAIL" in summary and "pass" in summary
    assert "| bioasq | steady | ft40 |" not in summary  # skipped cells have no metrics row
    assert "skipped" in summary and "size 40 is above the pool" in summary
    assert "| dataset | model | size | EM | F1 | ROUGE-L | yes/no acc | n |" in summary
    assert f"recall@5 0.800, MRR 0.600 on {N} questions with gold evidence from 1,234 indexed chunks" in summary
    assert "top 5 from 56 indexed chunks; no eval question has gold evidence to score it" in summary
    html = (run.run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(final["written"]) - 2 == 5
    assert (run.report_root / "latest").resolve() == run.run_dir.resolve()
    assert "accuracy (judge token-overlap)" in summary_tables(results)
    # per dataset and criterion, which judge gated: a stored qualification without graded long-answer figures
    # gates the short-answer dataset only
    by_dataset = {d["dataset"]: d for d in results["dataset_gating"]}
    assert "Which judge gated each dataset" in summary
    for name, d in by_dataset.items():
        gated = d["criteria"]["accuracy"]["gating"]
        assert gated == ([] if d["long_answers"] else ["token-overlap"]), name
        if d["long_answers"]:
            assert "no graded long-answer figures" in d["criteria"]["accuracy"]["not_gating"]["token-overlap"]


def test_rerender_from_results_json_alone(run):
    run.finalize({})
    first = (run.run_dir / "summary.md").read_text()
    for path in (run.run_dir / "cells").glob("*.json"):
        path.unlink()
    render(run.run_dir)
    assert (run.run_dir / "summary.md").read_text() == first


def test_research_questions(run):
    run.finalize({})
    rq = research_questions(load_results(run.run_dir))
    assert rq["judge"] == "token-overlap"
    worse = [r for r in rq["rq1"] if r["model"] == "worse" and r["criterion"] == "accuracy"]
    assert {r["dataset"]: r["regressed"] for r in worse} == {"nq": 3, "bioasq": 3}
    steady = [r for r in rq["rq1"] if r["model"] == "steady" and r["criterion"] == "accuracy"]
    assert sum(r["regressed"] for r in steady) == 0 and sum(r["held"] for r in steady) == 5
    trend = next(
        r for r in rq["rq2"] if r["model"] == "worse" and r["dataset"] == "nq" and r["criterion"] == "accuracy"
    )
    assert trend["rho"] < -0.3 and trend["p"] < 0.05 and trend["n"] == 4 * N and trend["sizes"] == [0, 10, 20, 40]
    means = {m["model"]: m for m in rq["rq3"]["models"] if m["criterion"] == "accuracy"}
    assert means["worse"]["mean"] < -0.2 < means["steady"]["mean"]
    pair = next(p for p in rq["rq3"]["pairs"] if p["criterion"] == "accuracy")
    assert {pair["a"], pair["b"]} == {"steady", "worse"}
    assert pair["n"] == 5 * N  # shared (dataset, size, question): bioasq ft40 of steady is skipped
    assert (pair["mean"] < 0) == (pair["a"] == "worse") and pair["wilcoxon_p"] < 0.05


def test_compare_runs(run, tmp_path):
    run.finalize({})
    a = load_results(run.run_dir)
    b = json.loads(json.dumps(a))
    b["run_id"] = "other"
    for cell in b["cells"]:
        for item in cell.get("items") or []:
            item["verdicts"]["token-overlap"]["accuracy"] += 0.5
    cmp = compare_runs(a, b)
    row = next(r for r in cmp["rows"] if r["cell"] == "nq-worse-ft10" and r["criterion"] == "accuracy")
    assert row["diff"] == pytest.approx(0.5) and row["n"] == N
    assert all(r["diff"] == pytest.approx(0.0) for r in cmp["rows"] if r["criterion"] == "completeness")
    assert "nq-worse-ft10" in comparison_markdown(cmp) and "bioasq-steady-ft40" not in {r["cell"] for r in cmp["rows"]}


def test_failed_cells_show_their_largest_drops_with_passages_answers_and_verdicts(run):
    run.finalize({c.id: "passed" for c in run.cells})
    results = load_results(run.run_dir)
    failed = [c["id"] for c in results["cells"] if c["status"] == "failed"]
    assert failed
    summary = (run.run_dir / "summary.md").read_text()
    html = (run.run_dir / "report.html").read_text()
    assert "## The largest drops from the baseline" in summary
    for cid in failed:
        assert f"### {cid} (failed) vs" in summary and f"data-cell='{cid}'" in html
    assert "<details class='ex'>" in html and "id='exfilter'" in html and "<script>" in html
    assert "| baseline answer | fine-tuned answer |" in summary and "raw output" in summary and "f1=0.5" in summary
    from evalsuite.report._examples import largest_drops

    drops = largest_drops(results)
    assert {d["cell"] for d in drops} >= set(failed)
    for group in drops:
        values = [ex["drop"] for ex in group["examples"]]
        assert values == sorted(values, reverse=True) and all(v > 0 for v in values) and len(values) <= 5


def test_the_worst_cell_shows_its_largest_drops_even_when_it_passed(run):
    from evalsuite.report._examples import largest_drops, worst_cell

    run.finalize({c.id: "passed" for c in run.cells})
    results = load_results(run.run_dir)
    results["cells"] = [c for c in results["cells"] if c["model"] == "steady"]
    compared = [c for c in results["cells"] if c["kind"] != "baseline" and c.get("gate")]
    assert compared and all(c["status"] == "passed" for c in compared)
    lowest = min(compared, key=lambda c: min(g["diff"] for g in c["gate"]["judges"]["token-overlap"].values()))
    assert worst_cell(results) == lowest["id"]
    drops = largest_drops(results)
    assert [(d["cell"], d["worst"]) for d in drops] == [(lowest["id"], True)] and drops[0]["examples"]


def test_shards_merge_into_the_single_machine_report(run, tmp_path):
    import shutil

    from evalsuite.matrix import merge_runs, shard_cells

    run.finalize({c.id: "passed" for c in run.cells})
    whole = (run.run_dir / "summary.md").read_text()
    shards = []
    for i in (1, 2):
        mine = {c.id for c in shard_cells(run.cells, i, 2)}
        folder = tmp_path / f"shard{i}" / "runs" / run.run_id
        shutil.copytree(run.run_dir, folder)
        for cell in folder.glob("cells/*.json"):
            if cell.stem not in mine:
                cell.unlink()
        shard = MatrixSession(run.config, report_root=folder.parent.parent, token=f"shard{i}")
        shard.finalize({c: "passed" for c in mine})
        shards.append(folder)
    merged = merge_runs(shards, tmp_path / "merged" / "runs" / run.run_id)

    def strip(text):
        return [line for line in text.splitlines() if not line.startswith(("Does fine-tuning", "python "))]

    assert strip((merged / "summary.md").read_text()) == strip(whole)


def _gated(diff, low, high, margin=0.75, **extra):
    return {"n": 40, "diff": diff, "ci_low": low, "ci_high": high, "margin": margin, **extra}


def test_verdict_strip_run_outcome_precedence_and_badges():
    from evalsuite.report._render import blocks, run_verdict, to_html, to_markdown, verdict_rows

    def cell(cid, status, kind="finetuned"):
        return {"id": cid, "status": status, "kind": kind}

    assert run_verdict([cell("a", "passed"), cell("b", "ungated"), cell("c", "inconclusive")]) == "inconclusive"
    assert run_verdict([cell("a", "inconclusive"), cell("b", "failed")]) == "regression"
    assert run_verdict([cell("a", "failed"), cell("b", "error")]) == "error"
    assert run_verdict([cell("a", "passed"), cell("b", "skipped")]) == "not gated"
    assert run_verdict([cell("a", "passed"), cell("base", "passed", "baseline")]) == "passed"
    # A gate stored before outcomes, headroom and mdd existed: the outcome is decided from the interval.
    old = {
        "id": "nq-m-ft4",
        "status": "passed",
        "kind": "finetuned",
        "gate": {"gating": ["j"], "judges": {"j": {"completeness": _gated(-0.80, -2.00, 0.40, margin=2.0)}}},
    }
    new = {
        "id": "nq-m-ft8",
        "status": "inconclusive",
        "kind": "finetuned",
        "gate": {
            "judges": {
                "j": {
                    "accuracy": _gated(-0.5, -1.1, 0.1, gating=True, outcome="inconclusive", headroom=-0.35, mdd=1.02),
                    "completeness": _gated(-0.5, -1.1, 0.1, gating=False),
                }
            }
        },
    }
    base = {"id": "nq-m-ft0", "status": "passed", "kind": "baseline", "problems": ["12% unscored"]}
    rows = {r["cell"]: r for r in verdict_rows({"cells": [old, new, base]})}
    assert rows["nq-m-ft4"]["label"] == "pass" and len(rows["nq-m-ft4"]["criteria"]) == 1
    assert "headroom to the margin at the margin" in rows["nq-m-ft4"]["criteria"][0]
    assert "95% interval [-2.00, 0.40]" in rows["nq-m-ft4"]["criteria"][0]
    assert "min. detectable drop –" in rows["nq-m-ft4"]["criteria"][0]
    assert rows["nq-m-ft8"]["label"] == "INCONCLUSIVE" and rows["nq-m-ft8"]["criteria"] == [
        "accuracy -0.50, 95% interval [-1.10, 0.10], INCONCLUSIVE; headroom to the margin -0.35; min. "
        "detectable drop 1.02"
    ]
    assert rows["nq-m-ft0"]["label"] == "invalid baseline"
    results = {"run_id": "r<1>", "profile": "p", "cells": [old, new, base], "judges": []}
    bl = blocks(results)
    page = to_html(bl, "t")
    assert page.index("id='verdict'") < page.index("<table") and "Verdict: <b>inconclusive</b>" in page
    assert "class='badge inconclusive'" in page and "r&lt;1&gt;" in page
    md = to_markdown(bl)
    assert md.splitlines()[2] == "**Verdict: inconclusive**"
