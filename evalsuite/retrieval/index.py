"""The faiss index over chunk embeddings, cached on disk by what changes it.

Inner product on unit vectors (cosine). ``kind="flat"`` is exact (the default);
``kind="hnsw"`` is approximate, for large corpora. The cache key is the hash of the
corpus content, the chunker settings, the embedder identity and the index kind; a
second run loads the index instead of encoding again. A file lock makes concurrent
processes (pytest-xdist workers) build it once. The entry's manifest records the sha256 and
size of its files; a hit verifies them (once per process), and an index that fails goes to
the quarantine with one warning and is built again. A hit never loads the embedder model:
that happens when the first question is encoded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifacts import Corrupt, open_entry, write_entry
from ..errors import ConfigError
from ..records import Chunk, Dataset, Example, stable_hash, to_dict
from ..storage import cache_dir, file_lock
from .chunking import ChunkerSettings, chunk_corpus
from .embedder import Embedder

INDEX_KINDS = ("flat", "hnsw")
INDEX_FILES = ("index.faiss", "chunks.jsonl")  # the payload; manifest.json records their sha256 and size


def _faiss():
    import faiss

    return faiss


@dataclass
class Retriever:
    """Top-k search over a dataset's chunks. Questions of a ``document``-scoped dataset
    (Qasper) are searched only within their own documents."""

    dataset: str
    scope: str
    chunks: list[Chunk]
    index: object
    embedder: Embedder
    key: str
    path: Path
    cached: bool
    build_seconds: float
    _vectors: np.ndarray | None = field(default=None, repr=False)
    _by_doc: dict[str, list[int]] | None = field(default=None, repr=False)

    def retrieve(self, example: Example | str, k: int = 5) -> tuple[Chunk, ...]:
        return self.retrieve_many([example], k)[0]

    def retrieve_many(self, examples: list[Example | str], k: int = 5) -> list[tuple[Chunk, ...]]:
        questions = [e if isinstance(e, str) else e.question for e in examples]
        vecs = self.embedder.encode(questions)
        out = []
        for ex, vec in zip(examples, vecs):
            if self.scope == "document" and not isinstance(ex, str) and ex.doc_ids:
                out.append(self._scoped(vec, ex.doc_ids, k))
            else:
                _, ids = self.index.search(vec[None, :], k)
                out.append(tuple(self.chunks[i] for i in ids[0] if i >= 0))
        return out

    def _scoped(self, vec: np.ndarray, doc_ids: tuple[str, ...], k: int) -> tuple[Chunk, ...]:
        if self._vectors is None:
            self._vectors = self.index.reconstruct_n(0, self.index.ntotal)
            by_doc: dict[str, list[int]] = {}
            for i, c in enumerate(self.chunks):
                by_doc.setdefault(c.doc_id, []).append(i)
            self._by_doc = by_doc
        rows = np.array(sorted(i for d in doc_ids for i in self._by_doc.get(d, [])), dtype=np.int64)
        if rows.size == 0:
            return ()
        scores = self._vectors[rows] @ vec
        order = np.argsort(-scores, kind="stable")[:k]
        return tuple(self.chunks[int(rows[j])] for j in order)


def _index_key(dataset: Dataset, chunker: ChunkerSettings, embedder: Embedder, kind: str) -> tuple[str, str, Path]:
    corpus_hash = stable_hash([[p.id, p.doc_id, p.title, p.text] for p in dataset.passages], 32)
    key = stable_hash(
        {"corpus": corpus_hash, "chunker": to_dict(chunker), "embedder": embedder.identity, "kind": kind}, 24
    )
    return corpus_hash, key, cache_dir("index") / f"{dataset.name}-{key}"


def stored_index(
    dataset: Dataset,
    *,
    chunker: ChunkerSettings = ChunkerSettings(),
    embedder: Embedder | None = None,
    kind: str = "flat",
) -> Path | None:
    """The folder of the index :func:`build_index` would open from the store, or None when it would
    build one (the embedder's model is not loaded)."""
    _, _, path = _index_key(dataset, chunker, embedder or Embedder(), kind)
    return path if (path / "index.faiss").is_file() and (path / "chunks.jsonl").is_file() else None


def build_index(
    dataset: Dataset,
    *,
    chunker: ChunkerSettings = ChunkerSettings(),
    embedder: Embedder | None = None,
    kind: str = "flat",
    progress: bool = True,
) -> Retriever:
    if kind not in INDEX_KINDS:
        raise ConfigError(f"unknown index kind {kind!r}: choose one of {', '.join(INDEX_KINDS)}")
    embedder = embedder or Embedder()
    corpus_hash, key, path = _index_key(dataset, chunker, embedder, kind)
    start = time.perf_counter()
    what = f"stored retrieval index of {dataset.name}"
    legacy = lambda folder: _legacy_index(folder, key)  # noqa: E731
    cached = open_entry(path, "index", what=what, legacy=legacy) is not None
    if not cached:
        with file_lock(path):
            cached = open_entry(path, "index", what=what, legacy=legacy) is not None
            if not cached:
                chunks = chunk_corpus(dataset.passages, chunker)
                vecs = embedder.encode([_embed_text(c) for c in chunks], progress=progress)
                index = _new_index(kind, vecs.shape[1])
                index.add(vecs)

                def fill(tmp: Path) -> dict:
                    _faiss().write_index(index, str(tmp / "index.faiss"))
                    with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
                        for c in chunks:
                            fh.write(json.dumps(to_dict(c), ensure_ascii=False) + "\n")
                    return {
                        "key": key,
                        "dataset": dataset.name,
                        "source": dataset.source,
                        "corpus_hash": corpus_hash,
                        "chunker": to_dict(chunker),
                        "embedder": embedder.identity,
                        "kind": kind,
                        "chunks": len(chunks),
                    }

                write_entry(path, fill, payload=INDEX_FILES)
    index = _faiss().read_index(str(path / "index.faiss"))
    with open(path / "chunks.jsonl", encoding="utf-8") as fh:
        chunks = [Chunk(**json.loads(line)) for line in fh]
    return Retriever(
        dataset.name, dataset.retrieval_scope, chunks, index, embedder, key, path, cached, time.perf_counter() - start
    )


def _legacy_index(path: Path, key: str) -> tuple[dict, tuple[str, ...]]:
    """An index stored before manifests recorded checksums (``meta.json``) is kept when it reads whole."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        ntotal = _faiss().read_index(str(path / "index.faiss")).ntotal
        with open(path / "chunks.jsonl", encoding="utf-8") as fh:
            count = sum(1 for line in fh if Chunk(**json.loads(line)))
    except Exception as err:  # faiss raises RuntimeError on a damaged file
        raise Corrupt(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    if not count == ntotal == meta.get("chunks"):
        raise Corrupt(f"{ntotal} vectors, {count} chunks, meta.json says {meta.get('chunks')}")
    return {**meta, "key": key}, INDEX_FILES


def _embed_text(chunk: Chunk) -> str:
    return f"{chunk.title}: {chunk.text}" if chunk.title else chunk.text


def _new_index(kind: str, dim: int):
    faiss = _faiss()
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 64
        return index
    return faiss.IndexFlatIP(dim)
