"""Spec parsing, one-line errors, the backend registry and the wrapper (cache, retries, accounting)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from evalsuite.errors import ConfigError, EvalsuiteError, SpecError
from evalsuite.finetune import FinetuneConfig
from evalsuite.models import (
    BackendCapabilities,
    Generation,
    GenerationSettings,
    TransientError,
    load_model,
    parse_spec,
    register_backend,
)
from evalsuite.records import Message, Prompt


def prompt(text: str) -> Prompt:
    return Prompt((Message("user", text),))


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


class ReverseBackend:
    """A complete backend a third party could ship: answers with the reversed prompt text."""

    batch_size = 2
    concurrency = 2
    tokenizer = None

    def __init__(self, target: str, fail_first: int = 0) -> None:
        self.identity = f"reverse-{target}"
        self.calls = 0
        self.failures_left = fail_first
        self.lock = threading.Lock()

    def generate_batch(self, prompts, settings):
        with self.lock:
            self.calls += 1
            if self.failures_left:
                self.failures_left -= 1
                raise TransientError("busy", retry_after=0.0)
        return [
            Generation(
                text=p.messages[-1].content[::-1][: settings.max_new_tokens],
                prompt_tokens=len(p.messages[-1].content),
                completion_tokens=min(settings.max_new_tokens, len(p.messages[-1].content)),
                seconds=0.0,
            )
            for p in prompts
        ]


register_backend(
    "reverse",
    lambda target, adapter, options: ReverseBackend(target, **options),
    capabilities=BackendCapabilities(concurrent=True),
)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("smollm2", "malformed model spec"),
        ("", "empty model spec"),
        ("bundled:", "malformed model spec"),
        ("nosuch:model", "unknown model backend"),
        ("bundled:smollm2-135m-instruct+lora:", "no adapter directory"),
        ("bundled:llama-70b", "unknown bundled model"),
        ("openai:gpt-4o+lora:/tmp/x", "cannot load LoRA adapters"),
        ("openai:http://127.0.0.1:9/v1", "names no model"),
    ],
)
def test_malformed_specs_fail_with_one_line_naming_the_fix(spec, words):
    with pytest.raises(SpecError) as info:
        load_model(spec)
    message = str(info.value)
    assert words in message
    assert "\n" not in message
    assert any(hint in message for hint in ("use ", "write ", "bundled:"))


def test_missing_adapter_directory_names_path_and_fix(tmp_path):
    missing = tmp_path / "no-adapter"
    with pytest.raises(SpecError) as info:
        load_model(f"bundled:smollm2-135m-instruct+lora:{missing}")
    message = str(info.value)
    assert str(missing) in message and "evalsuite finetune" in message and "\n" not in message


def test_missing_api_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(SpecError, match="set OPENAI_API_KEY or pass --judge bundled:"):
        load_model("openai:gpt-4o")
    with pytest.raises(SpecError, match="set MY_KEY"):
        load_model("openai:gpt-4o", api_key_env="MY_KEY")
    # a loopback server needs no key
    assert load_model("openai:http://127.0.0.1:9/v1#m").identity


def test_parse_spec_with_adapter_and_url():
    parsed = parse_spec("hf:org/model+lora:/a/b")
    assert (parsed.scheme, parsed.target, parsed.adapter) == ("hf", "org/model", "/a/b")
    parsed = parse_spec("openai:http://127.0.0.1:8000/v1#my-model")
    assert (parsed.scheme, parsed.target, parsed.adapter) == ("openai", "http://127.0.0.1:8000/v1#my-model", None)


def test_third_party_backend_gets_cache_order_and_accounting():
    model = load_model("reverse:a")
    prompts = [prompt(t) for t in ("abc", "hello", "xy", "zzz")]
    settings = GenerationSettings(max_new_tokens=4)
    first = model.generate(prompts, settings)
    assert [g.text for g in first] == ["cba", "olle", "yx", "zzz"]
    assert not any(g.cached for g in first)
    again = model.generate(prompts, settings)
    assert [g.text for g in again] == [g.text for g in first] and all(g.cached for g in again)
    stats = model.stats
    assert stats["model_calls"] == 4 and stats["cache_hits"] == 4
    assert stats["prompt_tokens"] == 3 + 5 + 2 + 3 and stats["completion_tokens"] == 3 + 4 + 2 + 3
    # other settings and another model identity are other cache entries
    assert not model.generate(prompts[:1], GenerationSettings(max_new_tokens=2))[0].cached
    assert not load_model("reverse:b").generate(prompts[:1], settings)[0].cached


def test_wrapper_retries_transient_errors_then_gives_up():
    model = load_model("reverse:flaky", fail_first=2, backoff=0.01, cache=False)
    assert model.generate([prompt("ab")], GenerationSettings())[0].text == "ba"
    assert model.stats["retries"] == 2
    hopeless = load_model("reverse:down", fail_first=100, backoff=0.01, max_retries=2, cache=False)
    with pytest.raises(EvalsuiteError, match="giving up after 3 attempts"):
        hopeless.generate([prompt("ab")], GenerationSettings())
    assert hopeless.backend.calls == 3


def test_cache_lives_in_the_cache_dir(tmp_path):
    load_model("reverse:c").generate([prompt("q")], GenerationSettings())
    assert (Path(tmp_path) / "cache" / "generations" / "generations.sqlite").exists()


def test_finetune_config_validation_and_round_trip():
    config = FinetuneConfig(epochs=1, lora_r=4)
    assert FinetuneConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["epochs"] == 1.0 and list(config.to_dict()) == sorted(config.to_dict())
    assert FinetuneConfig(per_device_batch_size=2, gradient_accumulation=3).effective_batch_size == 6
    assert all(FinetuneConfig.help().values())
    with pytest.raises(ConfigError, match="unknown fine-tuning setting"):
        FinetuneConfig.from_dict({"epochs": 1, "lr": 0.1})
    with pytest.raises(ConfigError, match="lora_r must be"):
        FinetuneConfig(lora_r=0)
    with pytest.raises(ConfigError, match="quantization must be none or qlora"):
        FinetuneConfig(quantization="int8")
