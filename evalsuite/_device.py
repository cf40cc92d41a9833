"""Device and dtype choice shared by every component that runs a torch model.

Which arithmetic a CPU does natively decides the fast path: bf16 where the CPU has
avx512_bf16 or AMX, fp32 (and int8 for inference, see ``evalsuite.models``) elsewhere.
Two environment variables change what this module concludes, so that one machine can
take (and test) another machine's path:

- ``EVALSUITE_CPU_BF16=0`` treats the CPU as one without bf16 (``=1`` as one with it);
- ``ATEN_CPU_CAPABILITY=avx2`` (or ``default``), which restricts torch's own kernels to
  AVX2, also means no bf16 here: an AVX2-only CPU (AMD Zen 3, Intel before Cooper Lake)
  has none. With ``ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
  FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` the matrix libraries follow (``AVX2_EMULATION``).
"""
from __future__ import annotations

import os
from functools import lru_cache

BF16_ENV = "EVALSUITE_CPU_BF16"

# The environment that makes an AVX-512 machine compute like an AVX2-only one (no bf16).
AVX2_EMULATION = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
    BF16_ENV: "0",
}


@lru_cache(maxsize=1)
def cpuinfo_flags() -> frozenset[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (avx512_bf16 or amx_bf16), where bf16 is measured faster.

    ``EVALSUITE_CPU_BF16=0``/``1`` overrides the flags; ``ATEN_CPU_CAPABILITY`` set to
    ``avx2`` or ``default`` means no bf16 (see the module docstring).
    """
    forced = os.environ.get(BF16_ENV, "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True
    capability = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if capability and not capability.startswith("avx512"):
        return False
    flags = cpuinfo_flags()
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
