"""A run of the matrix: the object the pytest plugin and the command line are thin shells over.

:class:`MatrixSession` holds the configuration, the ordered cells, the run folder and its store,
and joins the three parts of a run: :class:`~evalsuite.matrix._resources.RunResources` (what a
process builds once: contexts, judges, adapters, model lifetime), the
:class:`~evalsuite.matrix._decide.Decider` and the :class:`~evalsuite.matrix._writer.RunWriter`
(``results.json``, the report, the baseline file). :meth:`MatrixSession.evaluate` runs one cell
and decides it; its file is written once, with its status.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evalsuite import memory as _memory
from evalsuite.errors import EvalsuiteError
from evalsuite.matrix._cells import BASELINE, FINETUNED, Cell, expand_cells
from evalsuite.matrix._config import MatrixConfig
from evalsuite.matrix._decide import Decider
from evalsuite.matrix._pipeline import CellSkipped, DatasetContext, recipe_record, run_cell
from evalsuite.matrix._provenance import scrub
from evalsuite.matrix._resources import RunResources
from evalsuite.matrix._store import RunStore
from evalsuite.matrix._writer import RunWriter, merge_runs
from evalsuite.records import CellResult, CellStatus

__all__ = ["MatrixSession", "Outcome", "merge_runs"]

Progress = Callable[[str], None]


@dataclass
class Outcome:
    """What a cell's test reports: its status, the message to show, and the result behind it."""

    cell: Cell
    status: str  # a CellStatus value, as a plain string (it crosses to pytest-xdist's controller)
    message: str = ""
    reused: bool = False
    result: CellResult | None = None


class MatrixSession:
    def __init__(
        self,
        config: MatrixConfig,
        *,
        report_root: str | Path,
        run_id: str | None = None,
        lock_dir: str | Path | None = None,
        token: str | None = None,
        run_dir: str | Path | None = None,
    ):
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
        self.resources = RunResources(config, self.cells, run_dir=self.run_dir, lock_dir=self.lock_dir)
        self.decider = Decider(config, self.resources, report_root=self.report_root, summary_path=self.summary_path)
        self.writer = RunWriter(
            config,
            self.cells,
            self.store,
            self.resources,
            run_id=self.run_id,
            report_root=self.report_root,
            token=self.token,
            started=self.started,
        )

    @property
    def summary_path(self) -> Path:
        return self.run_dir / "summary.md"

    # -- what a process builds once (see RunResources) ----------------------------------------------
    def context(self, dataset: str) -> DatasetContext:
        return self.resources.context(dataset)

    def judges(self) -> list[Any]:
        return self.resources.judges()

    def gating(self, dataset: str) -> dict[str, list[str]]:
        return self.resources.gating(dataset)

    def long_answers(self, dataset: str) -> bool:
        return self.resources.long_answers(dataset)

    def skip_reason(self, cell: Cell) -> str | None:
        return self.resources.skip_reason(cell)

    # -- cells --------------------------------------------------------------------------------------
    def _scored(self, cell: Cell, progress: Progress) -> CellResult:
        """Answer and judge ``cell`` here (CellSkipped when it cannot run)."""
        reason = self.resources.skip_reason(cell)
        if reason:
            raise CellSkipped(reason)
        start = time.perf_counter()
        with _memory.stage() as index_memory:
            ctx = self.resources.context(cell.dataset)
        with _memory.stage() as train_memory:
            adapter = self.resources.adapter(cell, progress) if cell.kind == FINETUNED else None
        try:
            result = run_cell(cell, ctx, self.config, self.resources.judges(), adapter=adapter, progress=progress)
        finally:
            self.resources.release_after(cell, adapter)
        timings = result.measured["timings"]
        timings["cell"] = time.perf_counter() - start
        memory = timings.setdefault("memory", {})
        memory["index"] = index_memory.to_dict()
        if adapter is not None:
            memory["finetune"] = train_memory.to_dict()
        memory["after_release_mb"] = _memory.rss_mb()
        memory["process_peak_mb"] = _memory.peak_rss_mb()
        return CellResult.from_json(scrub(dataclasses.replace(result, session=self.token).to_json()))

    def result(self, cell: Cell, progress: Progress = lambda s: None) -> tuple[CellResult, bool]:
        """The cell's result, computed and decided once per run (or reused from the run folder).

        A cell whose decision could not be made (its baseline cannot run, an error the user can fix)
        is stored scored, and the reason is raised once it is."""
        undecided: Exception | None = None
        with self.store.lock(cell.id):
            existing = self.store.load(cell.id)
            if existing is not None and existing.finished:
                return existing, True
            result = self._scored(cell, progress)
            try:
                result = self._decide(cell, result, progress)
            except (CellSkipped, EvalsuiteError) as err:
                undecided = err
            self.store.save(result)
        if undecided is not None:
            raise undecided
        return result, False

    def _decide(self, cell: Cell, result: CellResult, progress: Progress) -> CellResult:
        return self.decider.decide(result, None if cell.kind == BASELINE else self.baseline(cell, progress))

    def baseline(self, cell: Cell, progress: Progress = lambda s: None) -> CellResult:
        """The result of ``cell``'s baseline: from ``--baseline`` when given, else computed or reused."""
        stored = self.decider.stored_baseline(cell)
        if stored is not None:
            return stored
        base = self.by_id[cell.baseline_id]
        reason = self.resources.skip_reason(base)
        if reason:
            raise CellSkipped(f"its baseline {base.id} cannot run: {reason}")
        return self.result(base, progress)[0]

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
            stored = self.decider.stored_baseline(cell) if cell.kind == BASELINE else None
            if stored is not None:  # keeps its own session: counted as reused
                result, reused = (
                    stored.decided(stored.status, stored.reason, source=str(self.decider.baseline_path)),
                    True,
                )
            else:
                result, reused = self.result(cell, progress)
            if reused:  # decided again: the judges' qualification of this run decides
                decided = self._decide(cell, result, progress)
                if decided != result or stored is not None:
                    self.store.save(decided)
                result = decided
            return Outcome(cell, result.status.value, self.decider.message(result), reused, result)
        except CellSkipped as skip:
            self._record_unfinished(cell, CellStatus.SKIPPED, str(skip))
            return Outcome(cell, CellStatus.SKIPPED.value, str(skip))
        except EvalsuiteError as err:  # a problem the user can fix: one line, recorded in the report
            self._record_unfinished(cell, CellStatus.ERROR, str(err))
            return Outcome(cell, CellStatus.ERROR.value, f"{cell.id}: {err}")

    def _record_unfinished(self, cell: Cell, status: CellStatus, reason: str) -> None:
        """Note a skip or an error in the cell's file, unless it already holds a finished result."""
        existing = self.store.load(cell.id)
        if existing is None or not existing.finished:
            recipe = recipe_record(self.config, cell.recipe) if cell.recipe else None
            self.store.save(CellResult.for_cell(cell, status, recipe=recipe, reason=reason, session=self.token))

    # -- end of run (see RunWriter) -----------------------------------------------------------------
    def results(self, ran: dict[str, str] | None = None) -> dict[str, Any]:
        return self.writer.results(ran, baseline_path=self.decider.baseline_path)

    def finalize(
        self, ran: dict[str, str] | None = None, *, update_baseline: bool = False, incomplete: str | None = None
    ) -> dict[str, Any]:
        return self.writer.finalize(
            ran, update_baseline=update_baseline, incomplete=incomplete, baseline_path=self.decider.baseline_path
        )
