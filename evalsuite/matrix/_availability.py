"""Offline checks that a model or judge can run here, so a cell skips with the reason instead of failing.

Nothing here touches the network. A model spec is checked by its backend's declared availability
(``evalsuite.models.BackendCapabilities.availability``: an ``hf:`` model needs its weights in the
local Hugging Face cache or a local folder, an ``openai:`` model without an explicit endpoint needs
``OPENAI_API_KEY``), and a ``+lora:`` adapter needs its folder.
"""

from __future__ import annotations

from evalsuite.models import unavailable_reason as model_unavailable_reason

DEEPEVAL = "deepeval:"


def unavailable_reason(spec: str) -> str | None:
    """Why ``spec`` cannot run on this machine, or None when it can (as far as an offline check tells)."""
    if ":" not in spec:  # a judge by name (reference, learned-correctness): nothing to fetch
        return None
    if spec.startswith(DEEPEVAL):  # deepeval's GEval on a model spec: that model must be available
        spec = spec[len(DEEPEVAL) :]
    return model_unavailable_reason(spec)
