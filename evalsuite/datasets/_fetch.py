"""The data root, and filling it from a mirror.

Datasets are never shipped with the package. They are read from the data root
(``$EVALSUITE_DATA``, default ``~/.cache/evalsuite/data``), one folder per dataset, each
with its NOTICE file. ``evalsuite datasets download NAME --mirror DIR_OR_URL`` fills it:
every file is checked against the sha256 and size in ``manifest.json`` (checksums only,
shipped with the package), written beside its final name as ``<name>.part`` and renamed
into place only once it is whole and verified. An interrupted transfer leaves the
``.part`` file, and the next download resumes from its end (an HTTP ``Range`` request,
or a seek into a local mirror file). A mirror URL may carry ``user:password@``: it is sent
as HTTP basic authentication and never printed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from ..errors import ConfigError, DataError

MANIFEST = Path(__file__).with_name("manifest.json")
DOWNLOAD_HINT = "evalsuite datasets download {name} --mirror DIR_OR_URL"
CHUNK = 1 << 20


def data_root() -> Path:
    """Where datasets are read from: ``$EVALSUITE_DATA``, else ``~/.cache/evalsuite/data``."""
    return Path(os.environ.get("EVALSUITE_DATA") or Path.home() / ".cache" / "evalsuite" / "data").expanduser()


@lru_cache(maxsize=1)
def manifest() -> dict[str, dict[str, dict]]:
    """``{dataset: {file name: {"sha256": ..., "size": ...}}}`` of the files the data root holds."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))["datasets"]


def names() -> tuple[str, ...]:
    return tuple(manifest())


def require(dataset: str, *files: str) -> tuple[Path, ...]:
    """Paths of ``files`` of ``dataset`` in the data root; a one-line error naming the download command if absent."""
    folder = data_root() / dataset
    paths = tuple(folder / f for f in files)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"dataset {dataset!r} is not in the data root {data_root()} ({missing[0].name} missing): "
            f"run `{DOWNLOAD_HINT.format(name=dataset)}` (`make setup` does it from ../shared/data), "
            "set EVALSUITE_DATA to a folder that holds it, or pass a file with --path"
        )
    return paths


@dataclass(frozen=True)
class FileResult:
    dataset: str
    name: str
    path: Path
    status: str  # "present" (already verified), "fetched", "resumed"
    bytes: int


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _is_url(mirror: str) -> bool:
    return urllib.parse.urlparse(mirror).scheme in ("http", "https")


_URL_WITH_USER = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it removed."""
    return _URL_WITH_USER.sub(r"\1", text)


def without_credentials(url: str) -> str:
    """A URL as it may be printed: without user name, password, query or fragment."""
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc.rpartition("@")[2], p.path, "", ""))


def basic_auth(url: str) -> tuple[str, str | None]:
    """(the URL without ``user:password@``, the ``Authorization`` header value those credentials make, or None)."""
    p = urllib.parse.urlsplit(url)
    if p.username is None:
        return url, None
    clean = urllib.parse.urlunsplit((p.scheme, p.netloc.rpartition("@")[2], p.path, p.query, p.fragment))
    user, password = urllib.parse.unquote(p.username), urllib.parse.unquote(p.password or "")
    return clean, "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _source_name(mirror: str) -> str:
    """The mirror as it may be printed."""
    return without_credentials(mirror) if _is_url(mirror) else mirror


def _request(mirror: str, rel: str, offset: int) -> urllib.request.Request:
    """The GET request for ``rel``: credentials of the mirror URL go into a basic-auth header
    that is not forwarded on redirects; ``Range`` asks for the rest of a part file."""
    query = urllib.parse.urlsplit(mirror).query
    _, auth = basic_auth(mirror)
    base = without_credentials(mirror).rstrip("/")
    request = urllib.request.Request(base + "/" + urllib.parse.quote(rel) + (f"?{query}" if query else ""))
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    if auth is not None:
        request.add_unredirected_header("Authorization", auth)
    return request


class _Interrupted(Exception):
    """The transfer stopped before the server sent all it announced."""


def _http_blocks(response) -> Iterator[bytes]:
    """Blocks of the response body; raises :class:`_Interrupted` when the connection drops early
    (``http.client`` returns a short body without error when the server closes halfway).
    A body with neither length nor chunks ends when the connection closes: there a short file
    is taken for an interrupted transfer too (see ``fetch_file``)."""
    try:
        for block in iter(lambda: response.read(CHUNK), b""):
            yield block
    except (OSError, http.client.HTTPException) as err:
        raise _Interrupted(f"{type(err).__name__}") from None
    if response.length:  # bytes the server announced but never sent
        raise _Interrupted(f"connection closed with {response.length} announced bytes unsent")


def _open_source(
    mirror: str, rel: str, offset: int, timeout: float
) -> tuple[Iterator[bytes], int, Callable[[], None], bool]:
    """(blocks from ``offset`` on, the offset they really start at, close, whether the end of the
    blocks is known to be the end of the file). A server that ignores ``Range`` sends the whole
    file; the caller then starts over."""
    if not _is_url(mirror):
        src = Path(mirror).expanduser() / rel
        try:
            fh = src.open("rb")
        except FileNotFoundError:
            raise DataError(
                f"mirror {mirror} has no {rel}; check the mirror folder (it should hold <dataset>/<file>)"
            ) from None
        fh.seek(offset)
        return iter(lambda: fh.read(CHUNK), b""), offset, fh.close, True
    try:
        response = urllib.request.urlopen(_request(mirror, rel, offset), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the part file is already whole (or longer): start over
            return iter(()), -1, (lambda: None), True
        raise DataError(
            f"mirror {_source_name(mirror)}: {rel}: HTTP {err.code} {err.reason}; check the mirror URL"
            + (" and its user name and password" if err.code in (401, 403) else "")
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = redact(str(getattr(err, "reason", err)))
        raise DataError(
            f"mirror {_source_name(mirror)}: {rel}: cannot connect ({reason}); check the URL and the network"
        ) from None
    except ValueError as err:  # e.g. a port that is not a number
        raise ConfigError(
            f"--mirror {_source_name(mirror)}: not a usable URL ({type(err).__name__}); check its spelling"
        ) from None
    start = 0
    if response.status == 206:
        start = _range_start(response.headers.get("Content-Range", ""))
        if not 0 <= start <= offset:
            response.close()
            raise DataError(
                f"mirror {_source_name(mirror)}: {rel}: the server answered a resume request with the range "
                f"{response.headers.get('Content-Range')!r}, not from byte {offset}; delete the .part file and "
                f"run again"
            )
    sized = response.length is not None or bool(getattr(response, "chunked", False))
    return _http_blocks(response), start, response.close, sized


def _range_start(content_range: str) -> int:
    """First byte of ``Content-Range: bytes a-b/n`` (-1 when it cannot be read)."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", content_range)
    return int(m.group(1)) if m else -1


