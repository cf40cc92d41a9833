"""Measured speeds of this machine, kept in the cache so a run's duration can be estimated.

    from evalsuite import throughput as _throughput
    _throughput.cpu_flags()          # the flags that decide the code path, and the path
    _throughput.peak_fp32_flops()    # fp32 FLOP/s of a matmul on this machine (measured once)
    _throughput.save("generate/int8", {"prompt_tokens_per_s": 950.0, "generated_tokens_per_s": 41.0})
    _throughput.load()               # {"generate/int8": {...}, "peak_fp32": {...}, ...}

Entries live in ``cache_dir()/throughput.json`` under a key of the machine (CPU model,
decisive flags, torch's kernel level and the bf16 decision), so a cache copied to another
machine, or the AVX2 emulation of ``evalsuite.device.AVX2_EMULATION``, never reads
another machine's speeds. Each entry records the thread count it was measured with and
when. Writers: ``benchmarks.profile``, ``benchmarks.generation``, ``benchmarks.finetune``
and the embedder (chunks/s of every index it builds).
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from evalsuite.redaction import scrub, scrub_text

from .device import cpu_has_bf16, cpuinfo_flags
from .records import stable_hash
from .storage import atomic_write_json, cache_dir, file_lock

FILE = "throughput.json"
DECISIVE = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> dict[str, Any]:
    """The CPU flags that decide the code path, torch's kernel level, and whether bf16 counts as native."""
    import torch

    flags = cpuinfo_flags()
    out: dict[str, Any] = {name: name in flags for name in DECISIVE}
    out["cpu"] = _cpu_model()
    out["cores"] = os.cpu_count() or 1
    out["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    out["bf16"] = cpu_has_bf16()  # after EVALSUITE_CPU_BF16 / ATEN_CPU_CAPABILITY
    return out


def machine_key() -> str:
    f = cpu_flags()
    return stable_hash({k: f[k] for k in (*DECISIVE, "cpu", "cores", "torch_capability", "bf16")}, 12)


def _path():
    return cache_dir() / FILE


def _read() -> dict[str, Any]:
    import json

    try:
        return json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Record ``values`` (numbers per second and what they were measured on) as entry ``name`` of this machine."""
    import torch

    name, values = scrub_text(name), scrub(values)  # a model spec may carry credentials: never recorded
    entry = {
        **values,
        "threads": torch.get_num_threads(),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with file_lock(_path()):
        data = _read()
        machine = data.setdefault(machine_key(), {"cpu": cpu_flags(), "entries": {}})
        machine["cpu"] = cpu_flags()
        machine["entries"][name] = entry
        atomic_write_json(_path(), data)
    return entry


def load(name: str | None = None) -> dict[str, Any]:
    """This machine's entries (``{}`` when none was measured), or the one entry ``name``."""
    entries = _read().get(machine_key(), {}).get("entries", {})
    return entries.get(name, {}) if name is not None else entries


def peak_fp32_flops(refresh: bool = False, seconds: float = 1.0) -> float:
    """fp32 FLOP/s of a 1024^3 matmul with the current thread count: the best of repeated runs
    over about ``seconds``; measured once per machine and thread count, then read from the cache."""
    import torch

    threads = torch.get_num_threads()
    stored = load("peak_fp32")
    if not refresh and stored.get("threads") == threads and stored.get("flops"):
        return float(stored["flops"])
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)  # warm-up
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == float("inf"):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    flops = 2 * n**3 / best
    save("peak_fp32", {"flops": flops, "matmul": n})
    return flops


def transformer_flops(config: dict[str, Any]) -> dict[str, float]:
    """Multiply-add FLOPs per token of a decoder or encoder from its ``config.json``: ``body``
    (every layer's linear maps), ``head`` (the output layer, 0 for an encoder) and
    ``attention_per_context`` (attention per token per token of context it attends to)."""
    d = int(config["hidden_size"])
    layers = int(config["num_hidden_layers"])
    heads = int(config.get("num_attention_heads", 1))
    kv_heads = int(config.get("num_key_value_heads", heads))
    head_dim = int(config.get("head_dim") or d // heads)
    inner = int(config.get("intermediate_size", 4 * d))
    gated = config.get("model_type") not in ("bert", "roberta", "distilbert", "mpnet")
    attn = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2  # q, o; k, v
    mlp = d * inner * (3 if gated else 2)
    head = d * int(config.get("vocab_size", 0)) if gated else 0
    return {
        "body": 2.0 * layers * (attn + mlp),
        "head": 2.0 * head,
        "attention_per_context": 2.0 * 2 * layers * heads * head_dim,
    }
