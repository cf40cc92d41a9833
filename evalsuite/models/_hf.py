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

import hashlib
import os
import time
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evalsuite._device import auto_dtype, best_device
from evalsuite.errors import SpecError
from evalsuite.records import Prompt, stable_hash

from ._digest import dir_digest
from ._types import Generation, GenerationSettings



def _require_torch() -> Any:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise SpecError(f"local models need torch and transformers ({err.name} is missing): pip install torch transformers") from None
    return torch


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def pick_device(device: str = "auto") -> str:
    _require_torch()
    return best_device() if device == "auto" else device


def pick_dtype(dtype: str, device: str) -> Any:
    """"auto": bf16 on CUDA, fp32 on the CPU; "bf16"/"fp16"/"fp32" force one.

    On a CPU with native bf16 (avx512_bf16/AMX), bf16 generates about 2x faster (a 40-prompt
    RAG batch: 17 s vs 38 s), but its numbers move with the thread count: the bundled judge's
    scores of 24 calibration items differed by up to 0.14 between 1 and 2 threads (fp32:
    bit-identical), and a greedy answer can change with the padding of its batch (8 of 40
    answers between batches of 4 and 8; fp32: 0). An evaluation must give the same numbers
    serially and under pytest-xdist (one thread per worker), so CPU inference is fp32 unless
    bf16 is asked for; fine-tuning, whose adapter is stored once, does use bf16 there.
    """
    _require_torch()
    if dtype == "auto" and device == "cpu":
        return auto_dtype(device, "fp32")
    return auto_dtype(device, dtype)


def inference_precision(device: str = "cpu", requested: str = "auto") -> str:
    """The arithmetic a local model runs with here: "fp32", "bf16" or "fp16"."""
    import torch

    names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    return names[pick_dtype(requested, device)]


@dataclass(frozen=True)
class Weights:
    """Where a base model's files are, and the identity of what they hold."""

    path: str
    identity: str


def resolve_weights(scheme: str, target: str, revision: str | None = None) -> Weights:
    """A local folder for a ``bundled:`` or ``hf:`` model (materialized/downloaded as needed)."""
    if scheme == "bundled":
        from ._bundled import materialize

        path, identity = materialize(target)
        return Weights(str(path), identity)
    if scheme != "hf":
        raise SpecError(f"{scheme}:{target} has no local weights: fine-tuning needs a bundled: or hf: model")
    local = Path(target).expanduser()
    if local.is_dir():
        return Weights(str(local.resolve()), stable_hash({"hf-dir": dir_digest(local)}, length=32))
    if target.startswith((".", "/", "~")):
        raise SpecError(f"model folder {target} not found: check the path after hf:")
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            target,
            revision=revision,
            local_files_only=offline(),
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"],
        )
    except Exception as err:  # hub errors have many types; all mean the same to the user
        hint = "download it once online or unset HF_HUB_OFFLINE" if offline() else "check the hub id and your network"
        raise SpecError(f"cannot get hf:{target} ({type(err).__name__}): {hint}") from None
    return Weights(path, stable_hash({"hf": target, "commit": Path(path).name}, length=32))


