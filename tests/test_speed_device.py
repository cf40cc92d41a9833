"""The CPU path switch (bf16 or not) and the stored throughputs of this machine."""

from __future__ import annotations

import json

import pytest

from evalsuite import device as _device
from evalsuite import throughput as _throughput


def test_bf16_follows_the_flags_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv(_device.BF16_ENV, raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    flags = _device.cpuinfo_flags()
    assert _device.cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)
    monkeypatch.setenv(_device.BF16_ENV, "0")
    assert not _device.cpu_has_bf16()
    monkeypatch.setenv(_device.BF16_ENV, "1")
    assert _device.cpu_has_bf16()
    monkeypatch.delenv(_device.BF16_ENV)
    for capability in ("avx2", "AVX2", "default"):
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
        assert not _device.cpu_has_bf16()  # an AVX2-only CPU has no bf16


def test_auto_dtype_drops_bf16_with_the_switch(monkeypatch):
    import torch

    monkeypatch.setenv(_device.BF16_ENV, "0")
    assert _device.auto_dtype("cpu") == torch.float32
    monkeypatch.setenv(_device.BF16_ENV, "1")
    assert _device.auto_dtype("cpu") == torch.bfloat16
    assert _device.auto_dtype("cpu", "fp32") == torch.float32


def test_throughputs_are_kept_per_machine_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    monkeypatch.setenv(_device.BF16_ENV, "1")
    assert _throughput.load() == {}
    _throughput.save("generate/fp32", {"tokens_per_s": 12.5})
    assert _throughput.load("generate/fp32")["tokens_per_s"] == 12.5
    assert _throughput.load("generate/fp32")["threads"] >= 1
    monkeypatch.setenv(_device.BF16_ENV, "0")  # another path of the same CPU: its own entries
    assert _throughput.load() == {}
    _throughput.save("generate/int8", {"tokens_per_s": 30.0})
    stored = json.loads((tmp_path / _throughput.FILE).read_text())
    assert len(stored) == 2 and all(set(m) == {"cpu", "entries"} for m in stored.values())
    assert {m["cpu"]["bf16"] for m in stored.values()} == {True, False}


def test_peak_is_measured_once_per_thread_count(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    peak = _throughput.peak_fp32_flops(seconds=0.1)
    assert peak > 1e8
    first = _throughput.load("peak_fp32")
    assert _throughput.peak_fp32_flops() == pytest.approx(peak)
    assert _throughput.load("peak_fp32")["measured"] == first["measured"]


def test_flop_count_matches_the_bundled_models_linear_layers():
    import torch
    from transformers import AutoModelForCausalLM

    from evalsuite.models._hf import resolve_weights

    path = resolve_weights("bundled", "smollm2-135m-instruct").path
    config = json.loads(open(f"{path}/config.json", encoding="utf-8").read())
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    linear = sum(m.weight.numel() for m in model.model.layers.modules() if isinstance(m, torch.nn.Linear))
    flops = _throughput.transformer_flops(config)
    assert flops["body"] == 2 * linear
    assert flops["head"] == 2 * model.lm_head.weight.numel()
