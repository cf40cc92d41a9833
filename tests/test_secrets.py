"""Credentials given to a run never reach a file it writes or a line it prints.

A matrix runs against a loopback OpenAI-compatible server with a canary API key, a canary URL
password and a canary ``api_key=`` query parameter; every file the run wrote (reports, caches,
stored baseline, JUnit) and its output are then searched for the three canaries.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evalsuite.redaction import REDACTED, scrub, scrub_text, split_credentials

ROOT = Path(__file__).resolve().parents[1]
KEY, PASSWORD, QUERY = "sk-canaryKEY0123456789abcdef", "canaryPASSWORD42", "canaryQUERY77"


def test_scrub_text_and_records():
    assert (
        scrub_text(f"openai:https://bob:{PASSWORD}@api.example.com/v1#m")
        == f"openai:https://{REDACTED}@api.example.com/v1#m"
    )
    assert QUERY not in scrub_text(f"http://h/v1?api_key={QUERY}&x=1") and "x=1" in scrub_text(
        f"http://h/v1?api_key={QUERY}&x=1"
    )
    assert KEY not in scrub_text(f"Authorization: Bearer {KEY}") and KEY not in scrub_text(f"using {KEY}")
    assert scrub({"api_key": "abc", "key": "a-content-hash", f"http://u:{PASSWORD}@h/v1#m/geval": 1}) == {
        "api_key": REDACTED,
        "key": "a-content-hash",
        f"http://{REDACTED}@h/v1#m/geval": 1,
    }
    url, auth, query = split_credentials(f"https://bob:{PASSWORD}@host:8/v1?api_key={QUERY}&v=2")
    assert (url, auth, query) == ("https://host:8/v1?v=2", ("bob", PASSWORD), {"api_key": QUERY})


@pytest.fixture
def server():
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that records how each request authenticated."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            seen.append({"auth": self.headers.get("authorization"), "path": self.path})
            answer = "The answer is in the passages."
            data = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
                    ],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57},
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], seen
    httpd.shutdown()


@pytest.mark.slow
def test_a_run_against_an_endpoint_with_credentials_writes_none_of_them(server, tmp_path, cold_cache):
    port, seen = server
    spec = f"openai:http://gate:{PASSWORD}@127.0.0.1:{port}/v1?api_key={QUERY}#canary-model"
    env = dict(cold_cache, OPENAI_API_KEY=KEY)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "test_cases/matrix.toml",
        "--profile",
        "smoke",
        "--datasets",
        "nq",
        "--sizes",
        "0",
        "--eval-limit",
        "2",
        "--judge",
        "token-overlap",
        "--models",
        spec,
        "--update-baseline",
        "--report-dir",
        str(tmp_path / "reports"),
        f"--junitxml={tmp_path / 'junit.xml'}",
        "--allow-ungated",
        "-rA",
        "-p",
        "no:cacheprovider",
    ]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    (tmp_path / "run.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]  # the token judge never gates: all allowed
    assert seen, "the endpoint was never called"
    expected_basic = "Basic " + base64.b64encode(f"gate:{PASSWORD}".encode()).decode()
    assert all(
        s["auth"] == expected_basic and f"api_key={QUERY}" in s["path"] for s in seen
    )  # the credentials were used
    assert list((tmp_path / "reports" / "baselines").glob("*.json")), "no baseline stored"
    written = [Path(d) / f for d, _, files in os.walk(tmp_path) for f in files]  # not into the linked test store
    assert len(written) > 10
    for path in written:
        data = path.read_bytes()
        for canary in (KEY, PASSWORD, QUERY):
            assert canary.encode() not in data, f"{canary} found in {path}"
