"""The wrapper every backend runs inside: cache, batching, concurrency, retries, token accounting."""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, Sequence

from evalsuite.errors import EvalsuiteError
from evalsuite.records import Prompt, stable_hash

from ._cache import GenerationCache
from ._types import Generation, GenerationSettings, TransientError


class Model:
    """A loaded model. Build it with :func:`evalsuite.models.load_model`."""

    def __init__(
        self,
        spec: str,
        backend: Any,
        *,
        cache: bool = True,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._cache = GenerationCache() if cache else None
        self._stats_lock = threading.Lock()
        self._stats = {"model_calls": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "retries": 0}

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def tokenizer(self) -> Any:
        return getattr(self.backend, "tokenizer", None)

    @property
    def stats(self) -> dict[str, int]:
        """Prompts sent to the backend, cache hits, and the tokens of the answers the backend produced."""
        with self._stats_lock:
            return dict(self._stats)

    def __repr__(self) -> str:
        return f"Model({self.spec!r}, identity={self.identity!r})"

    def cache_key(self, prompt: Prompt, settings: GenerationSettings) -> str:
        return stable_hash({"model": self.identity, "prompt": prompt.key(), "settings": asdict(settings)}, length=32)

    def generate(
        self, prompts: Sequence[Prompt], settings: GenerationSettings | None = None, progress: bool = False
    ) -> list[Generation]:
        """Answer ``prompts`` (same order); cached answers come back with ``cached=True``."""
        settings = settings or GenerationSettings()
        results: list[Generation | None] = [None] * len(prompts)
        keys = [self.cache_key(p, settings) for p in prompts]
        todo: list[int] = []
        for i, key in enumerate(keys):
            hit = self._cache.get(key) if self._cache else None
            if hit is not None:
                results[i] = _from_json(hit, cached=True)
            else:
                todo.append(i)
        with self._stats_lock:
            self._stats["cache_hits"] += len(prompts) - len(todo)

        sort_key = getattr(self.backend, "sort_key", None)
        if sort_key is not None:
            lengths = {i: sort_key(prompts[i]) for i in todo}
            todo.sort(key=lambda i: lengths[i])
        size = max(1, int(self.backend.batch_size))
        batches = [todo[s : s + size] for s in range(0, len(todo), size)]

        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"generate {self.spec}", unit="prompt")

        def run(batch: list[int]) -> None:
            out = self._call_with_retries([prompts[i] for i in batch], settings)
            for i, gen in zip(batch, out):
                results[i] = gen
                if self._cache is not None:
                    self._cache.put(keys[i], self.identity, prompts[i].key(), _to_json(gen))
            with self._stats_lock:
                self._stats["model_calls"] += len(batch)
                self._stats["prompt_tokens"] += sum(g.prompt_tokens for g in out)
                self._stats["completion_tokens"] += sum(g.completion_tokens for g in out)
            if bar is not None:
                bar.update(len(batch))

        try:
            workers = max(1, int(getattr(self.backend, "concurrency", 1)))
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

    def _call_with_retries(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Generation]:
        attempt = 0
        while True:
            try:
                out = self.backend.generate_batch(prompts, settings)
            except TransientError as err:
                if attempt >= self.max_retries:
                    raise EvalsuiteError(
                        f"{self.spec}: giving up after {attempt + 1} attempts: {err}; "
                        "retry later, lower the concurrency or raise max_retries"
                    ) from err
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay = random.uniform(delay / 2, delay)  # jitter, so parallel callers do not retry in step
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, self.max_backoff))
                with self._stats_lock:
                    self._stats["retries"] += 1
                attempt += 1
                time.sleep(delay)
                continue
            if len(out) != len(prompts):
                raise EvalsuiteError(f"{self.spec}: backend returned {len(out)} answers for {len(prompts)} prompts")
            return out


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
