"""Offline availability checks of the built-in backends: nothing here touches the network."""

from __future__ import annotations

import os
from pathlib import Path

from evalsuite.errors import SpecError

from ._registry import ParsedSpec, capabilities, parse_spec


def _hf_cache() -> Path:
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except Exception:  # huggingface_hub missing or too old: use its documented default layout
        home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
        return Path(os.environ.get("HF_HUB_CACHE") or home / "hub")


def hf_weights_present(spec: ParsedSpec) -> str | None:
    """An ``hf:`` model needs its weights in the local Hugging Face cache, or a local folder."""
    ident = spec.target.split("@", 1)[0]
    if Path(ident).expanduser().exists():
        return None
    cache = _hf_cache()
    snapshots = cache / f"models--{ident.replace('/', '--')}" / "snapshots"
    if snapshots.is_dir() and any((snap / "config.json").exists() for snap in snapshots.iterdir()):
        return None
    return (
        f"weights of {ident} are not in the local Hugging Face cache ({cache}); download them with "
        f"`huggingface-cli download {ident}` where the hub is reachable, or pass a local folder as hf:/path"
    )


def openai_credentials(spec: ParsedSpec) -> str | None:
    """An ``openai:`` model without an explicit endpoint needs ``OPENAI_API_KEY``; a named
    OpenAI-compatible endpoint (vLLM, TGI, transformers serve) needs nothing checked offline."""
    if "#" in spec.target:
        return None
    if not os.environ.get("OPENAI_API_KEY"):
        return (
            f"{spec.base} needs OPENAI_API_KEY; set it, or choose an offline model/judge "
            "(e.g. bundled:smollm2-135m-instruct)"
        )
    return None


def unavailable_reason(spec: "str | ParsedSpec") -> str | None:
    """Why the model ``spec`` cannot run on this machine, or None when it can (as far as an offline
    check tells): its adapter folder must exist, then its backend's declared check decides. A spec
    of no registered backend, or a malformed one, is not judged here (loading it names the fix)."""
    try:
        parsed = parse_spec(spec)
    except SpecError:
        return None
    if parsed.adapter and not Path(parsed.adapter).expanduser().is_dir():
        return f"adapter folder {parsed.adapter} does not exist; train it with `evalsuite finetune` or fix the path"
    try:
        caps = capabilities(parsed)
    except SpecError:
        return None
    return caps.availability(parsed)
