"""Atomic writes, file locks, the cache directory, the quarantine and self-healing sqlite files,
shared by every stage.

Locks. :func:`file_lock` is an exclusive ``flock`` on ``<path>.lock``: the kernel drops it when
its process dies, so a process killed while holding it never blocks the next run. While it is
held, ``<path>.lock.holder`` (JSON) names the holder: pid, host, command line and since when.
Waiting ends after ``timeout`` seconds (argument, else ``$EVALSUITE_LOCK_TIMEOUT``, else two
hours) with a one-line :class:`LockTimeout` naming the lock file, its holder and the fix.

Quarantine. A stored file or folder found corrupt is moved (never deleted) to
``<cache root>/quarantine/<store>/<name>-<timestamp>`` with one :class:`CorruptionWarning`
naming both paths; the caller then builds it again.

Stores. :data:`STORES` declares every store of the cache root once (a :class:`Store`: name, kind,
what it holds, its last use, its sqlite files); :func:`cache_dir` refuses any other name, and
``evalsuite cache info`` / ``cache prune`` read the same list.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import ConfigError, EvalsuiteError

DEFAULT_LOCK_TIMEOUT = 2 * 3600.0  # seconds; a fine-tune of a 7B model on a CPU can hold a lock for an hour
LAST_USE_RESOLUTION = 3600.0  # a sqlite row's last use is rewritten at most this often (reads stay reads)
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


class LockTimeout(EvalsuiteError):
    """A file lock was not free within its timeout; the message names the lock, its holder and the fix."""


class DiskFull(EvalsuiteError):
    """The device ran out of space while writing; the message names the file. Finished files are kept."""


class CorruptionWarning(UserWarning):
    """A stored artifact failed verification and was moved to the quarantine; it is built again."""


# -- the stores of the cache root -------------------------------------------------------------------

STORE_KINDS = ("entries", "sqlite", "digests", "quarantine", "file")


@dataclass(frozen=True)
class SqliteFile:
    """A sqlite file of a store: the table ``evalsuite cache prune`` deletes rows from, and the column
    holding each row's last use (``legacy``: the one read in files made before it existed). ``used``
    None: the rows carry no time; the file's last write stands for all of them."""

    file: str
    table: str
    used: str | None = "used"
    legacy: str | None = "created"


@dataclass(frozen=True)
class Store:
    """One store of the cache root: a folder (or, kind ``file``, a file) named ``name``.

    ``kind``: ``entries`` (folders or files, one per key; last use: the manifest's modification time,
    stamped on every hit, else the file's), ``sqlite`` (the files in ``sqlite``, pruned by rows),
    ``digests`` (remembered sha256 of files, in ``digests`` below the store folder), ``quarantine``
    (what failed verification) or ``file`` (one file of the root). ``holds`` and ``last_use`` say in
    one line each what it holds and what its last use is; ``pruned`` False: ``cache prune`` never
    touches it. ``needs_manifest``: an entry without a readable manifest is an orphan.
    """

    name: str
    kind: str
    holds: str
    last_use: str
    sqlite: tuple[SqliteFile, ...] = ()
    digests: str = ""
    pruned: bool = True
    needs_manifest: bool = False

    def __post_init__(self) -> None:
        if self.kind not in STORE_KINDS:
            raise ValueError(f"store {self.name!r}: kind {self.kind!r} is not one of {', '.join(STORE_KINDS)}")
        if bool(self.sqlite) != (self.kind == "sqlite"):
            raise ValueError(f"store {self.name!r}: sqlite files are declared for (and only for) kind sqlite")

    @property
    def label(self) -> str:
        """Its name as shown: a folder with a trailing slash."""
        return self.name if self.kind == "file" else self.name + "/"


