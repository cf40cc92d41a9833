"""Indexes as shippable artifacts: build once, publish in a mirror, install without embedding.

    evalsuite index build bioasq --out MIRROR/indexes      # writes MIRROR/indexes/<dataset>-<key>/
    fetch_prebuilt_index("MIRROR", "bioasq")               # -> the installed store folder, or None

An exported index is the index store's payload (``index.faiss``, ``chunks.jsonl``) plus
``manifest.json``: the key and what it hashes (the corpus content, the
chunker settings, the embedder identity, which names its precision, and the index kind)
and the sha256 and size of every file. A mirror (a folder or an http(s) URL) holds the
folders under ``indexes/`` (or directly); :func:`fetch_prebuilt_index` computes the key
this machine would build, fetches the folder of that key when the mirror has one, verifies
every file and installs it into the index store, where ``build_index`` then finds it.
An embedder whose precision differs (bf16 here, int8 on a CPU without bf16) has another
key: publish one index per precision your machines use (``--precision``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import datasets
from ..artifacts import write_entry
from ..errors import DataError
from ..records import Dataset, stable_hash, to_dict
from ..storage import atomic_dir, atomic_write_json, cache_dir, file_lock
from .chunking import ChunkerSettings
from .embedder import Embedder
from .index import INDEX_FILES, build_index

MANIFEST = "manifest.json"
FILES = INDEX_FILES  # the store entry's payload; its manifest is written anew on install
FORMAT = 2


def corpus_hash(dataset: Dataset) -> str:
    """The content hash of a dataset's corpus, as the index store keys it."""
    return stable_hash([[p.id, p.doc_id, p.title, p.text] for p in dataset.passages], 32)


def index_key(dataset: Dataset, chunker: ChunkerSettings, embedder: Embedder, kind: str = "flat") -> str:
    """The index store key of ``dataset`` built with these settings (the key ``build_index`` uses)."""
    return stable_hash(
        {"corpus": corpus_hash(dataset), "chunker": to_dict(chunker), "embedder": embedder.identity, "kind": kind}, 24
    )


