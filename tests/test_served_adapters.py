"""The matrix's ``serve`` option: base and fine-tuned cells generate through an OpenAI-compatible
server that loads LoRA adapters by name at run time, as vLLM does with ``--enable-lora``.

The server here is a loopback ``http.server`` in a thread implementing that contract
(``GET /v1/models``, ``POST /v1/load_lora_adapter``, ``POST /v1/unload_lora_adapter``, chat
completions naming the adapter in ``model``). It really applies each adapter with peft on the
bundled base through the project's own model loading, so it generates with the arithmetic the
matrix uses in-process (int8 on an AVX2-only CPU): the answers of the two runs must be equal.
The dataset is invented here (the ``qa`` format).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_dry_run import write_dataset

from evalsuite.errors import ConfigError
from evalsuite.matrix import MatrixSession, build_config, expand_cells, load_config

BASE = "bundled:smollm2-135m-instruct"
SERVED_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
KEY = "sk-servedadaptertestkey0123456789"  # the server's key: in no file the run writes

MATRIX = """
[default]
models = [{{ spec = "{base}", name = "smollm2" }}]
datasets = [{{ name = "widgets", path = "{data}" }}]
sizes = [0, 8]
eval_limit = 3
max_new_tokens = 12
judges = ["token-overlap"]

[default.finetune]
epochs = 2
learning_rate = 0.01
max_seq_length = 128

