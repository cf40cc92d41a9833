"""Reading released files and checking their records, shared by the dataset loaders."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..errors import ConfigError, DataError
from ..records import InvalidRecord
from ._fetch import basic_auth, redact, require

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


def _open_text(path: Path):
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (pass --path to an existing file of the release)") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a file (pass --path to a file)") from None


def _syntax_error(path: Path, err: json.JSONDecodeError) -> DataError:
    return DataError(
        f"{path}: record at line {err.lineno} column {err.colno}: field (JSON syntax): {err.msg} (the file is "
        f"not valid JSON)"
    )


def read_json_or_lines(path: Path, checker: Checker) -> tuple[str, Any]:
    """A JSON file, told apart from JSON lines by its content, whatever its suffix.

    Returns ``("document", value)`` for a file holding one JSON value (a release file, or a
    JSON-lines file of a single line), or ``("lines", [(line number, object), ...])`` for JSON
    lines, as ``datasets.Dataset.to_json`` writes them. A bad line is reported by its number.
    """
    with _open_text(path) as fh:
        try:
            text = fh.read()
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: record at byte {err.start}: field (encoding): not UTF-8 text") from None
    try:
        return "document", json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg != "Extra data":
            raise _syntax_error(path, err) from None
    return "lines", list(_lines(text.split("\n"), checker))


def _lines(lines: Iterable[str], checker: Checker) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            checker.guard(str(lineno), lambda msg=err.msg: checker.fail(f"line {lineno}", "(JSON syntax)", msg))


def read_csv(path: Path, checker: Checker) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number where the record starts, row) of a CSV file with a header line.

    Empty cells are left out of the row, so an optional column may be blank."""
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip().lstrip("\ufeff") for h in header]
            if len(set(header)) != len(header):
                dup = next(h for h in header if header.count(h) > 1)
                checker.guard("line 1", lambda: checker.fail("line 1", dup, "column named twice in the header"))
                return
            start = reader.line_num + 1
            for cells in reader:
                lineno, start = start, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(header):
                    checker.guard(
                        str(lineno),
                        lambda: checker.fail(
                            f"line {lineno}", "(CSV)", f"{len(cells)} cells but the header names {len(header)} columns"
                        ),
                    )
                    continue
                yield lineno, {h: c for h, c in zip(header, cells) if c.strip()}
        except csv.Error as err:
            raise DataError(
                f"{path}: record at line {reader.line_num}: field (CSV syntax): {err} (the file is not valid CSV)"
            ) from None
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: record at byte {err.start}: field (encoding): not UTF-8 text") from None


def hub_rows(hub_id: str, split: str | None, hub_kwargs: dict | None) -> Iterable[dict]:
    """Rows of a hub dataset through ``datasets.load_dataset`` (any builder, e.g. ``json`` on local files)."""
    import datasets  # heavy; only on this path

    try:
        ds = datasets.load_dataset(hub_id, split=split or "train", **_credentials_as_headers(hub_kwargs or {}))
    except Exception as err:  # network, missing split, bad files: say which source failed
        reason = redact(str(err).splitlines()[0]) if str(err) else ""
        raise DataError(
            f"{HUB_PREFIX}{hub_id}: could not load split {split or 'train'!r}: {type(err).__name__}: {reason}"
            " (check the id and split, or download the release and pass its file with --path)"
        ) from None
    return ds


def _credentials_as_headers(kwargs: dict) -> dict:
    """Move ``user:password@`` out of http(s) data-file URLs into a basic-auth header (fsspec's
    ``storage_options``), so the URLs that ``datasets`` records in its cache carry no credentials."""
    files = kwargs.get("data_files")
    if not files:
        return kwargs
    items = [files] if isinstance(files, str) else list(files)
    headers: dict[str, str] = {}
    clean = []
    for item in items:
        scheme = item.split("://", 1)[0].lower() if isinstance(item, str) and "://" in item else ""
        if scheme in ("http", "https"):
            item, auth = basic_auth(item)
            if auth is not None:
                if headers.get(scheme, auth) != auth:
                    raise ConfigError(
                        f"data files {redact(str(files))}: give all {scheme} files the same user and password"
                    )
                headers[scheme] = auth
        clean.append(item)
    if not headers:
        return kwargs
    storage = dict(kwargs.get("storage_options") or {})
    for scheme, auth in headers.items():
        options = dict(storage.get(scheme) or {})
        options["headers"] = {**(options.get("headers") or {}), "Authorization": auth}
        storage[scheme] = options
    return {**kwargs, "data_files": clean[0] if isinstance(files, str) else clean, "storage_options": storage}


def hub_source(path: str, split: str | None, hub_kwargs: dict | None) -> str:
    """Where a hub dataset came from, as it may be printed: id, split and any data files (URLs without credentials)."""
    parts = [f"split {split or 'train'}"]
    for key in ("name", "revision", "data_files"):
        value = (hub_kwargs or {}).get(key)
        if value:
            parts.append(
                f"{'config' if key == 'name' else key} "
                f"{redact(value if isinstance(value, str) else ','.join(map(str, value)))}"
            )
    return f"{path} ({', '.join(parts)})"


def resolve(path: str | os.PathLike | None, dataset: str, default: str) -> Path:
    """``path``, or the dataset's ``default`` file in the data root (a one-line error naming the download command)."""
    if path is None:
        return require(dataset, default)[0]
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: file not found (pass --path to an existing file of the release)")
    return p


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def unique(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        item = item.strip()
        if item and item not in seen:
            seen[item] = None
    return tuple(seen)
