"""Sentence vectors kept on disk: one sqlite file, one row per (embedder identity, text).

Embedding the learned judge's training answers takes minutes on a CPU; with this store a
rerun of the fit (or of a qualification) reads them back. The key hashes the embedder's
identity (model, dtype, length, thread count) and the text, so another embedder never
reads these vectors.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterable

import numpy as np

from evalsuite.records import stable_hash
from evalsuite.storage import cache_dir, open_sqlite

_MIGRATIONS = (
    """
    CREATE TABLE IF NOT EXISTS vectors (
        key TEXT PRIMARY KEY,
        vector BLOB NOT NULL
    )
    """,
)


class VectorStore:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir("judge") / "vectors.sqlite"
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, _MIGRATIONS)

    @staticmethod
    def _key(identity: str, text: str) -> str:
        return stable_hash([identity, text], 32)

    def get_many(self, identity: str, texts: Iterable[str]) -> dict[str, np.ndarray]:
        out = {}
        texts = list(texts)
        with self._lock:
            for start in range(0, len(texts), 500):
                chunk = texts[start : start + 500]
                keys = {self._key(identity, t): t for t in chunk}
                marks = ",".join("?" * len(keys))
                for key, blob in self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({marks})", list(keys)
                ):
                    out[keys[key]] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def put_many(self, identity: str, vectors: dict[str, np.ndarray]) -> None:
        rows = [(self._key(identity, t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in vectors.items()]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()
