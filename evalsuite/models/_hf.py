"""Local transformers models (``hf:`` and ``bundled:`` specs), optionally with a LoRA adapter.

Generation is left-padded and batched; the wrapper sorts prompts by length first so a
batch wastes little padding. Greedy unless ``temperature > 0`` (then seeded sampling).

A call with a single prompt (a judge scores one prompt at a time) reads the prompt in
blocks of ``prefix_block`` tokens and keeps the key/value cache after each block, keyed by
the tokens so far: prompts that start alike (a judge's criterion, steps and examples, then
the item) reuse the blocks they share. Every single prompt is read block by block, whether
its blocks come from the store or not, so its answer does not depend on what ran before.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from array import array
from collections import OrderedDict
from functools import lru_cache
from typing import Any, Sequence

from evalsuite.device import INT8_ARITHMETIC
from evalsuite.errors import SpecError
from evalsuite.records import Prompt, stable_hash

from ._hf_weights import (
    _require_torch,
    adapter_identity,
    pick_device,
    pick_dtype,
    pick_precision,
    render,
    resolve_weights,
    shared_base,
    stop_token_ids,
)
from ._registry import Weights
from ._types import Generation, GenerationSettings


class PromptReader:
    """How :class:`HFBackend` reads prompts: their token ids, and the key/value caches of the blocks
    and shared prefixes read before (kept within ``MAX_STORED_BYTES``). It uses the backend's
    ``model``, ``tokenizer``, ``device``, ``prefix_block``, ``shared_prefix`` and ``_sliding``.
    """

    # A prefix shorter than this is read with the rest of its prompt.
    MIN_SHARED_PREFIX = 16

    def _encode(self, prompt: Prompt) -> tuple[list[int], int]:
        key = prompt.key()
        hit = self._encoded.get(key)
        if hit is None:
            text, special = render(self.tokenizer, prompt)
            last = prompt.messages[-1].content if prompt.messages else ""
            start = text.rfind(last) if last else -1
            if start > 0 and getattr(self.tokenizer, "is_fast", False):
                enc = self.tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
                ids = enc["input_ids"]
                shared = next((i for i, (_, end) in enumerate(enc["offset_mapping"]) if end > start), len(ids))
                shared = shared if self.MIN_SHARED_PREFIX <= shared < len(ids) else 0
            else:
                ids, shared = self.tokenizer(text, add_special_tokens=special)["input_ids"], 0
            if len(self._encoded) > 4096:
                self._encoded.clear()
            hit = self._encoded[key] = (ids, shared)
        return hit

    def encode(self, prompt: Prompt) -> list[int]:
        return self._encode(prompt)[0]

    def shared_prefix_length(self, prompt: Prompt) -> int:
        """Tokens of ``prompt`` before its last message's content (0 when fewer than MIN_SHARED_PREFIX)."""
        return self._encode(prompt)[1]

    def sort_key(self, prompt: Prompt) -> int:
        return len(self.encode(prompt))

    # The stored block caches are bounded by their size: 20-25 judge prompts of the bundled
    # model in fp32, one or two of a 7B model.
    MAX_STORED_BYTES = 1 << 30

    @staticmethod
    def _tokens_key(ids: Sequence[int]) -> str:
        return hashlib.sha1(array("q", ids).tobytes()).hexdigest()

    def _keep(self, key: str, cache: Any) -> None:
        """Store ``cache`` (not used by the caller afterwards) under ``key``, within the byte budget."""
        self._blocks[key] = (cache, _cache_bytes(cache))
        self._stored_bytes += self._blocks[key][1]
        while self._stored_bytes > self.MAX_STORED_BYTES and len(self._blocks) > 1:
            self._stored_bytes -= self._blocks.popitem(last=False)[1][1]

    def _read_prompt(self, ids: list[int]) -> tuple[Any, int]:
        """The key/value cache of ``ids[:n]``, n the largest multiple of ``prefix_block`` below
        ``len(ids)``, read block by block; blocks read before are copied from the store."""
        import copy

        from transformers import DynamicCache

        size = self.prefix_block
        blocks = (len(ids) - 1) // size
        keys = [self._tokens_key(ids[: k * size]) for k in range(1, blocks + 1)]
        done, cache = 0, None
        for k in range(blocks, 0, -1):
            stored = self._blocks.get(keys[k - 1])
            if stored is not None:
                self._blocks.move_to_end(keys[k - 1])
                done, cache = k, copy.deepcopy(stored[0])
                break
        if cache is None:
            cache = DynamicCache(config=self.model.config)
        torch = self._torch
        with torch.inference_mode():
            for k in range(done, blocks):
                chunk = torch.tensor([ids[k * size : (k + 1) * size]], device=self.device)
                self.model(input_ids=chunk, cache=cache, use_cache=True, logits_to_keep=1)
                self._keep(keys[k], copy.deepcopy(cache))
        return cache, blocks * size

    def _prefix_cache(self, ids: list[int]) -> Any:
        """The key/value cache of ``ids`` read alone in one pass (from the store when read before); read-only."""
        from transformers import DynamicCache

        key = self._tokens_key(ids)
        stored = self._blocks.get(key)
        if stored is not None:
            self._blocks.move_to_end(key)
            return stored[0]
        cache = DynamicCache(config=self.model.config)
        with self._torch.inference_mode():
            self.model(
                input_ids=self._torch.tensor([ids], device=self.device), cache=cache, use_cache=True, logits_to_keep=1
            )
        self._keep(key, cache)
        return cache

    def _read_alone(self, ids: list[int], shared: int) -> Any:
        """The key/value cache of ``ids[:-1]`` read on its own: the shared prefix ``ids[:shared]``
        from the store (read alone once), the rest in one pass on a copy of it."""
        import copy

        from transformers import DynamicCache

        if shared:
            cache = copy.deepcopy(self._prefix_cache(ids[:shared]))
        else:
            cache = DynamicCache(config=self.model.config)
        rest = ids[shared:-1]
        if rest:
            with self._torch.inference_mode():
                self.model(
                    input_ids=self._torch.tensor([rest], device=self.device),
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
        return cache

    def _reads_alone(self, encoded: list[list[int]]) -> bool:
        """Whether a batch's prompts are read one by one (a single prompt is read in blocks)."""
        return self.shared_prefix and len(encoded) > 1 and not self._sliding and min(len(ids) for ids in encoded) > 1

    def _batch_inputs(self, prompts: Sequence[Prompt], encoded: list[list[int]]) -> tuple[Any, Any, Any]:
        """(input ids, attention mask, key/value cache or None) of a batch, left-padded so that
        every prompt ends where generation starts.

        With ``shared_prefix`` each prompt but its last token is read on its own (no padding
        computed, the causal mask alone; its instructions' cache from the store) and the
        caches are stacked, padded on the left; decoding then runs the batch together from
        the last prompt token. A prompt's cache is so the same whatever batch it is in.
        """
        torch = self._torch
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        if not self._reads_alone(encoded):
            return input_ids, attention, None
        caches = [self._read_alone(ids, self.shared_prefix_length(p)) for p, ids in zip(prompts, encoded)]
        from transformers import DynamicCache

        stacked = DynamicCache(config=self.model.config)
        for index, layer in enumerate(stacked.layers):
            keys, values = [], []
            for ids, cache in zip(encoded, caches):
                missing = width - len(ids)  # this row's padding (the cache holds all its tokens but the last)
                keys.append(torch.nn.functional.pad(cache.layers[index].keys, (0, 0, missing, 0)))
                values.append(torch.nn.functional.pad(cache.layers[index].values, (0, 0, missing, 0)))
            layer.update(torch.cat(keys), torch.cat(values))
        return input_ids, attention, stacked


class HFBackend(PromptReader):
    """A transformers causal LM on one device. Not thread-safe: concurrency 1.

    ``dtype``: see :func:`pick_precision`. ``prefix_block``: a single prompt is read in blocks
    of this many tokens whose caches later prompts reuse (0: one pass). ``shared_prefix``: in
    a batch, each prompt is read on its own (no padding computed) and the part before its
    last message (a RAG prompt's system turn and instructions) is read once per distinct
    text and its cache reused by every prompt that starts with it; the batch decodes together.
    """

    concurrency = 1

    def __init__(
        self,
        weights: Weights,
        adapter: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        prefix_block: int = 64,
        shared_prefix: bool = True,
    ) -> None:
        torch = _require_torch()
        from transformers import DynamicCache

        self.device = pick_device(device)
        self.precision = pick_precision(dtype, self.device)
        self.dtype = pick_dtype(dtype, self.device)
        self.batch_size = int(batch_size)
        self.prefix_block = int(prefix_block)
        if self.prefix_block < 0:
            raise SpecError(f"prefix_block must be >= 0 (0 = read each prompt in one pass), got {prefix_block}")
        self.shared_prefix = bool(shared_prefix)
        self.path = weights.path
        # one copy of the base weights per (weights, device, arithmetic) in this process; an adapter is
        # loaded onto it as a named peft adapter and switched on for this backend's calls only
        self.base = shared_base(weights, self.device, self.precision, self.dtype)
        self.tokenizer = self.base.tokenizer
        identity = {"base": weights.identity}
        self.adapter_name = None
        if adapter is not None:
            adapter_path, adapter_hash = adapter_identity(adapter)
            self.adapter_name = self.base.attach(adapter_path, adapter_hash)
            identity["lora"] = adapter_hash
        model = self.base.model
        # the arithmetic is part of the identity: bf16, int8 and fp32 give different greedy answers
        identity["dtype"] = INT8_ARITHMETIC if self.precision == "int8" else str(self.dtype).replace("torch.", "")
        if self.device == "cpu":  # see _attention
            identity["attention"] = "math"
        if self.prefix_block:  # reading a prompt in blocks rounds differently from one pass
            identity["prefix_block"] = self.prefix_block
        # a cache that drops old tokens (sliding-window layers) cannot be stacked row by row
        self._sliding = any(getattr(layer, "is_sliding", False) for layer in DynamicCache(config=model.config).layers)
        if self.shared_prefix and not self._sliding:  # reading a batch's prompts alone rounds differently
            identity["shared_prefix"] = "before-last-message, prompts read alone"
        self.identity = stable_hash(identity, length=32)
        self.eos_ids = stop_token_ids(self.tokenizer, model)
        self._encoded: dict[str, tuple[list[int], int]] = {}  # prompt key -> (token ids, shared prefix length)
        self._blocks: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # tokens so far -> (cache, bytes)
        self._stored_bytes = 0
        self._torch = torch

    @property
    def model(self) -> Any:
        """The shared model object; which adapter is on is decided per call (see :meth:`active`)."""
        return self.base.model

    @contextlib.contextmanager
    def active(self):
        """The model with this backend's adapter on (none for a plain base) for the block."""
        with self.base.using(self.adapter_name):
            yield self.base.model

    def release(self) -> None:
        """Unload this backend's adapter from the shared base (the base stays while others use it)."""
        if self.adapter_name is not None:
            self.base.detach(self.adapter_name)
            self.adapter_name = None
        self._blocks.clear()
        self._stored_bytes = 0

    @property
    def batch_invariant(self) -> bool:
        """Whether an answer is the same whatever batch it is decoded in (fp32 and int8: yes; bf16/fp16: no)."""
        return self.batch_size == 1 or self.precision in ("fp32", "int8")

    def generate_batch(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Generation]:
        with self.active(), _attention(self.device):
            return self._generate_batch(prompts, settings)

    def _generate_batch(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Generation]:
        torch = self._torch
        from transformers import GenerationConfig

        start = time.perf_counter()
        encoded = [self.encode(p) for p in prompts]
        input_ids, attention, prefix_cache = self._batch_inputs(prompts, encoded)
        width = input_ids.shape[1]
        pad = self.tokenizer.pad_token_id
        sample = settings.temperature > 0
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=sample,
            temperature=settings.temperature if sample else None,
            top_p=settings.top_p if sample else None,
            top_k=None,
            pad_token_id=pad,
            eos_token_id=self.eos_ids,
            output_logits=settings.top_logprobs > 0,
            return_dict_in_generate=True,
            stop_strings=list(settings.stop) or None,
        )
        if sample:
            torch.manual_seed(settings.seed)
        extra = {"tokenizer": self.tokenizer} if settings.stop else {}
        if len(prompts) == 1 and self.prefix_block:
            prefix_cache, _ = self._read_prompt(encoded[0])
        extra["cache"] = _with_room(prefix_cache, self.model.config, settings.max_new_tokens + 1)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=config,
                **extra,
            )
        new = out.sequences[:, width:].cpu()
        seconds = (time.perf_counter() - start) / len(prompts)
        eos = set(self.eos_ids)
        results = []
        for row, ids in enumerate(encoded):
            tokens = new[row].tolist()
            n = next((i for i, t in enumerate(tokens) if t in eos), len(tokens))
            text = _cut(self.tokenizer.decode(tokens[:n], skip_special_tokens=True), settings.stop)
            top = None
            if settings.top_logprobs > 0:
                top = _top_logprobs(torch, self.tokenizer, out.logits, row, max(n, 1), settings.top_logprobs)
            results.append(
                Generation(text=text, prompt_tokens=len(ids), completion_tokens=n, seconds=seconds, top_logprobs=top)
            )
        return results

    def generate_seeded(self, prompt: Prompt, settings: GenerationSettings, seeds: Sequence[int]) -> list[Generation]:
        """One sampled answer per seed from a single pass over the prompt.

        The prompt is read once (no padding: one row), its key/value cache copied to one row
        per seed, and the rows decoded together; row ``i`` draws from its own generator
        seeded with ``seeds[i]``. For a judge that samples 10 short verdicts of a long prompt
        this is one prompt pass instead of 10.
        """
        with self.active(), _attention(self.device):
            return _generate_seeded(self, prompt, settings, seeds)


