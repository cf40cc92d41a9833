"""Content-addressed generation cache: one sqlite file under ``cache_dir("generations")``.

Keys hash the model identity (base weights + adapter), the prompt and the settings, so two
models never share an answer. Schema changes are numbered migrations applied in order.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from evalsuite._io import cache_dir, open_sqlite

MIGRATIONS = (
    """CREATE TABLE generations (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        prompt TEXT NOT NULL,
        value TEXT NOT NULL,
        created REAL NOT NULL
    )""",
)


class GenerationCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else cache_dir("generations") / "generations.sqlite"
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, MIGRATIONS)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM generations WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, prompt: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO generations (key, model, prompt, value, created) VALUES (?, ?, ?, ?, ?)",
                (key, model, prompt, text, time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
