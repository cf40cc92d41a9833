"""Stored artifacts that prove they are whole: adapters, retrieval indexes, materialized models.

An entry is a folder ``<cache root>/<store>/<name>/`` of payload files and one manifest (JSON)
that records the sha256 and size of every payload file under ``"files"``.

- :func:`write_entry` fills a temporary folder beside the final name, records the files, writes
  the manifest last and renames the folder into place: a writer killed at any moment leaves
  no entry (only a ``.<name>.<random>.tmp`` folder that ``evalsuite cache prune --orphans``
  removes).
- :func:`open_entry` is a hit: it verifies size and sha256 of every recorded file, once per
  process per entry (then trusts it), and stamps the manifest's modification time as the
  entry's last use. An entry that fails (unreadable manifest, a file missing, resized or
  changed) is moved to ``<cache root>/quarantine/<store>/<name>-<timestamp>/`` with one
  warning naming both paths, and the caller builds it again.
- Request aliases (:func:`find_request`, :func:`remember_request`): a small file
  ``<store>/requests/<request key>.json`` naming the content key an earlier, identical request
  led to, so a repeated request finds its entry without recomputing the content key.

:func:`file_sha256` is the size+mtime-memoized digest of a (large) file, kept in the
``digests`` store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from .records import stable_hash
from .storage import DiskFull, atomic_dir, atomic_write_json, cache_dir, file_lock, quarantine

MANIFEST = "manifest.json"
REQUESTS = "requests"  # the folder of request aliases inside a store


class Corrupt(Exception):
    """An entry failed verification; the message says why (one line)."""


class Unrecorded(Corrupt):
    """The entry has no manifest with checksums (written by an older evalsuite)."""


# -- digests -------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read now."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_digests: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered by path, size and mtime (in this process and in the ``digests``
    store), so a file is read once until it changes."""
    path = Path(path).resolve()
    st = path.stat()
    ident = (str(path), st.st_size, st.st_mtime_ns)
    if ident in _digests:
        return _digests[ident]
    memo = cache_dir("digests") / f"{stable_hash(list(ident))}.json"
    try:
        digest = json.loads(memo.read_text())["sha256"]
        with contextlib.suppress(OSError):
            os.utime(memo)  # its last use, for `evalsuite cache prune`
    except (OSError, ValueError, KeyError, TypeError):
        digest = sha256_file(path)
        atomic_write_json(memo, {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest})
    _digests[ident] = digest
    return digest


def files_digest(files: Iterable[tuple[str, str | os.PathLike]]) -> str:
    """One hash of several ``(name, path)`` files: the names and the contents (memoized digests)."""
    return stable_hash(sorted([name, file_sha256(p)] for name, p in files), length=32)


# -- entries -------------------------------------------------------------------------------------------


def payload_record(folder: str | os.PathLike, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256": ..., "size": ...}}`` of the files ``names`` (relative paths) in ``folder``."""
    folder = Path(folder)
    out = {}
    for name in sorted(names):
        p = folder / name
        out[name] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    return out


def _payload_names(folder: Path, manifest: str) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != manifest)


_verified: dict[str, tuple[int, int, int]] = {}  # entry path -> (inode, device, size) of the manifest it verified
_verified_lock = threading.Lock()