def _generate_seeded(
    backend: "HFBackend", prompt: Prompt, settings: GenerationSettings, seeds: Sequence[int]
) -> list[Generation]:
    torch = backend._torch
    if settings.temperature <= 0:
        raise SpecError("generate_seeded needs temperature > 0")
    start = time.perf_counter()
    ids = backend.encode(prompt)
    n = len(seeds)
    generators = [torch.Generator(device=backend.device).manual_seed(int(s)) for s in seeds]
    eos = set(backend.eos_ids)
    tokens: list[list[int]] = [[] for _ in range(n)]
    steps_logits = []
    done = [False] * n
    cache, read = backend._read_prompt(ids) if backend.prefix_block else (None, 0)
    with torch.inference_mode():
        out = backend.model(
            input_ids=torch.tensor([ids[read:]], device=backend.device), cache=cache, use_cache=True, logits_to_keep=1
        )
        cache = out.cache
        if n > 1:
            cache.batch_repeat_interleave(n)
        logits = out.logits[:, -1, :].float().expand(n, -1)
        for step in range(settings.max_new_tokens):
            if settings.top_logprobs > 0:
                steps_logits.append(logits)
            probs = _sampling_probs(torch, logits, settings.temperature, settings.top_p)
            chosen = [int(torch.multinomial(probs[i], 1, generator=generators[i])) for i in range(n)]
            for i, t in enumerate(chosen):
                if not done[i]:
                    tokens[i].append(t)
                    done[i] = t in eos or _stopped(backend.tokenizer, tokens[i], settings.stop)
            if all(done) or step + 1 == settings.max_new_tokens:
                break
            nxt = torch.tensor(chosen, device=backend.device).unsqueeze(1)
            out = backend.model(input_ids=nxt, cache=cache, use_cache=True)
            logits = out.logits[:, -1, :].float()
    seconds = (time.perf_counter() - start) / n
    results = []
    for row in range(n):
        row_tokens = tokens[row]
        k = next((i for i, t in enumerate(row_tokens) if t in eos), len(row_tokens))
        text = _cut(backend.tokenizer.decode(row_tokens[:k], skip_special_tokens=True), settings.stop)
        top = (
            _top_logprobs(torch, backend.tokenizer, steps_logits, row, max(k, 1), settings.top_logprobs)
            if steps_logits
            else None
        )
        results.append(
            Generation(text=text, prompt_tokens=len(ids), completion_tokens=k, seconds=seconds, top_logprobs=top)
        )
    return results


