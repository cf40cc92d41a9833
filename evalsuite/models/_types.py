"""The records a backend consumes and returns, and the one method it implements."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from evalsuite.errors import EvalsuiteError
from evalsuite.records import Prompt


@dataclass(frozen=True)
class GenerationSettings:
    """How to decode. Every field is part of the generation cache key."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0  # used when temperature > 0
    top_logprobs: int = 0  # 0 = none; N > 0 = the N most likely tokens at each generated step
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise EvalsuiteError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}; pass a positive number")
        if self.temperature < 0:
            raise EvalsuiteError(f"temperature must be >= 0, got {self.temperature}; use 0 for greedy decoding")
        if not 0 < self.top_p <= 1:
            raise EvalsuiteError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_logprobs < 0:
            raise EvalsuiteError(f"top_logprobs must be >= 0, got {self.top_logprobs}")
        object.__setattr__(self, "stop", tuple(self.stop))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Generation:
    """One answer. ``seconds`` is the wall time of its batch divided by the batch size."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached: bool = False
    # per generated token: ((token_text, logprob), ...) most likely first; None when not requested
    # or when the server returned none (then ``logprobs_missing`` is True)
    top_logprobs: tuple[tuple[tuple[str, float], ...], ...] | None = None
    logprobs_missing: bool = False

    def __post_init__(self) -> None:
        # a served model's JSON may carry lone surrogates ("\ud800"), which no UTF-8 file can hold:
        # each becomes U+FFFD here, at the one place every backend's answer passes
        try:
            self.text.encode("utf-8")
        except UnicodeEncodeError:
            object.__setattr__(self, "text", _LONE_SURROGATE.sub("\ufffd", self.text))


class TransientError(EvalsuiteError):
    """A failure worth retrying (rate limit, server error, timeout); raised by backends, retried by the wrapper."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServingError(EvalsuiteError):
    """A request to a model server's management endpoints failed. ``reason`` says why:
    ``unreachable`` (no answer at the address), ``no-adapter-endpoint`` (the server does not
    load adapters at run time), ``refused`` (it answered with an error)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Backend(Protocol):
    """What a backend provides. It implements one method, :meth:`generate_batch`.

    ``batch_size`` is how many prompts one call takes, ``identity`` a stable hash of everything
    that changes outputs. What else the wrapper uses is what the backend's
    :class:`~evalsuite.models.BackendCapabilities` declare: ``concurrency`` (how many calls may
    run at once) with ``concurrent``, ``tokenizer`` with ``tokenizer``, ``sort_key(prompt)`` (orders
    prompts so that a batch holds prompts of similar length) with ``length_sorting``,
    ``batch_invariant`` with ``batch_dependent``, ``generate_seeded`` with ``seeded_sampling``.
    """

    identity: str
    batch_size: int
    concurrency: int
    tokenizer: Any

    def generate_batch(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Generation]: ...
