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

from .errors import ConfigError

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
    """torch dtype for ``requested`` ("auto", "bf16", "fp16", "fp32"): auto = bf16 on CUDA and bf16-capable CPUs,
    else fp32."""
    import torch

    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if requested != "auto":
        if requested not in names:
            raise ConfigError(f"unknown precision {requested!r}: choose auto, bf16, fp16 or fp32")
        return names[requested]
    device = device or best_device()
    if device.startswith("cuda") or (device == "cpu" and cpu_has_bf16()):
        return torch.bfloat16
    return torch.float32


# The name of this arithmetic in model and embedder identities (caches never mix it with another).
INT8_ARITHMETIC = "int8-weights-per-channel-inputs-per-token"

# int8 inference: each input row is scaled to [-1, 1] and read as 7-bit (uint8 0..127 around
# 64; 7 bits keep AVX2's 8-bit multiply-add from saturating its 16-bit pair sums).
INT8_INPUT_SCALE = 1 / 63
INT8_INPUT_ZERO = 64


@lru_cache(maxsize=1)
def _int8_linear_class():
    import torch

    class Int8Linear(torch.nn.Module):
        """A linear layer in int8 for CPU inference: weights int8 with one scale per output
        channel; each input row (token) quantized with its own scale, multiplied in int8 with
        int32 sums by fbgemm, scaled back to fp32. A row's output depends on that row only, and
        the integer sums are exact: the same numbers whatever the batch or the thread count."""

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            weight = linear.weight.detach().float()
            scales = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
            qweight = torch.quantize_per_channel(
                weight, scales, torch.zeros_like(scales, dtype=torch.long), 0, torch.qint8
            )
            self._packed = torch.ops.quantized.linear_prepack(qweight, None)
            self.bias = (
                None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().float(), requires_grad=False)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shape = x.shape
            rows = x.reshape(-1, shape[-1]).float()
            scale = rows.abs().amax(dim=-1, keepdim=True).clamp_min(1e-30)
            out = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(
                rows / scale, INT8_INPUT_SCALE, INT8_INPUT_ZERO, self._packed
            )
            out = out * scale
            if self.bias is not None:
                out = out + self.bias
            return out.reshape(*shape[:-1], self.out_features).to(x.dtype)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, int8"

    return Int8Linear


def quantize_int8(model, skip=lambda name: False):
    """Replace ``model``'s ``nn.Linear`` layers, except those whose name ``skip(name)`` keeps,
    by int8 ones for CPU inference (in place; returns the model).

    Weights become int8 with one scale per output channel; every input row (token) is
    quantized with its own scale (7 bits) and multiplied in int8 with int32 sums (fbgemm):
    about twice the fp32 speed of the layer on an AVX2 or AVX-512 CPU. A row's output depends
    on that row alone and the integer sums are exact, so answers do not depend on the batch
    or on the thread count, as in fp32. (torch's own dynamic quantization shares one scale
    over the whole batch: a batch's largest activation then coarsens every other token, and
    the bundled model's answers degrade visibly.)
    """
    import warnings

    import torch

    cls = _int8_linear_class()
    targets = [
        (name, module) for name, module in model.named_modules() if type(module) is torch.nn.Linear and not skip(name)
    ]
    with warnings.catch_warnings():  # quantized tensor creation warns of a future deprecation (still in torch 2.13)
        warnings.simplefilter("ignore")
        for name, module in targets:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, cls(module))
    return model
