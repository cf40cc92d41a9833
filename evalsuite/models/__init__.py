"""Model specs, backends and the wrapper that adds caching, retries and token accounting.

    model = load_model("bundled:smollm2-135m-instruct")
    answers = model.generate(prompts, GenerationSettings(max_new_tokens=64))

Specs: ``bundled:smollm2-135m-instruct`` (default), ``bundled:gemma3-270m``, ``hf:<hub id or path>``,
``<bundled or hf spec>+lora:<adapter dir>``, ``openai:<model>``, ``openai:<base_url>#<model>``.
A backend registers its scheme with :func:`register_backend` and declares what it can do in a
:class:`BackendCapabilities` (the built-ins below do the same); :func:`capabilities` looks it up.
A spec is parsed once into a :class:`ParsedSpec` (base and adapter); :func:`with_adapter` writes one.

What fine-tuning, planning and judging use of a local model: :func:`resolve_weights` (its
transformers folder), :func:`load_tokenizer`, :func:`render_prompt` (the text it reads),
:func:`inference_precision`, :func:`adapter_digest`; :func:`unavailable_reason` checks a spec offline.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from evalsuite.device import best_device
from evalsuite.errors import SpecError
from evalsuite.records import Prompt
from evalsuite.storage import cache_dir

from . import _bundled, _hf_weights
from ._available import hf_weights_present, openai_credentials, unavailable_reason
from ._model import Model
from ._registry import (
    BackendCapabilities,
    ParsedSpec,
    Weights,
    always_available,
    backends,
    build_backend,
    capabilities,
    is_backend,
    parse_spec,
    register_backend,
    with_adapter,
)
from ._types import Backend, Generation, GenerationSettings, ServingError, TransientError

__all__ = [
    "DEFAULT_MODEL",
    "Backend",
    "BackendCapabilities",
    "Generation",
    "GenerationSettings",
    "Model",
    "ParsedSpec",
    "ServingError",
    "TransientError",
    "Weights",
    "adapter_digest",
    "always_available",
    "backends",
    "base_identity",
    "capabilities",
    "model_config",
    "clear_loaded",
    "inference_precision",
    "is_backend",
    "load_tokenizer",
    "loaded_specs",
    "local_files",
    "release",
    "render_prompt",
    "resident_bases",
    "resolve_weights",
    "load_model",
    "parse_spec",
    "register_backend",
    "unavailable_reason",
    "with_adapter",
]

DEFAULT_MODEL = "bundled:smollm2-135m-instruct"

_WRAPPER_OPTIONS = ("cache", "max_retries", "backoff", "max_backoff")
_LOADED: dict[str, Any] = {}
_LOADED_LOCK = threading.Lock()


def load_model(spec: str = DEFAULT_MODEL, **options: Any) -> Model:
    """Load ``spec``. Wrapper options: cache, max_retries, backoff, max_backoff; the rest go to the backend.

    A backend loaded once in this process with the same spec and options is reused.
    """
    wrapper = {k: options.pop(k) for k in _WRAPPER_OPTIONS if k in options}
    parsed = parse_spec(spec)  # a malformed spec fails before any import
    key = json.dumps([spec, options], sort_keys=True, default=str)
    with _LOADED_LOCK:
        backend = _LOADED.get(key)
        if backend is None:
            backend = _LOADED[key] = build_backend(spec, options)
    return Model(spec, backend, capabilities=capabilities(parsed), **wrapper)


def base_identity(spec: str) -> str:
    """The identity of a ``bundled:`` or ``hf:`` model's weights (of a fine-tunable backend's), without
    loading or materializing them."""
    parsed = parse_spec(spec)
    if parsed.scheme == "bundled":
        return _bundled.identity(parsed.target)
    return resolve_weights(parsed).identity


def resolve_weights(spec: str | ParsedSpec, revision: str | None = None) -> Weights:
    """The local transformers folder of a fine-tunable model's base (``bundled:`` or ``hf:``, or a backend
    that declares ``fine_tunable``), materialized or downloaded as needed; any other is a SpecError."""
    parsed = parse_spec(spec)
    caps = capabilities(parsed)
    if caps.weights is None:
        raise SpecError(
            f"{parsed.base} has no local weights: fine-tuning needs a bundled: or hf: model "
            "(or a backend whose capabilities declare fine_tunable and its weights)"
        )
    return caps.weights(parsed.target, revision)


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer in the transformers folder ``path`` (see :func:`resolve_weights`), padding with its
    end-of-sequence token when it has no padding token."""
    return _hf_weights.load_tokenizer(str(path))


def render_prompt(tokenizer: Any, prompt: Prompt) -> tuple[str, bool]:
    """The text a local model with ``tokenizer`` reads for ``prompt`` (its chat template when the prompt
    is a chat and the tokenizer has one), and whether the tokenizer should add its special tokens."""
    return _hf_weights.render(tokenizer, prompt)


