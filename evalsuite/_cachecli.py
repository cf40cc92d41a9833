"""``evalsuite cache info`` and ``evalsuite cache prune``: what the cache holds, and keeping it bounded.

The cache root (``$EVALSUITE_CACHE``, default ``~/.cache/evalsuite``) holds one folder per store,
each declared once in :data:`evalsuite.storage.STORES` (its kind, what it holds, its last use, its
sqlite files); this module reads that list and knows nothing else:

- kind ``entries`` (``models``, ``adapters``, ``index``, ``qualification``): folders or files; an
  entry's last use is its manifest's modification time, stamped on every hit;
- kind ``sqlite`` (``generations``, ``judge``): rows, pruned by each row's ``used`` time; a file
  whose rows carry no time (``judge/vectors.sqlite``) is one bucket last used at its last write;
- kind ``digests`` (``digests``, ``datasets/digests``): remembered sha256 of files;
- kind ``quarantine``: entries that failed verification, kept for inspection;
- a store declared never pruned (``throughput.json``) is shown and never touched.

``prune`` removes, least recently used first: entries not used within ``--older-than``, then
more until the stores fit in ``--max-size``; with ``--orphans`` also what nothing will use
again (adapters of other library versions, models of other package versions, request aliases
and locks of missing entries, unfinished ``.tmp`` writes, digests of changed files, the
quarantine). It never removes an entry a running process holds (each entry's lock is taken
without waiting; held ones are skipped) nor one used in the last ten minutes, and never
touches the data root or anything it does not know.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import datasets
from .errors import ConfigError
from .storage import STORES, SqliteFile, cache_root, try_lock

# a folder of the cache root not declared in STORES is shown by `info` and never pruned
MANIFESTS = ("manifest.json", "evalsuite-materialized.json")
RECENT = 600.0  # seconds: an entry used this recently may be about to be loaded by a running process
HOUR = 3600.0

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str, option: str = "--max-size") -> int:
    """``500M``, ``20G``, ``1.5T``, ``4096`` (bytes; K/M/G/T are powers of 1024) -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.I)
    if not m:
        raise ConfigError(f"{option} {text!r} is not a size: use a number with K, M, G or T, e.g. 500M or 20G")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def parse_age(text: str, option: str = "--older-than") -> float:
    """``45s``, ``90m``, ``12h``, ``30d``, ``2w`` -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text), re.I)
    if not m:
        raise ConfigError(f"{option} {text!r} is not an age: use a number with s, m, h, d or w, e.g. 12h or 30d")
    return float(m.group(1)) * _AGES[m.group(2).lower()]


def human_size(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


@dataclass
class Entry:
    """One removable thing of a store: an entry, an alias, a lock, an unfinished write, sqlite rows."""

    store: str
    path: Path
    size: int
    last_use: float
    kind: str = "entry"  # entry | rows | alias | lock | tmp | digest | quarantined
    orphan: str | None = None  # why nothing will use it again
    lock: Path | None = None  # file_lock(lock) guards it
    rows: tuple[str, float, float] | None = None  # (table, from, to) of a bucket of sqlite rows
    count: int = 1
    mark: int | None = None  # rows without a time: the largest rowid seen (a later write shows as a new one)

    def describe(self) -> str:
        if self.kind == "rows":
            return f"{self.path} ({self.count} rows last used {_when(self.rows[1])} - {_when(self.rows[2])})"
        return str(self.path)


def _tree_size(path: Path) -> int:
    try:
        if path.is_symlink() or path.is_file():
            return path.lstat().st_size
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
    except OSError:
        return 0


def _newest(path: Path) -> float:
    try:
        if path.is_file():
            return path.stat().st_mtime
        return max([p.stat().st_mtime for p in path.rglob("*") if p.is_file()] or [path.stat().st_mtime])
    except OSError:
        return 0.0


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tmp_owner(folder: Path, name: str) -> Path | None:
    """The entry an unfinished write ``.<name>.<random>.tmp`` (or a replaced entry being removed,
    ``.<name>.<random>.old``) was for."""
    m = re.fullmatch(r"\.(.+)\.[^.]+\.(?:tmp|old)", name)
    return folder / m.group(1) if m else None


def _entry_orphan(store: str, path: Path, manifest: dict | None) -> str | None:
    if manifest is None:
        return "no readable manifest" if STORES[store].needs_manifest else None
    if store == "adapters":
        recorded = (manifest.get("key_parts") or {}).get("versions") or {}
        changed = [
            f"{k} {v} (installed {_installed(k) or 'none'})" for k, v in sorted(recorded.items()) if _installed(k) != v
        ]
        if changed:
            return "made with " + ", ".join(changed)
    if store == "models" and manifest.get("package"):
        have = _installed(manifest["package"])
        if have != manifest.get("package_version"):
            return f"made from {manifest['package']} {manifest.get('package_version')} (installed {have or 'none'})"
    return None


def _folder_entries(store: str, folder: Path) -> list[Entry]:
    out: list[Entry] = []
    children = sorted(folder.iterdir()) if folder.is_dir() else []
    names = {c.name for c in children}
    for child in children:
        name = child.name
        if name.endswith(".lock") or name.endswith(".lock.holder"):
            base = name[: -len(".lock")] if name.endswith(".lock") else name[: -len(".lock.holder")]
            if base not in names:
                out.append(
                    Entry(
                        store,
                        child,
                        _tree_size(child),
                        _newest(child),
                        "lock",
                        "lock of an entry that is gone",
                        lock=folder / base,
                    )
                )
            continue
        if name.endswith((".tmp", ".old")):
            owner = _tmp_owner(folder, name)
            out.append(
                Entry(
                    store,
                    child,
                    _tree_size(child),
                    _newest(child),
                    "tmp",
                    "unfinished write" if name.endswith(".tmp") else "replaced entry not yet removed",
                    lock=owner if owner is not None else child,
                )
            )
            continue
        if name.startswith("."):
            continue
        if name == "requests" and child.is_dir():
            for alias in sorted(child.glob("*.json")):
                target = (_read_json(alias) or {}).get("key") if isinstance(_read_json(alias), dict) else None
                orphan = None if target and (folder / str(target)).is_dir() else "alias of an entry that is gone"
                out.append(Entry(store, alias, _tree_size(alias), alias.stat().st_mtime, "alias", orphan, lock=alias))
            continue
        if store == "models" and name == "gguf" and child.is_dir():
            out.extend(_folder_entries(store, child))
            continue
        manifest_path = next((child / m for m in MANIFESTS if (child / m).is_file()), None) if child.is_dir() else None
        if child.is_dir() and manifest_path is None and (child / "meta.json").is_file():
            manifest_path = child / "meta.json"  # an index stored before manifests recorded checksums
        manifest = _read_json(manifest_path) if manifest_path else ({} if child.is_file() else None)
        last = manifest_path.stat().st_mtime if manifest_path else _newest(child)
        orphan = _entry_orphan(store, child, manifest if isinstance(manifest, dict) else None)
        out.append(Entry(store, child, _tree_size(child), last, "entry", orphan, lock=child))
    return out


def _digest_entries(store: str, folder: Path) -> list[Entry]:
    out = []
    for memo in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _read_json(memo)
        orphan = None
        try:
            st = os.stat(data["path"])
            if (st.st_size, st.st_mtime_ns) != (data["size"], data["mtime_ns"]):
                orphan = "its file changed"
        except (TypeError, KeyError):
            orphan = "unreadable"
        except OSError:
            orphan = "its file is gone"
        out.append(Entry(store, memo, _tree_size(memo), memo.stat().st_mtime, "digest", orphan))
    for tmp in sorted(folder.glob(".*.tmp")) if folder.is_dir() else []:
        out.append(Entry(store, tmp, _tree_size(tmp), _newest(tmp), "tmp", "unfinished write"))
    return out


def _quarantine_entries(folder: Path) -> list[Entry]:
    out = []
    for store in sorted(folder.iterdir()) if folder.is_dir() else []:
        for item in sorted(store.iterdir()) if store.is_dir() else [store]:
            out.append(Entry("quarantine", item, _tree_size(item), _newest(item), "quarantined", "quarantined"))
    return out


def _sqlite_connect(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=timeout, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    return conn


def _last_write(path: Path) -> float:
    """The last write of a sqlite file: its own modification time or its WAL's, read before opening it."""
    return max(
        (p.stat().st_mtime for p in (path, Path(f"{path}-wal")) if p.is_file() and p.stat().st_size), default=0.0
    )