def _manifest_ident(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_dev, st.st_size


def verify_entry(path: str | os.PathLike, manifest: str = MANIFEST, *, fresh: bool = False) -> dict[str, Any]:
    """The manifest of the entry at ``path`` after checking every recorded file's size and sha256.

    Checked once per process per entry (the same manifest file is then trusted), unless
    ``fresh``. Raises :class:`Corrupt` with the reason.
    """
    path = Path(path)
    mpath = path / manifest
    try:
        ident = _manifest_ident(mpath)
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Unrecorded(f"no {manifest}") from None
    except (OSError, ValueError) as err:
        raise Corrupt(f"{manifest} is unreadable: {type(err).__name__}") from None
    files = data.get("files") if isinstance(data, dict) else None
    if isinstance(data, dict) and "files" not in data:
        raise Unrecorded(f"{manifest} records no file checksums (written by an older evalsuite)")
    if not isinstance(files, dict) or not files:
        raise Corrupt(f"{manifest} has no valid file list")
    with _verified_lock:
        if not fresh and _verified.get(str(path)) == ident:
            return data
    root = path.resolve()
    for name, rec in sorted(files.items()):
        p = path / name
        if root not in p.resolve().parents:
            raise Corrupt(f"{manifest} names a file outside the entry: {name!r}")
        try:
            size = p.stat().st_size
        except OSError:
            raise Corrupt(f"{name} is missing") from None
        if not isinstance(rec, dict) or size != rec.get("size"):
            raise Corrupt(
                f"{name} is {size} bytes, its manifest says {rec.get('size') if isinstance(rec, dict) else '?'}"
            )
        try:
            digest = sha256_file(p)
        except OSError as err:
            raise Corrupt(f"{name} is unreadable: {err.strerror or type(err).__name__}") from None
        if digest != rec.get("sha256"):
            raise Corrupt(f"{name} does not match the sha256 in its manifest")
    with _verified_lock:
        _verified[str(path)] = ident
    return data


def forget(path: str | os.PathLike) -> None:
    """Drop the per-process memo of ``path`` (the next hit verifies it again)."""
    with _verified_lock:
        _verified.pop(str(Path(path)), None)


def touch(path: str | os.PathLike, manifest: str = MANIFEST) -> None:
    """Stamp the entry's last use (its manifest's modification time)."""
    with contextlib.suppress(OSError):
        os.utime(Path(path) / manifest)


Legacy = Callable[[Path], "tuple[dict[str, Any], Iterable[str]]"]


def open_entry(
    path: str | os.PathLike,
    store: str,
    *,
    manifest: str = MANIFEST,
    what: str | None = None,
    legacy: Legacy | None = None,
) -> dict[str, Any] | None:
    """The manifest of the whole, verified entry at ``path``, its last use stamped; or None.

    None when there is no entry, or when it failed verification: then it was moved to the
    quarantine with one warning (under the entry's lock, so never while a writer replaces it),
    and the caller builds it again. An entry written before manifests recorded checksums is
    kept when ``legacy(path)`` vouches for it (a structural check of its files, raising
    :class:`Corrupt` otherwise) and returns ``(manifest fields, payload file names)``: its
    checksums are recorded now.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = verify_entry(path, manifest)
    except Corrupt:
        with file_lock(path):  # the writers' lock: an entry being replaced is whole again once it is free
            if not path.exists():
                return None
            try:
                data = verify_entry(path, manifest, fresh=True)
            except Corrupt as err:
                forget(path)
                data = None
                if isinstance(err, Unrecorded) and legacy is not None:
                    try:
                        fields, names = legacy(path)
                        data = {**fields, "files": payload_record(path, names)}
                        atomic_write_json(path / manifest, data)
                        verify_entry(path, manifest, fresh=True)
                    except Corrupt as problem:
                        err, data = problem, None
                    except (OSError, ValueError) as problem:
                        err, data = Corrupt(f"{type(problem).__name__}: {problem}"), None
                if data is None:
                    quarantine([path], store, what or f"stored {store} entry", str(err))
                    return None
    touch(path, manifest)
    return data


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why a .safetensors file is not whole (header unreadable, shorter or longer than its tensors), or None."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if n <= 0 or 8 + n > size:
                return f"{path.name}: header runs past the end of the file"
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as err:
        return f"{path.name}: {type(err).__name__}"
    ends = [
        t["data_offsets"][1]
        for k, t in header.items()
        if k != "__metadata__"
        and isinstance(t, dict)
        and isinstance(t.get("data_offsets"), list)
        and len(t["data_offsets"]) == 2
    ]
    if size != 8 + n + max(ends, default=0):
        return f"{path.name} is {size} bytes, its header describes {8 + n + max(ends, default=0)}"
    return None


def write_entry(
    final: str | os.PathLike,
    fill: Callable[[Path], dict[str, Any]],
    *,
    manifest: str = MANIFEST,
    payload: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Build an entry: ``fill(tmp)`` writes the payload into a temporary folder and returns the
    manifest fields; the files (``payload``, default every file but the manifest) are recorded
    under ``"files"``, the manifest is written last, the folder renamed to ``final``.

    Call it holding ``file_lock(final)``. Returns the manifest written.
    """
    final = Path(final)
    with atomic_dir(final) as tmp:
        data = dict(fill(tmp))
        names = list(payload) if payload is not None else _payload_names(tmp, manifest)
        data["files"] = payload_record(tmp, names)
        atomic_write_json(tmp / manifest, data)
    forget(final)
    with contextlib.suppress(OSError):
        with _verified_lock:
            _verified[str(final)] = _manifest_ident(final / manifest)  # just written and hashed: trusted
    return data


# -- request aliases -----------------------------------------------------------------------------------


def find_request(store_root: str | os.PathLike, request: str) -> str | None:
    """The content key an earlier identical request led to, or None."""
    try:
        data = json.loads((Path(store_root) / REQUESTS / f"{request}.json").read_text(encoding="utf-8"))
        key = data["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return key if isinstance(key, str) and key and "/" not in key and not key.startswith(".") else None


def remember_request(
    store_root: str | os.PathLike, request: str, key: str, parts: dict[str, Any] | None = None
) -> None:
    """Note that ``request`` leads to the entry ``key`` (atomically; a failure only costs speed)."""
    with contextlib.suppress(OSError, DiskFull):
        atomic_write_json(Path(store_root) / REQUESTS / f"{request}.json", {"key": key, "request": parts or {}})
