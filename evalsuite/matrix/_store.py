"""Result store of one run: ``reports/runs/<run-id>/cells/<cell-id>.json``, one file per cell.

A cell's file is written atomically as soon as its result is known, so a run killed at any
moment leaves only whole files, and the same command later reuses them instead of computing
them again. :meth:`RunStore.compute_or_load` holds a file lock per cell, so when several
pytest-xdist workers need the same cell (a baseline shared by every fine-tuned cell of a
dataset and model), the first computes it and the others wait and reuse it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from evalsuite._io import atomic_write_json, file_lock

FINAL_STATUSES = ("scored", "passed", "failed", "ungated")


def is_reusable(data: dict[str, Any] | None) -> bool:
    """A cell file holds a finished result (not a skip or an error record)."""
    return bool(data) and data.get("status") in FINAL_STATUSES and isinstance(data.get("items"), list)


class RunStore:
    """The files of one run folder."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.cells_dir = self.run_dir / "cells"

    def path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id}.json"

    def read(self, cell_id: str) -> dict[str, Any] | None:
        return read_json(self.path(cell_id))

    def write(self, cell_id: str, data: dict[str, Any]) -> Path:
        return atomic_write_json(self.path(cell_id), data)

    def update(self, cell_id: str, **fields: Any) -> dict[str, Any]:
        """Add or replace fields of a cell file (under the cell's lock)."""
        with file_lock(self.path(cell_id)):
            data = self.read(cell_id) or {"id": cell_id}
            data.update(fields)
            self.write(cell_id, data)
        return data

    def compute_or_load(self, cell_id: str, compute: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The cell's finished result and whether it was reused; ``compute()`` runs at most once per run."""
        with file_lock(self.path(cell_id)):
            existing = self.read(cell_id)
            if is_reusable(existing):
                return existing, True
            data = compute()
            self.write(cell_id, data)
            return data, False

    def cell_ids(self) -> list[str]:
        if not self.cells_dir.is_dir():
            return []
        return sorted(p.stem for p in self.cells_dir.glob("*.json") if not p.name.startswith("."))


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON file's content, or None when it does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
