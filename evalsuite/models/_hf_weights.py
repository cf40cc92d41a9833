"""Local transformers weights: the arithmetic a model runs with, where its files are, its tokenizer
and prompt text, and the one copy of each base model in memory that every backend using it shares.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any, Sequence

from evalsuite.device import auto_dtype, best_device, cpu_has_bf16, quantize_int8
from evalsuite.errors import SpecError
from evalsuite.records import Prompt, stable_hash

from ._bundled import materialize
from ._digest import dir_digest
from ._registry import Weights


def _require_torch() -> Any:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise SpecError(
            f"local models need torch and transformers ({err.name} is missing): pip install torch transformers"
        ) from None
    return torch


def offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def pick_device(device: str = "auto") -> str:
    _require_torch()
    return best_device() if device == "auto" else device


PRECISIONS = {
    "auto": "auto",
    "fp32": "fp32",
    "float32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "int8": "int8",
}


def pick_precision(dtype: str, device: str) -> str:
    """The arithmetic of a local model: "fp32", "bf16", "fp16" or "int8" (``dtype`` "auto" or one of these).

    "auto" is bf16 on CUDA; on a CPU with native bf16 (avx512_bf16/AMX) it is fp32, and on
    a CPU without (AVX2 only) int8 (see ``evalsuite.device.quantize_int8``).

    Why not bf16 on the CPU: it generates about 2x faster there (a 40-prompt RAG batch: 17 s
    vs 38 s), but its numbers move with the thread count: the bundled judge's scores of 24
    calibration items differed by up to 0.14 between 1 and 2 threads (fp32: bit-identical),
    and a greedy answer can change with the padding of its batch (8 of 40 answers between
    batches of 4 and 8; fp32: 0). An evaluation must give the same numbers serially and
    under pytest-xdist (one thread per worker). int8 sums in integers and quantizes each
    token on its own, so like fp32 its numbers move neither with the thread count nor with
    the batch. Fine-tuning, whose adapter is stored once, uses bf16 where the CPU has it.
    """

    _require_torch()
    if dtype not in PRECISIONS:
        raise SpecError(f"unknown dtype {dtype!r} for a local model: choose auto, fp32, bf16, fp16 or int8")
    precision = PRECISIONS[dtype]
    if precision == "auto":
        if device == "cpu":
            return "fp32" if cpu_has_bf16() else "int8"
        return {"torch.bfloat16": "bf16", "torch.float32": "fp32"}[str(auto_dtype(device))]
    if precision == "int8" and device != "cpu":
        raise SpecError(f"dtype int8 runs on the CPU only, not on {device}: use dtype=auto, bf16 or fp32 there")
    return precision


def pick_dtype(dtype: str, device: str) -> Any:
    """The torch dtype of the weights that stay floating point (fp32 under int8)."""
    precision = pick_precision(dtype, device)
    return auto_dtype(device, "fp32" if precision == "int8" else precision)


def inference_precision(device: str = "cpu", requested: str = "auto") -> str:
    """The arithmetic a local model runs with here: "fp32", "bf16", "fp16" or "int8"."""
    return pick_precision(requested, device)


def resolve_weights(scheme: str, target: str, revision: str | None = None) -> Weights:
    """A local folder for a ``bundled:`` or ``hf:`` model (materialized/downloaded as needed)."""
    if scheme == "bundled":
        path, identity = materialize(target)
        return Weights(str(path), identity)
    if scheme != "hf":
        raise SpecError(f"{scheme}:{target} has no local weights: fine-tuning needs a bundled: or hf: model")
    local = Path(target).expanduser()
    if local.is_dir():
        return Weights(str(local.resolve()), stable_hash({"hf-dir": dir_digest(local)}, length=32))
    if target.startswith((".", "/", "~")):
        raise SpecError(f"model folder {target} not found: check the path after hf:")
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            target,
            revision=revision,
            local_files_only=offline(),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"],
        )
    except Exception as err:  # hub errors have many types; all mean the same to the user
        hint = "download it once online or unset HF_HUB_OFFLINE" if offline() else "check the hub id and your network"
        raise SpecError(f"cannot get hf:{target} ({type(err).__name__}): {hint}") from None
    return Weights(path, stable_hash({"hf": target, "commit": Path(path).name}, length=32))


def adapter_identity(adapter: str) -> tuple[Path, str]:
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise SpecError(
            f"LoRA adapter folder {path} not found (no adapter_config.json): train one with "
            "`evalsuite finetune` or fix the path after +lora:"
        )
    return path.resolve(), dir_digest(path)


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """End-of-sequence ids: the tokenizer's, the model's, and the usual end-of-turn markers."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids.update([gen_eos] if isinstance(gen_eos, int) else gen_eos)
    vocab = tokenizer.get_vocab()
    for marker in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"):
        if marker in vocab:
            ids.add(int(vocab[marker]))
    return sorted(ids)


