"""Shared set-up of the library's tests: offline model hubs, no telemetry, cores shared between
xdist workers, and a cache of the test session's own. (It lives in tests/, so a matrix run,
``pytest test_cases`` or ``make eval``, keeps using the user's cache.)

Tests never read or write the user's cache (``~/.cache/evalsuite`` or ``$EVALSUITE_CACHE``):
the session sets ``EVALSUITE_CACHE`` to a temporary folder, removed at the end, whose
``models`` (de-quantized bundled models) and ``index`` (retrieval indexes) folders are the
test store, ``$EVALSUITE_TEST_STORE`` (default ``~/.cache/evalsuite-test-store``): built once,
then only read, so the expensive pieces are not rebuilt by every session or every test.
Datasets come from the data root (``$EVALSUITE_DATA``), which tests only read.

The evaluation matrix plugin comes with the package (entry point ``pytest11``).
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

for _var, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_var, _value)

SHARED_STORES = ("models", "index")


def test_store() -> Path:
    return Path(os.environ.get("EVALSUITE_TEST_STORE") or Path.home() / ".cache" / "evalsuite-test-store").expanduser()


def session_cache(root: Path) -> Path:
    """A fresh cache folder at ``root`` sharing only the test store's models and indexes."""
    root.mkdir(parents=True, exist_ok=True)
    for part in SHARED_STORES:
        (test_store() / part).mkdir(parents=True, exist_ok=True)
        link = root / part
        if not link.exists():
            link.symlink_to(test_store() / part, target_is_directory=True)
    return root


def pytest_configure(config):
    from evalsuite.pytest_plugin import share_cores_between_workers

    share_cores_between_workers(config)  # the library's tests too
    if hasattr(config, "workerinput"):  # xdist workers inherit the controller's EVALSUITE_CACHE
        return
    root = Path(tempfile.mkdtemp(prefix="evalsuite-test-cache-"))
    os.environ["EVALSUITE_CACHE"] = str(session_cache(root))
    config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))


@pytest.fixture
def cold_cache(tmp_path):
    """Environment for a subprocess with empty generation, adapter, judge and verdict caches
    (the test store's models and indexes are shared)."""
    return dict(os.environ, EVALSUITE_CACHE=str(session_cache(tmp_path / "cold-cache")))