def store_folder(dataset: Dataset, key: str) -> Path:
    return cache_dir("index") / f"{dataset.name}-{key}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_index(
    dataset: Dataset,
    out: str | Path,
    *,
    chunker: ChunkerSettings = ChunkerSettings(),
    embedder: Embedder | None = None,
    kind: str = "flat",
    progress: bool = True,
) -> Path:
    """Build (or take from the store) the index of ``dataset`` and write it with its manifest
    to ``out/<dataset>-<key>/``; returns that folder."""
    from importlib.metadata import version

    embedder = embedder or Embedder()
    retriever = build_index(dataset, chunker=chunker, embedder=embedder, kind=kind, progress=progress)
    key = index_key(dataset, chunker, embedder, kind)
    if retriever.key != key:
        raise DataError(
            f"index store key {retriever.key} differs from the export key {key}: "
            "evalsuite.retrieval.prebuilt.index_key must follow build_index"
        )
    folder = Path(out).expanduser() / retriever.path.name
    with atomic_dir(folder) as tmp:
        files = {}
        for name in FILES:
            shutil.copyfile(retriever.path / name, tmp / name)
            files[name] = {"sha256": _sha256(tmp / name), "size": (tmp / name).stat().st_size}
        atomic_write_json(
            tmp / MANIFEST,
            {
                "format": FORMAT,
                "dataset": dataset.name,
                "key": key,
                "folder": folder.name,
                "corpus_hash": corpus_hash(dataset),
                "chunker": to_dict(chunker),
                "embedder": embedder.identity,
                "kind": kind,
                "chunks": len(retriever.chunks),
                "files": files,
                "faiss": version("faiss-cpu"),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
    return folder


def _is_url(mirror: str) -> bool:
    return urllib.parse.urlparse(mirror).scheme in ("http", "https")


def _shown(mirror: str) -> str:
    """The mirror as it may be printed: no user name, password or query."""
    if not _is_url(mirror):
        return mirror
    p = urllib.parse.urlparse(mirror)
    return f"{p.scheme}://{p.hostname}{':' + str(p.port) if p.port else ''}{p.path}"


def _read(mirror: str, rel: str, timeout: float) -> bytes | None:
    """The bytes of ``rel`` in the mirror, or None when the mirror has no such file."""
    if not _is_url(mirror):
        path = Path(mirror).expanduser() / rel
        return path.read_bytes() if path.is_file() else None
    url = mirror.rstrip("/") + "/" + urllib.parse.quote(rel)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise DataError(f"mirror {_shown(mirror)}: {rel}: HTTP {err.code} {err.reason}; check the mirror URL") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(
            f"mirror {_shown(mirror)}: {rel}: cannot connect ({reason}); check the URL and the network"
        ) from None


def fetch_prebuilt_index(
    mirror: str | Path,
    dataset: Dataset | str,
    *,
    chunker: ChunkerSettings = ChunkerSettings(),
    embedder: Embedder | str | None = None,
    kind: str = "flat",
    timeout: float = 60.0,
) -> Path | None:
    """Install the mirror's prebuilt index of ``dataset`` for these settings into the index store.

    Returns the store folder (also when it was already installed or built), or None when the
    mirror has no index of this key (then ``build_index`` embeds the corpus as before). A file
    whose sha256 or size differs from the manifest raises :class:`DataError` and installs nothing.
    """

    mirror = str(mirror)
    if isinstance(dataset, str):
        dataset = datasets.load(dataset)
    if not isinstance(embedder, Embedder):
        embedder = Embedder(embedder) if embedder else Embedder()
    key = index_key(dataset, chunker, embedder, kind)
    final = store_folder(dataset, key)
    if (final / "index.faiss").exists():
        return final
    folder = final.name
    for base in ("indexes/", ""):
        raw = _read(mirror, f"{base}{folder}/{MANIFEST}", timeout)
        if raw is not None:
            break
    else:
        return None
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise DataError(
            f"mirror {_shown(mirror)}: {base}{folder}/{MANIFEST} is not JSON; rebuild it with `evalsuite index build`"
        ) from None
    if manifest.get("key") != key or manifest.get("format") != FORMAT or set(manifest.get("files", {})) != set(FILES):
        raise DataError(
            f"mirror {_shown(mirror)}: {base}{folder}/{MANIFEST} does not describe index {key} "
            f"(format {FORMAT}, files {', '.join(FILES)}); rebuild it with `evalsuite index build`"
        )
    with file_lock(final):  # the lock build_index takes: never two writers of one store folder
        if (final / "index.faiss").exists():
            return final
        fetched: dict[str, bytes] = {}
        for name, expected in sorted(manifest["files"].items()):
            data = _read(mirror, f"{base}{folder}/{name}", timeout)
            if data is None:
                raise DataError(
                    f"mirror {_shown(mirror)} has no {base}{folder}/{name} although its manifest lists it; "
                    "publish the whole folder"
                )
            digest = hashlib.sha256(data).hexdigest()
            if len(data) != expected["size"] or digest != expected["sha256"]:
                raise DataError(
                    f"mirror {_shown(mirror)}: {base}{folder}/{name} has sha256 {digest[:12]}... "
                    f"({len(data)} bytes), the manifest {expected['sha256'][:12]}... "
                    f"({expected['size']} bytes); fix the mirror or rebuild the index"
                )
            fetched[name] = data

        def fill(tmp: Path) -> dict:
            for name, data in fetched.items():
                (tmp / name).write_bytes(data)
            keep = ("key", "dataset", "corpus_hash", "chunker", "embedder", "kind", "chunks")
            return {**{k: manifest[k] for k in keep if k in manifest}, "installed_from": _shown(mirror)}

        write_entry(final, fill, payload=FILES)  # the store's own manifest: verified on every later hit
    return final
