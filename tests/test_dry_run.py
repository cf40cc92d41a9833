"""``--dry-run``: the plan of a matrix run (cells, calls, tokens, time, cost) without running anything.

The dataset is invented here (the ``qa`` format), so every count can be worked out by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.errors import ConfigError
from evalsuite.matrix import Price, build_plan, expand_cells, format_plan, load_config, read_prices, read_profiles

ROOT = Path(__file__).resolve().parent.parent
COLOURS = ("red", "green", "blue", "amber", "violet", "grey")


def write_dataset(folder: Path, n: int = 60) -> Path:
    """``n`` invented questions, each about its own document, with one passage each."""
    rows = []
    for i in range(n):
        colour = COLOURS[i % len(COLOURS)]
        rows.append(
            {
                "id": f"q{i}",
                "question": f"What colour is widget number {i}?",
                "answers": [f"It is {colour}."],
                "passages": [
                    {
                        "id": f"p{i}",
                        "doc_id": f"doc{i}",
                        "text": f"Widget number {i} is painted {colour}. It was made in workshop {i % 7}.",
                    }
                ],
            }
        )
    path = folder / "widgets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


MATRIX = """
[default]
models = [{{ spec = "bundled:smollm2-135m-instruct", name = "smollm2" }},
          {{ spec = "openai:gpt-4", name = "gpt4", baseline_only = true }}]
datasets = [{{ name = "widgets", path = "{data}" }}]
sizes = [0, 8, 1000]
eval_limit = 5
max_new_tokens = 30
judges = ["token-overlap", "openai:gpt-4o"]
judge_mode = "sample"
judge_repeats = 3
qualify_limit = 50

[default.finetune]
epochs = 2
max_seq_length = 256