def adapter_digest(path: str) -> str:
    """The content digest of the LoRA adapter folder at ``path`` (its weight and config files), as a
    local model's identity holds it; a folder without ``adapter_config.json`` is a SpecError."""
    return _hf_weights.adapter_identity(path)[1]


def inference_precision(device: str | None = None, requested: str = "auto") -> str:
    """The arithmetic a local model runs with on ``device`` (default: the best one here): fp32, bf16, fp16 or int8."""
    return _hf_weights.inference_precision(device or best_device(), requested)


def model_config(spec: str) -> dict | None:
    """The ``config.json`` of a ``bundled:`` or ``hf:`` model (an adapter's base) as a dict, read
    without loading weights: from its local folder, or for a bundled model not materialized yet
    from its GGUF file's header. None when neither is here (an API model, weights not downloaded)."""
    folder = local_files(spec)
    if folder is not None:
        try:
            return json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    parsed = parse_spec(spec)
    if parsed.scheme != "bundled":
        return None
    try:
        from transformers import AutoConfig

        gguf, _ = _bundled.gguf_file(parsed.target)
        return AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name).to_dict()
    except Exception:  # the model's package is not installed, or its file unreadable: nothing to read
        return None


def local_files(spec: str | ParsedSpec) -> Path | None:
    """The local folder holding ``config.json`` and the tokenizer of a ``bundled:`` or ``hf:`` model
    (an adapter's base), found without loading, materializing or downloading anything; None when
    there is none here (an API model, weights not downloaded, a bundled model not yet materialized)."""
    parsed = parse_spec(spec)
    if parsed.scheme == "bundled":
        try:
            folder = cache_dir("models") / f"{parsed.target}-{_bundled.identity(parsed.target)[:16]}"
        except Exception:  # the model's package is not installed
            return None
        return folder if (folder / "config.json").is_file() else None
    if parsed.scheme != "hf":
        return None
    local = Path(parsed.target).expanduser()
    if local.is_dir():
        return local if (local / "config.json").is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(parsed.target, "config.json")
    except Exception:  # a malformed hub id: nothing cached under it
        return None
    return Path(found).parent if isinstance(found, str) else None


def clear_loaded() -> None:
    """Forget the backends this process loaded (frees their memory once unreferenced)."""
    with _LOADED_LOCK:
        _LOADED.clear()
    _hf_weights.drop_bases(keep=())


def release(spec: str) -> None:
    """Free what ``spec`` holds in this process: its adapter comes off the shared base, and a base
    model no loaded backend uses any more is dropped (``load_model`` loads it again when asked)."""
    with _LOADED_LOCK:
        for key in [k for k in _LOADED if json.loads(k)[0] == spec]:
            backend = _LOADED.pop(key)
            if hasattr(backend, "release"):
                backend.release()
        in_use = [b.base for b in _LOADED.values() if hasattr(b, "base")]
    _hf_weights.drop_bases(keep=in_use)


def loaded_specs() -> list[str]:
    """The model specs with a backend loaded in this process."""
    with _LOADED_LOCK:
        return sorted({json.loads(k)[0] for k in _LOADED})


def resident_bases() -> list[tuple]:
    """Every base model whose weights this process holds: (weights path, identity, device, arithmetic)."""
    return _hf_weights.resident_bases()


def _hf_factory(scheme: str):
    def factory(target: str, adapter: str | None, options: dict[str, Any]) -> Any:
        from ._hf import make_backend  # deferred: the local backend's code loads with the first local model

        return make_backend(scheme)(target, adapter, options)

    return factory


def _local_weights(scheme: str):
    def weights(target: str, revision: str | None) -> Weights:
        return _hf_weights.resolve_weights(scheme, target, revision)

    return weights


def _openai_factory(target: str, adapter: str | None, options: dict[str, Any]) -> Any:
    from ._openai import OpenAIBackend  # deferred: the API backend's code loads with the first API model

    return OpenAIBackend.from_target(target, **options)


def _local_capabilities(scheme: str, availability: Any) -> BackendCapabilities:
    """A transformers model in this process: LoRA adapters, fine-tuning, exact logprobs over the whole
    vocabulary, prompts sorted by length, one reading of a prompt for every seed; in bf16 an answer
    depends on its batch."""
    return BackendCapabilities(
        local=True,
        adapters=True,
        fine_tunable=True,
        logprobs=True,
        top_logprobs=None,
        availability=availability,
        weights=_local_weights(scheme),
        tokenizer=True,
        length_sorting=True,
        batch_dependent=True,
        seeded_sampling=True,
    )


register_backend("bundled", _hf_factory("bundled"), capabilities=_local_capabilities("bundled", always_available))
register_backend("hf", _hf_factory("hf"), capabilities=_local_capabilities("hf", hf_weights_present))
# OpenAI-compatible servers return at most 20 alternatives per token
register_backend(
    "openai",
    _openai_factory,
    capabilities=BackendCapabilities(logprobs=True, top_logprobs=20, availability=openai_credentials, concurrent=True),
)
