"""The options of a matrix run, once, for both front doors: ``pytest --matrix FILE ...`` (the
pytest plugin) and ``evalsuite run ...``.

:data:`RUN_OPTIONS` holds every option with its flag, help, default, the doors that take it and
the key of :func:`load_config` it overrides. The plugin's ``pytest_addoption`` and the argparse
parser of ``evalsuite run`` are generated from it (:func:`add_pytest_options`,
:func:`add_run_arguments`), both build their :class:`MatrixConfig` through
:func:`config_from_options`, and both find the matrix file with :func:`find_matrix`.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from evalsuite.errors import ConfigError
from evalsuite.matrix._config import JUDGE_MODES, MatrixConfig, load_config

PYTEST = "pytest"  # the pytest plugin: pytest --matrix FILE ...
RUN = "run"  # evalsuite run ...
BOTH = (PYTEST, RUN)


@dataclass(frozen=True)
class RunOption:
    """One option of a matrix run: a switch (``flag_only``, False unless given) or a value, kept
    as the text given (None when not given); :func:`load_config` parses an override's text.

    ``override`` is the key of :func:`load_config`'s overrides the value replaces (None: the
    option steers the run, not the configuration). ``doors`` says which front doors take it;
    ``forward``: ``evalsuite run`` passes it on to the pytest run it starts (with the same flag)."""

    flag: str
    dest: str
    help: str
    doors: tuple[str, ...] = BOTH
    override: str | None = None
    flag_only: bool = False  # a switch (store_true), else an option with a value
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    forward: bool = True

    def argparse_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``add_argument`` / pytest's ``addoption`` (the same for both)."""
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help}
        if self.flag_only:
            kwargs.update(action="store_true", default=False)
        else:
            kwargs["default"] = self.default
            if self.metavar:
                kwargs["metavar"] = self.metavar
            if self.choices:
                kwargs["choices"] = self.choices
        return kwargs


RUN_OPTIONS: tuple[RunOption, ...] = (
    # -- which matrix, which profile
    RunOption(
        "--matrix",
        "matrix",
        "matrix file (default: [tool.evalsuite] matrix in the project's pyproject.toml; "
        "`evalsuite run` then also takes ./matrix.toml)",
        metavar="FILE",
        forward=False,
    ),
    RunOption(
        "--profile",
        "profile",
        "profile of the matrix file to run (default, smoke, paper, ...)",
        default="default",
        forward=False,
    ),
    # -- overrides of the profile's values
    RunOption("--models", "models", "comma-separated model specs replacing the profile's models", override="models"),
    RunOption("--sizes", "sizes", "comma-separated fine-tuning sizes, e.g. 0,20,100", override="sizes"),
    RunOption("--datasets", "datasets", "comma-separated dataset names of the matrix file", override="datasets"),
    RunOption(
        "--judge",
        "judge",
        "comma-separated judge specs: registered names (reference, learned-correctness) or model specs",
        override="judges",
    ),
    RunOption("--judge-mode", "judge_mode", "G-Eval scoring mode", override="judge_mode", choices=JUDGE_MODES),
    RunOption("--judge-repeats", "judge_repeats", "judge runs per answer (sample mode)", override="judge_repeats"),
    RunOption("--eval-limit", "eval_limit", "eval questions per dataset", override="eval_limit"),
    RunOption("--margin", "margin", "non-inferiority margin (1-5 scale) or 'auto'", override="margin"),
    RunOption(
        "--baseline",
        "baseline",
        "compare with a stored run or baseline file (reports/baselines/, or 'latest') instead of computing baselines",
        override="baseline_from",
        metavar="RUN_OR_FILE",
    ),
    RunOption(
        "--candidate",
        "candidate",
        "gate this model or adapter (base+lora:DIR, an openai: endpoint, ...) "
        "against the baseline; adds a cell per dataset",
        override="candidate",
        metavar="SPEC",
    ),
    RunOption(
        "--candidate-base",
        "candidate_base",
        "the matrix model whose baseline the candidate is compared with "
        "(default: the base of a +lora: spec, else the first model)",
        override="candidate_base",
        metavar="NAME",
    ),
    # -- the run
    RunOption("--run-id", "run_id", "run folder name (default: derived from the configuration, so reruns resume)"),
    RunOption(
        "--report-dir",
        "report_dir",
        "reports root (default: reports/ in the project's root folder; `evalsuite run`: in the current folder)",
    ),
    RunOption(
        "--shard",
        "shard",
        "run shard I of N (1-based, e.g. 2/4): whole (dataset, model) groups, so a "
        "fine-tuned cell and its baseline land together; merge the shards' run folders with "
        "`evalsuite report --merge`",
        metavar="I/N",
    ),
    RunOption(
        "--update-baseline",
        "update_baseline",
        "append this run's baseline cells, with provenance, to reports/baselines/",
        flag_only=True,
    ),
    RunOption(
        "--allow-ungated",
        "allow_ungated",
        "exit 0 although some cells were skipped, too few of their answers "
        "were scored, or no qualified judge gated them (status 3 otherwise; the report still says so)",
        flag_only=True,
    ),
    RunOption(
        "--allow-inconclusive",
        "allow_inconclusive",
        "exit 0 although some cells were inconclusive: their "
        "interval neither cleared the margin nor lay beyond it (status 4 otherwise; the report still says so)",
        flag_only=True,
    ),
    RunOption(
        "--dry-run",
        "dry_run",
        "print the plan (cells, stored or to compute, and per stage the model calls, "
        "prompt and answer tokens, estimated time here and API cost from [prices]) and run nothing; exit "
        "status 0, or 2 on a configuration error",
        flag_only=True,
        forward=False,
    ),
    RunOption(
        "--plan-json",
        "plan_json",
        "with --dry-run: also write the plan as JSON to FILE",
        doors=(PYTEST,),
        metavar="FILE",
    ),
    RunOption("--json", "json", "with --dry-run: print the plan as JSON", doors=(RUN,), flag_only=True, forward=False),
    # -- pytest's own options, which `evalsuite run` passes on
    RunOption("-k", "k", "select cells, e.g. qasper, ft100, 'nq and smollm2'", doors=(RUN,), metavar="EXPR"),
    RunOption("-n", "n", "pytest-xdist workers (e.g. 2 or auto)", doors=(RUN,), metavar="WORKERS"),
    RunOption("--junitxml", "junitxml", "also write a JUnit XML file", doors=(RUN,)),
)