def adapter_identity(adapter: str) -> tuple[Path, str]:
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise SpecError(
            f"LoRA adapter folder {path} not found (no adapter_config.json): train one with "
            "`evalsuite finetune` or fix the path after +lora:"
        )
    return path.resolve(), dir_digest(path)


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """End-of-sequence ids: the tokenizer's, the model's, and the usual end-of-turn markers."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen_eos is not None:
        ids.update([gen_eos] if isinstance(gen_eos, int) else gen_eos)
    vocab = tokenizer.get_vocab()
    for marker in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"):
        if marker in vocab:
            ids.add(int(vocab[marker]))
    return sorted(ids)


def render(tokenizer: Any, prompt: Prompt) -> tuple[str, bool]:
    """The text the model sees and whether the tokenizer should add its special tokens."""
    if prompt.chat and getattr(tokenizer, "chat_template", None):
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text + prompt.prefill, False
    return "\n\n".join(m.content for m in prompt.messages) + prompt.prefill, True


class HFBackend:
    """A transformers causal LM on one device. Not thread-safe: concurrency 1."""

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
    ) -> None:
        torch = _require_torch()
        from transformers import AutoModelForCausalLM

        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.batch_size = int(batch_size)
        self.prefix_block = int(prefix_block)
        if self.prefix_block < 0:
            raise SpecError(f"prefix_block must be >= 0 (0 = read each prompt in one pass), got {prefix_block}")
        self.path = weights.path
        self.tokenizer = load_tokenizer(weights.path)
        model = AutoModelForCausalLM.from_pretrained(weights.path, dtype=self.dtype, local_files_only=True)
        identity = {"base": weights.identity}
        if adapter is not None:
            adapter_path, adapter_hash = adapter_identity(adapter)
            try:
                from peft import PeftModel
            except ImportError:
                raise SpecError("LoRA adapters need peft: pip install peft") from None
            model = PeftModel.from_pretrained(model, str(adapter_path), is_trainable=False)
            identity["lora"] = adapter_hash
        # dtype is part of the identity: bf16 and fp32 give different greedy answers
        identity["dtype"] = str(self.dtype).replace("torch.", "")
        if self.prefix_block:  # reading a prompt in blocks rounds differently from one pass
            identity["prefix_block"] = self.prefix_block
        self.identity = stable_hash(identity, length=32)
        self.model = model.to(self.device).eval()
        self.eos_ids = stop_token_ids(self.tokenizer, model)
        self._encoded: dict[str, tuple[list[int], int]] = {}
        self._blocks: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # tokens so far -> (cache, bytes)
        self._stored_bytes = 0
        self._torch = torch

    @property
    def batch_invariant(self) -> bool:
        """Whether an answer is the same whatever batch it is decoded in (fp32: yes; bf16/fp16: no)."""
        return self.batch_size == 1 or self.dtype == self._torch.float32

    def encode(self, prompt: Prompt) -> list[int]:
        key = prompt.key()
        hit = self._encoded.get(key)
        if hit is None:
            text, special = render(self.tokenizer, prompt)
            ids = self.tokenizer(text, add_special_tokens=special)["input_ids"]
            if len(self._encoded) > 4096:
                self._encoded.clear()
            hit = self._encoded[key] = (ids, len(ids))
        return hit[0]

    def sort_key(self, prompt: Prompt) -> int:
        return len(self.encode(prompt))

    # The stored block caches are bounded by their size: 20-25 judge prompts of the bundled
    # model in fp32, one or two of a 7B model.
    MAX_STORED_BYTES = 1 << 30

    def _read_prompt(self, ids: list[int]) -> tuple[Any, int]:
        """The key/value cache of ``ids[:n]``, n the largest multiple of ``prefix_block`` below
        ``len(ids)``, read block by block; blocks read before are copied from the store."""
        import copy

        from transformers import DynamicCache

        size = self.prefix_block
        blocks = (len(ids) - 1) // size
        keys = [hashlib.sha1(array("q", ids[: k * size]).tobytes()).hexdigest() for k in range(1, blocks + 1)]
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
                stored = copy.deepcopy(cache)
                self._blocks[keys[k]] = (stored, _cache_bytes(stored))
                self._stored_bytes += self._blocks[keys[k]][1]
                while self._stored_bytes > self.MAX_STORED_BYTES and len(self._blocks) > 1:
                    self._stored_bytes -= self._blocks.popitem(last=False)[1][1]
        return cache, blocks * size

    def generate_batch(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Generation]:
        torch = self._torch
        from transformers import GenerationConfig

        start = time.perf_counter()
        encoded = [self.encode(p) for p in prompts]
        width = max(len(ids) for ids in encoded)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):  # left padding: every prompt ends where generation starts
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
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
            extra["cache"], _ = self._read_prompt(encoded[0])
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
            text = self._cut(self.tokenizer.decode(tokens[:n], skip_special_tokens=True), settings.stop)
            top = None
            if settings.top_logprobs > 0:
                top = self._top_logprobs(out.logits, row, max(n, 1), settings.top_logprobs)
            results.append(Generation(text=text, prompt_tokens=len(ids), completion_tokens=n, seconds=seconds, top_logprobs=top))
        return results

    def generate_seeded(self, prompt: Prompt, settings: GenerationSettings, seeds: Sequence[int]) -> list[Generation]:
        """One sampled answer per seed from a single pass over the prompt.

        The prompt is read once (no padding: one row), its key/value cache copied to one row
        per seed, and the rows decoded together; row ``i`` draws from its own generator
        seeded with ``seeds[i]``. For a judge that samples 10 short verdicts of a long prompt
        this is one prompt pass instead of 10.
        """
        torch = self._torch
        if settings.temperature <= 0:
            raise SpecError("generate_seeded needs temperature > 0")
        start = time.perf_counter()
        ids = self.encode(prompt)
        n = len(seeds)
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        eos = set(self.eos_ids)
        tokens: list[list[int]] = [[] for _ in range(n)]
        steps_logits = []
        done = [False] * n
        cache, read = self._read_prompt(ids) if self.prefix_block else (None, 0)
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([ids[read:]], device=self.device), cache=cache, use_cache=True,
                             logits_to_keep=1)
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
                        done[i] = t in eos or self._stopped(tokens[i], settings.stop)
                if all(done) or step + 1 == settings.max_new_tokens:
                    break
                nxt = torch.tensor(chosen, device=self.device).unsqueeze(1)
                out = self.model(input_ids=nxt, cache=cache, use_cache=True)
                logits = out.logits[:, -1, :].float()
        seconds = (time.perf_counter() - start) / n
        results = []
        for row in range(n):
            row_tokens = tokens[row]
            k = next((i for i, t in enumerate(row_tokens) if t in eos), len(row_tokens))
            text = self._cut(self.tokenizer.decode(row_tokens[:k], skip_special_tokens=True), settings.stop)
            top = self._top_logprobs(steps_logits, row, max(k, 1), settings.top_logprobs) if steps_logits else None
            results.append(Generation(text=text, prompt_tokens=len(ids), completion_tokens=k, seconds=seconds,
                                      top_logprobs=top))
        return results

    def _stopped(self, tokens: list[int], stop: Sequence[str]) -> bool:
        return bool(stop) and any(s in self.tokenizer.decode(tokens, skip_special_tokens=True) for s in stop)

    @staticmethod
    def _cut(text: str, stop: Sequence[str]) -> str:
        for s in stop:
            cut = text.find(s)
            if cut >= 0:
                text = text[:cut]
        return text

    def _top_logprobs(self, logits: Sequence[Any], row: int, steps: int, k: int) -> tuple:
        """Exact: log_softmax of the raw logits over the whole vocabulary, top k per step."""
        torch = self._torch
        steps = min(steps, len(logits))
        if steps == 0:
            return ()
        stacked = torch.stack([logits[s][row] for s in range(steps)]).float()
        values, indices = torch.log_softmax(stacked, dim=-1).topk(k, dim=-1)
        return tuple(
            tuple((self.tokenizer.decode([int(i)]), float(v)) for v, i in zip(vals.tolist(), idx.tolist()))
            for vals, idx in zip(values, indices)
        )


def _cache_bytes(cache: Any) -> int:
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values)
               if t is not None)


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
        known = {"device", "dtype", "batch_size", "prefix_block", "revision"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SpecError(f"unknown option(s) {', '.join(unknown)} for {scheme}: models: use {', '.join(sorted(known))}")
        if adapter is not None:
            adapter_identity(adapter)  # fail on a missing adapter before loading the base model
        weights = resolve_weights(scheme, target, options.pop("revision", None))
        return HFBackend(weights, adapter, **options)

    return factory