def _attention(device: str) -> Any:
    """On the CPU, attention by the math kernel: the fused kernel's sums depend on the thread
    count, so a run with two pytest-xdist workers (one thread each) would round otherwise
    than a serial one. The math kernel's do not (tested)."""
    if device != "cpu":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def _stopped(tokenizer: Any, tokens: list[int], stop: Sequence[str]) -> bool:
    return bool(stop) and any(s in tokenizer.decode(tokens, skip_special_tokens=True) for s in stop)


def _cut(text: str, stop: Sequence[str]) -> str:
    for s in stop:
        cut = text.find(s)
        if cut >= 0:
            text = text[:cut]
    return text


def _top_logprobs(torch: Any, tokenizer: Any, logits: Sequence[Any], row: int, steps: int, k: int) -> tuple:
    """Exact: log_softmax of the raw logits over the whole vocabulary, top k per step."""
    steps = min(steps, len(logits))
    if steps == 0:
        return ()
    stacked = torch.stack([logits[s][row] for s in range(steps)]).float()
    values, indices = torch.log_softmax(stacked, dim=-1).topk(k, dim=-1)
    return tuple(
        tuple((tokenizer.decode([int(i)]), float(v)) for v, i in zip(vals.tolist(), idx.tolist()))
        for vals, idx in zip(values, indices)
    )


