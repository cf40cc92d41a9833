"""The wrapper every backend runs inside: cache, batching, concurrency, retries, token accounting."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

from evalsuite.errors import EvalsuiteError
from evalsuite.records import Prompt, stable_hash
from evalsuite.redaction import scrub_text

from ._cache import GenerationCache
from ._registry import DEFAULT_CAPABILITIES, BackendCapabilities, parse_spec
from ._registry import capabilities as declared_capabilities
from ._types import Generation, GenerationSettings, TransientError


class Model:
    """A loaded model. Build it with :func:`evalsuite.models.load_model`.

    What it uses of ``backend`` beyond ``generate_batch``, ``batch_size`` and ``identity`` is what
    ``capabilities`` declares (default: those its spec's backend registered with).
    """

    def __init__(
        self,
        spec: str,
        backend: Any,
        *,
        capabilities: BackendCapabilities | None = None,
        cache: bool = True,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.capabilities = capabilities if capabilities is not None else _capabilities_of(spec)
        self.retry = RetryPolicy(max_retries, backoff, max_backoff)
        self._cache = GenerationCache() if cache else None
        self._stats_lock = threading.Lock()
        self._stats = {"model_calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "retries": 0}

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer if self.capabilities.tokenizer else None

    @property
    def stats(self) -> dict[str, int]:
        """Prompts sent to the backend, cache hits, and the tokens of the answers the backend produced."""
        with self._stats_lock:
            return dict(self._stats)

    def __repr__(self) -> str:
        return f"Model({scrub_text(self.spec)!r}, identity={self.identity!r})"

    def cache_key(self, prompt: Prompt, settings: GenerationSettings, **context: Any) -> str:
        """``context``: whatever else changes the answer (the batch's prompts, the group of seeds)."""
        return stable_hash(
            {"model": self.identity, "prompt": prompt.key(), "settings": asdict(settings), **context}, length=32
        )

    def _batches(self, prompts: Sequence[Prompt]) -> tuple[list[list[int]], list[str]] | None:
        """Fixed batches over the whole list for a backend whose answers depend on their batch.

        In bf16 a prompt's answer changes with the padding of the batch it is decoded in, so
        the batches are made from every prompt of the call (sorted by length), whatever is
        cached, and each key names its batch: the same call gives the same answers on a rerun
        or a resumed run. None when the backend's answers do not depend on the batch.
        """
        if self.backend.batch_size <= 1 or not self.capabilities.batch_dependent or self.backend.batch_invariant:
            return None
        batches = self._in_batches(prompts, range(len(prompts)))
        keys = [""] * len(prompts)
        prompt_keys = [p.key() for p in prompts]
        for batch in batches:
            batch_key = stable_hash({"prompts": [prompt_keys[i] for i in batch]}, length=16)
            for i in batch:
                keys[i] = batch_key
        return batches, keys

    def generate(
        self, prompts: Sequence[Prompt], settings: GenerationSettings | None = None, progress: bool = False
    ) -> list[Generation]:
        """Answer ``prompts`` (same order); cached answers come back with ``cached=True``."""
        settings = settings or GenerationSettings()
        results: list[Generation | None] = [None] * len(prompts)
        fixed = self._batches(prompts)
        if fixed is None:
            keys = [self.cache_key(p, settings) for p in prompts]
        else:
            keys = [self.cache_key(p, settings, batch=b) for p, b in zip(prompts, fixed[1])]
        todo = self._lookup(keys, results)

        if fixed is None:
            batches = self._in_batches(prompts, todo)
        else:  # a batch with anything missing runs whole, as it ran the first time
            missing = set(todo)
            batches = [b for b in fixed[0] if missing.intersection(b)]
        with self._stats_lock:
            self._stats["cache_hits"] += len(prompts) - sum(len(b) for b in batches)

        bar = None
        if progress and batches:
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(len(b) for b in batches), desc=f"generate {scrub_text(self.spec)}", unit="prompt")

        def run(batch: list[int]) -> None:
            chosen = [prompts[i] for i in batch]
            out = self._call_with_retries(lambda: self.backend.generate_batch(chosen, settings), len(batch))
            self._record(batch, out, [prompts[i] for i in batch], [keys[i] for i in batch], results)
            if bar is not None:
                bar.update(len(batch))

        try:
            workers = max(1, int(self.backend.concurrency)) if self.capabilities.concurrent else 1
            if workers == 1 or len(batches) <= 1:
                for batch in batches:
                    run(batch)
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    for future in [pool.submit(run, b) for b in batches]:
                        future.result()
        finally:
            if bar is not None:
                bar.close()
        return results  # type: ignore[return-value]

    def _in_batches(self, prompts: Sequence[Prompt], positions: Sequence[int]) -> list[list[int]]:
        """``positions`` sorted by prompt length (when the backend can tell) in batches of its size."""
        order = list(positions)
        if self.capabilities.length_sorting:
            lengths = {i: self.backend.sort_key(prompts[i]) for i in order}
            order.sort(key=lambda i: lengths[i])
        size = max(1, int(self.backend.batch_size))
        return [order[s : s + size] for s in range(0, len(order), size)]

    def _lookup(self, keys: Sequence[str], results: list) -> list[int]:
        """Fill ``results`` from the cache; the positions still to compute."""
        todo = []
        for i, key in enumerate(keys):
            hit = self._cache.get(key) if self._cache else None
            if hit is not None:
                results[i] = _from_json(hit, cached=True)
            else:
                todo.append(i)
        return todo

    def _record(
        self,
        slots: Sequence[int],
        out: Sequence[Generation],
        prompts: Sequence[Prompt],
        keys: Sequence[str],
        results: list,
    ) -> None:
        for slot, prompt, key, gen in zip(slots, prompts, keys, out):
            results[slot] = gen
            if self._cache is not None:
                self._cache.put(key, self.identity, prompt.key(), _to_json(gen))
        with self._stats_lock:
            self._stats["model_calls"] += len(out)
            self._stats["prompt_tokens"] += sum(g.prompt_tokens for g in out)
            self._stats["completion_tokens"] += sum(g.completion_tokens for g in out)

    def sample(self, prompt: Prompt, settings: GenerationSettings, seeds: Sequence[int]) -> list[Generation]:
        """One sampled answer of ``prompt`` per seed (same order); ``settings.seed`` is ignored.

        A backend that declares ``seeded_sampling`` (``generate_seeded``) reads the prompt once and
        draws every sample from it, each from its own generator; the answers are keyed by the whole group of seeds,
        which is what they were drawn with. Other backends get one call per seed.
        """
        if settings.temperature <= 0:
            raise EvalsuiteError("sample() needs temperature > 0; greedy decoding gives one answer, use generate()")
        seeds = tuple(int(s) for s in seeds)
        if len(set(seeds)) != len(seeds):
            raise EvalsuiteError(f"sample() got repeated seeds {list(seeds)}; give each sample its own seed")
        grouped = self.capabilities.seeded_sampling
        keys = [
            self.cache_key(prompt, replace(settings, seed=s), **({"seeds": list(seeds)} if grouped else {}))
            for s in seeds
        ]
        results: list[Generation | None] = [None] * len(seeds)
        todo = self._lookup(keys, results)
        if grouped and todo:  # drawn together: a partial group is drawn again whole
            todo = list(range(len(seeds)))
        with self._stats_lock:
            self._stats["cache_hits"] += len(seeds) - len(todo)
        if grouped and todo:
            out = self._call_with_retries(lambda: self.backend.generate_seeded(prompt, settings, seeds), len(seeds))
            self._record(todo, out, [prompt] * len(todo), [keys[i] for i in todo], results)
        else:
            for i in todo:
                one = replace(settings, seed=seeds[i])
                out = self._call_with_retries(lambda: self.backend.generate_batch([prompt], one), 1)
                self._record([i], out, [prompt], [keys[i]], results)
        return results  # type: ignore[return-value]

    def _call_with_retries(self, call: Callable[[], list[Generation]], expected: int) -> list[Generation]:
        return self.retry.call(call, expected, self.spec, on_retry=self._count_retry)

    def _count_retry(self) -> None:
        with self._stats_lock:
            self._stats["retries"] += 1


@dataclass(frozen=True)
class RetryPolicy:
    """How a backend call that fails transiently is retried: exponential backoff with jitter."""

    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0

    def call(
        self,
        call: Callable[[], list[Generation]],
        expected: int,
        spec: str,
        on_retry: Callable[[], None] = lambda: None,
    ) -> list[Generation]:
        """``call()`` (one backend call returning ``expected`` answers), retried on transient errors."""
        attempt = 0
        while True:
            try:
                out = call()
            except TransientError as err:
                if attempt >= self.max_retries:
                    raise EvalsuiteError(
                        f"{scrub_text(spec)}: giving up after {attempt + 1} attempts: {err}; "
                        "retry later, lower the concurrency or raise max_retries"
                    ) from err
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay = random.uniform(delay / 2, delay)  # jitter, so parallel callers do not retry in step
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, self.max_backoff))
                on_retry()
                attempt += 1
                time.sleep(delay)
                continue
            if len(out) != expected:
                raise EvalsuiteError(f"{scrub_text(spec)}: backend returned {len(out)} answers for {expected} prompts")
            return out


def _capabilities_of(spec: str) -> BackendCapabilities:
    """The capabilities registered for ``spec``'s backend; the defaults for a spec of none."""
    try:
        return declared_capabilities(parse_spec(spec))
    except EvalsuiteError:
        return DEFAULT_CAPABILITIES


def _to_json(gen: Generation) -> dict[str, Any]:
    data = asdict(gen)
    data.pop("cached")
    return data


def _from_json(data: dict[str, Any], cached: bool) -> Generation:
    tl = data.get("top_logprobs")
    if tl is not None:
        tl = tuple(tuple((str(t), float(lp)) for t, lp in step) for step in tl)
    return Generation(
        text=data["text"],
        prompt_tokens=int(data["prompt_tokens"]),
        completion_tokens=int(data["completion_tokens"]),
        seconds=float(data["seconds"]),
        cached=cached,
        top_logprobs=tl,
        logprobs_missing=bool(data.get("logprobs_missing", False)),
    )
