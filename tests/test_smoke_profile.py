"""The smoke profile end to end, as a user runs it: every report file is written and the
exit status is the gate's verdict (1 when a cell fails the gate, 4 when one is inconclusive, 0 when
all pass, never an error), and every cell's status follows from its intervals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import session_cache

from evalsuite.matrix import exit_status, expand_cells, load_config, shard_cells
from evalsuite.metrics import decide

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_smoke_profile_writes_the_report_and_exits_with_the_gate(tmp_path):
    junit = tmp_path / "junit.xml"
    # the dry-run estimate first, on the same cache state (both runs get a fresh session cache that
    # shares only the test store's models and indexes) and the same, still empty, run folder
    plan_json = tmp_path / "plan.json"
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_cases/matrix.toml",
            "--profile",
            "smoke",
            "-q",
            "--dry-run",
            "--plan-json",
            str(plan_json),
            "--report-dir",
            str(tmp_path / "reports"),
            "--run-id",
            "smoke-check",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    plan = json.loads(plan_json.read_text())
    assert not any(c["stored"] for c in plan["cells"]) and not (tmp_path / "reports" / "runs").exists()
    start = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_cases/matrix.toml",
            "--profile",
            "smoke",
            "-q",
            "--report-dir",
            str(tmp_path / "reports"),
            "--run-id",
            "smoke-check",
            f"--junitxml={junit}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env=dict(os.environ),
    )
    measured = time.perf_counter() - start
    run_dir = tmp_path / "reports" / "runs" / "smoke-check"
    # each computed cell's progress line counts the work of its fixtures (index, fine-tuning, answers, verdicts)
    progress = re.findall(r"\[matrix \d+/6\] (\S+) \w+ \(computed, (\d+)s\)", run.stdout)
    assert len(progress) == 6 and all(int(seconds) >= 1 for _, seconds in progress), run.stdout[-3000:]
    estimate = plan["estimate_seconds"]
    assert 0.5 <= measured / estimate <= 2, (
        f"measured {measured:.0f} s, estimated {estimate:.0f} s (not estimated: {plan['not_estimated']})"
    )
    for name in ("results.json", "summary.md", "report.html"):
        assert (run_dir / name).is_file(), f"{name} missing\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert junit.is_file()
    assert list((run_dir / "figures").glob("*.png"))
    results = json.loads((run_dir / "results.json").read_text())
    cells = {c["id"]: c for c in results["cells"]}
    assert list(cells) == [f"{d}-smollm2-ft{s}" for d in ("qasper", "nq", "bioasq") for s in (0, 16)]
    statuses = {cid: c["status"] for cid, c in cells.items()}
    # the qualified judge gates every cell on its ten scored questions: pass, fail or inconclusive
    assert set(statuses.values()) <= {"passed", "failed", "inconclusive"}, statuses
    for cid, c in cells.items():
        if c["kind"] == "baseline":
            continue
        gated = [s for per in c["gate"]["judges"].values() for s in per.values() if s["gating"]]
        assert gated and all(s["n"] == 10 and s["unscored_cell"] == 0 for s in gated), cid
        outcomes = {decide(s["ci_low"], s["ci_high"], s["margin"]) for s in gated}
        assert c["status"] == (
            "failed" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "passed"
        ), (cid, outcomes)
    assert run.returncode == exit_status(statuses, allow_ungated=False), run.stdout[-3000:]
    for cid, status in statuses.items():  # each blocking cell is reported with its table row
        if status in ("failed", "inconclusive"):
            assert f"matrix.toml::{cid}" in run.stdout and "95% CI" in run.stdout
    summary = (run_dir / "summary.md").read_text()
    assert "## Research questions" in summary and "Completeness" in summary
    for c in cells.values():  # retrieval of the eval questions, scored against their gold evidence
        r = c["retrieval"]
        assert r["k"] == 5 and r["questions"] > 0 and 0 <= r["mrr"] <= r["recall"] <= 1 and r["chunks"] > 0
    assert "recall@5 " in summary and "indexed chunks" in summary

    # the same cells in two shards (as two CI jobs run them), merged: the single machine's tables
    shard_dirs = []
    for i in (1, 2):
        shard = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "test_cases/matrix.toml",
                "--profile",
                "smoke",
                "-q",
                "--shard",
                f"{i}/2",
                "--report-dir",
                str(tmp_path / f"shard{i}"),
                "--run-id",
                "smoke-check",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            env=dict(os.environ),
        )
        mine = {
            c.id: statuses[c.id]
            for c in shard_cells(expand_cells(load_config(ROOT / "test_cases" / "matrix.toml", "smoke")), i, 2)
        }
        assert shard.returncode == exit_status(mine, allow_ungated=False), shard.stdout[-3000:] + shard.stderr[-3000:]
        shard_dirs.append(str(tmp_path / f"shard{i}" / "runs" / "smoke-check"))
    merged = subprocess.run(
        [sys.executable, "-m", "evalsuite", "report", "--merge", *shard_dirs, "--out", str(tmp_path / "merged")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert merged.returncode == 0, merged.stdout[-3000:] + merged.stderr[-3000:]
    tables = lambda text: [line for line in text.splitlines() if line.startswith("|")]  # noqa: E731
    assert tables((tmp_path / "merged" / "summary.md").read_text()) == tables(summary)


@pytest.mark.slow
def test_two_xdist_workers_give_the_serial_numbers(tmp_path):
    """Serial and `-n 2` (one thread per worker), each on cold generation, adapter and judge
    caches: the same answers, the same verdicts to 6 decimals, the same report tables."""
    runs = {}
    for name, extra in (("serial", []), ("xdist", ["-n", "2"])):
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "test_cases/matrix.toml",
            "--profile",
            "smoke",
            "-q",
            "--datasets",
            "nq",
            "--sizes",
            "0,16",
            "--eval-limit",
            "4",
            "--judge",
            "token-overlap",
            "--report-dir",
            str(tmp_path / name),
            "--run-id",
            "same",
            "--allow-ungated",
            *extra,
        ]
        run = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1200,
            env=dict(os.environ, EVALSUITE_CACHE=str(session_cache(tmp_path / f"cache-{name}"))),
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]  # the token judge never gates: all allowed
        runs[name] = json.loads((tmp_path / name / "runs" / "same" / "results.json").read_text())
    serial, xdist = ({c["id"]: c for c in runs[k]["cells"]} for k in ("serial", "xdist"))
    assert sorted(serial) == sorted(xdist) == ["nq-smollm2-ft0", "nq-smollm2-ft16"]
    for cid, cell in serial.items():
        other = xdist[cid]
        assert cell["status"] == other["status"]
        assert [i["answer"] for i in cell["items"]] == [i["answer"] for i in other["items"]]
        for mine, theirs in zip(cell["items"], other["items"]):
            for judge, verdict in mine["verdicts"].items():
                for key in ("accuracy", "completeness"):
                    assert round(verdict[key], 6) == round(theirs["verdicts"][judge][key], 6)
    for run in runs.values():
        assert run["provenance"]["timings"]["session_seconds"] > 1
    # the tables of the numbers (not the prose, which names each run's own creation time, nor the
    # judge and provenance tables, which give this machine's speeds)
    numbers = ("Research questions", "Accuracy", "Completeness", "Reference metrics", "The largest drops")
    tables = [
        [
            line
            for section in (tmp_path / k / "runs" / "same" / "summary.md").read_text().split("\n## ")
            if section.startswith(numbers)
            for line in section.splitlines()
            if line.startswith("|")
        ]
        for k in ("serial", "xdist")
    ]
    assert len(tables[0]) > 10
    assert tables[0] == tables[1]