@lru_cache(maxsize=1)
def _roomy_layer_class() -> Any:
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """A growing key/value cache layer that writes new tokens into room kept free at its end,
        where the stock layer concatenates (copying the whole cache at every decoding step).
        ``keys``/``values`` are views of the filled part; whoever replaces them (cropping,
        reordering) is followed on the next update."""

        def __init__(self, room: int) -> None:
            super().__init__()
            self.room = room
            self._buffers = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            import torch

            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            held = 0 if self.keys is None or self.keys.numel() == 0 else self.keys.shape[-2]
            needed = held + key_states.shape[-2]
            buffers = self._buffers
            if (
                buffers is None
                or buffers[0].shape[-2] < needed
                or buffers[0].shape[0] != key_states.shape[0]
                or self.keys.data_ptr() != buffers[0].data_ptr()
            ):
                size = needed + self.room
                buffers = tuple(
                    torch.empty((*x.shape[:2], size, x.shape[-1]), dtype=x.dtype, device=x.device)
                    for x in (key_states, value_states)
                )
                if held:
                    buffers[0][:, :, :held] = self.keys
                    buffers[1][:, :, :held] = self.values
                self._buffers = buffers
            buffers[0][:, :, held:needed] = key_states
            buffers[1][:, :, held:needed] = value_states
            self.keys, self.values = buffers[0][:, :, :needed], buffers[1][:, :, :needed]
            return self.keys, self.values

    return RoomyLayer


