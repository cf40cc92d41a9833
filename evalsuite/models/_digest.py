"""sha256 of (large) files, remembered by path, size and mtime so a file is read once."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from evalsuite._io import atomic_write_json, cache_dir
from evalsuite.records import stable_hash


def file_sha256(path: str | os.PathLike) -> str:
    path = Path(path).resolve()
    st = path.stat()
    memo = cache_dir("digests") / f"{stable_hash([str(path), st.st_size, st.st_mtime_ns])}.json"
    try:
        return json.loads(memo.read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    atomic_write_json(memo, {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest})
    return digest


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja", ".gguf")


def dir_digest(path: str | os.PathLike) -> str:
    """Hash of the weight, config and tokenizer files directly in ``path`` (names and contents)."""
    path = Path(path)
    parts = sorted(
        (f.name, file_sha256(f)) for f in path.iterdir() if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES)
    )
    return stable_hash(parts, length=32)
