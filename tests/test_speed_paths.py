"""The path of a CPU without bf16 (int8 inference, int8 embedder, fp32 training) end to end:
the same numbers serially and under two pytest-xdist workers, as fp32 gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cold_cache(path: Path) -> dict[str, str]:
    """An empty evalsuite cache sharing only the model store and the indexes; the CPU taken as one without bf16."""
    from evalsuite.storage import cache_dir

    path.mkdir()
    for part in ("models", "index"):
        (path / part).symlink_to(cache_dir(part), target_is_directory=True)
    return dict(os.environ, EVALSUITE_CACHE=str(path), EVALSUITE_CPU_BF16="0")


@pytest.mark.slow
def test_int8_path_gives_the_serial_numbers_under_two_workers(tmp_path):
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
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800, env=_cold_cache(tmp_path / f"cache-{name}")
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]  # the token judge never gates: all allowed
        runs[name] = json.loads((tmp_path / name / "runs" / "same" / "results.json").read_text())
    serial, xdist = ({c["id"]: c for c in runs[k]["cells"]} for k in ("serial", "xdist"))
    assert sorted(serial) == sorted(xdist) == ["nq-smollm2-ft0", "nq-smollm2-ft16"]
    for cid, cell in serial.items():
        other = xdist[cid]
        assert cell["status"] == other["status"] and cell["model_identity"] == other["model_identity"]
        assert [i["answer"] for i in cell["items"]] == [i["answer"] for i in other["items"]]
        assert [i["chunk_ids"] for i in cell["items"]] == [i["chunk_ids"] for i in other["items"]]
        for mine, theirs in zip(cell["items"], other["items"]):
            for judge, verdict in mine["verdicts"].items():
                for key in ("accuracy", "completeness"):
                    assert round(verdict[key], 6) == round(theirs["verdicts"][judge][key], 6)
    manifest = serial["nq-smollm2-ft16"]["adapter"]["manifest"]
    assert manifest["dtype"] == "float32"  # no bf16 training where the CPU has none