[served.serve]
url = "{url}"
api_key_env = "EVALSUITE_TEST_SERVE_KEY"
adapter_path = "{view}"
models = {{ smollm2 = "{served}" }}
"""


class LoraServer:
    """A loopback OpenAI-compatible server of one base model and the adapters loaded onto it."""

    def __init__(
        self,
        *,
        listed: str = SERVED_BASE,
        adapter_endpoints: bool = True,
        key: str | None = None,
        answer: str | None = None,
    ) -> None:
        self.listed, self.adapter_endpoints, self.key = listed, adapter_endpoints, key
        self.answer = answer  # when set, every completion is this text (a hostile model's), no model runs
        self.adapters: dict[str, tuple[str, object]] = {}  # served name -> (path it was loaded from, model)
        self.calls: list[tuple[str, str]] = []  # (endpoint, adapter name or model)
        self.lock = threading.Lock()  # one generation at a time: a local model is not thread-safe
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def reply(self, status: int, body, content_type="application/json"):
                data = (json.dumps(body) if content_type == "application/json" else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status: int, message: str):
                self.reply(status, {"object": "error", "message": message, "type": "BadRequestError", "code": status})

            def authorized(self) -> bool:
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    self.error(401, "invalid API key")
                    return False
                return True

            def do_GET(self):
                if not self.authorized():
                    return
                if self.path != "/v1/models":
                    return self.reply(404, {"detail": "Not Found"})
                data = [{"id": server.listed, "object": "model", "created": 0, "owned_by": "test"}]
                data += [
                    {"id": name, "object": "model", "created": 0, "owned_by": "test", "parent": server.listed}
                    for name in server.adapters
                ]
                self.reply(200, {"object": "list", "data": data})

            def do_POST(self):
                if not self.authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter") and not server.adapter_endpoints:
                    return self.reply(404, {"detail": "Not Found"})
                if self.path == "/v1/load_lora_adapter":
                    return self.load(body["lora_name"], body["lora_path"])
                if self.path == "/v1/unload_lora_adapter":
                    return self.unload(body["lora_name"])
                if self.path == "/v1/chat/completions":
                    return self.complete(body)
                self.reply(404, {"detail": "Not Found"})

            def load(self, name: str, path: str):
                from evalsuite.models import load_model

                server.calls.append(("load", name))
                if name in server.adapters:
                    return self.error(400, f"The lora adapter '{name}' has already been loaded.")
                if not (Path(path) / "adapter_config.json").is_file():
                    return self.error(404, f"Loading lora {name} failed: No adapter found for {path}")
                if server.answer is not None:  # no model runs: the adapter is only registered
                    server.adapters[name] = (path, None)
                    return self.reply(200, f"Success: LoRA adapter '{name}' added successfully.", "text/plain")
                with server.lock:  # peft applies the adapter to the bundled base
                    server.adapters[name] = (path, load_model(f"{BASE}+lora:{path}", cache=False))
                self.reply(200, f"Success: LoRA adapter '{name}' added successfully.", "text/plain")

            def unload(self, name: str):
                from evalsuite.models import release

                server.calls.append(("unload", name))
                held = server.adapters.pop(name, None)
                if held is None:
                    return self.error(404, f"The lora adapter '{name}' cannot be found.")
                with server.lock:
                    release(f"{BASE}+lora:{held[0]}")
                self.reply(200, f"Success: LoRA adapter '{name}' removed successfully.", "text/plain")

            def complete(self, body: dict):
                from evalsuite.models import GenerationSettings, load_model
                from evalsuite.records import Message, Prompt

                name = body["model"]
                server.calls.append(("generate", name))
                if server.answer is not None:
                    if name != server.listed and name not in server.adapters:
                        return self.error(404, f"The model `{name}` does not exist.")
                    return self.reply(
                        200,
                        {
                            "id": "x",
                            "object": "chat.completion",
                            "created": 0,
                            "model": name,
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": server.answer},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                        },
                    )
                if name == server.listed:
                    model = load_model(BASE, cache=False)
                elif name in server.adapters:
                    model = server.adapters[name][1]
                else:
                    return self.error(404, f"The model `{name}` does not exist.")
                prompt = Prompt(tuple(Message(m["role"], m["content"]) for m in body["messages"]))
                settings = GenerationSettings(
                    max_new_tokens=body["max_tokens"],
                    temperature=body.get("temperature", 0.0),
                    stop=tuple(body.get("stop") or ()),
                )
                with server.lock:
                    # decoded in a batch of two, as the matrix decodes a batch of its prompts in-process: each
                    # prompt is then read on its own, whatever its batch (a lone prompt is read in blocks,
                    # which rounds otherwise under int8)
                    answer = model.generate([prompt, prompt], settings)[0]
                self.reply(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 0,
                        "model": name,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer.text},
                                "finish_reason": "stop",
                                "logprobs": None,
                            }
                        ],
                        "usage": {
                            "prompt_tokens": answer.prompt_tokens,
                            "completion_tokens": answer.completion_tokens,
                            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
                        },
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "LoraServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def write_matrix(tmp_path: Path, url: str, view: Path) -> Path:
    path = tmp_path / "matrix.toml"
    path.write_text(
        MATRIX.format(base=BASE, data=write_dataset(tmp_path), url=url, view=view, served=SERVED_BASE), encoding="utf-8"
    )
    return path


def answers(session: MatrixSession) -> dict[str, list[str]]:
    out = {}
    for cell in session.cells:
        outcome = session.evaluate(cell)
        assert outcome.status not in ("error", "skipped"), outcome.message
        out[cell.id] = [item["answer"] for item in session.store.read(cell.id)["items"]]
    return out


@pytest.mark.slow
def test_cells_served_with_their_adapter_answer_as_in_process(tmp_path, monkeypatch):
    from evalsuite.storage import cache_dir

    monkeypatch.setenv("EVALSUITE_TEST_SERVE_KEY", KEY)
    view = tmp_path / "server-view" / "adapters"  # the adapter store as the server mounts it
    view.parent.mkdir()
    view.symlink_to(cache_dir("adapters"), target_is_directory=True)
    with LoraServer(key=KEY) as server:
        matrix = write_matrix(tmp_path, server.url, view)
        local = MatrixSession(load_config(matrix, "default"), report_root=tmp_path / "local")
        in_process = answers(local)
        served_config = load_config(matrix, "served")
        assert served_config.run_id() != local.config.run_id()  # another way of generating: another run
        remote = MatrixSession(served_config, report_root=tmp_path / "remote")
        served = answers(remote)
        calls = list(server.calls)
        loaded = dict(server.adapters)
    assert served == in_process
    assert all(all(isinstance(a, str) for a in v) and len(v) == 3 for v in served.values())
    assert served["widgets-smollm2-ft8"] != served["widgets-smollm2-ft0"]  # the adapter changed what was generated

    cell = remote.store.read("widgets-smollm2-ft8")
    adapter_dir = Path(cell["adapter"]["path"])
    assert cell["adapter"]["cached"]  # trained once, by the in-process run; served from the store
    from evalsuite.models import adapter_digest

    name = f"evalsuite-{adapter_digest(str(adapter_dir))[:16]}"
    assert cell["served"]["adapter_name"] == name
    assert cell["served"]["adapter_path"] == str(view / adapter_dir.name)  # the store as the server reads it
    assert ("load", name) in calls and ("unload", name) in calls and not loaded  # unloaded after its cell
    assert [c for c in calls if c[0] == "generate"] == [("generate", SERVED_BASE)] * 3 + [("generate", name)] * 3
    base_cell = remote.store.read("widgets-smollm2-ft0")
    assert base_cell["served"]["adapter_name"] is None and base_cell["model_spec"].endswith(f"#{SERVED_BASE}")

    remote.finalize()  # results, report: the server's key is in none of them
    for path in (tmp_path / "remote").rglob("*"):
        if path.is_file():
            assert KEY not in path.read_bytes().decode("utf-8", "replace"), path
    for path in cache_dir().rglob("*.sqlite*"):
        assert KEY.encode() not in path.read_bytes(), path


def test_a_served_adapters_cache_identity_is_its_content_not_its_served_name():
    from evalsuite.models import load_model

    url = "http://127.0.0.1:9/v1"
    first = load_model(f"openai:{url}#evalsuite-0123", lora_base=SERVED_BASE, lora_digest="d" * 32)
    renamed = load_model(f"openai:{url}#another-name", lora_base=SERVED_BASE, lora_digest="d" * 32)
    other = load_model(f"openai:{url}#evalsuite-0123", lora_base=SERVED_BASE, lora_digest="e" * 32)
    base = load_model(f"openai:{url}#{SERVED_BASE}")
    assert first.identity == renamed.identity
    assert len({first.identity, other.identity, base.identity}) == 3
    from evalsuite.models import GenerationSettings
    from evalsuite.records import Message, Prompt

    prompt, settings = Prompt((Message("user", "q"),)), GenerationSettings()
    assert first.cache_key(prompt, settings) == renamed.cache_key(prompt, settings)
    assert first.cache_key(prompt, settings) != other.cache_key(prompt, settings)


def fake_adapter(tmp_path: Path) -> SimpleNamespace:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8}')
    return SimpleNamespace(path=str(folder))


def serve_config(url: str, **serve) -> object:
    return build_config(
        "served",
        {
            "models": [{"spec": BASE, "name": "smollm2"}],
            "datasets": ["nq"],
            "serve": {"url": url, "models": {"smollm2": SERVED_BASE}, **serve},
        },
    )


def test_an_unreachable_server_is_an_error_naming_serve_url():
    from evalsuite.matrix._serve import served_cell

    config = serve_config(closed_port_url())
    cell = expand_cells(config)[0]
    with pytest.raises(ConfigError) as err:
        served_cell(cell, config)
    message = str(err.value)
    assert "serve url = http://127.0.0.1:" in message and "no server answers there" in message
    assert "vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --max-lora-rank 16" in message
    assert "\n" not in message
    from evalsuite.matrix._serve import max_rank

    recipes = build_config(
        "p",
        {
            "models": [{"spec": BASE, "name": "smollm2"}],
            "finetune": {"lora_r": 8},
            "recipes": [{"name": "a"}, {"name": "b", "r": 64}],
            "serve": {"url": "http://h/v1", "models": {"smollm2": "s"}},
        },
    )
    assert max_rank(recipes) == 64


def test_a_server_that_cannot_load_adapters_is_an_error_naming_enable_lora(tmp_path):
    from evalsuite.matrix._serve import served_cell

    with LoraServer(adapter_endpoints=False) as server:
        config = serve_config(server.url)
        base, tuned = expand_cells(config)[:2]
        assert served_cell(base, config) is not None  # the base is served: no adapter needed
        with pytest.raises(ConfigError) as err:
            served_cell(tuned, config, fake_adapter(tmp_path))
    message = str(err.value)
    assert "does not load LoRA adapters at run time" in message
    assert "--enable-lora" in message and "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in message


def test_a_server_of_another_base_is_an_error_naming_serve_models():
    from evalsuite.matrix._serve import served_cell

    with LoraServer(listed="meta-llama/Llama-2-7b-chat-hf") as server:
        config = serve_config(server.url)
        with pytest.raises(ConfigError) as err:
            served_cell(expand_cells(config)[0], config)
    message = str(err.value)
    assert "serves 'meta-llama/Llama-2-7b-chat-hf', not 'HuggingFaceTB/SmolLM2-135M-Instruct'" in message
    assert "serve.models.smollm2" in message


def test_an_adapter_the_server_cannot_read_is_an_error_naming_adapter_path(tmp_path):
    import shutil

    from evalsuite.matrix._serve import served_cell
    from evalsuite.storage import cache_dir

    stored = Path(fake_adapter(tmp_path).path)
    in_store = cache_dir("adapters") / f"test-{tmp_path.name}"
    shutil.copytree(stored, in_store)
    try:
        with LoraServer() as server:
            config = serve_config(server.url, adapter_path="/mnt/not-mounted")
            tuned = expand_cells(config)[1]
            with pytest.raises(ConfigError) as err:  # the server looks where the store is not mounted
                served_cell(tuned, config, SimpleNamespace(path=str(in_store)))
            message = str(err.value)
            assert f"could not load the adapter from /mnt/not-mounted/{in_store.name}" in message
            assert "set serve.adapter_path to where the server sees it" in message
            with pytest.raises(ConfigError, match="is not in it; drop serve.adapter_path"):
                served_cell(tuned, config, SimpleNamespace(path=str(stored)))  # outside the store: cannot be mapped
    finally:
        shutil.rmtree(in_store)


def test_a_server_key_is_sent_and_a_wrong_one_named():
    from evalsuite.matrix._serve import served_cell

    with LoraServer(key=KEY) as server:
        config = serve_config(server.url, api_key_env="EVALSUITE_TEST_NO_SUCH_KEY")
        with pytest.raises(ConfigError) as err:
            served_cell(expand_cells(config)[0], config)
    assert "serve url" in str(err.value) and "401" in str(err.value) and KEY not in str(err.value)


def test_serve_options_are_checked_with_the_fix():
    url = "http://127.0.0.1:8000/v1"
    with pytest.raises(ConfigError, match="unknown key 'adapter_dir' in \\[serve\\]"):
        serve_config(url, adapter_dir="/x")
    with pytest.raises(ConfigError, match="serve url = 'gpu-host:8000' must be the http"):
        serve_config("gpu-host:8000")
    with pytest.raises(ConfigError, match="bundled:smollm2-135m-instruct has no served name; add models.smollm2"):
        build_config("served", {"models": [BASE], "serve": {"url": url}})
    with pytest.raises(ConfigError, match="serve models.mistral names no model of the profile"):
        build_config("served", {"models": [BASE], "serve": {"url": url, "models": {"smollm2": "s", "mistral": "m"}}})
    with pytest.raises(ConfigError, match="must name an environment variable"):
        serve_config(url, api_key_env="sk-abc def")
    config = build_config(
        "p",
        {
            "models": [
                {"spec": "hf:mistralai/Mistral-7B-Instruct-v0.2", "name": "mistral7b"},
                {"spec": "hf:meta-llama/Llama-2-7b-chat-hf", "name": "llama2"},
            ],
            "serve": {"url": url, "models": {"llama2": {"name": "llama", "url": "http://h:8001/v1"}}},
        },
    )
    assert config.serve.served(config.model("mistral7b")) == ("mistralai/Mistral-7B-Instruct-v0.2", url)
    assert config.serve.served(config.model("llama2")) == ("llama", "http://h:8001/v1")
    # the configuration written to results.json reads back to the same run
    from evalsuite.matrix import MatrixConfig

    assert MatrixConfig.from_dict(config.to_dict()).run_id() == config.run_id()
    plain = build_config("p", {"models": [BASE]})
    assert "serve" not in plain.to_dict()  # a profile without serve keeps its run id


@pytest.fixture(scope="module")
def hostile_server():
    with LoraServer(answer="") as server:
        yield server


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(), max_size=300))
@example(text="\x00\x1b[31m<script>alert(1)</script>\u202e\ud800 \r\n")
@example(text="x" * 1_000_000)
def test_any_served_answer_reaches_the_cell_as_text(hostile_server, tmp_path_factory, text):
    """A served model's answer is untrusted: any Unicode, control characters, a lone surrogate, 1 MB."""
    from evalsuite.matrix._serve import served_cell
    from evalsuite.models import GenerationSettings
    from evalsuite.records import Message, Prompt

    hostile_server.answer = text
    config = serve_config(hostile_server.url)
    served = served_cell(expand_cells(config)[0], config)
    unique = Prompt((Message("user", f"question {len(hostile_server.calls)} {text[:20]!r}"),))  # no cache hit
    (answer,) = served.model.generate([unique], GenerationSettings(max_new_tokens=4))
    expected = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    assert answer.text == expected
    answer.text.encode("utf-8")  # writable to any result file


