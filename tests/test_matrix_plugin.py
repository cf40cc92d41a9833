"""The pytest layer seen from outside: collection ids and order, -k selection, offline skips, the report."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_run(*args, env=None, cwd=ROOT):
    env = {**os.environ, **(env or {})}
    env.pop("OPENAI_API_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_cases/test_matrix.py", "-p", "no:cacheprovider", "-p", "no:plugins",
                           "-W", "ignore", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc


def collected(*args):
    proc = pytest_run("--collect-only", "-q", *args)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return [line.split("[", 1)[1].rstrip("]") for line in proc.stdout.splitlines() if "::test_cell[" in line]


def test_collection_ids_order_and_keyword_selection():
    ids = collected("--profile", "default")
    assert ids == [f"{d}-smollm2-ft{s}" for d in ("qasper", "nq", "bioasq") for s in (0, 20, 50, 100)]
    assert collected("--profile", "default", "-k", "nq and smollm2") == ids[4:8]
    assert collected("--profile", "smoke", "--datasets", "nq,bioasq", "-k", "ft16 or candidate",
                     "--candidate", "bundled:smollm2-135m-instruct") == [
        "nq-smollm2-ft16", "nq-candidate", "bioasq-smollm2-ft16", "bioasq-candidate"]


def test_bad_option_is_a_usage_error_naming_the_fix():
    proc = pytest_run("--collect-only", "--profile", "nope")
    assert proc.returncode != 0 and "no profile 'nope'; known profiles: default, smoke, paper" in proc.stdout + proc.stderr


def test_paper_profile_skips_offline_with_reasons_and_reports(tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty-hf-cache"), "EVALSUITE_MATRIX_SUMMARY": "1"}
    proc = pytest_run("--profile", "paper", "--datasets", "nq", "--report-dir", str(tmp_path / "reports"), "-rs", env=env)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "9 skipped" in out
    assert "weights of mistralai/Mistral-7B-Instruct-v0.2 are not in the local Hugging Face cache" in out
    assert "openai:gpt-4 needs OPENAI_API_KEY" in out
    assert "reused 0 finished cells, computed 0" in out
    results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    assert [c["status"] for c in results["cells"]] == ["skipped"] * 9
    assert results["judges"][0]["why"].startswith("cannot run here: openai:gpt-4o needs OPENAI_API_KEY")
    summary = (tmp_path / "reports" / "latest" / "summary.md").read_text()
    assert "| nq-llama2-ft200 | skipped |" in summary
