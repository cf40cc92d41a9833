"""Offline checks that a model or judge can run here, so a cell skips with the reason instead of failing.

Nothing here touches the network: an ``hf:`` model needs its weights in the local Hugging
Face cache (or a local folder), an ``openai:`` model without an explicit endpoint needs
``OPENAI_API_KEY``, and a ``+lora:`` adapter needs its folder.
"""
from __future__ import annotations

import os
from pathlib import Path


def _hf_cache() -> Path:
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except Exception:  # huggingface_hub missing or too old: use its documented default layout
        home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
        return Path(os.environ.get("HF_HUB_CACHE") or home / "hub")


def unavailable_reason(spec: str) -> str | None:
    """Why ``spec`` cannot run on this machine, or None when it can (as far as an offline check tells)."""
    if ":" not in spec:  # a judge by name (reference, learned-correctness): nothing to fetch
        return None
    if spec.startswith("deepeval:"):  # deepeval's GEval on a model spec: that model must be available
        spec = spec[len("deepeval:"):]
    base, _, adapter = spec.partition("+lora:")
    if adapter and not Path(adapter).expanduser().is_dir():
        return f"adapter folder {adapter} does not exist; train it with `evalsuite finetune` or fix the path"
    if base.startswith("openai:"):
        if "#" in base:  # an explicit OpenAI-compatible endpoint (vLLM, TGI, transformers serve)
            return None
        if not os.environ.get("OPENAI_API_KEY"):
            return f"{base} needs OPENAI_API_KEY; set it, or choose an offline model/judge (e.g. bundled:smollm2-135m-instruct)"
        return None
    if base.startswith("hf:"):
        ident = base[3:].split("@", 1)[0]
        if Path(ident).expanduser().exists():
            return None
        cache = _hf_cache()
        snapshots = cache / f"models--{ident.replace('/', '--')}" / "snapshots"
        if snapshots.is_dir() and any((snap / "config.json").exists() for snap in snapshots.iterdir()):
            return None
        return (f"weights of {ident} are not in the local Hugging Face cache ({cache}); download them with "
                f"`huggingface-cli download {ident}` where the hub is reachable, or pass a local folder as hf:/path")
    return None