def test_a_served_baseline_needs_no_local_weights_but_training_does(tmp_path):
    models = [{"spec": "hf:nobody/not-downloaded-7b", "name": "big"}]
    served = build_config(
        "p", {"models": models, "datasets": ["nq"], "sizes": [0, 8], "serve": {"url": "http://127.0.0.1:8000/v1"}}
    )
    local = build_config("p", {"models": models, "datasets": ["nq"], "sizes": [0, 8]})
    session = MatrixSession(served, report_root=tmp_path / "reports")
    base, tuned = session.cells
    assert session.skip_reason(base) is None
    assert "weights of nobody/not-downloaded-7b are not in the local Hugging Face cache" in session.skip_reason(tuned)
    assert "not in the local Hugging Face cache" in MatrixSession(local, report_root=tmp_path / "r2").skip_reason(base)


def test_the_dry_run_counts_served_generation_as_the_servers(tmp_path):
    from evalsuite.matrix import build_plan

    data = write_dataset(tmp_path)
    values = {
        "models": [{"spec": BASE, "name": "smollm2"}, {"spec": "hf:nobody/not-downloaded-7b", "name": "big"}],
        "datasets": [{"name": "widgets", "path": str(data)}],
        "sizes": [0, 4],
        "eval_limit": 3,
        "judges": ["token-overlap"],
    }
    served = build_config(
        "p", {**values, "serve": {"url": "http://127.0.0.1:8000/v1", "models": {"smollm2": SERVED_BASE}}}
    )
    plan = build_plan(served, report_root=tmp_path / "reports")
    notes = {c.id: c.note for c in plan.cells}
    assert notes["widgets-big-ft0"] == "" and notes["widgets-big-ft4"].startswith("skipped here (weights of nobody")
    generation = {s.model: s for s in plan.stages if s.stage == "generation"}
    assert generation["widgets-smollm2-ft4"].source == "not estimated: an API model with no measurement here"
    local = build_plan(build_config("p", values), report_root=tmp_path / "reports")
    assert {c.id: c.note for c in local.cells}["widgets-big-ft0"].startswith("skipped here")
    assert not {s.model: s for s in local.stages if s.stage == "generation"}["widgets-smollm2-ft4"].source.startswith(
        "not estimated: an API model"
    )


def test_an_adapter_the_server_forgot_is_loaded_again(tmp_path):
    """Another process of the run serving the same adapter unloaded it, or the server restarted."""
    from evalsuite.matrix._serve import served_cell
    from evalsuite.models import GenerationSettings
    from evalsuite.records import Message, Prompt

    with LoraServer(answer="It is red.") as server:
        config = serve_config(server.url)
        served = served_cell(expand_cells(config)[1], config, fake_adapter(tmp_path))
        server.adapters.clear()
        (answer,) = served.model.generate(
            [Prompt((Message("user", f"forgotten {tmp_path.name}"),))], GenerationSettings(max_new_tokens=4)
        )
        assert answer.text == "It is red."
        loads = [c for c in server.calls if c == ("load", served.adapter_name)]
        assert len(loads) == 2 and served.adapter_name in server.adapters
