"""Expansion of a :class:`MatrixConfig` into an ordered list of cells with short stable ids.

The order is a pure function of the configuration (datasets, then models, then sizes, as
written), so every pytest-xdist worker collects the same list. Ids read like
``qasper-smollm2-ft100``; the un-tuned baseline of a (dataset, model) is ``...-ft0`` and
a user-supplied candidate is ``nq-candidate``. A profile with named fine-tuning recipes trains
every size once per recipe, ``qasper-smollm2-ft100-r64e3``, all against the one ``ft0``.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalsuite.errors import ConfigError
from evalsuite.matrix._config import MatrixConfig, short_name
from evalsuite.models import parse_spec

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
    recipe: str | None = None  # the fine-tuning recipe of a fine-tuned cell of a profile with recipes

    @property
    def is_baseline(self) -> bool:
        return self.kind == BASELINE


def cell_id(dataset: str, model: str, size: int, recipe: str | None = None) -> str:
    return f"{dataset}-{model}-ft{size}" + (f"-{recipe}" if recipe else "")


def candidate_base(config: MatrixConfig) -> str:
    """The model a candidate is compared with: ``candidate_base`` when given (a model's short name
    or spec), else the base of a ``base+lora:dir`` spec if the matrix has that model, else the
    first model of the matrix."""
    assert config.candidate is not None
    if config.candidate_base:
        return next(m.name for m in config.models if config.candidate_base in (m.name, m.spec))  # checked by the config
    base = parse_spec(config.candidate).base
    for m in config.models:
        if m.spec == base or m.name == short_name(base):
            return m.name
    return config.models[0].name


def expand_cells(config: MatrixConfig) -> list[Cell]:
    """Every cell of the matrix in a fixed order: per dataset, per model, baseline first, then sizes."""
    cells: list[Cell] = []
    for dataset in config.dataset_names:
        for m in config.models:
            base_id = cell_id(dataset, m.name, 0)
            cells.append(Cell(base_id, dataset, m.name, m.spec, 0, BASELINE, base_id))
            if m.baseline_only:
                continue
            recipes = [r.name for r in config.recipes] or [None]
            for size in config.sizes:
                if size > 0:
                    for recipe in recipes:
                        cells.append(
                            Cell(
                                cell_id(dataset, m.name, size, recipe),
                                dataset,
                                m.name,
                                m.spec,
                                size,
                                FINETUNED,
                                base_id,
                                recipe,
                            )
                        )
        if config.candidate:
            base = candidate_base(config)
            cells.append(
                Cell(
                    f"{dataset}-candidate",
                    dataset,
                    "candidate",
                    config.candidate,
                    0,
                    CANDIDATE,
                    cell_id(dataset, base, 0),
                )
            )
    return cells


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1-based) as (I, N); a ConfigError naming the option otherwise."""

    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: write I/N, e.g. 1/2 for the first of two shards") from None
    if not 1 <= index <= count:
        raise ConfigError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def shard_cells(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """The cells of shard ``index`` of ``count``: whole (dataset, model) groups, so every cell
    lands with its baseline. Groups go, in matrix order, to the shard with the least work so far
    (a group's work: 1 per cell plus its fine-tuning sizes / 100), so the split is the same on
    every machine and roughly even."""
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        base = next(c for c in cells if c.id == cell.baseline_id)
        groups.setdefault((base.dataset, base.model), []).append(cell)
    load = [0.0] * count
    owner: dict[tuple[str, str], int] = {}
    for key, members in groups.items():
        target = min(range(count), key=lambda i: (load[i], i))
        owner[key] = target
        load[target] += sum(1 + c.size / 100 for c in members)
    keys = {cell.id: key for key, members in groups.items() for cell in members}
    return [cell for cell in cells if owner[keys[cell.id]] == index - 1]
