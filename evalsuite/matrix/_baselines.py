"""Stored baselines: ``reports/baselines/*.json``, append-only, each stamped with provenance.

A baseline file keeps the per-question scores of every baseline cell of a run, so a later
run can gate a fine-tune or a candidate against it (``--baseline FILE``) without generating
the baseline answers again. Files are only ever added, never rewritten.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from evalsuite.errors import ConfigError
from evalsuite.matrix._provenance import scrub
from evalsuite.matrix._store import is_reusable, read_json


def _slim(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A cell without judges' raw outputs and passage texts (scores, answers and ids stay)."""
    out = dict(cell)
    items = []
    for item in cell.get("items", []):
        item = {k: v for k, v in item.items() if k != "passages"}
        item["verdicts"] = {
            name: {k: v for k, v in (verdict or {}).items() if k != "raw"}
            for name, verdict in (item.get("verdicts") or {}).items()
        }
        items.append(item)
    out["items"] = items
    return out


def write_baseline(
    baselines_dir: str | Path,
    *,
    run_id: str,
    cells: Iterable[Mapping[str, Any]],
    config: Mapping[str, Any],
    provenance: Mapping[str, Any],
    now: _dt.datetime | None = None,
) -> Path:
    """Add a new baseline file (never overwrite one) and return its path."""
    baselines_dir = Path(baselines_dir)
    baselines_dir.mkdir(parents=True, exist_ok=True)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    kept = [_slim(c) for c in cells if c.get("kind") == "baseline" and is_reusable(c)]
    if not kept:
        raise ConfigError("no finished baseline cell in this run to store; run the ft0 cells first (e.g. -k ft0)")
    data = scrub(
        {
            "run_id": run_id,
            "created": now.isoformat(timespec="seconds"),
            "config": dict(config),
            "provenance": dict(provenance),
            "models": sorted({(c["model"], c["model_spec"], c.get("model_identity")) for c in kept}),
            "datasets": sorted({(c["dataset"], c.get("dataset_source"), c.get("dataset_fingerprint")) for c in kept}),
            "cells": kept,
        }
    )
    stem = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id}"
    for n in range(1000):
        path = baselines_dir / (f"{stem}.json" if n == 0 else f"{stem}-{n}.json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return path
    raise ConfigError(f"{baselines_dir}: too many baseline files named {stem}*; remove stale ones by hand")


def resolve(ref: str, report_root: str | Path) -> Path:
    """The file or run folder that ``ref`` names: a path, a run id, a baseline file name, or ``latest``."""
    report_root = Path(report_root)
    baselines = report_root / "baselines"
    if ref == "latest":
        files = sorted(baselines.glob("*.json"))
        if not files:
            raise ConfigError(f"--baseline latest: no baseline file in {baselines}; store one with --update-baseline")
        return files[-1]
    for candidate in (Path(ref), report_root / "runs" / ref, baselines / ref, baselines / f"{ref}.json"):
        if candidate.exists():
            return candidate
    raise ConfigError(f"--baseline {ref}: no such file, run folder ({report_root / 'runs'}) or baseline ({baselines})")


def load_cells(ref: str, report_root: str | Path) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Finished cells of a stored run or baseline file, by cell id."""
    path = resolve(ref, report_root)
    cells: list[dict[str, Any]] = []
    if path.is_dir():
        results = read_json(path / "results.json")
        if results is not None:
            cells = results.get("cells", [])
        else:
            cells = [read_json(p) or {} for p in sorted((path / "cells").glob("*.json"))]
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--baseline {path}: not valid JSON ({exc})") from None
        cells = data.get("cells", []) if isinstance(data, dict) else []
    found = {c["id"]: c for c in cells if is_reusable(c)}
    if not found:
        raise ConfigError(f"--baseline {path}: holds no finished cell; point it at a finished run or a baseline file")
    return path, found


# Judge options that do not change a verdict (where verdicts are cached), left out of the comparison.
_JUDGE_KEYS_IGNORED = ("cache", "cache_path", "progress")


def _judge_view(config: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (config or {}).items() if k not in _JUDGE_KEYS_IGNORED}


def differences(
    stored: Mapping[str, Any],
    *,
    fingerprint: str,
    generation: Mapping[str, Any],
    judge_configs: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """What makes a stored baseline cell incomparable with this run's cells (empty: comparable).

    Compared: the dataset fingerprint (eval questions, retrieved passages and prompts), the
    generation settings, and the configuration of every judge this run scores with.
    """
    out = []
    if stored.get("dataset_fingerprint") != fingerprint:
        out.append(
            f"dataset fingerprint {stored.get('dataset_fingerprint')} vs this run's {fingerprint} "
            "(other eval questions, retrieved passages or prompt template)"
        )
    theirs = dict(stored.get("generation") or {})
    for key in sorted(set(theirs) | set(generation)):
        if theirs.get(key) != generation.get(key):
            out.append(f"generation {key} = {theirs.get(key)!r} vs this run's {generation.get(key)!r}")
    stored_judges = stored.get("judge_configs") or {}
    for name, config in judge_configs.items():
        if name not in stored_judges:
            out.append(f"judge {name} did not score the baseline")
            continue
        a, b = _judge_view(stored_judges[name]), _judge_view(scrub(dict(config)))
        changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if changed:
            out.append(f"judge {name}: " + ", ".join(f"{k} = {a.get(k)!r} vs {b.get(k)!r}" for k in changed))
    return out
