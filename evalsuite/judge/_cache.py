"""Judge cache: one sqlite file, content-addressed, one row per judge run.

The key hashes everything that changes a judge's output: the judge model's identity,
the steps version and text hash, the criterion, the prompt form and text, question,
references, context, answer, mode, temperature, repeat index and retry attempt. Two judge
models never share a row. Each row is committed as soon as it is made, so an interrupted
run keeps what it finished. WAL mode and a busy timeout let pytest-xdist workers share
the file. Schema changes are numbered migrations recorded in ``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from evalsuite.records import stable_hash
from evalsuite.storage import LAST_USE_RESOLUTION, cache_dir, open_sqlite

_MIGRATIONS = (
    # 1: one row per judge run
    """
    CREATE TABLE IF NOT EXISTS runs (
        key TEXT PRIMARY KEY,
        judge TEXT NOT NULL,
        criterion TEXT NOT NULL,
        text TEXT NOT NULL,
        score REAL,
        distribution TEXT,
        logprobs_missing INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL
    )
    """,
    # 2-4: last use (rewritten at most hourly), for pruning least recently used rows
    "ALTER TABLE runs ADD COLUMN used REAL",
    "UPDATE runs SET used = created",
    "CREATE INDEX IF NOT EXISTS runs_used ON runs (used)",
)


def run_key(**fields) -> str:
    """The content address of one judge run (``fields`` are hashed as canonical JSON)."""
    return stable_hash(fields, 32)


class JudgeCache:
    """Rows of (text, score, distribution) by :func:`run_key`."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_dir("judge") / "judge.sqlite"
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, _MIGRATIONS, store="judge")  # a corrupt file is quarantined and made anew

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, score, distribution, logprobs_missing, used FROM runs WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and (row[4] is None or time.time() - row[4] > LAST_USE_RESOLUTION):
                self._db.execute("UPDATE runs SET used = ? WHERE key = ?", (time.time(), key))
        if row is None:
            return None
        text, score, distribution, missing, _ = row
        dist = {int(k): float(v) for k, v in json.loads(distribution).items()} if distribution else None
        return {
            "text": text,
            "score": float("nan") if score is None else float(score),
            "distribution": dist,
            "logprobs_missing": bool(missing),
        }

    def put(
        self,
        key: str,
        *,
        judge: str,
        criterion: str,
        text: str,
        score: float,
        distribution: dict[int, float] | None = None,
        logprobs_missing: bool = False,
    ) -> None:
        stored_score = None if score is None or score != score else float(score)
        dist = json.dumps({str(k): v for k, v in sorted(distribution.items())}) if distribution else None
        with self._lock:  # autocommit: each row is durable once put returns
            self._db.execute(
                "INSERT OR REPLACE INTO runs (key, judge, criterion, text, score, distribution, "
                "logprobs_missing, created, used)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, judge, criterion, text, stored_score, dist, int(logprobs_missing), time.time(), time.time()),
            )

    def count(self, judge: str | None = None) -> int:
        with self._lock:
            if judge is None:
                return self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM runs WHERE judge = ?", (judge,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