_STORES = (
    Store(
        "models",
        "entries",
        "bundled models de-quantized into model folders, and assembled GGUF files in gguf/",
        "the manifest's modification time, stamped on every load",
        needs_manifest=True,
    ),
    Store(
        "adapters",
        "entries",
        "fine-tuned LoRA adapters, with request aliases in requests/",
        "the manifest's modification time, stamped on every load",
        needs_manifest=True,
    ),
    Store(
        "index",
        "entries",
        "retrieval indexes (chunks, vectors, faiss index) of a corpus and an embedder",
        "the manifest's modification time, stamped on every load",
        needs_manifest=True,
    ),
    Store(
        "qualification",
        "entries",
        "judge qualification results, one JSON file per judge and configuration",
        "the file's modification time (when it was measured)",
    ),
    Store(
        "generations",
        "sqlite",
        "model answers by model identity, prompt and settings",
        "each row's `used` time, rewritten at most hourly",
        sqlite=(SqliteFile("generations.sqlite", "generations"),),
    ),
    Store(
        "judge",
        "sqlite",
        "judge verdicts (judge.sqlite) and sentence vectors of the learned judge (vectors.sqlite)",
        "each verdict's `used` time, rewritten at most hourly; the vectors: vectors.sqlite's last write",
        sqlite=(SqliteFile("judge.sqlite", "runs"), SqliteFile("vectors.sqlite", "vectors", used=None, legacy=None)),
    ),
    Store(
        "digests",
        "digests",
        "remembered sha256 of large files (model weights, index files) by path, size and time",
        "the memo's modification time, stamped on every read",
    ),
    Store(
        "datasets",
        "digests",
        "remembered sha256 of dataset files (in digests/) by path, size and time",
        "when the memo was written (reads do not stamp it; a pruned memo costs one read of its file)",
        digests="digests",
    ),
    Store(
        "quarantine",
        "quarantine",
        "stored files and folders that failed verification, by store, kept for inspection",
        "the newest file's modification time",
    ),
    Store(
        "throughput.json",
        "file",
        "measured speeds of this machine, used to estimate a run's duration",
        "its last write",
        pruned=False,
    ),
)
STORES: dict[str, Store] = {store.name: store for store in _STORES}  # every store of the cache root, in order


class UnknownStore(EvalsuiteError):
    """A cache folder was asked for under a name that is not a declared store."""


def cache_dir(*parts: str) -> Path:
    """The evalsuite cache root (``$EVALSUITE_CACHE`` or ``~/.cache/evalsuite``), or a folder in it.

    The first part names the store: one of :data:`STORES`, else :class:`UnknownStore`.
    """
    if parts and (parts[0] not in STORES or STORES[parts[0]].kind == "file"):
        folders = ", ".join(s.name for s in _STORES if s.kind != "file")
        raise UnknownStore(
            f"cache_dir({parts[0]!r}): {parts[0]!r} is not a store folder of the cache (declared: {folders}); "
            "declare it in evalsuite.storage.STORES (name, kind, what it holds, its last use) so that "
            "`evalsuite cache info` and `evalsuite cache prune` know it"
        )
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_root() -> Path:
    """The evalsuite cache root, without creating it."""
    return Path(os.environ.get("EVALSUITE_CACHE") or Path.home() / ".cache" / "evalsuite").expanduser()


# -- atomic writes -----------------------------------------------------------------------------------


def disk_full(path: str | os.PathLike, err: BaseException) -> DiskFull:
    return DiskFull(
        f"no space left on the device writing {path} ({os.strerror(errno.ENOSPC)}): free space "
        "(e.g. `evalsuite cache prune --max-size 20G`) or move EVALSUITE_CACHE / the report folder to a larger disk; "
        "finished results are kept and a rerun resumes"
    )


def is_disk_full(err: BaseException | None) -> bool:
    """An out-of-space error: OSError ENOSPC/EDQUOT, or a library error that carries its text (safetensors)."""
    if err is None:
        return False
    if isinstance(err, OSError) and err.errno in _NO_SPACE:
        return True
    return os.strerror(errno.ENOSPC) in str(err) or is_disk_full(err.__cause__)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part.

    Out of space: :class:`DiskFull` naming ``path``; the old file (if any) is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if is_disk_full(err):
            raise disk_full(path, err) from err
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success rename it to ``final``.

    On error the temporary folder is removed and ``final`` is left as it was (out of space:
    :class:`DiskFull` naming ``final``). A process killed inside leaves only the temporary
    folder (``.<name>.<random>.tmp``), which no reader takes for an entry.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        old = None
        if final.exists():  # move the old entry aside in one step: a reader never sees it half deleted
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(err) or is_disk_full(err.__context__):
            raise disk_full(final, err) from err
        raise


# -- file locks --------------------------------------------------------------------------------------


def lock_timeout(timeout: float | None = None) -> float:
    """``timeout`` if given, else ``$EVALSUITE_LOCK_TIMEOUT`` (seconds), else two hours."""
    if timeout is not None:
        return max(0.0, float(timeout))
    raw = os.environ.get("EVALSUITE_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(
            f"EVALSUITE_LOCK_TIMEOUT={raw!r} is not a number of seconds >= 0: set e.g. EVALSUITE_LOCK_TIMEOUT=7200"
        )
    return value


_held = threading.local()  # lock file -> [fd, depth, pid] of the locks this thread holds


def _held_locks() -> dict[str, list[int]]:
    locks = getattr(_held, "locks", None)
    if locks is None:
        locks = _held.locks = {}
    return locks


