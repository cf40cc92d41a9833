"""Result store of one run: ``reports/runs/<run-id>/cells/<cell-id>.json``, one file per cell.

A cell's file is written atomically as soon as its result is known, so a run killed at any
moment leaves only whole files, and the same command later reuses them (:class:`~evalsuite.records.CellResult`)
instead of computing
them again. Each file records the sha256 of its content (``checksum``); a file that is not
valid JSON or fails its checksum is moved to ``cells/.quarantine/`` with one warning and the
cell is computed again. Out of space, a write fails with one line naming the file and the
finished cells stay as they were. :meth:`RunStore.compute_or_load` holds a file lock per cell, so when several
pytest-xdist workers need the same cell (a baseline shared by every fine-tuned cell of a
dataset and model), the first computes it and the others wait and reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

from evalsuite.records import FINISHED_CELL_STATUSES, CellResult
from evalsuite.storage import atomic_write_text, file_lock, quarantine

CHECKSUM = "checksum"  # field of a cell file: "sha256:<hex>" of the canonical JSON of the other fields


def _canonical_sha256(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class _BadCell(Exception):
    pass


def _parse_cell(raw: bytes) -> dict[str, Any]:
    """A cell file's content without its checksum; :class:`_BadCell` when it is not whole."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise _BadCell(f"not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise _BadCell("not a JSON object")
    recorded = data.pop(CHECKSUM, None)
    if recorded is not None and recorded != _canonical_sha256(data):
        raise _BadCell("its content does not match its recorded checksum")
    return data


def is_reusable(data: dict[str, Any] | None) -> bool:
    """A cell file holds a finished result (not a skip or an error record)."""
    return bool(data) and data.get("status") in FINISHED_CELL_STATUSES and isinstance(data.get("items"), list)


class RunStore:
    """The files of one run folder."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.cells_dir = self.run_dir / "cells"

    def path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id}.json"

    def read(self, cell_id: str) -> dict[str, Any] | None:
        """The cell's stored data; None when there is none or it was not whole (then quarantined)."""
        path = self.path(cell_id)
        try:
            return _parse_cell(path.read_bytes())
        except FileNotFoundError:
            return None
        except _BadCell:
            pass
        with file_lock(path):  # never move a file a writer is replacing; look again under the cell's lock
            try:
                with open(path, "rb") as fh:
                    raw, ident = fh.read(), os.fstat(fh.fileno()).st_ino
                return _parse_cell(raw)
            except FileNotFoundError:
                return None
            except _BadCell as err:
                if os.stat(path).st_ino == ident:
                    quarantine(
                        [path], "cells", f"cell result {cell_id}", str(err), folder=self.cells_dir / ".quarantine"
                    )
                return None

    def write(self, cell_id: str, data: dict[str, Any]) -> Path:
        """Write the cell's file atomically with its checksum (out of space: DiskFull naming it)."""
        data = json.loads(json.dumps(data, ensure_ascii=False))  # as it will read back (tuples as lists, keys as text)
        data.pop(CHECKSUM, None)
        data[CHECKSUM] = _canonical_sha256(data)
        return atomic_write_text(
            self.path(cell_id), json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )

    def load(self, cell_id: str) -> CellResult | None:
        """The cell's stored result; None when there is none, it was not whole (then quarantined),
        or another version wrote a status this one does not know (the cell is computed again)."""
        data = self.read(cell_id)
        if data is None:
            return None
        try:
            return CellResult.from_json({"id": cell_id, **data})
        except (TypeError, ValueError):
            return None

    def save(self, result: CellResult) -> Path:
        """Write ``result`` as its cell's file (atomically, with its checksum)."""
        return self.write(result.id, result.to_json())

    def lock(self, cell_id: str) -> Any:
        """The cell's file lock: held, no other process computes or writes the cell."""
        return file_lock(self.path(cell_id))

    def compute_or_load(self, cell_id: str, compute: Callable[[], CellResult]) -> tuple[CellResult, bool]:
        """The cell's finished result and whether it was reused; ``compute()`` runs at most once per run,
        and its result is written once."""
        with file_lock(self.path(cell_id)):
            existing = self.load(cell_id)
            if existing is not None and existing.finished:
                return existing, True
            result = compute()
            self.save(result)
            return result, False

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
