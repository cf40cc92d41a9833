"""File locks: a timeout that names the holder and the fix, holder records, and a holder killed with -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evalsuite.errors import ConfigError
from evalsuite.storage import LockTimeout, file_lock, lock_holder, lock_timeout, try_lock

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))

HOLD = """
import sys, time
from evalsuite.storage import file_lock
with file_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""

# holds the flock without going through file_lock, so it leaves no holder record
HOLD_RAW = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def start_holder(script: str, path: Path, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(path), *extra],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()
    return proc


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def test_timeout_names_lock_holder_and_fix_and_kill_9_frees_it_at_once(tmp_path):
    target = tmp_path / "adapters" / "abc123"
    proc = start_holder(HOLD, target, "--job", "nightly-gate")
    try:
        holder = lock_holder(target)
        assert holder["pid"] == proc.pid and holder["alive"] is True
        assert "nightly-gate" in holder["command"]
        with pytest.raises(LockTimeout) as caught:
            with file_lock(target, timeout=0.3):
                pass
        message = str(caught.value)
        assert "\n" not in message
        assert f"{target}.lock" in message
        assert f"pid {proc.pid}" in message and "nightly-gate" in message
        assert f"kill {proc.pid}" in message and "EVALSUITE_LOCK_TIMEOUT" in message
    finally:
        kill9(proc)
    # the kernel dropped the lock with the process: the next acquisition does not wait
    stale = lock_holder(target)
    assert stale["pid"] == proc.pid and stale["alive"] is False  # the record outlived it, and says so
    with file_lock(target, timeout=0):
        assert lock_holder(target)["pid"] == os.getpid()
    assert lock_holder(target) is None  # released: no record left


def test_stale_record_does_not_blame_the_dead_process(tmp_path):
    target = tmp_path / "index" / "nq-1234"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    target.parent.mkdir(parents=True)
    Path(f"{target}.lock.holder").write_text(
        json.dumps({"pid": dead_pid, "host": os.uname().nodename, "command": "python old-run", "since": "earlier"})
    )
    proc = start_holder(HOLD_RAW, target)
    try:
        with pytest.raises(LockTimeout) as caught:
            with file_lock(target, timeout=0.2):
                pass
        message = str(caught.value)
        assert "left no record" in message and f"pid {dead_pid}" in message and "has exited" in message
        assert f"kill {dead_pid}" not in message and f"fuser {target}.lock" in message
    finally:
        kill9(proc)


def test_environment_sets_the_timeout_and_bad_values_name_the_variable(tmp_path, monkeypatch):
    target = tmp_path / "cell"
    proc = start_holder(HOLD, target)
    try:
        waiter = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys\nfrom evalsuite.storage import file_lock\nwith file_lock(sys.argv[1]):\n    pass",
                str(target),
            ],
            cwd=ROOT,
            env=dict(ENV, EVALSUITE_LOCK_TIMEOUT="0.5"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert waiter.returncode != 0
        assert "LockTimeout" in waiter.stderr and f"pid {proc.pid}" in waiter.stderr
    finally:
        kill9(proc)
    monkeypatch.setenv("EVALSUITE_LOCK_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="EVALSUITE_LOCK_TIMEOUT='soon'"):
        lock_timeout()
    monkeypatch.setenv("EVALSUITE_LOCK_TIMEOUT", "90")
    assert lock_timeout() == 90 and lock_timeout(5) == 5
    monkeypatch.delenv("EVALSUITE_LOCK_TIMEOUT")
    assert lock_timeout() == 7200


def test_reentrant_in_a_thread_exclusive_between_threads_and_try_lock(tmp_path):
    target = tmp_path / "entry"
    outcome = []

    def other_thread():
        try:
            with file_lock(target, timeout=0.1):
                outcome.append("got it")
        except LockTimeout:
            outcome.append("timed out")
        with try_lock(target) as free:
            outcome.append(free)

    with file_lock(target):
        with file_lock(target, timeout=0):  # the same thread again: no deadlock
            t = threading.Thread(target=other_thread)
            t.start()
            t.join(30)
        assert lock_holder(target)["pid"] == os.getpid()  # the inner release kept the outer hold
    assert outcome == ["timed out", False]
    with try_lock(target) as free:
        assert free
