"""Every stage after generation takes whatever the model under test writes: the caches and result
files give it back unchanged, the report escapes it, and a matrix cell whose candidate is a
loopback server answering with such text still ends in a decision with well-formed files."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_gate_end_to_end import ChatServer, evalsuite_run, own_project, tail

from evalsuite.judge import JudgeCache
from evalsuite.judge._parse import parse_score
from evalsuite.matrix._baselines import load_cells, write_baseline
from evalsuite.models import Generation
from evalsuite.models._cache import GenerationCache
from evalsuite.report import render
from evalsuite.storage import atomic_write_json

INJECTION = "<script>alert('x')</script><img src=x onerror=alert(1)>| a | b |\n```\n<!-- ]]>"
ANSWERS = st.text(max_size=200) | st.sampled_from(
    ["2011⁶", "\x00\x07\x1b[31m", "\u202eevil\u2066", "🧪👍🏽", "", " \n\t", INJECTION, "e\u0301\u0301"]
)
HOSTILE = [
    "2011⁶ was the year¹",
    "\x00 NUL and \x07 bell",
    "\u202edesrever\u202c",
    "🧪🧬👍🏽",
    "",
    "   ",
    INJECTION,
    "a\ud800b lone surrogate",
    "| broken | table |",
    "x" * 200_000,
]


def tmp_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stage")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ANSWERS)
@example(text="2011⁶")
def test_result_files_and_caches_give_any_answer_back(tmp_path_factory, text):
    folder = tmp_dir(tmp_path_factory)
    atomic_write_json(folder / "results.json", {"answer": text})
    assert json.loads((folder / "results.json").read_text(encoding="utf-8"))["answer"] == text
    generations = GenerationCache(folder / "generations.sqlite")
    generations.put("k", "model", "prompt", {"text": text})
    assert generations.get("k") == {"text": text}
    generations.close()
    judges = JudgeCache(folder / "judge.sqlite")
    judges.put("k", judge="j", criterion="accuracy", text=text, score=float("nan"))
    row = judges.get("k")
    assert row["text"] == text and math.isnan(row["score"])
    judges.close()


@settings(max_examples=200, deadline=None)
@given(text=ANSWERS)
@example(text="Score: 2011⁶")
@example(text="Score: ²")
def test_geval_score_parsing_takes_any_text(text):
    score = parse_score(text)
    assert score is None or 1 <= score <= 5


def test_a_lone_surrogate_from_a_server_becomes_a_replacement_character():
    g = Generation("a\ud800b", 1, 1, 0.0)
    assert g.text == "a\ufffdb" and g.text.encode("utf-8")


def _cell(cid, kind, answers, scores):
    items = [
        {
            "id": f"q{i}",
            "question": f"Question {i}?",
            "references": ["gold"],
            "passages": [f"passage {i}"],
            "passage_ids": [f"p{i}"],
            "answer": a,
            "metrics": {},
            "verdicts": {"learned-correctness": {"accuracy": s, "completeness": s, "raw": [a[:100]]}},
        }
        for i, (a, s) in enumerate(zip(answers, scores))
    ]
    return {
        "id": cid,
        "dataset": "facts",
        "model": "served" if kind == "baseline" else "candidate",
        "spec": "s",
        "model_spec": "s",
        "size": 0,
        "kind": kind,
        "baseline_id": "facts-served-ft0",
        "status": "scored",
        "items": items,
        "judges": ["learned-correctness"],
        "summary": {
            "judges": {
                "learned-correctness": {
                    c: {"mean": 3.0, "std": 1.0, "n": len(items)} for c in ("accuracy", "completeness")
                }
            }
        },
    }


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]


def test_report_and_baseline_files_hold_hostile_answers_inert(tmp_path):
    answers = [INJECTION] + [h[:5000] for h in HOSTILE if "\ud800" not in h and h != INJECTION]
    base = _cell("facts-served-ft0", "baseline", ["gold"] * len(answers), [5.0] * len(answers))
    cand = _cell("facts-candidate", "candidate", answers, [1.0] * (len(answers) - 1) + [float("nan")])
    cand["gate"] = {
        "judges": {
            "learned-correctness": {
                c: {
                    "n": len(answers) - 1,
                    "diff": -4.0,
                    "ci_low": -4.0,
                    "ci_high": -4.0,
                    "margin": 0.5,
                    "gating": True,
                    "outcome": "fail",
                    "baseline_mean": 5.0,
                    "cell_mean": 1.0,
                    "wilcoxon_p": 0.01,
                }
                for c in ("accuracy", "completeness")
            }
        }
    }
    cand["status"] = "failed"
    base["status"] = "passed"
    results = {
        "run_id": "r",
        "profile": "p",
        "config": {"datasets": ["facts"], "models": [], "margin": 0.5},
        "judges": [],
        "cells": [base, cand],
        "session": {"ran": [], "computed": [], "reused": []},
        "provenance": {},
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    atomic_write_json(run_dir / "results.json", results)
    render(run_dir)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    clean = tmp_path / "clean"
    clean.mkdir()
    benign = dict(results, cells=[base, dict(cand, items=[dict(i, answer="plain") for i in cand["items"]])])
    atomic_write_json(clean / "results.json", benign)
    render(clean)
    hostile_tags, plain_tags = _Tags(), _Tags()
    hostile_tags.feed(page)
    plain_tags.feed((clean / "report.html").read_text(encoding="utf-8"))
    assert sorted(hostile_tags.tags) == sorted(plain_tags.tags)  # the answers added no element
    assert "onerror" not in hostile_tags.attrs and "&lt;script&gt;" in page
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert "<script>" not in summary
    stored = write_baseline(
        tmp_path / "baselines",
        run_id="r",
        cells=[dict(base, items=cand["items"], status="passed")],
        config={},
        provenance={},
    )
    _, cells = load_cells(str(stored), tmp_path)
    assert [i["answer"] for i in cells["facts-served-ft0"]["items"]] == answers


@pytest.mark.slow
def test_a_candidate_served_with_hostile_answers_ends_in_a_decision(tmp_path):
    from test_gate_end_to_end import FACTS

    hostile = {q: HOSTILE[i % len(HOSTILE)] for i, (q, _, _) in enumerate(FACTS)}
    server = ChatServer({"gold": {q: a for q, a, _ in FACTS}, "hostile": hostile})
    try:
        team = own_project(tmp_path / "team", server.url, "gold")
        junit = tmp_path / "junit.xml"
        run = evalsuite_run(team, "--candidate", f"openai:{server.url}#hostile", "--junitxml", str(junit))
    finally:
        server.close()
    assert run.returncode in (0, 1, 3, 4), tail(run)  # a decision (pass, fail, not gated, inconclusive), no error
    run_dir = team / "reports" / "latest"
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    candidate = next(c for c in results["cells"] if c["id"] == "facts-candidate")
    assert candidate["status"] in ("passed", "failed", "inconclusive", "ungated")
    for item in candidate["items"]:
        verdict = item["verdicts"]["learned-correctness"]
        for criterion in ("accuracy", "completeness"):
            value = verdict[criterion]
            assert value is None or (isinstance(value, float) and (math.isnan(value) or 1 <= value <= 5))
    assert any("\ufffd" in item["answer"] for item in candidate["items"])  # the lone surrogate, replaced
    ET.parse(junit)  # well-formed XML
    tags = _Tags()
    tags.feed((run_dir / "report.html").read_text(encoding="utf-8"))
    assert "onerror" not in tags.attrs
    assert "<script>alert" not in (run_dir / "summary.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def bridge_metrics():
    bridge = pytest.importorskip("evalsuite.judge.deepeval_bridge")
    return bridge, [
        bridge.AccuracyMetric(judge, threshold=3.0) for judge in ("token-overlap", "learned-correctness")
    ] + [bridge.CompletenessMetric(judge, threshold=3.0) for judge in ("token-overlap", "learned-correctness")]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ANSWERS)
@example(text="2011⁶")
@example(text=INJECTION)
def test_the_deepeval_bridge_scores_any_answer(bridge_metrics, text):
    from deepeval.test_case import LLMTestCase

    bridge, metrics = bridge_metrics
    case = LLMTestCase(
        input="When did the bridge open?",
        actual_output=text,
        expected_output="2011",
        retrieval_context=["The bridge opened in 2011."],
    )
    for metric in metrics:
        score = metric.measure(case)
        assert (math.isnan(score) and metric.error) or 1.0 <= score <= 5.0
        assert isinstance(metric.is_successful(), bool)


def _render_with(folder: Path, answers: list[str]) -> tuple[str, str]:
    base = _cell("facts-served-ft0", "baseline", ["gold"] * len(answers), [5.0] * len(answers))
    cand = _cell("facts-candidate", "candidate", answers, [1.0] * len(answers))
    base["status"], cand["status"] = "passed", "inconclusive"
    results = {
        "run_id": "r",
        "profile": "p",
        "config": {"datasets": ["facts"], "models": [], "margin": 0.5},
        "judges": [],
        "cells": [base, cand],
        "session": {"ran": [], "computed": [], "reused": []},
        "provenance": {},
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "results.json", results)
    render(folder)
    return (folder / "report.html").read_text(encoding="utf-8"), (folder / "summary.md").read_text(encoding="utf-8")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=ANSWERS)
@example(answer=INJECTION)
def test_any_answer_adds_no_element_to_the_report(tmp_path_factory, answer):
    folder = tmp_dir(tmp_path_factory)
    page, summary = _render_with(folder / "hostile", [answer, "plain"])
    plain_page, _ = _render_with(folder / "plain", ["plain", "plain"])
    tags, plain = _Tags(), _Tags()
    tags.feed(page)
    plain.feed(plain_page)
    assert sorted(tags.tags) == sorted(plain.tags) and "onerror" not in tags.attrs
    assert "<script>" not in summary
