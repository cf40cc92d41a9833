"""The end of a run: ``results.json`` from every cell file, the report, the baseline file, and the
merge of the run folders of shards into one."""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from evalsuite import throughput as _throughput
from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.judge import measured_qualifications
from evalsuite.matrix import _baselines, _gate
from evalsuite.matrix._cells import Cell, expand_cells
from evalsuite.matrix._config import MatrixConfig
from evalsuite.matrix._pipeline import recipe_record
from evalsuite.matrix._provenance import provenance, scrub
from evalsuite.matrix._resources import RunResources, stored_decision
from evalsuite.matrix._store import RunStore, is_reusable, read_json
from evalsuite.records import CellResult, CellStatus
from evalsuite.report import render
from evalsuite.storage import atomic_write_json


class RunWriter:
    """Writes what one run of ``config`` over ``cells`` came to, from the cell files in ``store``."""

    def __init__(
        self,
        config: MatrixConfig,
        cells: list[Cell],
        store: RunStore,
        resources: RunResources,
        *,
        run_id: str,
        report_root: Path,
        token: str,
        started: float,
    ):
        self.config = config
        self.cells = cells
        self.store = store
        self.resources = resources
        self.run_id = run_id
        self.run_dir = store.run_dir
        self.report_root = report_root
        self.token = token
        self.started = started

    def judges_info(self) -> list[dict[str, Any]]:
        """Every configured judge: qualification (as stored by whoever ran it) or why it could not run."""
        stored = {}
        for path in sorted((self.run_dir / "judges").glob("*.json")):
            data = read_json(path) or {}
            stored[data.get("spec")] = data
        out = []
        for spec, reason in self.resources.judge_specs():
            match = stored.get(spec)
            q = (match or {}).get("qualification") or {}
            if reason:
                why = f"cannot run here: {reason}"
            elif not match:
                why = "not used in this run (no cell was computed with it)"
            else:
                why = "; ".join(q.get("reasons") or ["no qualification recorded"])
            out.append(
                {
                    "spec": spec,
                    "name": (match or {}).get("name", spec),
                    "config": (match or {}).get("config"),
                    "qualification": q or None,
                    "gating": bool(q.get("qualified")) and not reason,
                    "gating_criteria": list(q.get("gating_criteria") or []) if not reason else [],
                    "why": why,
                }
            )
        return out

    def dataset_gating(self, judges: list[dict[str, Any]], cells: list[CellResult]) -> list[dict[str, Any]]:
        """Per dataset with a finished cell and per criterion: which judges gate it and why the others do not,
        from the qualifications stored in the run folder (``judges``: :meth:`judges_info`)."""
        out = []
        for dataset in dict.fromkeys(c.dataset for c in cells if c.finished):
            try:
                long = self.resources.long_answers(dataset)
            except EvalsuiteError as err:
                out.append({"dataset": dataset, "long_answers": None, "error": str(err), "criteria": {}})
                continue
            criteria: dict[str, dict[str, Any]] = {c: {"gating": [], "not_gating": {}} for c in _gate.CRITERIA}
            for j in judges:
                if not j.get("qualification"):
                    for c in criteria.values():
                        c["not_gating"][j["name"]] = j["why"]
                    continue
                for name, why in stored_decision(j["qualification"], long):
                    if why is None:
                        criteria[name]["gating"].append(j["name"])
                    else:
                        criteria[name]["not_gating"][j["name"]] = why
            out.append({"dataset": dataset, "long_answers": long, "criteria": criteria})
        return out

    def cell_results(self) -> list[CellResult]:
        """Every cell of the matrix as its file holds it, or as not run."""
        out = []
        for cell in self.cells:
            result = self.store.load(cell.id)
            if result is None:
                recipe = recipe_record(self.config, cell.recipe) if cell.recipe else None
                result = CellResult.for_cell(cell, CellStatus.NOT_RUN, recipe=recipe)
            out.append(result)
        return out

    def results(self, ran: dict[str, str] | None = None, *, baseline_path: Path | None = None) -> dict[str, Any]:
        """``results.json``: every cell of the matrix (finished, skipped or not run) and provenance."""
        cells = self.cell_results()
        ran = ran or {}
        computed = [c.id for c in cells if c.id in ran and c.finished and c.session == self.token]
        reused = [c.id for c in cells if c.id in ran and c.finished and c.session != self.token]
        totals = {"prompt_tokens": 0, "completion_tokens": 0, "model_calls": 0, "cache_hits": 0, "cell_seconds": 0.0}
        for c in cells:
            if not c.finished:
                continue
            m = c.measured
            totals["prompt_tokens"] += (m.get("tokens") or {}).get("prompt", 0)
            totals["completion_tokens"] += (m.get("tokens") or {}).get("completion", 0)
            for key in ("model_calls", "cache_hits"):
                totals[key] += (m.get("model_stats") or {}).get(key, 0)
                totals[key] += sum((s or {}).get(key, 0) for s in (m.get("judge_stats") or {}).values())
            totals["cell_seconds"] += (m.get("timings") or {}).get("cell", 0.0)
        judges = self.judges_info()
        prov = provenance()
        prov.update(
            {
                "timings": {"session_seconds": time.time() - self.started},
                "totals": totals,
                "baseline_source": str(baseline_path) if baseline_path else None,
                "model_identities": sorted(
                    {c.measured["model_identity"] for c in cells if c.measured.get("model_identity")}
                ),
                "dataset_fingerprints": {
                    c.dataset: c.measured.get("dataset_fingerprint")
                    for c in cells
                    if c.measured.get("dataset_fingerprint")
                },
            }
        )
        return scrub(
            {
                "schema": 1,
                "run_id": self.run_id,
                "profile": self.config.profile,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "config": self.config.to_dict(),
                "provenance": prov,
                "judges": judges,
                "dataset_gating": self.dataset_gating(judges, cells),
                "judges_measured": {
                    spec: m for spec, m in measured_qualifications().items() if spec not in self.config.judges
                },
                "session": {"ran": sorted(ran), "computed": computed, "reused": reused},
                "cells": [c.to_json() for c in cells],
            }
        )

    def finalize(
        self,
        ran: dict[str, str] | None = None,
        *,
        update_baseline: bool = False,
        incomplete: str | None = None,
        baseline_path: Path | None = None,
    ) -> dict[str, Any]:
        """Write results.json and the report, point ``reports/latest`` here; returns what was written.

        ``incomplete`` (a reason) marks a run that stopped early (Ctrl-C): the report says so."""
        results = self.results(ran, baseline_path=baseline_path)
        if incomplete:
            results["incomplete"] = incomplete
        atomic_write_json(self.run_dir / "results.json", results)
        written = render(self.run_dir)
        if not incomplete:
            self._record_overhead(results)
        latest = self.report_root / "latest"
        try:
            tmp = self.report_root / f".latest.{os.getpid()}"
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(Path("runs") / self.run_id)
            os.replace(tmp, latest)
        except OSError:
            pass  # a file system without symlinks: the run folder is still named in the summary line
        out = {"results": results, "written": written, "baseline_file": None, "baseline_error": None}
        if update_baseline:
            try:
                out["baseline_file"] = _baselines.write_baseline(
                    self.report_root / "baselines",
                    run_id=self.run_id,
                    cells=results["cells"],
                    config=results["config"],
                    provenance=results["provenance"],
                )
            except EvalsuiteError as err:
                out["baseline_error"] = str(err)
        return out

    def _record_overhead(self, results: dict[str, Any]) -> None:
        """Keep the seconds of this run spent outside its cells and judge qualifications (start-up,
        imports, model loads between cells, the report) as ``run/overhead``, for later estimates."""
        computed = set(results["session"]["computed"])
        if not computed:
            return
        cells = sum((c.get("timings") or {}).get("cell", 0.0) for c in results["cells"] if c["id"] in computed)
        qualification = 0.0
        for path in sorted((self.run_dir / "judges").glob("*.json")):
            data = read_json(path) or {}
            if path.stat().st_mtime >= self.started:  # qualified in this run
                qualification += float(data.get("seconds", 0.0))
        overhead = time.time() - self.started - cells - qualification
        if overhead > 0:
            _throughput.save("run/overhead", {"seconds": overhead, "cells_computed": len(computed)})


