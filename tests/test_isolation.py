"""Tests never touch the user's cache: the session runs on a temporary EVALSUITE_CACHE that
shares only the test store's models and indexes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from evalsuite.datasets import data_root
from evalsuite.storage import cache_dir

ROOT = Path(__file__).resolve().parents[1]


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_this_session_runs_on_a_temporary_cache():
    cache = cache_dir()
    assert cache != Path.home() / ".cache" / "evalsuite" and "evalsuite-test-cache-" in str(cache)
    assert (cache / "models").is_symlink() and (cache / "index").is_symlink()


def test_a_test_that_loads_a_model_and_caches_answers_leaves_the_users_cache_as_it_was(tmp_path):
    home = tmp_path / "home"
    users = home / ".cache" / "evalsuite"
    (users / "generations").mkdir(parents=True)
    (users / "generations" / "generations.sqlite").write_bytes(b"the user's own cache")
    (users / "notes.txt").write_text("untouched")
    before = _tree(users)
    env = {k: v for k, v in os.environ.items() if k != "EVALSUITE_CACHE"}
    env.update(
        HOME=str(home),
        EVALSUITE_DATA=str(data_root()),
        EVALSUITE_TEST_STORE=str(Path(os.environ["EVALSUITE_CACHE"], "models").resolve().parent),
    )
    test = "tests/test_models_hf.py::test_generation_cache_hits_across_model_objects"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert _tree(users) == before