def _with_room(cache: Any, config: Any, room: int) -> Any:
    """``cache`` (a new empty one when None) with plain layers made :class:`RoomyLayer`s keeping
    ``room`` tokens free; a cache with other layer kinds (sliding windows) is returned as is."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = cache if cache is not None else DynamicCache(config=config)
    if any(type(layer) is not DynamicLayer for layer in cache.layers):
        return cache
    roomy = _roomy_layer_class()
    for index, layer in enumerate(cache.layers):
        new = roomy(room)
        if layer.is_initialized and layer.keys is not None and layer.keys.numel():
            new.update(layer.keys, layer.values)
        cache.layers[index] = new
    return cache


def _cache_bytes(cache: Any) -> int:
    return sum(
        t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values) if t is not None
    )


def _sampling_probs(torch: Any, logits: Any, temperature: float, top_p: float) -> Any:
    """Next-token probabilities: logits / temperature, then the smallest set of tokens whose
    probability reaches ``top_p`` (nucleus; the most likely token is always kept)."""
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        ordered, index = probs.sort(dim=-1, descending=True)
        before = ordered.cumsum(dim=-1) - ordered  # mass of the tokens ranked above each one
        ordered = ordered.masked_fill(before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, index, ordered)
    return probs


def make_backend(scheme: str):
    def factory(target: str, adapter: str | None, options: dict[str, Any]) -> HFBackend:
        known = {"device", "dtype", "batch_size", "prefix_block", "shared_prefix", "revision"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SpecError(
                f"unknown option(s) {', '.join(unknown)} for {scheme}: models: use {', '.join(sorted(known))}"
            )
        if adapter is not None:
            adapter_identity(adapter)  # fail on a missing adapter before loading the base model
        weights = resolve_weights(scheme, target, options.pop("revision", None))
        return HFBackend(weights, adapter, **options)

    return factory
