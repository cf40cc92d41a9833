"""Expansion of a :class:`MatrixConfig` into an ordered list of cells with short stable ids.

The order is a pure function of the configuration (datasets, then models, then sizes, as
written), so every pytest-xdist worker collects the same list. Ids read like
``qasper-smollm2-ft100``; the un-tuned baseline of a (dataset, model) is ``...-ft0`` and
a user-supplied candidate is ``nq-candidate``.
"""
from __future__ import annotations

from dataclasses import dataclass

from evalsuite.matrix._config import MatrixConfig, short_name

BASELINE, FINETUNED, CANDIDATE = "baseline", "finetuned", "candidate"


@dataclass(frozen=True)
class Cell:
    """One (dataset, model, fine-tuning size) point of the matrix."""

    id: str
    dataset: str
    model: str  # short name
    spec: str  # model spec of the base (the adapter is added when the cell is run)
    size: int  # fine-tuning pairs; 0 for the baseline and for a candidate
    kind: str  # BASELINE | FINETUNED | CANDIDATE
    baseline_id: str  # id of the baseline cell this cell is compared with (itself for a baseline)

    @property
    def is_baseline(self) -> bool:
        return self.kind == BASELINE


def cell_id(dataset: str, model: str, size: int) -> str:
    return f"{dataset}-{model}-ft{size}"


def candidate_base(config: MatrixConfig) -> str:
    """The model a candidate is compared with: the base of a ``base+lora:dir`` spec if the matrix
    has that model, else the first model of the matrix."""
    assert config.candidate is not None
    base = config.candidate.split("+lora:", 1)[0]
    for m in config.models:
        if m.spec == base or m.name == short_name(base):
            return m.name
    return config.models[0].name


def expand_cells(config: MatrixConfig) -> list[Cell]:
    """Every cell of the matrix in a fixed order: per dataset, per model, baseline first, then sizes."""
    cells: list[Cell] = []
    for dataset in config.datasets:
        for m in config.models:
            base_id = cell_id(dataset, m.name, 0)
            cells.append(Cell(base_id, dataset, m.name, m.spec, 0, BASELINE, base_id))
            if m.baseline_only:
                continue
            for size in config.sizes:
                if size > 0:
                    cells.append(Cell(cell_id(dataset, m.name, size), dataset, m.name, m.spec, size, FINETUNED, base_id))
        if config.candidate:
            base = candidate_base(config)
            cells.append(Cell(f"{dataset}-candidate", dataset, "candidate", config.candidate, 0, CANDIDATE,
                              cell_id(dataset, base, 0)))
    return cells
