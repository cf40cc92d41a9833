"""A run of the matrix: the object the pytest plugin and the command line are thin shells over.

:class:`MatrixSession` holds the configuration, the ordered cells, the run folder and the
per-process caches (dataset contexts, judges, adapters). :meth:`MatrixSession.evaluate` runs
one cell and decides it; :meth:`MatrixSession.finalize` merges every cell file into
``results.json`` and renders the report. Expensive shared state is built under file locks
in ``lock_dir`` and reused by content hash, so pytest-xdist workers do each piece once.
"""
from __future__ import annotations

import datetime as _dt
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evalsuite import memory as _memory
from evalsuite.storage import atomic_write_json, file_lock
from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.finetune import stored_adapter
from evalsuite.judge import Qualification, gating_decision, measured_qualifications
from evalsuite.matrix import _baselines, _gate
from evalsuite.matrix._availability import unavailable_reason
from evalsuite.matrix._cells import BASELINE, CANDIDATE, FINETUNED, Cell, expand_cells
from evalsuite.matrix._config import MatrixConfig
from evalsuite.matrix._pipeline import (CellSkipped, DatasetContext, finetune_config, prepare_dataset, recipe_record, run_cell,
                                        train)
from evalsuite.matrix._provenance import provenance, scrub
from evalsuite.matrix._serve import needs_local_weights
from evalsuite.matrix._store import RunStore, is_reusable, read_json
from evalsuite.records import stable_hash, to_dict

Progress = Callable[[str], None]


@dataclass
class Outcome:
    """What a cell's test reports: passed, failed or skipped, with the message to show."""

    cell: Cell
    status: str  # "passed" | "failed" | "inconclusive" | "error" | "skipped" | "ungated"
    message: str = ""
    reused: bool = False
    data: dict[str, Any] = field(default_factory=dict)


