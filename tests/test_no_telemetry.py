"""Nothing leaves the machine unasked: a team's run through the installed plugin, with the deepeval
extra installed and none of the opt-out variables set, makes no connection outside loopback.

The subprocess's socket layer (a ``sitecustomize`` on its ``PYTHONPATH``) refuses and records
every address that is not loopback. The team's project has no ``-p no:plugins``, so pytest also
loads deepeval's own pytest plugin, which imports deepeval and its telemetry as pytest starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite._telemetry import OPT_OUTS

pytestmark = pytest.mark.slow

GUARD = """
import os, socket
LOG = os.environ["NETWORK_GUARD_LOG"]
real_connect, real_connect_ex, real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def loopback(host):
    host = str(host)
    return host in ("", "localhost", "::1") or host.startswith("127.") or host.startswith("/")


def record(what, host):
    with open(LOG, "a") as fh:
        fh.write(f"{what} {host}\\n")


def connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if not loopback(host):
        record("connect", host)
        raise OSError(101, "outside loopback refused")
    return real_connect(self, address)


def connect_ex(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if not loopback(host):
        record("connect_ex", host)
        return 101
    return real_connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host is not None and not loopback(host):
        record("getaddrinfo", host)
        raise socket.gaierror(-2, "outside loopback refused")
    return real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
"""

MATRIX = """
[default]
models = [{ spec = "bundled:smollm2-135m-instruct", name = "smollm2" }]
datasets = ["nq"]
sizes = [0]
eval_limit = 2
max_new_tokens = 8
judges = ["token-overlap"]
corpus_subset = 20
"""


def guarded_env(tmp_path: Path) -> tuple[dict, Path]:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUTS and k != "EVALSUITE_ALLOW_TELEMETRY"}
    env.update(PYTHONPATH=str(guard), NETWORK_GUARD_LOG=str(log))
    return env, log


def test_the_guard_sees_deepevals_telemetry_when_nothing_turns_it_off(tmp_path):
    env, log = guarded_env(tmp_path)
    subprocess.run([sys.executable, "-c", "import deepeval"], env=env, capture_output=True, text=True, timeout=300)
    assert log.is_file() and log.read_text().strip(), "deepeval made no outside connection: the guard tests nothing"


def test_a_matrix_cell_with_deepeval_installed_makes_no_outside_connection(tmp_path):
    pytest.importorskip("deepeval")
    env, log = guarded_env(tmp_path)
    project = tmp_path / "team"
    project.mkdir()
    (project / "matrix.toml").write_text(MATRIX)
    run = subprocess.run(
        [sys.executable, "-m", "evalsuite", "run", "--allow-ungated"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "nq-smollm2-ft0" in out
    assert not log.is_file(), f"outside connections: {log.read_text()}"
    assert "sentry" not in out.lower() and "posthog" not in out.lower(), out[-3000:]


def test_allow_telemetry_leaves_the_variables_alone():
    code = (
        "import os; import evalsuite; "
        "print(os.environ.get('DEEPEVAL_TELEMETRY_OPT_OUT'), os.environ.get('DO_NOT_TRACK'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUTS}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert quiet.stdout.split() == ["YES", "1"]
    allowed = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "EVALSUITE_ALLOW_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert allowed.stdout.split() == ["None", "None"]
    own = subprocess.run(
        [sys.executable, "-c", code], env={**env, "DO_NOT_TRACK": "0"}, capture_output=True, text=True, timeout=120
    )
    assert own.stdout.split() == ["YES", "0"]  # a value the user set wins