def merge_runs(run_dirs: list[str | Path], out_dir: str | Path) -> Path:
    """Combine the run folders of shards of one matrix (``--shard I/N``) into ``out_dir``.

    Every finished cell is taken from whichever shard ran it, the judges' qualification files
    are pooled, and ``results.json`` and the report are written as a single-machine run of the
    same cells would write them.
    """
    dirs = [Path(d) for d in run_dirs]
    loaded = []
    for d in dirs:
        path = d / "results.json"
        try:
            loaded.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ConfigError(
                f"{path} not found; --merge takes run folders (reports/runs/<run-id>) of finished shards"
            ) from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); re-run that shard") from None
    first = loaded[0]
    for d, other in zip(dirs[1:], loaded[1:]):
        if other.get("config") != first.get("config"):
            keys = sorted(
                k
                for k in set(first["config"]) | set(other["config"])
                if first["config"].get(k) != other["config"].get(k)
            )
            raise ConfigError(
                f"{d} ran another configuration than {dirs[0]} (differs in {', '.join(keys)}); "
                "merge only shards of one run"
            )
    config = MatrixConfig.from_dict(first["config"])
    out_dir = Path(out_dir)
    cells = expand_cells(config)
    store = RunStore(out_dir)
    writer = RunWriter(
        config,
        cells,
        store,
        RunResources(config, cells, run_dir=out_dir, lock_dir=out_dir / ".locks"),
        run_id=str(first.get("run_id") or out_dir.name),
        report_root=out_dir.parent.parent,
        token=uuid.uuid4().hex,
        started=time.time(),
    )
    for cell in cells:  # the shard that finished a cell wins; else one that recorded why it did not
        found = [c for r in loaded for c in r.get("cells", []) if c.get("id") == cell.id]
        best = next((c for c in found if is_reusable(c)), None) or next(
            (c for c in found if c.get("status") not in (None, CellStatus.NOT_RUN)), None
        )
        if best is not None:
            store.write(cell.id, best)
    for d in dirs:
        judges = d / "judges"
        if judges.is_dir() and d.resolve() != out_dir.resolve():
            (out_dir / "judges").mkdir(parents=True, exist_ok=True)
            for f in judges.glob("*.json"):
                shutil.copy2(f, out_dir / "judges" / f.name)
    ran = {cid: "merged" for r in loaded for cid in r.get("session", {}).get("ran", [])}
    merged = writer.results(ran)
    merged["session"] = {
        "ran": sorted(ran),
        "computed": sorted({c for r in loaded for c in r.get("session", {}).get("computed", [])}),
        "reused": sorted({c for r in loaded for c in r.get("session", {}).get("reused", [])}),
        "shards": [str(d) for d in dirs],
    }
    merged["provenance"]["timings"]["session_seconds"] = sum(
        (r.get("provenance") or {}).get("timings", {}).get("session_seconds", 0.0) for r in loaded
    )
    merged["provenance"]["shards"] = [
        {
            "run_dir": str(d),
            "git": (r.get("provenance") or {}).get("git"),
            "session_seconds": (r.get("provenance") or {}).get("timings", {}).get("session_seconds"),
        }
        for d, r in zip(dirs, loaded)
    ]
    if any(r.get("incomplete") for r in loaded):
        merged["incomplete"] = "a shard was interrupted"
    atomic_write_json(out_dir / "results.json", merged)
    render(out_dir)
    return out_dir
