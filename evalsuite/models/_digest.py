"""sha256 of (large) files, remembered by path, size and mtime so a file is read once."""

from __future__ import annotations

import os
from pathlib import Path

from evalsuite.artifacts import MANIFEST, file_sha256
from evalsuite.records import stable_hash

__all__ = ["WEIGHT_SUFFIXES", "dir_digest", "file_sha256"]

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt", ".jinja", ".gguf")


def dir_digest(path: str | os.PathLike) -> str:
    """Hash of the weight, config and tokenizer files directly in ``path`` (names and contents); a
    store's ``manifest.json`` (when and how fast it was made) is bookkeeping, not the model."""
    path = Path(path)
    parts = sorted(
        (f.name, file_sha256(f))
        for f in path.iterdir()
        if f.is_file() and f.name.endswith(WEIGHT_SUFFIXES) and f.name != MANIFEST
    )
    return stable_hash(parts, length=32)
