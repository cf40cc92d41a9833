"""What one process of a run holds and builds once: dataset contexts, judges, their qualification,
adapters, and the lifetime of the models loaded for the cells.

Expensive shared state is built under file locks in the run's lock folder and reused by content
hash, so pytest-xdist workers do each piece once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from evalsuite import datasets, models, splits
from evalsuite import memory as _memory
from evalsuite import throughput as _throughput
from evalsuite.finetune import qlora_unavailable, stored_adapter
from evalsuite.judge import Qualification, gating_decision, long_answers, make_judge, qualify
from evalsuite.matrix import _gate
from evalsuite.matrix._availability import unavailable_reason
from evalsuite.matrix._cells import CANDIDATE, FINETUNED, Cell
from evalsuite.matrix._config import MatrixConfig
from evalsuite.matrix._pipeline import DatasetContext, finetune_config, prepare_dataset, train
from evalsuite.matrix._provenance import scrub
from evalsuite.matrix._serve import needs_local_weights
from evalsuite.matrix._store import read_json
from evalsuite.records import stable_hash, to_dict
from evalsuite.storage import atomic_write_json, file_lock

Progress = Callable[[str], None]


class RunResources:
    """The per-process resources of one run of ``config`` over ``cells``."""

    def __init__(self, config: MatrixConfig, cells: list[Cell], *, run_dir: Path, lock_dir: Path):
        self.config = config
        self.cells = cells
        self.run_dir = run_dir
        self.lock_dir = lock_dir
        self._contexts: dict[str, DatasetContext] = {}
        self._long: dict[str, bool] = {}  # dataset -> long gold answers, for datasets without a context here
        self._judges: list[Any] | None = None
        self._spec_of: dict[str, str] = {}  # judge name -> configured spec

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
            made = []
            for spec, reason in self.judge_specs():
                if reason:
                    continue
                # judge settings of the matrix; a judge without such options (token-overlap, learned) ignores them
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
                start = time.perf_counter()
                with _memory.stage() as qualify_memory:
                    q = qualify(judge, seed=self.config.seed, limit=self.config.qualify_limit).as_json()
                q["judge"] = judge.name
                data = {
                    "name": judge.name,
                    "spec": self._spec_of.get(judge.name),
                    "config": scrub(to_dict(dict(judge.config))),
                    "qualification": q,
                    "seconds": time.perf_counter() - start,
                    "memory": qualify_memory.to_dict(),
                }
                atomic_write_json(path, data)
                items = (
                    (q.get("data") or {}).get("items_scored", 0)
                    + (q.get("data") or {}).get("longform_items", 0)
                    + (q.get("graded") or {}).get("answers", 0)
                )
                if items and data["seconds"] > 0.5:  # a qualification read from its cache measures nothing
                    _throughput.save(
                        f"qualify/{judge.name}",
                        {"items_per_s": items / data["seconds"], "items": items, "seconds": data["seconds"]},
                    )
        return data

    def long_answers(self, dataset: str) -> bool:
        """Whether ``dataset``'s eval questions have long gold answers (from its context when built,
        else from its records alone: no index is loaded for this)."""
        if dataset in self._contexts:
            return self._contexts[dataset].long_answers
        if dataset not in self._long:
            ds = datasets.load_spec(self.config.dataset(dataset))
            self._long[dataset] = long_answers(splits.split(ds, seed=self.config.seed).eval[: self.config.eval_limit])
        return self._long[dataset]

    def gating(self, dataset: str) -> dict[str, list[str]]:
        """The judges allowed to pass or fail a cell of ``dataset`` (qualified ones, on a dataset of long
        gold answers only those that meet the long-answer bars too), each with the criteria it gates."""
        long = self.long_answers(dataset)
        out = {}
        for j in self.judges():
            criteria = [
                name for name, why in stored_decision(self.qualification(j)["qualification"], long) if why is None
            ]
            if criteria:
                out[j.name] = criteria
        return out

    def skip_reason(self, cell: Cell) -> str | None:
        """Why ``cell`` cannot run here (weights, key, judges, pool size, QLoRA); None when it can."""
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
                reason = qlora_unavailable()
                if reason:
                    return f"recipe {cell.recipe}: {reason}" if cell.recipe else reason
        return None

    def adapter(self, cell: Cell, progress: Progress = lambda s: None) -> Any:
        """The LoRA adapter of a fine-tuned cell, trained once per run (file-locked, content-addressed)."""
        ctx = self.context(cell.dataset)
        # one lock per adapter: two recipes with the same effective options wait for one training
        options = sorted(self.config.recipe_options(cell.recipe).items())
        with file_lock(self.lock_dir / f"adapter-{stable_hash([cell.spec, cell.dataset, cell.size, options])}"):
            if (
                cell.size <= ctx.pool_size
                and stored_adapter(
                    cell.spec,
                    self.config.dataset(cell.dataset),
                    cell.size,
                    finetune_config(self.config, cell.recipe),
                    seed=self.config.seed,
                    top_k=self.config.top_k,
                    pairs_file=self.config.train_file,
                )
                is None
            ):
                # the training copy should not sit beside the models held for generation (under int8
                # the next adapter rebuilds its base anyway; an fp32 or bf16 base is read again)
                self.release_models(keep=set(self.config.judges))
            return train(cell, ctx, self.config, progress)

    def release_after(self, cell: Cell, adapter: Any) -> None:
        """Free the memory of models no later cell needs: the cell's own adapter (or candidate) and
        any base model that neither a later cell of the matrix nor a judge uses. A model released
        too early (another process's order, -k) is only loaded again."""
        if adapter is not None:
            models.release(models.with_adapter(cell.spec, adapter.path))
        elif cell.kind == CANDIDATE:
            models.release(cell.spec)
        later = self.cells[self.cells.index(cell) + 1 :]
        self.release_models(keep={models.parse_spec(c.spec).base for c in later} | set(self.config.judges))

    @staticmethod
    def release_models(keep: set[str]) -> None:
        """Release every loaded model whose base is not in ``keep``, and hand the freed heap back."""
        for spec in models.loaded_specs():
            if models.parse_spec(spec).base not in keep:
                models.release(spec)
        _memory.release()


def stored_decision(q: dict[str, Any], long: bool) -> list[tuple[str, str | None]]:
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
                out.append(
                    (
                        name,
                        f"{name} does not gate long answers: its stored qualification has no graded "
                        "long-answer figures; qualify it again",
                    )
                )
            else:
                out.append((name, None))
        return out