def render(tokenizer: Any, prompt: Prompt) -> tuple[str, bool]:
    """The text the model sees and whether the tokenizer should add its special tokens."""
    if prompt.chat and getattr(tokenizer, "chat_template", None):
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + prompt.prefill, False
    return "\n\n".join(m.content for m in prompt.messages) + prompt.prefill, True


class SharedBase:
    """One base model in memory, with the LoRA adapters of every backend that uses it loaded onto it
    as peft named adapters; :meth:`using` switches to one adapter (or to none) for a call.

    Under int8 the base layers are quantized after the adapters are wrapped around them (an
    int8 layer cannot be wrapped), so a new adapter rebuilds the model from the stored weights:
    the base's arithmetic is the same, so its answers are too.
    """

    def __init__(self, weights: Weights, device: str, precision: str, dtype: Any) -> None:
        self.weights, self.device, self.precision, self.dtype = weights, device, precision, dtype
        self.tokenizer = load_tokenizer(weights.path)
        self.adapters: dict[str, str] = {}  # name -> adapter folder, in the order they were attached
        self.lock = threading.RLock()
        self.model = self._build({})

    def _build(self, adapters: dict[str, str]) -> Any:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.weights.path, dtype=self.dtype, local_files_only=True)
        if adapters:
            try:
                from peft import PeftModel
            except ImportError:
                raise SpecError("LoRA adapters need peft: pip install peft") from None
            (first, path), *rest = adapters.items()
            model = PeftModel.from_pretrained(model, path, adapter_name=first, is_trainable=False)
            for name, path in rest:
                model.load_adapter(path, adapter_name=name, is_trainable=False)
        if self.precision == "int8":  # the adapters' own small layers stay fp32
            quantize_int8(model, skip=lambda name: "lora_" in name)
        return model.to(self.device).eval()

    def attach(self, path: Path, digest: str) -> str:
        """Load the adapter at ``path`` (content ``digest``) onto the base once; its name."""
        name = "a" + digest[:16]
        with self.lock:
            if name in self.adapters:
                return name
            adapters = {**self.adapters, name: str(path)}
            if self.precision == "int8" or not self.adapters:
                self.model = None  # free the old copy before building the new one
                self.model = self._build(adapters)
            else:
                self.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
                self.model.to(self.device).eval()
            self.adapters = adapters
        return name

    def detach(self, name: str) -> None:
        with self.lock:
            if self.adapters.pop(name, None) is not None and hasattr(self.model, "delete_adapter"):
                if self.adapters:
                    self.model.delete_adapter(name)
                else:  # no adapter left: back to the plain base
                    self.model = None
                    self.model = self._build({})

    @contextlib.contextmanager
    def using(self, name: str | None):
        """Run with adapter ``name`` active, or with every adapter off (``None``: the plain base)."""
        with self.lock:
            if not self.adapters:
                yield
            elif name is None:
                with self.model.disable_adapter():
                    yield
            else:
                self.model.set_adapter(name)
                yield


_BASES: dict[tuple, SharedBase] = {}
_BASES_LOCK = threading.Lock()


def shared_base(weights: Weights, device: str, precision: str, dtype: Any) -> SharedBase:
    """The resident copy of a base model (loaded on first use)."""
    key = (weights.path, weights.identity, device, precision)
    with _BASES_LOCK:
        base = _BASES.get(key)
        if base is None:
            base = _BASES[key] = SharedBase(weights, device, precision, dtype)
        return base


def resident_bases() -> list[tuple]:
    """(weights path, identity, device, arithmetic) of every base model held in this process."""
    with _BASES_LOCK:
        return list(_BASES)


def drop_bases(keep: Sequence[SharedBase]) -> None:
    """Forget every base model but those in ``keep`` (memory is freed once no backend holds them)."""
    import gc

    with _BASES_LOCK:
        for key, held in list(_BASES.items()):
            if not any(held is k for k in keep):
                del _BASES[key]
    gc.collect()
