"""The run's result store: atomic cell files, compute-once under a lock, resume after a kill."""

import json
import multiprocessing as mp
import os
import time

import pytest

from evalsuite.matrix import RunStore, is_reusable
from evalsuite.records import CellResult, CellStatus


def result(cell_id, **extra):
    return CellResult.from_json({"id": cell_id, "status": "scored", "items": [{"id": "q1"}], **extra})


def test_compute_or_load_computes_once_then_reuses(tmp_path):
    store = RunStore(tmp_path / "run")
    calls = []
    data, reused = store.compute_or_load("nq-smollm2-ft0", lambda: calls.append(1) or result("nq-smollm2-ft0"))
    assert not reused and calls == [1]
    on_disk = json.loads(store.path("nq-smollm2-ft0").read_text())
    assert on_disk.pop("checksum").startswith("sha256:") and on_disk == data.to_json()
    again, reused = RunStore(tmp_path / "run").compute_or_load("nq-smollm2-ft0", lambda: calls.append(2) or None)
    assert reused and again == data and calls == [1]
    assert store.cell_ids() == ["nq-smollm2-ft0"]


def test_failed_compute_leaves_nothing_and_skip_records_are_not_reused(tmp_path):
    store = RunStore(tmp_path)

    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.compute_or_load("c", boom)
    assert store.read("c") is None and not [p for p in tmp_path.rglob("*") if p.suffix == ".tmp"]
    store.write("c", {"id": "c", "status": "skipped", "reason": "no weights"})
    assert not is_reusable(store.read("c"))
    data, reused = store.compute_or_load("c", lambda: result("c"))
    assert not reused and data.status == CellStatus.SCORED


def test_a_decided_result_keeps_what_was_measured(tmp_path):
    store = RunStore(tmp_path)
    store.save(result("c").decided(CellStatus.FAILED, gate={"passed": False}))
    data = store.read("c")
    assert data["items"] == [{"id": "q1"}] and data["status"] == "failed" and data["gate"] == {"passed": False}
    assert is_reusable(data) and store.load("c").finished and store.load("c").decision == {"gate": {"passed": False}}


def test_a_result_reads_back_as_it_was_written(tmp_path):
    store = RunStore(tmp_path)
    written = result("c", reason="r", recipe={"name": "a"}, session="tok", timings={"cell": 1.5}).decided(
        CellStatus.UNGATED, "too few", gate={"too_few": ["x"]}
    )
    store.save(written)
    assert store.load("c") == written
    store.write("d", {"id": "d", "status": "a status of another version"})
    assert store.load("d") is None


def _worker(run_dir, counter, barrier):
    store = RunStore(run_dir)
    barrier.wait()

    def compute():
        with open(counter, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return result("shared", pid=os.getpid())

    data, _ = store.compute_or_load("shared", compute)
    print(data.measured["pid"])


def test_two_processes_compute_a_shared_cell_once(tmp_path):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    counter = tmp_path / "computed.txt"
    procs = [ctx.Process(target=_worker, args=(tmp_path / "run", counter, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(counter.read_text().split()) == 1


def test_resume_after_kill_reuses_finished_cells(tmp_path):
    """A process killed mid-run (SIGKILL) leaves whole files; the rerun reuses them."""
    ctx = mp.get_context("fork")
    run_dir = tmp_path / "run"

    def slow_run():
        store = RunStore(run_dir)
        store.compute_or_load("a", lambda: result("a"))
        store.compute_or_load("b", lambda: (time.sleep(60), result("b"))[1])

    proc = ctx.Process(target=slow_run)
    proc.start()
    deadline = time.time() + 20
    while not RunStore(run_dir).path("a").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.join()
    store = RunStore(run_dir)
    computed = []
    for cid in ("a", "b"):
        store.compute_or_load(cid, lambda cid=cid: computed.append(cid) or result(cid))
    assert computed == ["b"]
