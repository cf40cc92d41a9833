"""Ctrl-C during a matrix run: the running cell finishes, the run stops, the report is written
and marked incomplete, and the same command resumes with the finished cell reused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_ctrl_c_stops_after_the_current_cell_and_a_rerun_resumes(tmp_path, cold_cache):
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "test_cases/matrix.toml",
        "--profile",
        "smoke",
        "--datasets",
        "nq,qasper",
        "--sizes",
        "0",
        "--eval-limit",
        "3",
        "--judge",
        "token-overlap",
        "--report-dir",
        str(tmp_path / "reports"),
        "--run-id",
        "stopped",
        "--allow-ungated",
        "-p",
        "no:cacheprovider",
    ]
    env = dict(cold_cache, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 900
    for line in proc.stdout:  # wait until the first cell is under way, then press Ctrl-C once
        lines.append(line)
        if "[nq-smollm2-ft0] generating" in line:
            proc.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline, "".join(lines)
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(timeout=900) == 130, out[-3000:]
    assert "stopping after the current cell" in out
    run_dir = tmp_path / "reports" / "runs" / "stopped"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["incomplete"].startswith("interrupted")
    status = {c["id"]: c["status"] for c in results["cells"]}
    assert status["nq-smollm2-ft0"] in ("passed", "ungated") and status["qasper-smollm2-ft0"] == "not run", status
    assert "incomplete" in (run_dir / "summary.md").read_text().lower()

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "reused 1 finished cells, computed 1" in again.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert "incomplete" not in results and all(c["status"] != "not run" for c in results["cells"])
