"""The evaluation matrix: dataset x model x fine-tuning size, each cell gated against its baseline.

``load_config`` reads a profile of ``test_cases/matrix.toml``; ``RUN_OPTIONS`` are the options
of a run, shared by both front doors, and ``find_matrix`` finds the matrix file; ``expand_cells`` lists the
cells in a fixed order; ``build_plan`` says what a run would do and cost (``--dry-run``); ``MatrixSession`` runs
and decides cells and writes the run's
results and report. The pytest plugin (``evalsuite.pytest_plugin``) and ``evalsuite run``
are thin shells over these.
"""

from evalsuite.matrix._cells import (
    BASELINE,
    CANDIDATE,
    FINETUNED,
    Cell,
    cell_id,
    expand_cells,
    parse_shard,
    shard_cells,
)
from evalsuite.matrix._config import (
    DATASETS,
    MatrixConfig,
    ModelEntry,
    Price,
    build_config,
    load_config,
    read_prices,
    read_profiles,
    short_name,
)
from evalsuite.matrix._options import (
    RUN_OPTIONS,
    RunOption,
    add_pytest_options,
    add_run_arguments,
    config_from_options,
    find_matrix,
    forwarded_arguments,
    option_overrides,
    options_of,
)
from evalsuite.matrix._pipeline import CellSkipped, prepare_dataset
from evalsuite.matrix._plan import GatePower, Plan, PlanCell, StageCost, build_plan, format_plan, qualification_costs
from evalsuite.matrix._session import MatrixSession, Outcome, merge_runs
from evalsuite.matrix._store import RunStore, is_reusable
from evalsuite.matrix._verdict import (
    EXIT_STATUSES,
    INCONCLUSIVE,
    INPUT_ERROR,
    NOT_GATED,
    PASSED,
    PRECEDENCE,
    REGRESSION,
    TEST_FAILED,
    exit_status,
)
from evalsuite.matrix._verdict import help_text as exit_status_help

__all__ = [
    "BASELINE",
    "CANDIDATE",
    "EXIT_STATUSES",
    "INCONCLUSIVE",
    "INPUT_ERROR",
    "PRECEDENCE",
    "TEST_FAILED",
    "exit_status_help",
    "NOT_GATED",
    "PASSED",
    "REGRESSION",
    "exit_status",
    "FINETUNED",
    "DATASETS",
    "Cell",
    "CellSkipped",
    "MatrixConfig",
    "MatrixSession",
    "ModelEntry",
    "Outcome",
    "RunStore",
    "build_config",
    "cell_id",
    "expand_cells",
    "is_reusable",
    "load_config",
    "merge_runs",
    "parse_shard",
    "prepare_dataset",
    "read_profiles",
    "RUN_OPTIONS",
    "RunOption",
    "add_pytest_options",
    "add_run_arguments",
    "config_from_options",
    "find_matrix",
    "forwarded_arguments",
    "option_overrides",
    "options_of",
    "GatePower",
    "Plan",
    "PlanCell",
    "Price",
    "StageCost",
    "build_plan",
    "format_plan",
    "qualification_costs",
    "read_prices",
    "shard_cells",
    "short_name",
]
