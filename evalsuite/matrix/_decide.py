"""The decision of a scored cell: a baseline's validity, or a cell against its baseline.

:class:`Decider` turns a scored :class:`~evalsuite.records.CellResult` into a decided one
(passed, failed, inconclusive or ungated) and says what its test reports. It also holds the
baselines read from ``--baseline`` and refuses one that is not comparable with this run.
"""

from __future__ import annotations

from pathlib import Path

from evalsuite.errors import ConfigError
from evalsuite.matrix import _baselines, _gate
from evalsuite.matrix._cells import BASELINE, Cell
from evalsuite.matrix._config import MatrixConfig
from evalsuite.matrix._resources import RunResources
from evalsuite.models import GenerationSettings
from evalsuite.records import CellResult, CellStatus, to_dict

NO_QUALIFIED_JUDGE = "not gated: no judge is qualified (see the judges section of the report)"


class Decider:
    """Decides the cells of one run of ``config`` with the judges of ``resources``."""

    def __init__(self, config: MatrixConfig, resources: RunResources, *, report_root: Path, summary_path: Path):
        self.config = config
        self.resources = resources
        self.report_root = report_root
        self.summary_path = summary_path
        self._baseline_cells: dict[str, CellResult] | None = None
        self.baseline_path: Path | None = None

    def stored_baselines(self) -> dict[str, CellResult] | None:
        """The baseline cells of ``--baseline`` (None without one)."""
        if self.config.baseline_from is None:
            return None
        if self._baseline_cells is None:
            self.baseline_path, cells = _baselines.load_cells(self.config.baseline_from, self.report_root)
            self._baseline_cells = {cid: CellResult.from_json(data) for cid, data in cells.items()}
        return self._baseline_cells

    def stored_baseline(self, cell: Cell) -> CellResult | None:
        """``cell``'s baseline from ``--baseline``, checked comparable (None without ``--baseline``)."""
        stored = self.stored_baselines()
        if stored is None:
            return None
        found = stored.get(cell.baseline_id)
        if found is None:
            raise ConfigError(
                f"--baseline {self.baseline_path} has no cell {cell.baseline_id}; "
                f"store one with --update-baseline or drop --baseline"
            )
        self._check_comparable(found)
        return found

    def _check_comparable(self, stored: CellResult) -> None:
        """Refuse a stored baseline whose questions, prompts, generation or judges differ from this run's."""
        ctx = self.resources.context(stored.dataset)
        generation = to_dict(GenerationSettings(max_new_tokens=self.config.max_new_tokens, seed=self.config.seed))
        judge_configs = {j.name: dict(getattr(j, "config", {}) or {}) for j in self.resources.judges()}
        diffs = _baselines.differences(
            stored.to_json(), fingerprint=ctx.fingerprint, generation=generation, judge_configs=judge_configs
        )
        if diffs:
            raise ConfigError(
                f"--baseline {self.baseline_path}: cell {stored.id} is not comparable with this run: "
                + "; ".join(diffs)
                + "; store a new baseline with --update-baseline, or run with its settings"
            )

    def decide(self, result: CellResult, baseline: CellResult | None) -> CellResult:
        """``result`` decided: a baseline cell by its validity, another cell against ``baseline``."""
        gating = self.resources.gating(result.dataset)
        if result.kind == BASELINE:
            if not gating:
                return result.decided(CellStatus.UNGATED, NO_QUALIFIED_JUDGE)
            problems = _gate.baseline_validity(result, gating=gating, max_unscored=self.config.max_unscored)
            return result.decided(
                CellStatus.FAILED if problems else CellStatus.PASSED, problems=problems, gating=gating
            )
        gate = _gate.compare(
            result,
            baseline,
            judges=result.judges,
            gating=gating,
            margin=self.config.margin,
            seed=self.config.seed,
            min_paired=self.config.min_paired,
        )
        if gate["outcome"] == CellStatus.UNGATED:
            reason = ("not gated: " + "; ".join(gate["too_few"])) if gate.get("too_few") else NO_QUALIFIED_JUDGE
            return result.decided(CellStatus.UNGATED, reason, gate=gate)
        return result.decided(CellStatus(gate["outcome"]), gate=gate)

    def message(self, result: CellResult) -> str:
        """What the cell's test says about a decided result (empty when it passed)."""
        if result.status == CellStatus.UNGATED:
            return result.reason or NO_QUALIFIED_JUDGE
        if result.status == CellStatus.PASSED:
            return ""
        if result.kind == BASELINE:
            problems = result.decision.get("problems") or []
            return f"{result.id}: invalid baseline: " + "; ".join(problems) if problems else ""
        if "gate" in result.decision:
            return _gate.failure_message(result.id, result.decision["gate"], str(self.summary_path))
        return ""
