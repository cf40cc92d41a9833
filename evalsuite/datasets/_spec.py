"""A dataset as the matrix names it: :class:`DatasetSpec`, its identity, and :func:`load_spec`.

A matrix entry is a string (``"qasper"``: the study's data in the data root) or a table::

    {name = "support-faq", path = "data/faq.jsonl", corpus = "data/kb.jsonl"}
    {name = "qasper-full", format = "qasper", path = "/data/qasper-test-v0.3.json"}
    {name = "faq", path = "hub:org/faq", columns = {question = "q", answers = "a"}, split = "test"}

``spec.identity()`` hashes what changes the loaded data: the format, options, split and
column mapping, and the content of the files (sha256, remembered by path, size and
modification time so a large file is read once); for the data-root default the sha256s of
the download manifest; for a hub dataset its id (and local data files' content).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, DataError
from ..records import Dataset, stable_hash
from ..splits import split
from ..storage import atomic_write_json, cache_dir
from ._common import HUB_PREFIX
from ._fetch import data_root, manifest, redact
from ._registry import get_loader, is_format
from .subset import subset_corpus

SPEC_KEYS = ("name", "format", "path", "corpus", "columns", "split", "options")
HUB_OPTIONS = ("data_files", "revision", "config")  # passed to datasets.load_dataset for hub: paths
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
DEFAULT_FORMAT = "qa"
# a corpus subset for a quick run, (eval questions, pool questions, distractor passages, split seed):
# the passages those questions need plus seeded distractors (:mod:`evalsuite.datasets.subset`); set by
# a matrix's corpus_subset, handled here for every format, never passed to a loader
SUBSET_OPTION = "subset"


def _pairs(value: Any, what: str, name: str) -> tuple[tuple[str, Any], ...]:
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        try:
            items = [tuple(p) for p in value]
        except TypeError:
            raise ConfigError(
                f"dataset {name!r}: {what} must be a table of name = value, got {type(value).__name__}"
            ) from None
        if any(len(p) != 2 for p in items):
            raise ConfigError(f"dataset {name!r}: {what} must be a table of name = value")
    out = []
    for key, val in items:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"dataset {name!r}: {what} has a key {key!r} that is not a name")
        if isinstance(val, list):
            val = tuple(val)
        if isinstance(val, tuple):
            if not all(isinstance(v, (str, int, float, bool)) for v in val):
                raise ConfigError(
                    f"dataset {name!r}: {what} {key!r} must be a string, number, true/false or a list of those"
                )
        elif not isinstance(val, (str, int, float, bool)):
            raise ConfigError(
                f"dataset {name!r}: {what} {key!r} must be a string, number, true/false or a list of those"
            )
        out.append((key, val))
    return tuple(sorted(out))


@dataclass(frozen=True)
class DatasetSpec:
    """Which data a dataset of the matrix is, and how to read it.

    ``name``: short name used in cell ids and reports (lower-case letters, digits, ``-``, ``_``).
    ``format``: a registered loader; default ``name`` when that is a registered format, else ``qa``.
    ``path``: a file or folder, or ``hub:<id>``; None reads the format's files in the data root.
    ``corpus``: a separate passage file (formats that take one, e.g. ``qa``).
    ``columns``: (field, column) pairs mapping record fields to the file's or hub's columns.
    ``split``: the hub split (default train). ``options``: (name, value) pairs the format reads;
    a hub path also takes ``data_files``, ``revision`` and ``config``.
    """

    name: str
    format: str | None = None
    path: str | None = None
    corpus: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    split: str | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ConfigError(
                f"dataset name {name!r} must be lower-case letters, digits, '-' or '_' (it goes into cell ids)"
            )
        for key in ("path", "corpus"):
            value = getattr(self, key)
            if value is not None:
                if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
                    raise ConfigError(
                        f"dataset {name!r}: {key} must be a file path" + (" or hub:<id>" if key == "path" else "")
                    )
                self._set(key, str(value))
        if self.split is not None and (not isinstance(self.split, str) or not self.split.strip()):
            raise ConfigError(f"dataset {name!r}: split must be a split name such as 'test'")
        if self.format is None:
            if is_format(name):
                self._set("format", name)
            elif self.path is None:
                raise ConfigError(
                    f"unknown dataset {name!r}: choose one of qasper, nq, bioasq, or give a path to a file "
                    f"of your own (format {DEFAULT_FORMAT}, or set format)"
                )
            else:
                self._set("format", DEFAULT_FORMAT)
        elif not isinstance(self.format, str):
            raise ConfigError(f"dataset {name!r}: format must be a string, got {type(self.format).__name__}")
        info = get_loader(self.format)
        self._set("columns", _pairs(self.columns, "columns", name))
        self._set("options", _pairs(self.options, "options", name))
        if self.columns:
            if not info.columns:
                raise ConfigError(
                    f"dataset {name!r}: format {self.format!r} takes no column mapping (the qa format does)"
                )
            for field, column in self.columns:
                if field not in info.columns:
                    raise ConfigError(
                        f"dataset {name!r}: columns names an unknown field {field!r}: choose from "
                        f"{', '.join(info.columns)}"
                    )
                if not isinstance(column, str) or not column.strip():
                    raise ConfigError(f"dataset {name!r}: columns {field!r} must name a column")
        allowed = info.options + (HUB_OPTIONS if self.hub else ()) + (SUBSET_OPTION,)
        for key, _ in self.options:
            if key not in allowed:
                choices = f"choose from {', '.join(allowed)}" if allowed else f"format {self.format!r} takes none"
                raise ConfigError(f"dataset {name!r}: unknown option {key!r} ({choices})")
        if self.corpus is not None and not info.corpus:
            raise ConfigError(
                f"dataset {name!r}: format {self.format!r} takes no corpus file (its passages are in its own files)"
            )
        if self.split is not None and not self.hub:
            raise ConfigError(f"dataset {name!r}: split applies to hub:<id> paths only; a file is read whole")
        if self.path is None and not info.default_files:
            raise ConfigError(
                f"dataset {name!r}: format {self.format!r} needs a path (a file of your own, or hub:<id>)"
            )

    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)  # a frozen record, normalized once while it is made

    # --- reading a matrix entry ---------------------------------------------------------------
    @classmethod
    def parse(cls, entry: str | Mapping[str, Any], base_dir: str | os.PathLike = ".") -> DatasetSpec:
        """A spec from a matrix entry: a name, or a table with the keys of :data:`SPEC_KEYS`.

        Relative paths resolve against ``base_dir`` (the matrix file's folder); a missing file
        is a one-line error naming it."""
        if isinstance(entry, str):
            table: dict[str, Any] = {"name": entry}
        elif isinstance(entry, Mapping):
            table = dict(entry)
        else:
            raise ConfigError(
                f'dataset entry {entry!r}: write a name ("qasper") or a table ({{name = ..., path = ...}})'
            )
        label = repr(table.get("name")) if isinstance(table.get("name"), str) else str(dict(table))
        for key in table:
            if key not in SPEC_KEYS:
                raise ConfigError(f"dataset {label}: unknown key {key!r} (the keys are {', '.join(SPEC_KEYS)})")
        if "name" not in table:
            raise ConfigError(
                f"dataset entry {table}: 'name' is missing (a short name for cell ids, e.g. name = \"support-faq\")"
            )
        for key in ("name", "format", "path", "corpus", "split"):
            if key in table and not isinstance(table[key], str):
                raise ConfigError(f"dataset {label}: {key} must be a string, got {type(table[key]).__name__}")
        for key in ("columns", "options"):
            if key in table and not isinstance(table[key], Mapping):
                raise ConfigError(f'dataset {label}: {key} must be a table, e.g. {key} = {{question = "q"}}')
        base = Path(base_dir).expanduser()
        name = table["name"]
        for key in ("path", "corpus"):
            if key in table and not table[key].startswith(HUB_PREFIX):
                table[key] = str(_resolve(table[key], base, name, key))
        if (
            "options" in table
            and "data_files" in table["options"]
            and str(table.get("path", "")).startswith(HUB_PREFIX)
        ):
            options = dict(table["options"])
            files = options["data_files"]
            options["data_files"] = (
                [_resolve_pattern(f, base) for f in files] if isinstance(files, list) else _resolve_pattern(files, base)
            )
            table["options"] = options
        return cls(**table)

    # --- derived values -----------------------------------------------------------------------
    @property
    def hub(self) -> bool:
        return self.path is not None and self.path.startswith(HUB_PREFIX)

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def hub_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``datasets.load_dataset`` from the hub options."""
        out: dict[str, Any] = {}
        for key, value in self.options:
            if key in HUB_OPTIONS:
                out["name" if key == "config" else key] = list(value) if isinstance(value, tuple) else value
        return out

    def identity(self) -> str:
        """Stable hash of what changes the loaded data (not the name): format, options, split,
        columns, and the files' content (manifest sha256s for the data-root default)."""
        info = get_loader(self.format)
        options = [[k, _data_files_identity(v) if k == "data_files" else v] for k, v in self.options]
        body: dict[str, Any] = {"format": self.format, "options": options, "split": self.split, "columns": self.columns}
        if self.path is None:
            body["data"] = _data_root_identity(self.format, info.default_files)
        elif self.hub:
            body["hub"] = redact(self.path)
        else:
            body["data"] = content_digest(self.path)
        if self.corpus is not None:
            body["corpus"] = content_digest(self.corpus)
        return stable_hash(body, 32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as a report or a run configuration records it (URLs without credentials)."""
        data = dataclasses.asdict(self)
        data["columns"] = dict(self.columns)
        data["options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.options}
        return json.loads(redact(json.dumps(data)))


def _resolve(value: str, base: Path, name: str, key: str) -> Path:
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = base / p
    if not p.exists():
        where = f" (relative paths are read from {base})" if not Path(value).expanduser().is_absolute() else ""
        raise DataError(f"dataset {name!r}: {key} {p}: file not found{where}")
    return p


def _resolve_pattern(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or "://" in value or Path(value).expanduser().is_absolute():
        return value
    return str(base / value)


# --- content digests --------------------------------------------------------------------------

_digests: dict[tuple[str, int, int], str] = {}


def content_digest(path: str | os.PathLike) -> str:
    """sha256 of a file (or of a folder's files, names and contents), remembered by path, size and
    modification time in this process and in the cache, so an unchanged file is read once."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DataError(f"{p}: file not found (check the dataset's path and corpus)") from None
    if p.is_dir():
        parts = sorted((str(f.relative_to(p)), content_digest(f)) for f in p.rglob("*") if f.is_file())
        return stable_hash(parts, 64)
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key in _digests:
        return _digests[key]
    memo = cache_dir("datasets", "digests") / f"{stable_hash(list(key))}.json"
    try:
        digest = json.loads(memo.read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        h = hashlib.sha256()
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        atomic_write_json(memo, {"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": digest})
    _digests[key] = digest
    return digest


def _data_files_identity(value: Any) -> Any:
    files = list(value) if isinstance(value, tuple) else [value]
    out = []
    for f in files:
        f = redact(str(f))
        out.append([f, content_digest(f)] if "://" not in f and Path(f).is_file() else f)
    return out


def _data_root_identity(format: str, files: tuple[str, ...]) -> dict[str, str]:
    """The manifest sha256 of each default file; a file the manifest does not list is hashed."""
    known = manifest().get(format, {})
    return {f: known[f]["sha256"] if f in known else content_digest(data_root() / format / f) for f in files}


# --- loading ----------------------------------------------------------------------------------

_memo: dict[tuple[DatasetSpec, bool, str], tuple[str, Dataset]] = {}


def load_spec(spec: DatasetSpec, *, skip_invalid: bool = False) -> Dataset:
    """The dataset ``spec`` names, loaded once per process (again if its files change).

    ``Dataset.name`` is ``spec.name``; ``Dataset.source`` says where it came from, without
    credentials. Invalid records raise a one-line :class:`DataError` naming file, record and
    field, or with ``skip_invalid`` are left out and listed in ``Dataset.invalid``."""
    if not isinstance(spec, DatasetSpec):
        raise ConfigError(
            f"load_spec takes a DatasetSpec, got {type(spec).__name__} (use DatasetSpec.parse(entry, base_dir))"
        )
    identity = spec.identity()
    key = (spec, skip_invalid, str(data_root()) if spec.path is None else "")
    hit = _memo.get(key)
    if hit is not None and hit[0] == identity:
        return hit[1]
    subset = dict(spec.options).get(SUBSET_OPTION)
    if subset is not None:
        whole = load_spec(
            dataclasses.replace(spec, options=tuple(o for o in spec.options if o[0] != SUBSET_OPTION)),
            skip_invalid=skip_invalid,
        )
        ds = _subset(whole, subset)
        _memo[key] = (identity, ds)
        return ds
    ds = get_loader(spec.format).loader(spec, skip_invalid=skip_invalid)
    if not isinstance(ds, Dataset):
        raise ConfigError(
            f"the loader of format {spec.format!r} returned {type(ds).__name__}, not an evalsuite.records.Dataset"
        )
    source = redact(ds.source)
    if not ds.examples:
        raise DataError(f"{source}: no valid questions (check the file is a {spec.format} file)")
    ds = dataclasses.replace(ds, name=spec.name, source=source)
    _memo[key] = (identity, ds)
    return ds


def _subset(whole: Dataset, subset: Any) -> Dataset:
    """``whole`` with only the passages its first eval and pool questions need, plus seeded distractors."""
    try:
        eval_n, pool_n, distractors, seed = (int(v) for v in subset)
    except (TypeError, ValueError):
        raise ConfigError(
            f"dataset {whole.name!r}: option {SUBSET_OPTION!r} = {subset!r} must be "
            "[eval questions, pool questions, distractor passages, split seed]"
        ) from None
    parts = split(whole, seed=seed)
    return subset_corpus(whole, [*parts.eval[:eval_n], *parts.pool[:pool_n]], distractors=distractors, seed=seed)