[prices]
"openai:gpt-4" = {{prompt = 30.0, completion = 60.0}}
"openai:gpt-4o" = {{prompt = 2.5, completion = 10.0}}
"""


@pytest.fixture
def matrix(tmp_path):
    data = write_dataset(tmp_path)
    path = tmp_path / "matrix.toml"
    path.write_text(MATRIX.format(data=data), encoding="utf-8")
    return path


def test_prices_table_is_read_and_is_not_a_profile(matrix, tmp_path):
    assert set(read_profiles(matrix)) == {"default"}
    assert read_prices(matrix) == {"openai:gpt-4": Price(30.0, 60.0), "openai:gpt-4o": Price(2.5, 10.0)}
    assert Price(30.0, 60.0).cost(1_000_000, 500_000) == pytest.approx(60.0)
    bad = tmp_path / "bad.toml"
    bad.write_text('[default]\n[prices]\n"openai:gpt-4" = {prompt = 30.0, output = 60.0}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'output'"):
        read_prices(bad)
    bad.write_text('[default]\n[prices]\n"openai:gpt-4" = {prompt = -1, completion = 60.0}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="prompt = -1"):
        read_prices(bad)
    assert read_prices(ROOT / "test_cases" / "matrix.toml") == {}  # none is built in


def test_plan_counts_calls_tokens_and_cost(matrix, tmp_path):
    config = load_config(matrix, "default")
    plan = build_plan(config, report_root=tmp_path / "reports", prices=read_prices(matrix))
    cells = {c.id: c for c in plan.cells}
    assert list(cells) == [c.id for c in expand_cells(config)]
    assert not any(c.stored for c in plan.cells)
    assert cells["widgets-smollm2-ft1000"].note.startswith("skipped: size 1000 is above")
    assert "OPENAI_API_KEY" in cells["widgets-gpt4-ft0"].note or cells["widgets-gpt4-ft0"].note == ""
    pending = ["widgets-smollm2-ft0", "widgets-smollm2-ft8", "widgets-gpt4-ft0"]
    gen = {s.model: s for s in plan.stages if s.stage == "generation"}
    assert sorted(gen) == sorted(pending)  # the skipped size costs nothing
    for s in gen.values():
        assert s.calls == 5 and s.completion_tokens == 5 * 30 and s.prompt_tokens > 5 * 20
    # the same prompts: the tokenizer of the local model, characters / 4 for the API model
    assert "tokenizer" in gen["widgets-smollm2-ft0"].token_method
    assert "characters / 4" in gen["widgets-gpt4-ft0"].token_method
    gpt4 = gen["widgets-gpt4-ft0"]
    assert gpt4.cost == pytest.approx((gpt4.prompt_tokens * 30.0 + gpt4.completion_tokens * 60.0) / 1e6)
    assert gpt4.seconds is None and "not estimated" in gpt4.source
    assert gen["widgets-smollm2-ft0"].cost is None
    (ft,) = [s for s in plan.stages if s.stage == "fine-tuning"]
    assert ft.model == "widgets-smollm2-ft8" and ft.calls == 0
    assert 2 * 8 * 20 < ft.prompt_tokens <= 2 * 8 * 256  # 8 pairs, 2 epochs, at most max_seq_length each
    judged = [s for s in plan.stages if s.stage == "judging"]
    geval = [s for s in judged if "gpt-4o" in s.model]
    reference = [s for s in judged if "token-overlap" in s.model]
    assert len(geval) == len(reference) == 3
    for s in geval:  # 5 answers x 2 criteria x 3 repeats, 4 answer tokens each
        assert s.calls == 30 and s.completion_tokens == 30 * 4
        assert s.cost == pytest.approx((s.prompt_tokens * 2.5 + s.completion_tokens * 10.0) / 1e6)
    assert all(s.calls == 0 and s.prompt_tokens == 0 for s in reference)
    qual = {s.model: s for s in plan.stages if s.stage == "qualification"}
    assert set(qual) == {"token-overlap", "openai:gpt-4o/geval-chat/sample"} or len(qual) == 2
    q = next(s for name, s in qual.items() if "gpt-4o" in name)
    assert q.calls % 6 == 0 and q.calls >= 6 * 40  # about 50 answers, 2 criteria x 3 repeats
    assert plan.cost == pytest.approx(sum(s.cost for s in plan.stages if s.cost is not None))
    text = format_plan(plan)
    assert "widgets-smollm2-ft8" in text and "estimated wall time" in text and "API cost (from [prices])" in text
    assert json.loads(json.dumps(plan.to_json()))["cost"] == pytest.approx(plan.cost)


def _dry_run(matrix, tmp_path, *extra, env=None):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(matrix),
            "--matrix",
            str(matrix),
            "-q",
            "-p",
            "no:cacheprovider",
            "--report-dir",
            str(tmp_path / "reports"),
            "--dry-run",
            *extra,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env or dict(os.environ),
    )


def _computed(cache: Path) -> tuple[list[str], list[str], int]:
    """What a run computes into a cache: adapters, generation stores, judge verdicts (rows)."""
    from evalsuite.judge import JudgeCache

    adapters = sorted(p.name for p in (cache / "adapters").glob("*"))
    generations = sorted(p.name for p in (cache / "generations").glob("*"))
    judge = cache / "judge" / "judge.sqlite"
    return adapters, generations, JudgeCache(judge).count() if judge.exists() else 0


def test_dry_run_runs_nothing_and_writes_no_report(matrix, tmp_path, cold_cache):
    # a cache of its own: the session's is written by the tests running beside it under xdist
    cache = Path(cold_cache["EVALSUITE_CACHE"])
    before = _computed(cache)
    junit, plan_json = tmp_path / "junit.xml", tmp_path / "plan.json"
    run = _dry_run(matrix, tmp_path, "-k", "ft8", f"--junitxml={junit}", "--plan-json", str(plan_json), env=cold_cache)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "evalsuite dry run" in run.stdout and "::widgets-smollm2-ft8" in run.stdout
    plan = json.loads(plan_json.read_text())
    by_id = {c["id"]: c for c in plan["cells"]}
    assert by_id["widgets-smollm2-ft8"]["selected"] and not by_id["widgets-smollm2-ft0"]["selected"]  # its baseline
    assert by_id["widgets-smollm2-ft8"]["node_id"].endswith("matrix.toml::widgets-smollm2-ft8")
    assert not junit.exists()
    assert not (tmp_path / "reports").exists()
    assert _computed(cache) == before


def test_dry_run_exits_2_on_a_config_error(matrix, tmp_path):
    matrix.write_text(matrix.read_text().replace("eval_limit = 5", "eval_limt = 5"), encoding="utf-8")
    run = _dry_run(matrix, tmp_path)
    assert run.returncode == 2, run.stdout[-2000:]
    assert "eval_limt" in run.stdout


@pytest.mark.slow
def test_cells_of_a_finished_run_are_stored_in_the_plan(matrix, tmp_path):
    text = matrix.read_text().replace('judges = ["token-overlap", "openai:gpt-4o"]', 'judges = ["token-overlap"]')
    matrix.write_text(text.replace("sizes = [0, 8, 1000]", "sizes = [0]").replace("eval_limit = 5", "eval_limit = 2"))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(matrix),
            "--matrix",
            str(matrix),
            "-q",
            "-p",
            "no:cacheprovider",
            "--report-dir",
            str(tmp_path / "reports"),
            "-k",
            "smollm2",
            "--allow-ungated",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        env=dict(os.environ),
    )
    assert run.returncode == 0, run.stdout[-3000:]  # the token judge never gates, and --allow-ungated allows that
    config = load_config(matrix, "default")
    plan = build_plan(config, report_root=tmp_path / "reports")
    cells = {c.id: c for c in plan.cells}
    assert cells["widgets-smollm2-ft0"].stored and not cells["widgets-gpt4-ft0"].stored
    assert [s.model for s in plan.stages if s.stage == "generation"] == ["widgets-gpt4-ft0"]
    assert not [s for s in plan.stages if s.stage == "qualification"]  # qualified in this run folder already


def test_the_plan_says_how_many_questions_the_margin_needs(tmp_path, monkeypatch):
    """From a judge's measured paired spread: n = ((1.96 + 0.84) sd / margin)^2 at 80% power."""
    import math

    from evalsuite.judge import _measured
    from evalsuite.matrix import build_config

    spread = tmp_path / "gate_power.json"
    spread.write_text(
        json.dumps(
            {
                "judge": "learned-correctness",
                "source": "a test",
                "machine": "here",
                "paired_sd": {"accuracy": 1.5, "completeness": 1.0},
            }
        )
    )
    monkeypatch.setattr(_measured, "SPREAD_FILE", spread)
    data = write_dataset(tmp_path)
    config = build_config(
        "default",
        {
            "datasets": [{"name": "widgets", "path": str(data)}],
            "sizes": [0],
            "eval_limit": 40,
            "margin": 0.5,
            "judges": ["learned-correctness"],
        },
    )
    plan = build_plan(config, report_root=tmp_path / "reports")
    power = {p.criterion: p for p in plan.power}
    assert power["accuracy"].needed == math.ceil((2.801585 * 1.5 / 0.5) ** 2)
    assert power["completeness"].minimum_detectable_drop == pytest.approx(0.5 + 2.801585 * 1.0 / math.sqrt(40))
    text = format_plan(plan)
    assert f"margin 0.5 needs about {power['accuracy'].needed} eval questions per dataset" in text
    assert plan.to_json()["power"][0]["judge"] == "learned-correctness"
    other = build_config(
        "default", {"datasets": [{"name": "widgets", "path": str(data)}], "sizes": [0], "judges": ["token-overlap"]}
    )
    assert build_plan(other, report_root=tmp_path / "reports").power == ()  # no spread measured for it
