"""Content-addressed generation cache: one sqlite file under ``cache_dir("generations")``.

Keys hash the model identity (base weights + adapter), the prompt and the settings, so two
models never share an answer. Schema changes are numbered migrations applied in order.
Each row's last use (``used``, rewritten at most hourly) lets ``evalsuite cache prune`` drop
the least recently used rows. A corrupt file is moved to the quarantine and made again empty
(one warning); the run goes on and computes the answers again.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from evalsuite.storage import LAST_USE_RESOLUTION, cache_dir, open_sqlite

MIGRATIONS = (
    """CREATE TABLE generations (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        prompt TEXT NOT NULL,
        value TEXT NOT NULL,
        created REAL NOT NULL
    )""",
    "ALTER TABLE generations ADD COLUMN used REAL",  # 2: last use, for pruning least recently used rows
    "UPDATE generations SET used = created",
    "CREATE INDEX IF NOT EXISTS generations_used ON generations (used)",
)


class GenerationCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else cache_dir("generations") / "generations.sqlite"
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, MIGRATIONS, store="generations")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value, used FROM generations WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            now = time.time()
            if row[1] is None or now - row[1] > LAST_USE_RESOLUTION:
                self._conn.execute("UPDATE generations SET used = ? WHERE key = ?", (now, key))
        try:
            return json.loads(row[0])
        except ValueError:  # a damaged row is a miss; the answer is computed and stored again
            return None

    def put(self, key: str, model: str, prompt: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        now = time.time()
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO generations (key, model, prompt, value, created, used) VALUES (?, ?, ?, "
                "?, ?, ?)",
                (key, model, prompt, text, now, now),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
