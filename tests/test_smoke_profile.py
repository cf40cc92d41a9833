"""The smoke profile end to end, as a user runs it: every report file is written and the
exit status is the gate's verdict (1 when a cell fails the gate, 0 when all pass, never an error)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_profile_writes_the_report_and_exits_with_the_gate(tmp_path):
    junit = tmp_path / "junit.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "test_cases/test_matrix.py", "--profile", "smoke", "-q",
         "--report-dir", str(tmp_path / "reports"), "--run-id", "smoke-check", f"--junitxml={junit}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, env=dict(os.environ),
    )
    run_dir = tmp_path / "reports" / "runs" / "smoke-check"
    for name in ("results.json", "summary.md", "report.html"):
        assert (run_dir / name).is_file(), f"{name} missing\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert junit.is_file()
    assert list((run_dir / "figures").glob("*.png"))
    results = json.loads((run_dir / "results.json").read_text())
    cells = {c["id"]: c for c in results["cells"]}
    assert list(cells) == [f"{d}-smollm2-ft{s}" for d in ("qasper", "nq", "bioasq") for s in (0, 16)]
    failed = sorted(cid for cid, c in cells.items() if c["status"] == "failed")
    assert all(c["status"] in ("passed", "failed") for c in cells.values()), {k: c["status"] for k, c in cells.items()}
    assert run.returncode == (1 if failed else 0), run.stdout[-3000:]
    for cid in failed:  # each gate failure is reported with its table row
        assert f"test_cell[{cid}]" in run.stdout and "95% CI" in run.stdout
    summary = (run_dir / "summary.md").read_text()
    assert "## Research questions" in summary and "Completeness" in summary
