"""Faults mid-write: processes killed with -9 while committing, writing a cell or saving an adapter
leave nothing a later run trusts that would not verify; a full disk is one line naming the file;
output piped into a reader that stops early ends quietly."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from evalsuite.errors import EvalsuiteError
from evalsuite.finetune._train import _open_adapter, _store_adapter
from evalsuite.judge._cache import JudgeCache
from evalsuite.matrix import RunStore
from evalsuite.records import CellResult
from evalsuite.storage import CorruptionWarning, DiskFull

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def start(script: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env or ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "started", proc.stderr.read()
    return proc


def kill_at_random(proc: subprocess.Popen, rng: random.Random, most: float) -> None:
    time.sleep(rng.uniform(0.05, most))
    assert proc.poll() is None, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def no_corruption_warning():
    caught = warnings.catch_warnings()
    caught.__enter__()
    warnings.simplefilter("error", CorruptionWarning)
    return caught


# -- judge cache commits ------------------------------------------------------------------------------

JUDGE_WRITER = """
import hashlib, sys
from evalsuite.judge._cache import JudgeCache
cache = JudgeCache(sys.argv[1])
print("started", flush=True)
i = int(sys.argv[2])
while True:
    text = hashlib.sha256(str(i).encode()).hexdigest() * 50
    cache.put(f"run-{i}", judge="j", criterion="accuracy", text=text, score=float(i % 5 + 1))
    i += 1
"""


def test_kill_9_during_judge_cache_commits_leaves_only_whole_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    path = tmp_path / "judge" / "judge.sqlite"
    rng = random.Random(1)
    seen = 0
    for round_ in range(3):
        proc = start(JUDGE_WRITER, str(path), str(round_ * 10**6))
        kill_at_random(proc, rng, 1.5)
        guard = no_corruption_warning()
        try:
            cache = JudgeCache(path)
            rows = cache._db.execute("SELECT key, text, score FROM runs").fetchall()
            cache.close()
        finally:
            guard.__exit__(None, None, None)
        for key, text, score in rows:
            i = int(key.split("-")[1])
            assert text == hashlib.sha256(str(i).encode()).hexdigest() * 50 and score == float(i % 5 + 1)
        assert len(rows) > seen  # every round committed more rows, and each one is whole
        seen = len(rows)
    assert not (tmp_path / "quarantine").exists()


# -- cell result writes -------------------------------------------------------------------------------

CELL_WRITER = """
import sys
from evalsuite.matrix import RunStore
store = RunStore(sys.argv[1])
print("started", flush=True)
i = 0
while True:
    items = [{"id": f"q{j}", "answer": f"answer {i} " * 40, "score": i} for j in range(300)]
    store.write("nq-smollm2-ft0", {"id": "nq-smollm2-ft0", "status": "scored", "round": i, "items": items})
    i += 1
"""


def test_kill_9_during_cell_writes_leaves_a_whole_cell_or_none(tmp_path):
    rng = random.Random(2)
    for _ in range(4):
        proc = start(CELL_WRITER, str(tmp_path / "run"))
        kill_at_random(proc, rng, 1.0)
        store = RunStore(tmp_path / "run")
        guard = no_corruption_warning()
        try:
            data = store.read("nq-smollm2-ft0")
        finally:
            guard.__exit__(None, None, None)
        if data is not None:  # the last whole write, never a part of one
            i = data["round"]
            assert len(data["items"]) == 300 and all(it["answer"] == f"answer {i} " * 40 for it in data["items"])
        assert store.cell_ids() in ([], ["nq-smollm2-ft0"])  # unfinished .tmp files are no cells


# -- adapter saves --------------------------------------------------------------------------------------

ADAPTER_WRITER = """
import json, sys, time
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file
from evalsuite.finetune._train import _store_adapter
store, mode = Path(sys.argv[1]), sys.argv[2]

def save(folder):
    save_file({"lora_A": np.full((1024, 1024), 0.5, dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4}))
    if mode == "critical":  # the weights are written, the manifest is not yet
        print("saved", flush=True)
        time.sleep(600)

print("started", flush=True)
i = 0
while True:
    _store_adapter(store / f"key{i}", save, {"key": f"key{i}", "loss": [{"step": 1, "loss": 1.0}]})
    i += 1
"""


def test_kill_9_at_the_critical_point_of_an_adapter_save_leaves_no_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    store = tmp_path / "adapters"
    proc = start(ADAPTER_WRITER, str(store), "critical")
    assert proc.stdout.readline().strip() == "saved"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert not (store / "key0").exists()
    [partial] = [p.name for p in store.iterdir() if not p.name.endswith(".lock")]
    assert partial.startswith(".key0.") and partial.endswith(".tmp")  # only an unfinished write, ignored by readers
    assert _open_adapter(store / "key0", "stored adapter") is None


def test_kill_9_at_random_moments_of_adapter_saves_leaves_only_verified_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    store = tmp_path / "adapters"
    rng = random.Random(3)
    for _ in range(3):
        proc = start(ADAPTER_WRITER, str(store), "loop")
        kill_at_random(proc, rng, 1.5)
    entries = sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith("."))
    guard = no_corruption_warning()
    try:
        for entry in entries:  # every entry that exists is whole (no warning: nothing to quarantine)
            assert _open_adapter(entry, "stored adapter")["key"] == entry.name
    finally:
        guard.__exit__(None, None, None)
    assert entries and not (tmp_path / "quarantine").exists()


# -- a full disk ----------------------------------------------------------------------------------------


def test_full_disk_while_writing_results_names_the_file_and_keeps_finished_cells(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "run")
    done = {c: {"id": c, "status": "scored", "items": [{"id": "q1", "answer": c}]} for c in ("nq-ft0", "nq-ft16")}
    for cid, data in done.items():
        store.write(cid, data)
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFull) as caught:
        store.compute_or_load(
            "nq-ft50", lambda: CellResult.from_json({"id": "nq-ft50", "status": "scored", "items": []})
        )
    message = str(caught.value)
    assert isinstance(caught.value, EvalsuiteError) and "\n" not in message
    assert f"no space left on the device writing {store.path('nq-ft50')}" in message and "rerun resumes" in message
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert {cid: store.read(cid) for cid in done} == done and store.read("nq-ft50") is None
    assert sorted(p.name for p in store.cells_dir.iterdir() if not p.name.endswith((".lock", ".holder"))) == [
        "nq-ft0.json",
        "nq-ft16.json",
    ]  # no partial file left behind


def test_full_disk_while_saving_an_adapter_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    final = tmp_path / "adapters" / "k"

    def save(folder):
        (folder / "adapter_model.safetensors").write_bytes(b"\0" * 10)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(DiskFull, match=f"no space left on the device writing {final}"):
        _store_adapter(final, save, {"key": "k"})
    assert list(final.parent.iterdir()) == []


# -- output into a closed pipe ----------------------------------------------------------------------------


def test_output_into_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalsuite", "datasets", "stats", "all"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first line (as `| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(300) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""
