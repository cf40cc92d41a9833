"""Reading released files and checking their records, shared by the dataset loaders."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..errors import DataError
from ..records import InvalidRecord
from ._fetch import require

HUB_PREFIX = "hub:"


class Checker:
    """Validates one record's fields; raises :class:`DataError` or, with ``skip_invalid``, collects.

    Usage: ``with checker.record(index_or_id) as rec: rec.str(obj, "question")`` — a failure
    inside the block either raises or marks the record invalid so the caller drops it.
    """

    def __init__(self, file: str, skip_invalid: bool) -> None:
        self.file = file
        self.skip_invalid = skip_invalid
        self.invalid: list[InvalidRecord] = []

    def fail(self, record: str, field: str, problem: str) -> None:
        bad = InvalidRecord(self.file, str(record), field, problem)
        if not self.skip_invalid:
            raise DataError(f"{bad} (fix the record, or pass --skip-invalid to leave it out)")
        self.invalid.append(bad)
        raise _SkipRecord

    def guard(self, record: str, build: Callable[[], Any]) -> Any:
        """Run ``build()`` for one record; return its result, or None when the record was skipped."""
        try:
            return build()
        except _SkipRecord:
            return None

    # typed field access -------------------------------------------------------------
    def field(self, obj: Any, name: str, kind: type | tuple[type, ...], record: str, *, optional: bool = False) -> Any:
        if not isinstance(obj, dict):
            self.fail(record, name, f"expected an object holding {name!r}, got {type(obj).__name__}")
        if name not in obj:
            if optional:
                return None
            self.fail(record, name, "missing")
        value = obj[name]
        if optional and value is None:
            return None
        kinds = _as_tuple(kind)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            want = " or ".join(k.__name__ for k in kinds)
            self.fail(record, name, f"expected {want}, got {type(value).__name__}")
        return value

    def text(self, obj: Any, name: str, record: str, *, empty_ok: bool = False) -> str:
        value = self.field(obj, name, str, record)
        if not empty_ok and not value.strip():
            self.fail(record, name, "empty")
        return value

    def str_list(self, obj: Any, name: str, record: str, *, empty_ok: bool = True) -> list[str]:
        value = self.field(obj, name, list, record)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(record, f"{name}[{i}]", f"expected str, got {type(item).__name__}")
        if not empty_ok and not any(v.strip() for v in value):
            self.fail(record, name, "empty")
        return value


class _SkipRecord(Exception):
    pass


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (pass --path to an existing file of the release)") from None
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}: record at line {err.lineno} column {err.colno}: field (JSON syntax): {err.msg} (the file is not valid JSON)"
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: record at byte {err.start}: field (encoding): not UTF-8 text") from None


def read_jsonl(path: Path, checker: Checker) -> Iterator[tuple[int, Any]]:
    """Yield (line number, object) for each non-blank line; bad JSON lines are reported by line."""
    try:
        fh = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (pass --path to an existing file of the release)") from None
    with fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as err:
                checker.guard(str(lineno), lambda: checker.fail(f"line {lineno}", "(JSON syntax)", err.msg))


def hub_rows(hub_id: str, split: str | None, hub_kwargs: dict | None) -> Iterable[dict]:
    """Rows of a hub dataset through ``datasets.load_dataset`` (any builder, e.g. ``json`` on local files)."""
    import datasets  # heavy; only on this path

    try:
        ds = datasets.load_dataset(hub_id, split=split or "train", **(hub_kwargs or {}))
    except Exception as err:  # network, missing split, bad files: say which source failed
        raise DataError(
            f"{HUB_PREFIX}{hub_id}: could not load split {split or 'train'!r}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            " (check the id and split, or download the release and pass its file with --path)"
        ) from None
    return ds


def resolve(path: str | os.PathLike | None, dataset: str, default: str) -> Path:
    """``path``, or the dataset's ``default`` file in the data root (a one-line error naming the download command)."""
    if path is None:
        return require(dataset, default)[0]
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: file not found (pass --path to an existing file of the release)")
    return p


def normalize_question(text: str) -> str:
    """Lower-cased, punctuation and extra spaces removed: two spellings of one question compare equal."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def unique(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        item = item.strip()
        if item and item not in seen:
            seen[item] = None
    return tuple(seen)
