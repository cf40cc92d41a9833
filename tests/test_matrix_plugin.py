"""The pytest plugin seen from outside: activation, collection ids and order, -k selection,
shards, offline skips and the exit status of a run that nothing gated."""

import json
import os
import subprocess
import sys
from pathlib import Path

from evalsuite.matrix import INPUT_ERROR, NOT_GATED, PASSED, exit_status, load_config, shard_cells

ROOT = Path(__file__).resolve().parents[1]
MATRIX = "test_cases/matrix.toml"


def pytest_run(*args, env=None, cwd=ROOT):
    env = {**os.environ, **(env or {})}
    env.pop("OPENAI_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "ignore", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc


def collected(*args):
    proc = pytest_run(MATRIX, "--collect-only", "-q", *args)
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr
    return [line.split("::", 1)[1] for line in proc.stdout.splitlines() if line.startswith(MATRIX + "::")]


def test_collection_ids_order_and_keyword_selection():
    cfg = load_config(ROOT / MATRIX, "default")
    ids = collected("--profile", "default")
    assert ids == [f"{d}-smollm2-ft{s}" for d in cfg.dataset_names for s in cfg.sizes]
    per = len(cfg.sizes)
    assert collected("--profile", "default", "-k", "nq and smollm2") == ids[per : 2 * per]
    assert collected(
        "--profile",
        "smoke",
        "--datasets",
        "nq,bioasq",
        "-k",
        "ft16 or candidate",
        "--candidate",
        "bundled:smollm2-135m-instruct",
    ) == ["nq-smollm2-ft16", "nq-candidate", "bioasq-smollm2-ft16", "bioasq-candidate"]


def test_the_plugin_is_inactive_without_a_matrix_file(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    (tmp_path / "matrix.toml").write_text((ROOT / MATRIX).read_text())  # present, but nobody named it
    proc = pytest_run("-q", cwd=tmp_path)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "evalsuite matrix" not in proc.stdout


def test_shards_are_whole_dataset_model_groups_and_cover_the_matrix():
    cfg = load_config(ROOT / MATRIX, "default", {"models": "bundled:smollm2-135m-instruct,bundled:gemma3-270m"})
    from evalsuite.matrix import expand_cells

    cells = expand_cells(cfg)
    shards = [shard_cells(cells, i, 3) for i in (1, 2, 3)]
    assert sorted(c.id for s in shards for c in s) == sorted(c.id for c in cells)
    for shard in shards:
        ids = {c.id for c in shard}
        assert all(c.baseline_id in ids for c in shard)  # every cell lands with its baseline
    one, two = collected("--profile", "smoke", "--shard", "1/2"), collected("--profile", "smoke", "--shard", "2/2")
    assert not set(one) & set(two) and sorted(one + two) == sorted(collected("--profile", "smoke"))


def test_a_shard_beyond_the_groups_has_nothing_to_run_and_passes(tmp_path):
    """A CI job matrix of 4 shards over a matrix of 3 (dataset, model) groups: the fourth job says so and passes."""
    proc = pytest_run(MATRIX, "--profile", "smoke", "--shard", "4/4", "--report-dir", str(tmp_path / "reports"))
    assert proc.returncode == PASSED, proc.stdout + proc.stderr
    assert "shard 4/4 has no cells" in proc.stdout
    assert not (tmp_path / "reports").exists()  # no run, no report


def test_a_configuration_error_is_one_line_and_exit_status_2():
    proc = pytest_run(MATRIX, "--collect-only", "--profile", "nope")
    assert proc.returncode == INPUT_ERROR
    assert "no profile 'nope'; known profiles: default, smoke, paper" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_paper_profile_offline_fails_closed_with_reasons_and_reports(tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty-hf-cache"), "EVALSUITE_MATRIX_SUMMARY": "1"}
    args = (MATRIX, "--profile", "paper", "--datasets", "nq", "--report-dir", str(tmp_path / "reports"), "-rs")
    proc = pytest_run(*args, env=env)
    out = proc.stdout
    assert proc.returncode == NOT_GATED, out + proc.stderr
    assert "9 skipped" in out and "exit status 3: not gated" in out
    assert "weights of mistralai/Mistral-7B-Instruct-v0.2 are not in the local Hugging Face cache" in out
    assert "openai:gpt-4 needs OPENAI_API_KEY" in out
    results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    assert [c["status"] for c in results["cells"]] == ["skipped"] * 9
    assert results["judges"][0]["why"].startswith("cannot run here: openai:gpt-4o needs OPENAI_API_KEY")
    summary = (tmp_path / "reports" / "latest" / "summary.md").read_text()
    assert "| nq-llama2-ft200 | skipped |" in summary
    allowed = pytest_run(*args, "--allow-ungated", env=env)
    assert allowed.returncode == PASSED, allowed.stdout + allowed.stderr


def test_exit_status_ranks_errors_then_regressions_then_ungated_cells():
    assert exit_status({"a": "passed", "b": "passed"}, allow_ungated=False) == PASSED
    assert exit_status({"a": "passed", "b": "failed", "c": "error"}, allow_ungated=True) == INPUT_ERROR
    assert exit_status({"a": "failed", "b": "skipped"}, allow_ungated=False) == 1
    assert exit_status({"a": "passed", "b": "ungated"}, allow_ungated=False) == NOT_GATED
    assert exit_status({"a": "skipped", "b": "skipped"}, allow_ungated=False) == NOT_GATED
    assert exit_status({"a": "skipped", "b": "ungated"}, allow_ungated=True) == PASSED