def options_of(door: str) -> tuple[RunOption, ...]:
    """The options ``door`` (``"pytest"`` or ``"run"``) takes, in the table's order."""
    if door not in BOTH:
        raise ValueError(f"unknown door {door!r}; one of {', '.join(BOTH)}")
    return tuple(o for o in RUN_OPTIONS if door in o.doors)


def add_pytest_options(group: Any) -> None:
    """Add the plugin's options to a pytest option group (``parser.getgroup(...)``)."""
    for option in options_of(PYTEST):
        group.addoption(option.flag, **option.argparse_kwargs())


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``evalsuite run`` to its argparse parser."""
    for option in options_of(RUN):
        parser.add_argument(option.flag, **option.argparse_kwargs())


def _value(options: Any, dest: str) -> Any:
    return options.get(dest) if isinstance(options, Mapping) else getattr(options, dest, None)


def option_overrides(options: Any) -> dict[str, Any]:
    """The overrides of :func:`load_config` that parsed options give (a namespace, pytest's
    ``config.option``, or a mapping by dest); an option not given is None, which overrides nothing."""
    return {o.override: _value(options, o.dest) for o in RUN_OPTIONS if o.override is not None}


def config_from_options(matrix: str | Path, options: Any) -> MatrixConfig:
    """The :class:`MatrixConfig` of a run: the options' profile of ``matrix`` with their overrides."""
    return load_config(matrix, _value(options, "profile") or "default", option_overrides(options))


def forwarded_arguments(options: Any) -> list[str]:
    """The pytest arguments by which ``evalsuite run`` passes its options on to the pytest run."""
    args: list[str] = []
    for option in options_of(RUN):
        if not option.forward:
            continue
        value = _value(options, option.dest)
        if option.flag_only:
            if value:
                args.append(option.flag)
        elif value is not None:
            args += [option.flag, str(value)]
    return args


PYPROJECT = "pyproject.toml"
FALLBACK_MATRIX = "matrix.toml"


def find_matrix(
    explicit: str | Path | None = None, root: str | Path | None = None, *, named_only: bool = False
) -> Path | None:
    """The matrix file of a run, by one rule for both doors.

    1. ``--matrix FILE`` (``explicit``), relative to the current folder;
    2. else ``[tool.evalsuite] matrix`` of ``root``/pyproject.toml, relative to that file;
    3. else ``root``/matrix.toml, unless ``named_only``.

    ``root`` is the project's root folder (pytest's rootdir; the current folder for
    ``evalsuite run``). A file that is named but missing, a pyproject.toml that is not valid TOML
    and a ``[tool.evalsuite] matrix`` that is not a path are errors that name the fix. With
    nothing named: None when ``named_only`` (the pytest plugin then stays out of the way), else
    an error that says how to name one.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"matrix file {path} not found; check --matrix")
        return path.resolve()
    root = Path(root) if root is not None else Path.cwd()
    pyproject = root / PYPROJECT
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("evalsuite", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{pyproject}: not valid TOML ({exc}); fix the syntax") from None
        if isinstance(table, Mapping) and "matrix" in table:
            named = table["matrix"]
            if not isinstance(named, str) or not named:
                raise ConfigError(
                    f"{pyproject}: [tool.evalsuite] matrix = {named!r} must be the path of the matrix "
                    "file, relative to pyproject.toml"
                )
            path = (pyproject.parent / named).resolve()
            if not path.is_file():
                raise ConfigError(
                    f"{pyproject}: [tool.evalsuite] matrix = {named!r} does not exist; fix the path "
                    "or pass --matrix FILE"
                )
            return path
    if named_only:
        return None
    if (root / FALLBACK_MATRIX).is_file():
        return (root / FALLBACK_MATRIX).resolve()
    raise ConfigError(
        'no matrix file: pass --matrix FILE, add [tool.evalsuite] matrix = "..." to pyproject.toml, '
        "or create matrix.toml in this folder"
    )
