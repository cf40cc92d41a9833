"""benchmarks.gpu_check on a machine without CUDA: one clear line and exit status 2, no traceback;
its summary table and memory-growth rule from figures written here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.gpu_check import growth_ok, markdown

ROOT = Path(__file__).resolve().parents[1]


def test_without_cuda_it_exits_2_with_one_clear_line():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", "--wheels", "/nonexistent"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: no CUDA GPU here")


def test_peak_memory_growth_rule():
    mib = 2**20
    assert growth_ok([1000 * mib] * 8, 64 * mib)
    assert growth_ok([1000 * mib, 1010 * mib, 1063 * mib], 64 * mib)
    assert not growth_ok([1000 * mib, 1000 * mib, 1100 * mib], 64 * mib)
    assert not growth_ok([], 64 * mib)


def test_summary_table_has_a_row_per_check_with_its_result():
    summary = {
        "checks": {
            "generation": {"batch": 16, "tokens_per_s": 1234.5678, "ok": True},
            "adapter_switching": {"peak_mib": [10.0, 10.5], "ok": False, "error": "RuntimeError: a|b"},
            "qlora_4bit_training": {"status": "skipped: bitsandbytes not installed"},
        }
    }
    rows = markdown(summary).splitlines()
    assert rows[0] == "| check | figures | result |" and len(rows) == 5
    assert rows[2] == "| generation | batch 16, tokens_per_s 1235 | ok |"
    assert rows[3] == "| adapter_switching | peak_mib [10, 10.5] | FAILED: RuntimeError: a/b |"
    assert rows[4] == "| qlora_4bit_training |  | skipped: bitsandbytes not installed |"