def fetch_file(
    dataset: str, name: str, mirror: str, *, root: Path | None = None, progress: bool = True, timeout: float = 60.0
) -> FileResult:
    """Bring one file of the manifest into the data root, verified; resumes a ``.part`` left by an interrupted run."""
    expected = manifest()[dataset][name]
    root = root or data_root()
    final = root / dataset / name
    if final.is_file() and final.stat().st_size == expected["size"] and sha256_of(final) == expected["sha256"]:
        return FileResult(dataset, name, final, "present", 0)
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if offset > expected["size"]:
        part.unlink()
        offset = 0
    if offset == expected["size"] and sha256_of(part) == expected["sha256"]:  # whole, only not renamed yet
        os.replace(part, final)
        return FileResult(dataset, name, final, "resumed", 0)
    blocks, start, close, sized = _open_source(mirror, f"{dataset}/{name}", offset, timeout)
    if start < 0:  # the server says the part file already holds everything it has
        start = offset
    resumed = start > 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=expected["size"], initial=start, unit="B", unit_scale=True, desc=f"{dataset}/{name}", leave=False
        )
    written = 0
    stopped = None
    try:
        with part.open("r+b" if start and part.exists() else "wb") as fh:
            fh.seek(start)
            fh.truncate()
            try:
                for block in blocks:
                    fh.write(block)
                    written += len(block)
                    if bar is not None:
                        bar.update(len(block))
            except _Interrupted as err:
                stopped = str(err)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        close()
        if bar is not None:
            bar.close()
    size = part.stat().st_size
    if stopped is None and not sized and size < expected["size"]:
        stopped = "the connection closed before the end of the file"
    if stopped is not None and size < expected["size"]:
        raise DataError(
            f"{dataset}/{name}: transfer from {_source_name(mirror)} stopped at {size} of {expected['size']} bytes "
            f"({stopped}); run the same download command again to resume"
        )
    digest = sha256_of(part)
    if size != expected["size"] or digest != expected["sha256"]:
        part.unlink()
        raise DataError(
            f"{dataset}/{name}: checksum mismatch ({size} bytes, sha256 {digest[:12]}...; expected "
            f"{expected['size']} bytes, "
            f"{expected['sha256'][:12]}...): the mirror {_source_name(mirror)} holds a different file; "
            "fix the mirror or use another one"
        )
    os.replace(part, final)
    return FileResult(dataset, name, final, "resumed" if resumed else "fetched", written)


def download(
    which: str = "all", mirror: str | None = None, *, root: Path | None = None, progress: bool = True
) -> list[FileResult]:
    """Fill the data root with dataset ``which`` (or ``all``) from ``mirror``, a folder or an http(s) URL."""
    known = names()
    if which != "all" and which not in known:
        raise ConfigError(f"unknown dataset {which!r} for download: choose one of {', '.join(known)} or all")
    if not mirror:
        raise ConfigError(
            "--mirror is required: a folder or http(s) URL holding <dataset>/<file> (e.g. ../shared/data)"
        )
    if not _is_url(mirror) and not Path(mirror).expanduser().is_dir():
        raise ConfigError(f"--mirror {redact(mirror)}: no such folder; give a folder or an http(s) URL")
    results = []
    for dataset in known if which == "all" else (which,):
        for name in manifest()[dataset]:
            results.append(fetch_file(dataset, name, mirror, root=root, progress=progress))
    return results
