"""Retrieval: chunk the corpus, embed the chunks, search them with faiss."""

from __future__ import annotations

from .. import datasets
from ..records import Dataset
from .chunking import ChunkerSettings, chunk_corpus, chunk_passage
from .embedder import DEFAULT_EMBEDDER, Embedder
from .index import INDEX_KINDS, Retriever, build_index, stored_index
from .prebuilt import export_index, fetch_prebuilt_index

_memo: dict[tuple, Retriever] = {}


def get_retriever(
    dataset: Dataset,
    *,
    chunk_size: int = ChunkerSettings.size,
    chunk_overlap: int = ChunkerSettings.overlap,
    embedder: str = DEFAULT_EMBEDDER,
    index: str = "flat",
    progress: bool = True,
) -> Retriever:
    """The retriever of ``dataset``, built once per process and cached on disk across runs."""
    datasets.require_passages(dataset)  # a dataset with no passages gets the one-line error naming the fix
    chunker = ChunkerSettings(chunk_size, chunk_overlap)
    key = (dataset.name, dataset.source, len(dataset.passages), dataset.retrieval_scope, chunker, embedder, index)
    if key not in _memo:
        _memo[key] = build_index(dataset, chunker=chunker, embedder=Embedder(embedder), kind=index, progress=progress)
    return _memo[key]


__all__ = [
    "ChunkerSettings",
    "Embedder",
    "DEFAULT_EMBEDDER",
    "Retriever",
    "INDEX_KINDS",
    "build_index",
    "get_retriever",
    "stored_index",
    "fetch_prebuilt_index",
    "export_index",
    "chunk_passage",
    "chunk_corpus",
]
