"""Device and dtype choice shared by every component that runs a torch model."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (avx512_bf16 or amx_bf16), where bf16 is measured faster."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def best_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def auto_dtype(device: str | None = None, requested: str = "auto"):
    """torch dtype for ``requested`` ("auto", "bf16", "fp16", "fp32"): auto = bf16 on CUDA and bf16-capable CPUs, else fp32."""
    import torch

    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32}
    if requested != "auto":
        if requested not in names:
            from .errors import ConfigError

            raise ConfigError(f"unknown precision {requested!r}: choose auto, bf16, fp16 or fp32")
        return names[requested]
    device = device or best_device()
    if device.startswith("cuda") or (device == "cpu" and cpu_has_bf16()):
        return torch.bfloat16
    return torch.float32