class MatrixSession:
    def __init__(self, config: MatrixConfig, *, report_root: str | Path, run_id: str | None = None,
                 lock_dir: str | Path | None = None, token: str | None = None, run_dir: str | Path | None = None):
        self.config = config
        self.cells = expand_cells(config)
        self.by_id = {c.id: c for c in self.cells}
        self.report_root = Path(report_root)
        self.run_id = run_id or config.run_id()
        # the run folder: reports/runs/<run id>, or a folder of the caller's (a merge's --out)
        self.run_dir = Path(run_dir) if run_dir is not None else self.report_root / "runs" / self.run_id
        self.store = RunStore(self.run_dir)
        self.lock_dir = Path(lock_dir) if lock_dir else self.run_dir / ".locks"
        self.token = token or uuid.uuid4().hex
        self.started = time.time()
        self._contexts: dict[str, DatasetContext] = {}
        self._long: dict[str, bool] = {}  # dataset -> long gold answers, for datasets without a context here
        self._judges: list[Any] | None = None
        self._spec_of: dict[str, str] = {}  # judge name -> configured spec
        self._baseline_cells: dict[str, dict[str, Any]] | None = None
        self.baseline_path: Path | None = None

    # -- paths -------------------------------------------------------------------------------------
    @property
    def summary_path(self) -> Path:
        return self.run_dir / "summary.md"

    # -- shared state, built once per run ----------------------------------------------------------
    def context(self, dataset: str) -> DatasetContext:
        """Eval questions, retrieved chunks and prompts of ``dataset`` (index built once, file-locked)."""
        if dataset not in self._contexts:
            with file_lock(self.lock_dir / f"index-{dataset}"):
                self._contexts[dataset] = prepare_dataset(dataset, self.config)
            _memory.release()  # the embedder's and the index build's scratch
        return self._contexts[dataset]

    def judge_specs(self) -> list[tuple[str, str | None]]:
        """Each configured judge spec with the reason it cannot run here (None = it can)."""
        return [(spec, unavailable_reason(spec)) for spec in self.config.judges]

    def judges(self) -> list[Any]:
        """The configured judges that can run here, made once per process."""
        if self._judges is None:
            from evalsuite.judge import make_judge

            made = []
            for spec, reason in self.judge_specs():
                if reason:
                    continue
                # judge settings of the matrix; a judge without such options (reference, learned) ignores them
                judge = make_judge(spec, mode=self.config.judge_mode, repeats=self.config.judge_repeats)
                self._spec_of[judge.name] = spec
                made.append(judge)
            self._judges = made
        return self._judges

    def qualification(self, judge: Any) -> dict[str, Any]:
        """The judge's qualification (agreement with people on the human set, and the long-form
        check on the pools of this run's split seed), computed once per run and stored."""
        path = self.run_dir / "judges" / f"{stable_hash(judge.config)}.json"
        with file_lock(path):
            data = read_json(path)
            if data is None:
                from evalsuite.judge import qualify

                start = time.perf_counter()
                with _memory.stage() as qualify_memory:
                    q = qualify(judge, seed=self.config.seed, limit=self.config.qualify_limit).as_json()
                q["judge"] = judge.name
                data = {"name": judge.name, "spec": self._spec_of.get(judge.name), "config": scrub(to_dict(dict(judge.config))), "qualification": q,
                        "seconds": time.perf_counter() - start, "memory": qualify_memory.to_dict()}
                atomic_write_json(path, data)
                items = ((q.get("data") or {}).get("items_scored", 0) + (q.get("data") or {}).get("longform_items", 0)
                         + (q.get("graded") or {}).get("answers", 0))
                if items and data["seconds"] > 0.5:  # a qualification read from its cache measures nothing
                    from evalsuite import throughput as _throughput

                    _throughput.save(f"qualify/{judge.name}", {"items_per_s": items / data["seconds"], "items": items,
                                                               "seconds": data["seconds"]})
        return data

    def long_answers(self, dataset: str) -> bool:
        """Whether ``dataset``'s eval questions have long gold answers (from its context when built,
        else from its records alone: no index is loaded for this)."""
        if dataset in self._contexts:
            return self._contexts[dataset].long_answers
        if dataset not in self._long:
            from evalsuite import datasets, splits
            from evalsuite.judge import long_answers

            ds = datasets.load_spec(self.config.dataset(dataset))
            self._long[dataset] = long_answers(splits.split(ds, seed=self.config.seed).eval[: self.config.eval_limit])
        return self._long[dataset]

    def gating(self, dataset: str) -> dict[str, list[str]]:
        """The judges allowed to pass or fail a cell of ``dataset`` (qualified ones, on a dataset of long
        gold answers only those that meet the long-answer bars too), each with the criteria it gates."""
        long = self.long_answers(dataset)
        out = {}
        for j in self.judges():
            criteria = [name for name, why in _stored_decision(self.qualification(j)["qualification"], long) if why is None]
            if criteria:
                out[j.name] = criteria
        return out

    def adapter(self, cell: Cell, progress: Progress = lambda s: None) -> Any:
        """The LoRA adapter of a fine-tuned cell, trained once per run (file-locked, content-addressed)."""
        ctx = self.context(cell.dataset)
        # one lock per adapter: two recipes with the same effective options wait for one training
        options = sorted(self.config.recipe_options(cell.recipe).items())
        with file_lock(self.lock_dir / f"adapter-{stable_hash([cell.spec, cell.dataset, cell.size, options])}"):
            if cell.size <= ctx.pool_size and stored_adapter(
                    cell.spec, self.config.dataset(cell.dataset), cell.size, finetune_config(self.config, cell.recipe),
                    seed=self.config.seed, top_k=self.config.top_k, pairs_file=self.config.train_file) is None:
                # the training copy should not sit beside the models held for generation (under int8
                # the next adapter rebuilds its base anyway; an fp32 or bf16 base is read again)
                self._release_models(keep=set(self.config.judges))
            return train(cell, ctx, self.config, progress)

    # -- cells --------------------------------------------------------------------------------------
    def skip_reason(self, cell: Cell) -> str | None:
        reason = unavailable_reason(cell.spec)
        if reason and needs_local_weights(cell, self.config):
            return reason  # a baseline the server generates needs no local weights; training does
        if not any(r is None for _, r in self.judge_specs()):
            return "no configured judge can run here: " + "; ".join(f"{s}: {r}" for s, r in self.judge_specs())
        if cell.kind == FINETUNED:
            ctx = self.context(cell.dataset)
            if cell.size > ctx.pool_size:
                where = self.config.train_file or f"the {cell.dataset} pool"
                return f"size {cell.size} is above the {ctx.pool_size} fine-tuning pairs of {where}"
            if self.config.recipe_options(cell.recipe).get("quantization") == "qlora":
                from evalsuite.finetune import qlora_unavailable

                reason = qlora_unavailable()
                if reason:
                    return (f"recipe {cell.recipe}: {reason}" if cell.recipe else reason)
        return None

    def result(self, cell: Cell, progress: Progress = lambda s: None) -> tuple[dict[str, Any], bool]:
        """The cell's scored result, computed once per run (or reused from the run folder)."""

        def compute() -> dict[str, Any]:
            reason = self.skip_reason(cell)
            if reason:
                raise CellSkipped(reason)
            start = time.perf_counter()
            with _memory.stage() as index_memory:
                ctx = self.context(cell.dataset)
            with _memory.stage() as train_memory:
                adapter = self.adapter(cell, progress) if cell.kind == FINETUNED else None
            try:
                data = run_cell(cell, ctx, self.config, self.judges(), adapter=adapter, progress=progress)
            finally:
                self._release_after(cell, adapter)
            data["timings"]["cell"] = time.perf_counter() - start
            memory = data["timings"].setdefault("memory", {})
            memory["index"] = index_memory.to_dict()
            if adapter is not None:
                memory["finetune"] = train_memory.to_dict()
            memory["after_release_mb"] = _memory.rss_mb()
            memory["process_peak_mb"] = _memory.peak_rss_mb()
            data["session"] = self.token
            return scrub(data)

        return self.store.compute_or_load(cell.id, compute)

    def _release_after(self, cell: Cell, adapter: Any) -> None:
        """Free the memory of models no later cell needs: the cell's own adapter (or candidate) and
        any base model that neither a later cell of the matrix nor a judge uses. A model released
        too early (another process's order, -k) is only loaded again."""
        from evalsuite import models

        if adapter is not None:
            models.release(f"{cell.spec}+lora:{adapter.path}")
        elif cell.kind == CANDIDATE:
            models.release(cell.spec)
        later = self.cells[self.cells.index(cell) + 1:]
        self._release_models(keep={c.spec.split("+lora:", 1)[0] for c in later} | set(self.config.judges))

    @staticmethod
    def _release_models(keep: set[str]) -> None:
        """Release every loaded model whose base is not in ``keep``, and hand the freed heap back."""
        from evalsuite import models

        for spec in models.loaded_specs():
            if spec.split("+lora:", 1)[0] not in keep:
                models.release(spec)
        _memory.release()

    def stored_baselines(self) -> dict[str, dict[str, Any]] | None:
        if self.config.baseline_from is None:
            return None
        if self._baseline_cells is None:
            self.baseline_path, self._baseline_cells = _baselines.load_cells(self.config.baseline_from, self.report_root)
        return self._baseline_cells

    def baseline(self, cell: Cell, progress: Progress = lambda s: None) -> dict[str, Any]:
        """The result of ``cell``'s baseline: from ``--baseline`` when given, else computed or reused."""
        stored = self.stored_baselines()
        if stored is not None:
            data = stored.get(cell.baseline_id)
            if data is None:
                raise ConfigError(f"--baseline {self.baseline_path} has no cell {cell.baseline_id}; "
                                  f"store one with --update-baseline or drop --baseline")
            self._check_comparable(data)
            return data
        base = self.by_id[cell.baseline_id]
        reason = self.skip_reason(base)
        if reason:
            raise CellSkipped(f"its baseline {base.id} cannot run: {reason}")
        return self.result(base, progress)[0]

    def _check_comparable(self, stored: dict[str, Any]) -> None:
        """Refuse a stored baseline whose questions, prompts, generation or judges differ from this run's."""
        from evalsuite.models import GenerationSettings

        ctx = self.context(stored["dataset"])
        generation = to_dict(GenerationSettings(max_new_tokens=self.config.max_new_tokens, seed=self.config.seed))
        judge_configs = {j.name: dict(getattr(j, "config", {}) or {}) for j in self.judges()}
        diffs = _baselines.differences(stored, fingerprint=ctx.fingerprint, generation=generation,
                                       judge_configs=judge_configs)
        if diffs:
            raise ConfigError(f"--baseline {self.baseline_path}: cell {stored['id']} is not comparable with this run: "
                              + "; ".join(diffs) + "; store a new baseline with --update-baseline, or run with its settings")

    def evaluate(self, cell: Cell, progress: Progress = lambda s: None) -> Outcome:
        """Run ``cell`` (or reuse it) and decide it; the cell file records the decision.

        Statuses: ``passed`` (not worse beyond the margin, shown), ``failed`` (the gate: a
        regression beyond the margin shown, or an invalid baseline), ``inconclusive`` (the
        interval neither clears the margin nor lies beyond it), ``error`` (the cell could not run:
        a problem the user can fix), ``skipped`` (it cannot run here: key, weights, adapter, pool
        size) and ``ungated`` (scored, but no qualified judge may decide it, or too few of its
        answers were scored).
        """
        try:
            if cell.kind == BASELINE and self.stored_baselines() is not None:
                data = self.baseline(cell)
                data = {**data, "source": str(self.baseline_path)}  # keeps its own session: counted as reused
                self.store.write(cell.id, data)
                reused = True
            else:
                data, reused = self.result(cell, progress)
            gating = self.gating(cell.dataset)
            if cell.kind == BASELINE:
                if not gating:
                    return self._ungated(cell, reused, data, None)
                problems = _gate.baseline_validity(data, gating=gating, max_unscored=self.config.max_unscored)
                status = "failed" if problems else "passed"
                self.store.update(cell.id, status=status, problems=problems, gating=gating)
                msg = f"{cell.id}: invalid baseline: " + "; ".join(problems) if problems else ""
                return Outcome(cell, status, msg, reused, data)
            base = self.baseline(cell, progress)
            gate = _gate.compare(data, base, judges=data.get("judges", []), gating=gating,
                                 margin=self.config.margin, seed=self.config.seed, min_paired=self.config.min_paired)
            if gate["outcome"] == "ungated":
                return self._ungated(cell, reused, data, gate)
            status = gate["outcome"]
            self.store.update(cell.id, status=status, gate=gate)
            msg = _gate.failure_message(cell.id, gate, str(self.summary_path)) if status != "passed" else ""
            return Outcome(cell, status, msg, reused, data)
        except CellSkipped as skip:
            self._record_unfinished(cell, "skipped", str(skip))
            return Outcome(cell, "skipped", str(skip))
        except EvalsuiteError as err:  # a problem the user can fix: one line, recorded in the report
            self._record_unfinished(cell, "error", str(err))
            return Outcome(cell, "error", f"{cell.id}: {err}")

    def _ungated(self, cell: Cell, reused: bool, data: dict[str, Any], gate: dict[str, Any] | None) -> Outcome:
        if gate and gate.get("too_few"):
            reason = "not gated: " + "; ".join(gate["too_few"])
        else:
            reason = "not gated: no judge is qualified (see the judges section of the report)"
        self.store.update(cell.id, status="ungated", reason=reason, **({"gate": gate} if gate else {}))
        return Outcome(cell, "ungated", reason, reused, data)

    def _record_unfinished(self, cell: Cell, status: str, reason: str) -> None:
        """Note a skip or an error in the cell's file, unless it already holds a finished result."""
        if not is_reusable(self.store.read(cell.id)):
            self.store.write(cell.id, {"id": cell.id, "dataset": cell.dataset, "model": cell.model, "spec": cell.spec,
                                       "size": cell.size, "kind": cell.kind, "baseline_id": cell.baseline_id,
                                       **({"recipe": recipe_record(self.config, cell.recipe)} if cell.recipe else {}),
                                       "status": status, "reason": reason, "session": self.token})

    # -- end of run ---------------------------------------------------------------------------------
    def judges_info(self) -> list[dict[str, Any]]:
        """Every configured judge: qualification (as stored by whoever ran it) or why it could not run."""
        stored = {}
        for path in sorted((self.run_dir / "judges").glob("*.json")):
            data = read_json(path) or {}
            stored[data.get("spec")] = data
        out = []
        for spec, reason in self.judge_specs():
            match = stored.get(spec)
            q = (match or {}).get("qualification") or {}
            if reason:
                why = f"cannot run here: {reason}"
            elif not match:
                why = "not used in this run (no cell was computed with it)"
            else:
                why = "; ".join(q.get("reasons") or ["no qualification recorded"])
            out.append({"spec": spec, "name": (match or {}).get("name", spec), "config": (match or {}).get("config"),
                        "qualification": q or None, "gating": bool(q.get("qualified")) and not reason,
                        "gating_criteria": list(q.get("gating_criteria") or []) if not reason else [], "why": why})
        return out

    def dataset_gating(self, judges: list[dict[str, Any]], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per dataset with a finished cell and per criterion: which judges gate it and why the others do not,
        from the qualifications stored in the run folder (``judges``: :meth:`judges_info`)."""
        out = []
        for dataset in dict.fromkeys(c["dataset"] for c in cells if is_reusable(c)):
            try:
                long = self.long_answers(dataset)
            except EvalsuiteError as err:
                out.append({"dataset": dataset, "long_answers": None, "error": str(err), "criteria": {}})
                continue
            criteria: dict[str, dict[str, Any]] = {c: {"gating": [], "not_gating": {}} for c in _gate.CRITERIA}
            for j in judges:
                if not j.get("qualification"):
                    for c in criteria.values():
                        c["not_gating"][j["name"]] = j["why"]
                    continue
                for name, why in _stored_decision(j["qualification"], long):
                    if why is None:
                        criteria[name]["gating"].append(j["name"])
                    else:
                        criteria[name]["not_gating"][j["name"]] = why
            out.append({"dataset": dataset, "long_answers": long, "criteria": criteria})
        return out

    def results(self, ran: dict[str, str] | None = None) -> dict[str, Any]:
        """``results.json``: every cell of the matrix (finished, skipped or not run) and provenance."""
        cells = []
        for cell in self.cells:
            data = self.store.read(cell.id)
            if data is None:
                data = {"id": cell.id, "dataset": cell.dataset, "model": cell.model, "spec": cell.spec, "size": cell.size,
                        "kind": cell.kind, "baseline_id": cell.baseline_id, "status": "not run",
                        **({"recipe": recipe_record(self.config, cell.recipe)} if cell.recipe else {})}
            cells.append(data)
        ran = ran or {}
        computed = [c["id"] for c in cells if c["id"] in ran and is_reusable(c) and c.get("session") == self.token]
        reused = [c["id"] for c in cells if c["id"] in ran and is_reusable(c) and c.get("session") != self.token]
        totals = {"prompt_tokens": 0, "completion_tokens": 0, "model_calls": 0, "cache_hits": 0, "cell_seconds": 0.0}
        for c in cells:
            if not is_reusable(c):
                continue
            totals["prompt_tokens"] += (c.get("tokens") or {}).get("prompt", 0)
            totals["completion_tokens"] += (c.get("tokens") or {}).get("completion", 0)
            for key in ("model_calls", "cache_hits"):
                totals[key] += (c.get("model_stats") or {}).get(key, 0)
                totals[key] += sum((s or {}).get(key, 0) for s in (c.get("judge_stats") or {}).values())
            totals["cell_seconds"] += (c.get("timings") or {}).get("cell", 0.0)
        judges = self.judges_info()
        prov = provenance()
        prov.update({"timings": {"session_seconds": time.time() - self.started}, "totals": totals,
                     "baseline_source": str(self.baseline_path) if self.baseline_path else None,
                     "model_identities": sorted({c["model_identity"] for c in cells if c.get("model_identity")}),
                     "dataset_fingerprints": {c["dataset"]: c.get("dataset_fingerprint") for c in cells if c.get("dataset_fingerprint")}})
        return scrub({
            "schema": 1,
            "run_id": self.run_id,
            "profile": self.config.profile,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": self.config.to_dict(),
            "provenance": prov,
            "judges": judges,
            "dataset_gating": self.dataset_gating(judges, cells),
            "judges_measured": {spec: m for spec, m in measured_qualifications().items() if spec not in self.config.judges},
            "session": {"ran": sorted(ran), "computed": computed, "reused": reused},
            "cells": cells,
        })

    def finalize(self, ran: dict[str, str] | None = None, *, update_baseline: bool = False,
                 incomplete: str | None = None) -> dict[str, Any]:
        """Write results.json and the report, point ``reports/latest`` here; returns what was written.

        ``incomplete`` (a reason) marks a run that stopped early (Ctrl-C): the report says so."""
        from evalsuite.report import render

        results = self.results(ran)
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
                    self.report_root / "baselines", run_id=self.run_id, cells=results["cells"], config=results["config"],
                    provenance=results["provenance"])
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
            from evalsuite import throughput as _throughput

            _throughput.save("run/overhead", {"seconds": overhead, "cells_computed": len(computed)})


def _stored_decision(q: dict[str, Any], long: bool) -> list[tuple[str, str | None]]:
    """(criterion, None when it gates, else why not) from a stored qualification; one written by hand or by
    another version, that :meth:`Qualification.from_json` cannot read, keeps its short-answer verdict."""
    try:
        decision = gating_decision(Qualification.from_json(q), long_answers=long)
        return [(name, None if name in decision.criteria else why) for name, why in decision.reasons]
    except (KeyError, TypeError, ValueError):
        out = []
        for name in _gate.CRITERIA:
            if not q.get("qualified"):
                out.append((name, "; ".join(q.get("reasons") or ["does not qualify"])))
            elif name not in (q.get("gating_criteria") or []):
                out.append((name, f"{name} does not gate (short answers)"))
            elif long:
                out.append((name, f"{name} does not gate long answers: its stored qualification has no graded "
                                  "long-answer figures; qualify it again"))
            else:
                out.append((name, None))
        return out


def merge_runs(run_dirs: list[str | Path], out_dir: str | Path) -> Path:
    """Combine the run folders of shards of one matrix (``--shard I/N``) into ``out_dir``.

    Every finished cell is taken from whichever shard ran it, the judges' qualification files
    are pooled, and ``results.json`` and the report are written as a single-machine run of the
    same cells would write them.
    """
    import json
    import shutil

    from evalsuite.matrix._config import MatrixConfig

    dirs = [Path(d) for d in run_dirs]
    loaded = []
    for d in dirs:
        path = d / "results.json"
        try:
            loaded.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ConfigError(f"{path} not found; --merge takes run folders (reports/runs/<run-id>) of finished shards") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); re-run that shard") from None
    first = loaded[0]
    for d, other in zip(dirs[1:], loaded[1:]):
        if other.get("config") != first.get("config"):
            keys = sorted(k for k in set(first["config"]) | set(other["config"])
                          if first["config"].get(k) != other["config"].get(k))
            raise ConfigError(f"{d} ran another configuration than {dirs[0]} (differs in {', '.join(keys)}); "
                              "merge only shards of one run")
    config = MatrixConfig.from_dict(first["config"])
    out_dir = Path(out_dir)
    session = MatrixSession(config, report_root=out_dir.parent.parent, run_id=str(first.get("run_id") or out_dir.name),
                            run_dir=out_dir)
    for cell in session.cells:  # the shard that finished a cell wins; else one that recorded why it did not
        found = [c for r in loaded for c in r.get("cells", []) if c.get("id") == cell.id]
        best = next((c for c in found if is_reusable(c)), None) or next(
            (c for c in found if c.get("status") not in (None, "not run")), None)
        if best is not None:
            session.store.write(cell.id, best)
    for d in dirs:
        judges = d / "judges"
        if judges.is_dir() and d.resolve() != out_dir.resolve():
            (out_dir / "judges").mkdir(parents=True, exist_ok=True)
            for f in judges.glob("*.json"):
                shutil.copy2(f, out_dir / "judges" / f.name)
    ran = {cid: "merged" for r in loaded for cid in r.get("session", {}).get("ran", [])}
    merged = session.results(ran)
    merged["session"] = {
        "ran": sorted(ran),
        "computed": sorted({c for r in loaded for c in r.get("session", {}).get("computed", [])}),
        "reused": sorted({c for r in loaded for c in r.get("session", {}).get("reused", [])}),
        "shards": [str(d) for d in dirs],
    }
    merged["provenance"]["timings"]["session_seconds"] = sum(
        (r.get("provenance") or {}).get("timings", {}).get("session_seconds", 0.0) for r in loaded)
    merged["provenance"]["shards"] = [{"run_dir": str(d), "git": (r.get("provenance") or {}).get("git"),
                                       "session_seconds": (r.get("provenance") or {}).get("timings", {}).get("session_seconds")}
                                      for d, r in zip(dirs, loaded)]
    if any(r.get("incomplete") for r in loaded):
        merged["incomplete"] = "a shard was interrupted"
    from evalsuite.report import render

    atomic_write_json(out_dir / "results.json", merged)
    render(out_dir)
    return out_dir
