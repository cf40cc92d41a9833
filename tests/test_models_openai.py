"""The OpenAI-compatible backend against a real ``transformers serve`` and against small local
HTTP servers that rate-limit, fail or never answer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evalsuite.errors import EvalsuiteError
from evalsuite.models import GenerationSettings, load_model
from evalsuite.records import Message, Prompt

PROMPT = Prompt((Message("system", "Answer briefly."), Message("user", "What is the capital of France?")))


def reply(text: str = "Paris.") -> bytes:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
        }
    ).encode()


class Script:
    """What a local server answers, request by request: (status, headers) or "hang"."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.seen: list[dict] = []
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            return self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]


@pytest.fixture
def server():
    servers = []

    def start(steps):
        script = Script(steps)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                script.seen.append(
                    {"body": json.loads(body), "auth": self.headers.get("authorization"), "t": time.monotonic()}
                )
                step = script.next()
                if step == "hang":
                    time.sleep(3)
                    return
                status, headers = step
                payload = reply() if status == 200 else b'{"error": {"message": "try later"}}'
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1", script

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def model_for(url, **options):
    return load_model(f"openai:{url}#m", cache=False, backoff=0.05, **options)


def test_rate_limit_then_success_honours_retry_after(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    url, script = server([(429, {"retry-after": "0.4"}), (200, {})])
    model = model_for(url, timeout=5)
    out = model.generate([PROMPT], GenerationSettings(max_new_tokens=8))[0]
    assert out.text == "Paris." and (out.prompt_tokens, out.completion_tokens) == (11, 2)
    assert len(script.seen) == 2 and model.stats["retries"] == 1
    assert script.seen[1]["t"] - script.seen[0]["t"] >= 0.38  # waited as the server asked
    assert script.seen[0]["auth"] == "Bearer EMPTY"  # loopback without a key: dummy key


def test_server_error_then_success(server):
    url, script = server([(500, {}), (503, {}), (200, {})])
    model = model_for(url, timeout=5)
    assert model.generate([PROMPT], GenerationSettings())[0].text == "Paris."
    assert len(script.seen) == 3 and model.stats["retries"] == 2


def test_client_error_is_not_retried(server):
    url, script = server([(400, {})])
    with pytest.raises(EvalsuiteError, match="request refused \\(400\\)"):
        model_for(url, timeout=5).generate([PROMPT], GenerationSettings())
    assert len(script.seen) == 1


def test_a_server_that_never_answers_times_out(server):
    url, script = server(["hang"])
    model = model_for(url, timeout=0.5, max_retries=1)
    start = time.monotonic()
    with pytest.raises(EvalsuiteError, match="giving up after 2 attempts: .*no answer within 0.5 s"):
        model.generate([PROMPT], GenerationSettings())
    assert time.monotonic() - start < 5
    assert len(script.seen) == 2


def test_requests_run_concurrently_and_keep_order(server):
    url, script = server([(200, {})])
    model = model_for(url, timeout=5, concurrency=4)
    prompts = [Prompt((Message("user", f"q{i}"),), prefill="Answer:") for i in range(6)]
    out = model.generate(prompts, GenerationSettings(max_new_tokens=5, top_logprobs=3))
    assert len(out) == 6 and all(g.logprobs_missing and g.top_logprobs is None for g in out)
    sent = sorted(s["body"]["messages"][-1]["content"] for s in script.seen)
    assert sent[0] == "q0\n\nBegin your reply with exactly: Answer:"
    assert all(s["body"]["logprobs"] is True and s["body"]["top_logprobs"] == 3 for s in script.seen)


def test_key_is_never_in_identity_or_errors(server, monkeypatch):
    monkeypatch.setenv("SECRET_KEY_VAR", "sk-very-secret")
    url, script = server([(500, {})])
    model = model_for(url, timeout=2, api_key_env="SECRET_KEY_VAR", max_retries=0)
    assert "sk-very-secret" not in model.identity
    with pytest.raises(EvalsuiteError) as info:
        model.generate([PROMPT], GenerationSettings())
    assert "sk-very-secret" not in str(info.value)
    assert script.seen[0]["auth"] == "Bearer sk-very-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_smollm2():
    pytest.importorskip("fastapi", reason='pip install "transformers[serving]"')
    from evalsuite.models._bundled import materialize

    path, _ = materialize("smollm2-135m-instruct")
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.Popen(
        [exe, "serve", str(path), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not start within 180 s")
            time.sleep(1)
        yield f"{url}/v1", str(path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_against_transformers_serve(served_smollm2):
    url, name = served_smollm2
    model = load_model(f"openai:{url}#{name}", cache=False, timeout=300)
    out = model.generate([PROMPT], GenerationSettings(max_new_tokens=8, top_logprobs=2))[0]
    assert out.text.strip()
    assert out.prompt_tokens > 10 and 0 < out.completion_tokens <= 8
    # this server returns no logprobs: reported as missing, never made up
    assert out.top_logprobs is None and out.logprobs_missing
    assert model.stats["model_calls"] == 1 and model.stats["completion_tokens"] == out.completion_tokens