def _used_column(spec: SqliteFile, columns: set[str]) -> str | None:
    """The column holding each row's last use in this file (None: the rows carry no time)."""
    return next((c for c in (spec.used, spec.legacy) if c is not None and c in columns), None)


def _sqlite_entries(store: str, folder: Path) -> list[Entry]:
    return [e for spec in STORES[store].sqlite for e in _sqlite_file_entries(store, folder / spec.file, spec)]


def _sqlite_file_entries(store: str, path: Path, spec: SqliteFile) -> list[Entry]:
    if not path.is_file():
        return []
    table = spec.table
    written = _last_write(path)
    try:
        conn = _sqlite_connect(path)
        try:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            used = _used_column(spec, columns)
            page = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = (
                conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
            )
            text_columns = [c for c in columns if c not in ("created", "used", "score", "logprobs_missing")]
            width = " + ".join(f"COALESCE(LENGTH({c}), 0)" for c in sorted(text_columns)) or "0"
            when = f"COALESCE({used}, 0)" if used is not None else repr(float(written))
            buckets = conn.execute(
                f"SELECT CAST({when} / {HOUR} AS INTEGER) AS hour, COUNT(*), SUM({width} + 64),"
                f" MIN({when}), MAX({when}), MAX(rowid) FROM {table} GROUP BY hour ORDER BY hour"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return [
            Entry(store, path, _tree_size(path), path.stat().st_mtime, "entry", "not a readable sqlite file", lock=path)
        ]
    used_bytes = page * pages + sum(_tree_size(Path(f"{path}{s}")) for s in ("-wal", "-shm"))
    total = sum(b[2] or 0 for b in buckets) or 1
    return [
        Entry(
            store,
            path,
            int(used_bytes * (b[2] or 0) / total),
            float(b[4]),
            "rows",
            rows=(table, float(b[3]), float(b[4])),
            count=int(b[1]),
            mark=None if used is not None else int(b[5]),
        )
        for b in buckets
    ]


def scan(root: Path | None = None) -> tuple[list[Entry], list[tuple[str, int]]]:
    """Every removable thing of the known stores, and (name, size) of everything else in the root."""
    root = Path(root) if root is not None else cache_root()
    entries: list[Entry] = []
    others: list[tuple[str, int]] = []
    if not root.is_dir():
        return entries, others
    data_root = _data_root()
    for child in sorted(root.iterdir()):
        store = STORES.get(child.name)
        if store is not None and not store.pruned and child.is_dir() == (store.kind != "file"):
            continue  # shown by `info`, never a removable thing
        if (
            store is None
            or store.kind == "file"
            or not child.is_dir()
            or (data_root is not None and _same_or_inside(data_root, child))
        ):
            others.append((child.name, _tree_size(child)))
        elif store.kind == "entries":
            entries.extend(_folder_entries(child.name, child))
        elif store.kind == "sqlite":
            entries.extend(_sqlite_entries(child.name, child))
        elif store.kind == "digests":
            entries.extend(_digest_entries(child.name, child / store.digests if store.digests else child))
        elif store.kind == "quarantine":
            entries.extend(_quarantine_entries(child))
    return entries, others


def _data_root() -> Path:
    return datasets.data_root().resolve()


def _same_or_inside(data_root: Path, folder: Path) -> bool:
    folder = folder.resolve()
    return data_root == folder or folder in data_root.parents or data_root in folder.parents


def _summary(mine: list[Entry]) -> dict[str, Any]:
    main = [e for e in mine if e.kind in ("entry", "rows", "digest", "quarantined")]
    return {
        "size": sum(e.size for e in mine),
        "entries": sum(e.count for e in main),
        "orphans": sum(e.count for e in mine if e.orphan),
        "oldest_use": min((e.rows[1] if e.rows else e.last_use for e in main), default=None),
        "newest_use": max((e.last_use for e in main), default=None),
    }


def info(root: Path | None = None) -> dict[str, Any]:
    """Size, entry count and oldest/newest last use of each store (and of each sqlite file of a store
    of several), with what it holds, its kind and whether it is ever pruned."""
    root = Path(root) if root is not None else cache_root()
    entries, others = scan(root)
    stores: dict[str, dict[str, Any]] = {}
    for name, store in STORES.items():
        path = root / name
        if not store.pruned:
            if path.exists() and path.is_dir() == (store.kind != "file"):
                stores[name] = {
                    "size": _tree_size(path),
                    "entries": 1 if store.kind == "file" else sum(1 for _ in path.iterdir()),
                    "orphans": 0,
                    "oldest_use": None,
                    "newest_use": _newest(path),
                }
            else:
                continue
        else:
            mine = [e for e in entries if e.store == name]
            if not mine and not path.exists():
                continue
            stores[name] = _summary(mine)
            if len(store.sqlite) > 1:
                stores[name]["files"] = {
                    f.file: _summary([e for e in mine if e.path.name == f.file]) for f in store.sqlite
                }
        stores[name].update(kind=store.kind, holds=store.holds, last_use=store.last_use, pruned=store.pruned)
    return {
        "root": str(root),
        "stores": stores,
        "total": sum(s["size"] for s in stores.values()),
        "other": [{"name": n, "size": s} for n, s in others],
    }


@dataclass
class Plan:
    remove: list[tuple[Entry, str]] = field(default_factory=list)  # (entry, why)
    kept_recent: int = 0


def plan(
    entries: list[Entry],
    *,
    older_than: float | None = None,
    max_size: int | None = None,
    orphans: bool = False,
    now: float | None = None,
) -> Plan:
    """What to remove, least recently used first (pure: nothing is touched)."""
    now = time.time() if now is None else now
    chosen: dict[int, str] = {}
    if orphans:
        for i, e in enumerate(entries):
            if e.orphan and (
                e.kind in ("quarantined", "digest", "alias") or now - e.last_use > RECENT or e.kind == "lock"
            ):
                chosen[i] = f"orphan: {e.orphan}"
    recent = 0
    removable = [(i, e) for i, e in enumerate(entries) if e.kind in ("entry", "rows", "digest", "quarantined", "tmp")]
    if older_than is not None:
        for i, e in removable:
            if i not in chosen and e.last_use < now - max(older_than, RECENT):
                chosen[i] = f"not used for {(now - e.last_use) / 86400:.1f} days"
    if max_size is not None:
        total = sum(e.size for e in entries) - sum(entries[i].size for i in chosen)
        for i, e in sorted(removable, key=lambda ie: ie[1].last_use):
            if total <= max_size:
                break
            if i in chosen:
                continue
            if now - e.last_use < RECENT:
                recent += 1
                continue
            chosen[i] = f"least recently used ({_when(e.last_use)}) to fit {human_size(max_size)}"
            total -= e.size
    # request aliases and locks of entries chosen go with them
    gone = {entries[i].path for i in chosen if entries[i].kind == "entry"}
    for i, e in enumerate(entries):
        if i not in chosen and e.kind == "alias":
            target = _read_json(e.path)
            if isinstance(target, dict) and (e.path.parent.parent / str(target.get("key"))) in gone:
                chosen[i] = "alias of a removed entry"
    return Plan(
        [(entries[i], why) for i, why in sorted(chosen.items(), key=lambda kv: entries[kv[0]].last_use)], recent
    )


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove(entry: Entry) -> bool:
    """Remove one planned thing; False when a running process holds it."""
    if entry.kind == "rows":
        with try_lock(entry.path) as free:  # the cache's own lock (held while a corrupt file is being replaced)
            if not free:
                return False
            conn = _sqlite_connect(entry.path, timeout=60.0)
            try:
                return _delete_rows(conn, entry)
            finally:
                conn.close()
    if entry.lock is None:
        _remove_path(entry.path)
        return True
    with try_lock(entry.lock) as free:
        if not free:
            return False
        _remove_path(entry.path)
        if entry.kind in ("entry", "lock"):
            with contextlib.suppress(OSError):
                Path(str(entry.lock) + ".lock").unlink()  # held by us: a waiter that opened it looks again
    return True


def _delete_rows(conn: sqlite3.Connection, entry: Entry) -> bool:
    """Delete the rows ``entry`` stands for; False when rows without a time were written since the scan."""
    table, _, upto = entry.rows
    spec = next(f for f in STORES[entry.store].sqlite if f.file == entry.path.name)
    column = _used_column(spec, {r[1] for r in conn.execute(f"PRAGMA table_info({table})")})
    if column is not None:
        conn.execute(f"DELETE FROM {table} WHERE COALESCE({column}, 0) <= ?", (upto,))
        return True
    conn.execute("BEGIN IMMEDIATE")  # no other writer until the check and the delete are done
    try:
        count, mark = conn.execute(f"SELECT COUNT(*), MAX(rowid) FROM {table}").fetchone()
        if (count, mark) != (entry.count, entry.mark):
            conn.execute("ROLLBACK")
            return False
        conn.execute(f"DELETE FROM {table}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return True


def _compact(paths: set[Path]) -> None:
    """Give the space of deleted rows back (VACUUM); skipped when another process is writing."""
    for path in sorted(paths):
        with contextlib.suppress(sqlite3.Error):
            conn = _sqlite_connect(path, timeout=5.0)
            try:
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()


def prune(
    root: Path | None = None,
    *,
    older_than: float | None = None,
    max_size: int | None = None,
    orphans: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Remove (or with ``dry_run`` list) what :func:`plan` chooses; held entries are skipped and listed."""
    root = Path(root) if root is not None else cache_root()
    entries, _ = scan(root)
    chosen = plan(entries, older_than=older_than, max_size=max_size, orphans=orphans)
    removed, busy = [], []
    compact: set[Path] = set()
    for entry, why in chosen.remove:
        row = {"store": entry.store, "path": entry.describe(), "size": entry.size, "why": why}
        if dry_run:
            removed.append(row)
        elif _remove(entry):
            removed.append(row)
            if entry.kind == "rows":
                compact.add(entry.path)
        else:
            busy.append(row)
    if compact:
        _compact(compact)
    before = sum(e.size for e in entries)
    freed = sum(r["size"] for r in removed)
    return {
        "root": str(root),
        "dry_run": dry_run,
        "removed": removed,
        "in_use": busy,
        "kept_recent": chosen.kept_recent,
        "size_before": before,
        "freed": freed,
        "size_after": before - (0 if dry_run else freed),
    }


# -- command line ------------------------------------------------------------------------------------


def add_cli(sub) -> None:
    p = sub.add_parser("cache", help="what the cache holds (info) and keeping it bounded (prune)")
    csub = p.add_subparsers(dest="cache_cmd", required=True)
    i = csub.add_parser("info", help="size, entries and last use of each store of the cache")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)
    pr = csub.add_parser(
        "prune",
        help="remove least recently used entries, orphans and the quarantine",
        description="Remove least recently used cache entries. Entries a running process holds, entries used in "
        "the last ten minutes and the data root are never removed.",
    )
    pr.add_argument("--older-than", metavar="AGE", help="remove entries not used for AGE (e.g. 12h, 30d)")
    pr.add_argument(
        "--max-size",
        metavar="SIZE",
        help="then remove least recently used entries until the stores fit in SIZE (e.g. 500M, 20G)",
    )
    pr.add_argument(
        "--orphans",
        action="store_true",
        help="remove what nothing will use again: adapters of other library "
        "versions, aliases and locks of missing entries, unfinished writes, stale digests, the quarantine",
    )
    pr.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=_prune)


def _info(args: argparse.Namespace) -> int:
    data = info()
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    print(f"cache root {data['root']}: {human_size(data['total'])}")
    print(f"  {'store':<18}{'size':>9}{'entries':>9}{'orphans':>9}  {'oldest use':<17}  newest use")
    for name, s in data["stores"].items():
        rows = [(STORES[name].label, s)] + [(f"  {file}", f) for file, f in s.get("files", {}).items()]
        for label, row in rows:
            print(
                f"  {label:<18}{human_size(row['size']):>9}{row['entries']:>9}{row['orphans']:>9}  "
                f"{_when(row['oldest_use']):<17}  {_when(row['newest_use'])}"
                + ("" if s["pruned"] else "  (never pruned)")
            )
    data_root = _data_root()
    for other in data["other"]:
        inside = data_root is not None and _same_or_inside(data_root, Path(data["root"], other["name"]))
        what = "the data root" if inside else "not a cache store"
        print(f"  {other['name']:<18}{human_size(other['size']):>9}  ({what}: never pruned)")
    print("what each store holds:")
    for name in data["stores"]:
        print(f"  {STORES[name].label:<18}{STORES[name].holds}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    older = parse_age(args.older_than, "--older-than") if args.older_than is not None else None
    size = parse_size(args.max_size, "--max-size") if args.max_size is not None else None
    if older is None and size is None and not args.orphans:
        raise ConfigError(
            "cache prune needs --older-than AGE, --max-size SIZE or --orphans (add --dry-run to look first)"
        )
    out = prune(older_than=older, max_size=size, orphans=args.orphans, dry_run=args.dry_run)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for row in out["removed"]:
        print(f"{verb} {human_size(row['size']):>8}  {row['store']:<12} {row['path']}  ({row['why']})")
    for row in out["in_use"]:
        print(f"kept     {human_size(row['size']):>8}  {row['store']:<12} {row['path']}  (held by a running process)")
    print(
        f"{verb} {len(out['removed'])} item(s), {human_size(out['freed'])}; the stores now hold "
        f"{human_size(out['size_after'])}"
        + (f"; {out['kept_recent']} entries used in the last ten minutes were kept" if out["kept_recent"] else "")
    )
    return 0
