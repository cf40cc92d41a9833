"""The data root and ``evalsuite datasets download`` from a mirror folder or an HTTP server.

The mirror here is made by the test from the real data root (files copied at run time),
so nothing of the data sets is committed. The HTTP mirror is ``http.server`` on 127.0.0.1
in a thread, serving that folder; it can drop the connection halfway, ignore ``Range``, or
require basic authentication.
"""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evalsuite.datasets import data_root, download, load
from evalsuite.datasets._fetch import manifest
from evalsuite.errors import ConfigError, DataError

DATASET = "nq"  # its files: NOTICE.md and dev.jsonl (4.4 MB)
BIG = "dev.jsonl"


@pytest.fixture
def mirror(tmp_path):
    """A mirror folder holding the nq files of the real data root."""
    folder = tmp_path / "mirror"
    shutil.copytree(data_root() / DATASET, folder / DATASET)
    return folder


class MirrorServer:
    """A real HTTP server over a mirror folder. ``mode``: "normal" (answers ``Range`` with 206),
    "ignore-range" (always 200 and the whole file), "halfway" (announces the whole file, sends half,
    closes). ``credentials``: "user:password" that basic authentication must carry."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mode = "normal"
        self.credentials: str | None = None
        self.requests: list[dict] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append(
                    {
                        "path": self.path,
                        "range": self.headers.get("Range"),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                if server.credentials is not None:
                    want = "Basic " + base64.b64encode(server.credentials.encode()).decode()
                    if self.headers.get("Authorization") != want:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                file = server.folder / self.path.lstrip("/").split("?")[0]
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                start = 0
                rng = self.headers.get("Range")
                if rng and server.mode != "ignore-range":
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "halfway" and file.name == BIG:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(mirror):
    srv = MirrorServer(mirror)
    yield srv
    srv.close()


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "root"
    monkeypatch.setenv("EVALSUITE_DATA", str(folder))
    return folder


def test_download_verifies_and_skips_what_is_present(mirror, root):
    first = download(DATASET, str(mirror), progress=False)
    assert sorted(r.name for r in first) == sorted(manifest()[DATASET]) and {r.status for r in first} == {"fetched"}
    assert load(DATASET).source == str(root / DATASET / BIG)
    again = download(DATASET, str(mirror), progress=False)
    assert {r.status for r in again} == {"present"}


def test_a_corrupt_mirror_file_is_refused_and_leaves_nothing(mirror, root):
    dev = mirror / DATASET / BIG
    data = bytearray(dev.read_bytes())
    data[100] ^= 1
    dev.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum mismatch"):
        download(DATASET, str(mirror), progress=False)
    assert not (root / DATASET / BIG).exists()
    assert not (root / DATASET / f"{BIG}.part").exists()


def test_http_download_and_checksum_mismatch_leaves_nothing(server, mirror, root):
    results = download(DATASET, server.url(), progress=False)
    assert {r.status for r in results} == {"fetched"} and [r["range"] for r in server.requests] == [None, None]
    assert (root / DATASET / BIG).read_bytes() == (mirror / DATASET / BIG).read_bytes()
    shutil.rmtree(root)
    for change in (lambda b: b[:50] + bytes([b[50] ^ 1]) + b[51:], lambda b: b[:-10]):  # a flipped bit; a shorter file
        dev = mirror / DATASET / BIG
        original = dev.read_bytes()
        dev.write_bytes(change(original))
        with pytest.raises(DataError) as err:
            download(DATASET, server.url(), progress=False)
        dev.write_bytes(original)
        message = str(err.value)
        assert "checksum mismatch" in message and f"127.0.0.1:{server.port}" in message and "\n" not in message
        assert not (root / DATASET / BIG).exists() and not (root / DATASET / f"{BIG}.part").exists()


def test_an_interrupted_transfer_keeps_the_part_and_resumes_with_range(server, root):
    expected = manifest()[DATASET][BIG]["size"]
    server.mode = "halfway"
    with pytest.raises(DataError) as err:
        download(DATASET, server.url(), progress=False)
    message = str(err.value)
    assert "run the same download command again to resume" in message and "\n" not in message
    part = root / DATASET / f"{BIG}.part"
    assert part.stat().st_size == expected // 2 and not (root / DATASET / BIG).exists()
    server.mode = "normal"
    server.requests.clear()
    results = {r.name: r for r in download(DATASET, server.url(), progress=False)}
    assert results[BIG].status == "resumed" and results[BIG].bytes == expected - expected // 2
    assert [r["range"] for r in server.requests if r["path"].endswith(BIG)] == [f"bytes={expected // 2}-"]
    assert not part.exists() and results[BIG].path.stat().st_size == expected
    assert len(load(DATASET).examples) == 2355  # the resumed file verifies and loads


def test_a_server_that_ignores_range_sends_the_whole_file_again(server, root):
    server.mode = "halfway"
    with pytest.raises(DataError, match="again to resume"):
        download(DATASET, server.url(), progress=False)
    server.mode = "ignore-range"
    server.requests.clear()
    results = {r.name: r for r in download(DATASET, server.url(), progress=False)}
    expected = manifest()[DATASET][BIG]["size"]
    assert results[BIG].status == "fetched" and results[BIG].bytes == expected
    assert [r["range"] for r in server.requests if r["path"].endswith(BIG)] == [f"bytes={expected // 2}-"]
    assert results[BIG].path.stat().st_size == expected and not (root / DATASET / f"{BIG}.part").exists()


def test_credentials_in_the_mirror_url_authenticate_and_are_never_printed(server, root, tmp_path):
    server.credentials = "reader:s3cr3t-pw"
    env = {**os.environ, "EVALSUITE_DATA": str(root)}
    cmd = [sys.executable, "-m", "evalsuite", "datasets", "download", DATASET, "--quiet", "--mirror"]
    wrong = subprocess.run(cmd + [server.url("reader:wrong-pw")], capture_output=True, text=True, env=env)
    assert wrong.returncode == 2 and "HTTP 401" in wrong.stderr and "wrong-pw" not in wrong.stderr + wrong.stdout
    server.mode = "halfway"
    cut = subprocess.run(cmd + [server.url("reader:s3cr3t-pw")], capture_output=True, text=True, env=env)
    assert cut.returncode == 2 and "again to resume" in cut.stderr and len(cut.stderr.strip().splitlines()) == 1
    server.mode = "normal"
    ok = subprocess.run(cmd + [server.url("reader:s3cr3t-pw")], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "resumed  nq/dev.jsonl" in ok.stdout
    for run in (wrong, cut, ok):
        assert "s3cr3t" not in run.stdout + run.stderr and "reader" not in run.stdout + run.stderr
    sent = [r["authorization"] for r in server.requests]
    assert sent[-1] == "Basic " + base64.b64encode(b"reader:s3cr3t-pw").decode()
    with pytest.raises(DataError) as err:  # an unreachable mirror names it without its credentials
        download(DATASET, "http://reader:s3cr3t-pw@127.0.0.1:9/", root=tmp_path / "other", progress=False)
    assert "s3cr3t" not in str(err.value) and "http://127.0.0.1:9/" in str(err.value)


def test_a_missing_dataset_is_one_line_naming_the_download_command(tmp_path):
    env = {"EVALSUITE_DATA": str(tmp_path / "empty"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "evalsuite", "datasets", "stats", "bioasq"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "evalsuite datasets download bioasq --mirror" in proc.stderr


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        download("squad", str(tmp_path))
    with pytest.raises(ConfigError, match="no such folder"):
        download("nq", str(tmp_path / "nowhere"))