def _try_flock(lockfile: str) -> int | None:
    """An open descriptor holding the exclusive lock on ``lockfile``, or None when another process holds it."""
    import fcntl

    while True:
        fd = os.open(lockfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        # The file may have been removed (and made again) between open and flock: lock the one the name points at.
        try:
            here, there = os.fstat(fd), os.stat(lockfile)
            if (here.st_ino, here.st_dev) == (there.st_ino, there.st_dev):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _command_line() -> str:
    """This process's command line, one line, without values of options that look secret."""
    words, hide = [], False
    for word in [os.path.basename(sys.executable or "python")] + sys.argv:
        if hide:
            words.append("***")
            hide = False
            continue
        word = re.sub(r"://[^/@\s]+@", "://", word)  # user:password@ in URLs
        name, eq, _ = word.partition("=")
        if re.search(r"key|token|secret|password", name, re.I):
            if eq:
                word = f"{name}=***"
            elif word.startswith("-"):
                hide = True
        words.append(word)
    line = " ".join(words).replace("\n", " ")
    return line if len(line) <= 300 else line[:297] + "..."


def _write_holder(lockfile: str) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command_line(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "started": time.time(),
    }
    holder = Path(lockfile + ".holder")
    fd, tmp = tempfile.mkstemp(prefix=f".{holder.name}.", suffix=".tmp", dir=holder.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.replace(tmp, holder)
    except OSError:  # the record is a courtesy: never fail the work for it
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(path: str | os.PathLike) -> dict[str, Any] | None:
    """The recorded holder of ``file_lock(path)`` (pid, host, command, since, alive), or None.

    ``alive`` is False when the recorded process is gone (a stale record: the lock itself died
    with it), None when it runs on another host and cannot be checked from here.
    """
    try:
        record = json.loads(Path(str(path) + ".lock.holder").read_text(encoding="utf-8"))
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    record["alive"] = pid_alive(pid) if record.get("host") == socket.gethostname() else None
    return record


def _timeout_message(lockfile: str, waited: float) -> str:
    base = lockfile[: -len(".lock")] if lockfile.endswith(".lock") else lockfile
    holder = lock_holder(base)
    if holder is None:
        who = "held by a process that left no record"
        fix = "find it with `fuser " + lockfile + "`"
    elif holder["alive"] is False:
        who = (
            f"held by a process that left no record (the recorded holder, pid {holder['pid']}, "
            f"`{holder.get('command', '?')}`, has exited)"
        )
        fix = "find it with `fuser " + lockfile + "`"
    else:
        where = "" if holder["alive"] else f" on host {holder.get('host')}"
        who = f"held by pid {holder['pid']}{where} since {holder.get('since', '?')}: `{holder.get('command', '?')}`"
        fix = f"wait for it to finish or stop it (kill {holder['pid']})"
    return (
        f"waited {waited:.0f} s for the lock {lockfile}, {who}; {fix}, "
        "or wait longer with EVALSUITE_LOCK_TIMEOUT=<seconds>"
    )


def _acquire(lockfile: str, limit: float) -> int | None:
    """Take the lock (waiting up to ``limit`` seconds): its descriptor; None when held by this thread already."""
    mine = _held_locks().get(lockfile)
    if mine is not None and mine[2] == os.getpid():
        mine[1] += 1
        return None
    start = time.monotonic()
    delay = 0.01
    while True:
        fd = _try_flock(lockfile)
        if fd is not None:
            break
        waited = time.monotonic() - start
        if waited >= limit:
            raise LockTimeout(_timeout_message(lockfile, waited))
        time.sleep(min(delay, max(0.0, limit - waited)))
        delay = min(delay * 2, 0.5)
    _held_locks()[lockfile] = [fd, 1, os.getpid()]
    _write_holder(lockfile)
    return fd


def _release(lockfile: str) -> None:
    held = _held_locks()
    mine = held[lockfile]
    mine[1] -= 1
    if mine[1] > 0:
        return
    del held[lockfile]
    with contextlib.suppress(OSError):
        os.unlink(lockfile + ".holder")
    os.close(mine[0])  # closing the descriptor releases the flock


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout: float | None = None) -> Iterator[None]:
    """An inter-process lock (also across pytest-xdist workers) held on ``path + '.lock'``.

    Re-entrant within a thread. ``timeout`` in seconds (None: ``$EVALSUITE_LOCK_TIMEOUT``, else
    two hours); when it passes, :class:`LockTimeout` names the lock, its holder and the fix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lockfile = str(path) + ".lock"
    _acquire(lockfile, lock_timeout(timeout))
    try:
        yield
    finally:
        _release(lockfile)


@contextlib.contextmanager
def try_lock(path: str | os.PathLike) -> Iterator[bool]:
    """``file_lock(path)`` if it is free right now: yields True while held, False (holding nothing) when busy."""
    lockfile = str(path) + ".lock"
    if not Path(path).parent.is_dir():
        yield True  # nothing there to hold
        return
    try:
        _acquire(lockfile, 0.0)
    except LockTimeout:
        yield False
        return
    try:
        yield True
    finally:
        _release(lockfile)


# -- quarantine --------------------------------------------------------------------------------------


def quarantine(
    paths: Sequence[str | os.PathLike], store: str, what: str, reason: str, folder: str | os.PathLike | None = None
) -> Path | None:
    """Move ``paths`` (an entry: one folder or file, or a file with its companions) out of the way.

    They go to ``folder`` (default ``<cache root>/quarantine/<store>``) as ``<name>-<timestamp>``
    (several paths, e.g. a sqlite file and its WAL files: into that folder). One :class:`CorruptionWarning` names
    ``what``, the reason
    and where it went. Returns that path, or None when nothing was there any more.
    """
    group = len(paths) > 1
    paths = [Path(p) for p in paths if os.path.lexists(p)]
    if not paths:
        return None
    base = Path(folder) if folder is not None else cache_dir("quarantine", store)
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    name = paths[0].name.lstrip(".")
    dest = base / f"{name}-{stamp}"
    n = 1
    while os.path.lexists(dest):
        dest = base / f"{name}-{stamp}.{n}"
        n += 1
    if not group:
        os.replace(paths[0], dest)
    else:
        dest.mkdir()
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                os.replace(p, dest / p.name)
    warnings.warn(
        f"{what} {paths[0]} failed verification ({reason}); moved it to {dest} and building it again",
        CorruptionWarning,
        stacklevel=3,
    )
    return dest


# -- sqlite ------------------------------------------------------------------------------------------

_SQLITE_CORRUPT, _SQLITE_NOTADB, _SQLITE_FULL = 11, 26, 13


def _sqlite_code(err: sqlite3.Error) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _is_corrupt(err: sqlite3.Error) -> bool:
    code = _sqlite_code(err)
    if code is not None:
        return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(err).lower()
    return "malformed" in text or "not a database" in text


def _is_full(err: sqlite3.Error) -> bool:
    code = _sqlite_code(err)
    return code == _SQLITE_FULL if code is not None else "disk is full" in str(err).lower()


class Rows:
    """The rows a statement returned, read in full (a corrupt page shows while executing, not later)."""

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> tuple | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[tuple]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def __iter__(self):
        return iter(self.fetchall())


class Database:
    """A sqlite file shared by threads and processes (WAL, busy timeout, autocommit), with the
    numbered ``migrations`` not yet applied run in order (``PRAGMA user_version``).

    A corrupt file (at open or on any later statement) is moved to the quarantine with its WAL
    files and one warning, made again empty, and the statement runs again on the new file: a
    cache loses its rows, the run goes on. A file another process healed is followed. Out of
    space: :class:`DiskFull` naming the file.
    """

    def __init__(self, path: str | os.PathLike, migrations: Sequence[str], store: str | None = None) -> None:
        self.path = Path(path)
        self.migrations = tuple(migrations)
        self.store = store or self.path.parent.name
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._ident = self._file_ident()  # the file this object opened (to tell it from one healed meanwhile)
        with self._lock:
            try:
                self._connect()
            except sqlite3.DatabaseError as err:
                if not _is_corrupt(err):
                    raise
                self._heal(err)

    def _file_ident(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_dev

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for number, sql in enumerate(self.migrations[version:], start=version + 1):
                    conn.execute(sql)
                    conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._ident = self._file_ident()

    def _heal(self, err: sqlite3.Error) -> None:
        """Quarantine the corrupt file (unless another process already did) and open a new one."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        with file_lock(self.path):
            now = self._file_ident()
            if now is not None and (self._ident is None or now == self._ident):
                files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
                quarantine(files, self.store, f"the {self.store} cache", str(err).splitlines()[0])
            self._connect()

    def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """``work(connection)`` on the current file: a file another process healed is followed, a
        corrupt one is healed and ``work`` runs once more on the new file; out of space: DiskFull."""
        with self._lock:
            if self._conn is None:
                raise EvalsuiteError(f"{self.path}: the cache is closed")
            if self._file_ident() != self._ident:  # another process moved a corrupt file away and made a new one
                self._conn.close()
                self._connect()
            for attempt in (0, 1):
                try:
                    return work(self._conn)
                except sqlite3.DatabaseError as err:
                    if _is_full(err):
                        raise disk_full(self.path, err) from err
                    if attempt or not _is_corrupt(err):
                        raise
                    self._heal(err)
            raise AssertionError("unreachable")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        def one(conn: sqlite3.Connection) -> Rows:
            cur = conn.execute(sql, params)
            return Rows(cur.fetchall(), cur.rowcount)

        return self._run(one)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``sql`` once per row, all in one transaction: every row is written, or none (a corrupt
        file is healed and the batch written to the new one)."""

        def batch(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

        self._run(batch)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_sqlite(path: str | os.PathLike, migrations: tuple[str, ...], store: str | None = None) -> Database:
    """A :class:`Database` on ``path`` (``store``: its name in the quarantine, default the folder name)."""
    return Database(path, migrations, store)
