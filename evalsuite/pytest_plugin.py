"""The evaluation matrix as pytest tests: one test per (dataset, model, fine-tuning size) cell.

Installed with evalsuite (entry point ``pytest11``), and inactive unless a matrix file is
given: ``pytest --matrix matrix.toml`` or, in the project's ``pyproject.toml``::

    [tool.evalsuite]
    matrix = "matrix.toml"

The plugin then collects the matrix file itself: every cell is a test with a short stable id
(``qasper-smollm2-ft0`` is the un-tuned baseline, ``qasper-smollm2-ft30`` the adapter trained
on 30 pool pairs, ``nq-candidate`` for ``--candidate``), so ``pytest -k qasper``,
``-k "nq and ft30"`` and ``-n 2`` work as usual. A test module may instead hold the one line
``from evalsuite.pytest_plugin import test_cell``; the plugin then parametrizes it and does
not collect the file a second time.

A thin shell over :class:`evalsuite.matrix.MatrixSession`. Under pytest-xdist every worker
writes its cells' result files into the shared run folder; only the controller merges them
into ``results.json``, renders the report and decides the exit status (``evalsuite.matrix.EXIT_STATUSES``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from evalsuite._telemetry import imported_too_early
from evalsuite.errors import EvalsuiteError
from evalsuite.matrix import (
    EXIT_STATUSES,
    INPUT_ERROR,
    PASSED,
    add_pytest_options,
    config_from_options,
    exit_status,
    exit_status_help,
    find_matrix,
)
from evalsuite.redaction import scrub_text

_SESSION = pytest.StashKey["object"]()
_STATE = pytest.StashKey[dict]()
TOKEN_KEY = "evalsuite_matrix_token"
CELL_PROPERTY = "evalsuite_cell"
SUMMARY_ENV = "EVALSUITE_MATRIX_SUMMARY"


# -- options and activation ------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup(
        "evalsuite",
        "evalsuite evaluation matrix (active with --matrix or [tool.evalsuite] matrix); "
        + exit_status_help().replace("\n", " "),
    )
    add_pytest_options(g)  # the table of options shared with `evalsuite run` (evalsuite.matrix.RUN_OPTIONS)


def matrix_file(config: pytest.Config) -> Path | None:
    """The matrix file this run uses, or None (the plugin then stays out of the way): ``--matrix``,
    else ``[tool.evalsuite] matrix`` of the pyproject.toml in pytest's root folder
    (:func:`evalsuite.matrix.find_matrix`; a named file that is missing is an error)."""
    return find_matrix(config.option.matrix, config.rootpath, named_only=True)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for package in imported_too_early():
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"{package} was imported by another pytest plugin before evalsuite could turn its usage telemetry off: "
                "pass -p no:plugins (deepeval's pytest plugin) or set DEEPEVAL_TELEMETRY_OPT_OUT=YES"
            ),
            stacklevel=2,
        )
    if config.option.dry_run and getattr(config.option, "xmlpath", None):
        config.option.xmlpath = None  # a dry run writes no JUnit file (and no report)
    token = config.workerinput.get(TOKEN_KEY) if _is_worker(config) else None
    try:
        matrix = matrix_file(config)
    except EvalsuiteError as err:
        if getattr(config.option, "help", False):  # `pytest --help` still shows the options
            matrix = None
        else:
            pytest.exit(f"evalsuite: {scrub_text(str(err))}", returncode=INPUT_ERROR)
    config.stash[_STATE] = {
        "token": token or uuid.uuid4().hex,
        "ran": {},
        "outcomes": {},
        "start": time.time(),
        "final": None,
        "matrix": matrix,
        "selected": 0,
    }
    if config.stash[_STATE]["matrix"] is not None:
        config.pluginmanager.register(_Progress(config), "evalsuite-matrix-progress")
        if config.option.dry_run:
            config.pluginmanager.register(_DryRun(config), "evalsuite-matrix-dry-run")
        share_cores_between_workers(config)
        if not _is_worker(config):
            _stop_after_current_cell(config)


INTERRUPTED = 130  # the usual status of a run stopped by Ctrl-C


def _stop_after_current_cell(config: pytest.Config) -> None:
    """The first Ctrl-C lets the running cell finish, then the run stops and writes its report,
    marked incomplete; a second Ctrl-C stops at once. Finished cells, answers and verdicts are
    stored either way, so the same command resumes."""
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread
        return

    def handler(signum, frame):
        state = config.stash[_STATE]
        if state.get("stop") or previous in (signal.SIG_IGN, None):
            signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)
            raise KeyboardInterrupt
        state["stop"] = True
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        capman = config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None:  # on the terminal, not into the running cell's captured output
            with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
                reporter.write_line(
                    "evalsuite: stopping after the current cell (Ctrl-C again to stop now); "
                    "the report is written and the same command resumes",
                    yellow=True,
                )

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        return


def share_cores_between_workers(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker cores / workers torch threads: torch's OpenMP threads
    spin while waiting, so two workers with a thread per core each run many times slower, and a
    fixed thread count per worker keeps the numbers of a run the same."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    workers = int(workerinput.get("workercount", 1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # pytest-xdist: every worker shares the controller's session token
    node.workerinput[TOKEN_KEY] = node.config.stash[_STATE]["token"]


def get_session(config: pytest.Config):
    """The run's :class:`MatrixSession`, built from the options on first use (EvalsuiteError if invalid)."""
    if _SESSION not in config.stash:
        # deferred: pytest loads this plugin in every session, the matrix only when one runs
        from evalsuite.matrix import MatrixSession

        path = config.stash[_STATE]["matrix"]
        if path is None:
            raise EvalsuiteError(
                'no matrix file: pass --matrix FILE or set [tool.evalsuite] matrix = "..." in pyproject.toml'
            )
        opt = config.option
        cfg = config_from_options(path, opt)
        root = Path(opt.report_dir) if opt.report_dir else config.rootpath / "reports"
        session = MatrixSession(cfg, report_root=root, run_id=opt.run_id, token=config.stash[_STATE]["token"])
        # under pytest-xdist the controller builds its session only to merge the workers' cells:
        # the run's clock starts when pytest started
        session.started = config.stash[_STATE]["start"]
        config.stash[_SESSION] = session
    return config.stash[_SESSION]


# -- collection ------------------------------------------------------------------------------------
def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    state = parent.config.stash[_STATE]
    if state["matrix"] is not None and file_path.resolve() == state["matrix"]:
        return MatrixFile.from_parent(parent, path=file_path)
    return None


class MatrixFile(pytest.File):
    """The matrix file: its cells, in the fixed order of the configuration (the same on every xdist worker)."""

    def collect(self):
        try:
            session = get_session(self.config)
        except EvalsuiteError as err:
            raise MatrixError(scrub_text(str(err))) from None
        for cell in session.cells:
            yield CellItem.from_parent(self, name=cell.id, cell=cell)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, MatrixError):
            return f"evalsuite: {excinfo.value}"
        return super().repr_failure(excinfo, style)


class MatrixError(Exception):
    """A configuration or input error, shown as its one-line message (exit status 2)."""


class GateFailure(Exception):
    """A cell the gate failed: the message holds its table rows and the report path."""


class GateInconclusive(Exception):
    """A cell the questions could not decide: the message holds its interval, the margin and about
    how many questions would decide it. It blocks like a failure unless --allow-inconclusive."""


class CellItem(pytest.Item):
    """One cell. Setup computes (or reuses) it: a cell that cannot run is an error of the test,
    a regression is a failure (``GateFailure``), an inconclusive cell a failure of its own kind
    (``GateInconclusive``; a skip with the reason under --allow-inconclusive), a skip or an
    ungated cell is a skip with the reason. The JUnit file carries the status as the property
    ``evalsuite_status`` and the failure's message starts with it."""

    def __init__(self, *, cell: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.outcome = None

    def setup(self) -> None:
        state = self.config.stash[_STATE]
        if state.get("stop"):
            state["interrupted"] = True
            pytest.exit(
                "interrupted: the finished cells are stored and the report is marked incomplete; "
                "run the same command again to resume",
                returncode=INTERRUPTED,
            )
        self.user_properties.append((CELL_PROPERTY, self.cell.id))
        matrix = get_session(self.config)
        self.outcome = matrix.evaluate(self.cell, progress=_progress_writer(self.config, self.cell.id))
        self.user_properties.append(("evalsuite_status", self.outcome.status))
        self.user_properties.append(("evalsuite_reused", self.outcome.reused))
        if self.outcome.status == "error":
            raise MatrixError(scrub_text(self.outcome.message))

    def runtest(self) -> None:
        outcome = self.outcome
        if outcome.status in ("skipped", "ungated"):
            pytest.skip(scrub_text(outcome.message))
        if outcome.status == "failed":
            raise GateFailure(scrub_text(f"failed: {outcome.message}"))
        if outcome.status == "inconclusive":
            if self.config.option.allow_inconclusive:
                pytest.skip(scrub_text(f"inconclusive (accepted by --allow-inconclusive): {outcome.message}"))
            raise GateInconclusive(scrub_text(f"inconclusive: {outcome.message}"))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (GateFailure, GateInconclusive, MatrixError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"cell {self.cell.id}"


def test_cell(evalsuite_cell) -> None:
    """Import this into a test module to collect the matrix there (``from evalsuite.pytest_plugin import
    test_cell``)."""
    item = evalsuite_cell
    item.setup()
    item.runtest()


@pytest.fixture
def evalsuite_cell(request: pytest.FixtureRequest):
    """The cell of a ``test_cell`` parametrization, run like a collected matrix item."""
    parent = request.node
    return _ModuleCell(request.param, parent)


class _ModuleCell:
    """The setup/runtest steps of :class:`CellItem` for a cell parametrized into a test module."""

    def __init__(self, cell: Any, node: pytest.Item) -> None:
        self.cell, self.node, self.config, self.outcome = cell, node, node.config, None
        self.user_properties = node.user_properties

    setup = CellItem.setup
    runtest = CellItem.runtest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "evalsuite_cell" in metafunc.fixturenames:
        try:
            cells = get_session(metafunc.config).cells
        except EvalsuiteError as err:
            raise MatrixError(str(err)) from None
        metafunc.parametrize("evalsuite_cell", cells, ids=[c.id for c in cells], indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test module that collects the matrix replaces the file's own collection of the same cells;
    ``--shard I/N`` deselects the cells of the other shards."""
    in_modules = {
        item.callspec.id for item in items if hasattr(item, "callspec") and "evalsuite_cell" in item.callspec.params
    }
    if in_modules:
        items[:] = [item for item in items if not (isinstance(item, CellItem) and item.cell.id in in_modules)]
    if config.option.shard and config.stash[_STATE]["matrix"] is not None:
        # deferred: pytest loads this plugin in every session, the matrix only when one runs
        from evalsuite.matrix import parse_shard, shard_cells

        try:
            index, count = parse_shard(config.option.shard)
            mine = {c.id for c in shard_cells(get_session(config).cells, index, count)}
        except EvalsuiteError as err:
            raise pytest.UsageError(str(err)) from None
        keep = [item for item in items if _cell_of(item) is None or _cell_of(item) in mine]
        dropped = [item for item in items if item not in keep]
        if not mine:  # more shards than (dataset, model) groups: this one has nothing to run, which is no error
            config.stash[_STATE]["empty_shard"] = (
                f"shard {index}/{count} has no cells: the matrix has fewer (dataset, model) groups than shards"
            )
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class _DryRun:
    """``--dry-run``: the plan of the selected cells (after -k and --shard), then nothing runs."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        dry_run_plan(self.config, items)


def dry_run_plan(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[_STATE]
    # deferred: pytest loads this plugin in every session, the matrix only when one runs
    from evalsuite.matrix import build_plan, read_prices

    cells = [item for item in items if _cell_of(item) is not None]
    try:
        matrix = get_session(config)
        by_id = {c.id: c for c in matrix.cells}
        plan = build_plan(
            matrix.config,
            report_root=matrix.report_root,
            run_id=matrix.run_id,
            selected=[by_id[_cell_of(item)] for item in cells],
            node_ids={_cell_of(item): item.nodeid for item in cells},
            prices=read_prices(state["matrix"]),
        )
        state["plan"] = plan
        if config.option.plan_json:
            # deferred: pytest loads this plugin in every session, the matrix only when one runs
            from evalsuite.storage import atomic_write_json

            atomic_write_json(Path(config.option.plan_json), plan.to_json())
    except EvalsuiteError as err:
        state["plan_error"] = scrub_text(str(err))
    if items:
        config.hook.pytest_deselected(items=list(items))
    items[:] = []


def _progress_writer(config: pytest.Config, name: str):
    """A callback showing the current stage of a cell on the terminal (serial runs; workers stay quiet)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def progress(stage: str) -> None:
        if _is_worker(config) or reporter is None:
            return
        stage = scrub_text(stage)
        if capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.write_line(f"  [{name}] {stage}")
        else:
            reporter.write_line(f"  [{name}] {stage}")

    return progress


class _Progress:
    """Controller-side progress: a line per finished cell with elapsed time and ETA; the outcomes."""

    def __init__(self, config: pytest.Config):
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        cell = props.get(CELL_PROPERTY)
        if cell is None:  # a test of the suite that is not a cell: its failure must show in the exit status
            if report.failed:
                self.config.stash[_STATE].setdefault("other_failed", []).append(report.nodeid)
            return
        state = self.config.stash[_STATE]
        if "evalsuite_status" in props:
            state["outcomes"][cell] = props["evalsuite_status"]
        if report.when == "setup":  # a cell's work (index, fine-tuning, answers, verdicts) runs in its fixtures
            state.setdefault("setup_seconds", {})[cell] = report.duration
        if not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        state["ran"][cell] = report.outcome
        if _is_worker(self.config):
            return
        done = len(state["ran"])
        total = max(state.get("selected") or 0, done)
        elapsed = time.time() - state["start"]
        eta = elapsed / done * (total - done)
        how = "reused" if props.get("evalsuite_reused") else "computed"
        seconds = report.duration + (state.get("setup_seconds", {}).get(cell, 0.0) if report.when == "call" else 0.0)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"[matrix {done}/{total}] {cell} {props.get('evalsuite_status', report.outcome)} "
                f"({how}, {seconds:.0f}s); elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.config.stash[_STATE]["selected"] = sum(1 for item in items if _cell_of(item) is not None)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:  # controller: cells the workers will run
        cells = {c.id for c in get_session(self.config).cells}
        self.config.stash[_STATE]["selected"] = sum(
            1 for i in ids if i.rsplit("::", 1)[-1].split("[")[-1].rstrip("]") in cells
        )


def _cell_of(item: pytest.Item) -> str | None:
    if isinstance(item, CellItem):
        return item.cell.id
    if hasattr(item, "callspec") and "evalsuite_cell" in item.callspec.params:
        return item.callspec.id
    return None


# -- end of the run: report and exit status --------------------------------------------------------
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash[_STATE]
    if config.option.dry_run and state["matrix"] is not None and not _is_worker(config):
        if "plan" in state:
            session.exitstatus = PASSED
        elif "plan_error" in state or exitstatus == pytest.ExitCode.INTERRUPTED:  # a collection error: the matrix file
            session.exitstatus = INPUT_ERROR
        return
    if state.get("empty_shard") and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and not _is_worker(config):
        session.exitstatus = 0
        return
    if _is_worker(config) or not state["ran"]:
        return
    matrix = get_session(config)
    interrupted = state.get("interrupted") or exitstatus == pytest.ExitCode.INTERRUPTED
    try:
        state["final"] = matrix.finalize(
            state["ran"],
            update_baseline=config.option.update_baseline and not interrupted,
            incomplete="interrupted before every selected cell ran" if interrupted else None,
        )
    except EvalsuiteError as err:
        state["final"] = {"error": str(err)}
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        outcomes = {
            cid: state["outcomes"].get(cid, "skipped" if outcome == "skipped" else "error")
            for cid, outcome in state["ran"].items()
        }
        status = exit_status(
            outcomes,
            allow_ungated=config.option.allow_ungated,
            allow_inconclusive=config.option.allow_inconclusive,
            other_failures=state.get("other_failed", ()),
        )
        state["exit"] = status
        session.exitstatus = status


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash[_STATE] if _STATE in config.stash else {}
    if state.get("empty_shard"):
        terminalreporter.write_line(state["empty_shard"])
    if state.get("plan") is not None or state.get("plan_error"):
        # deferred: pytest loads this plugin in every session, the matrix only when one runs
        from evalsuite.matrix import format_plan

        terminalreporter.section("evalsuite dry run")
        if state.get("plan_error"):
            terminalreporter.write_line(f"evalsuite: {state['plan_error']}", red=True)
        else:
            terminalreporter.write(format_plan(state["plan"]))
        return
    final = state.get("final")
    if not final:
        return
    terminalreporter.section("evalsuite matrix")
    if "error" in final:
        terminalreporter.write_line(f"report not written: {final['error']}", red=True)
        return
    # deferred: pytest loads this plugin in every session, the matrix only when one runs
    from evalsuite.report import summary_tables

    results = final["results"]
    if os.environ.get(SUMMARY_ENV) != "0":  # `evalsuite run` prints the tables itself
        terminalreporter.write(summary_tables(results))
    s = results["session"]
    terminalreporter.write_line(f"reused {len(s['reused'])} finished cells, computed {len(s['computed'])}")
    terminalreporter.write_line(f"report: {final['written']['summary']}  (html: {final['written']['html']})")
    if final.get("baseline_file"):
        terminalreporter.write_line(f"baseline stored: {final['baseline_file']}")
    if final.get("baseline_error"):
        terminalreporter.write_line(f"baseline not stored: {final['baseline_error']}", red=True)
    status = state.get("exit")
    if status is not None:
        counts: dict[str, int] = {}
        for outcome in state["outcomes"].values():
            counts[outcome] = counts.get(outcome, 0) + 1
        told = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        terminalreporter.write_line(
            f"exit status {status}: {EXIT_STATUSES[status]} ({told})", red=status != PASSED, green=status == PASSED
        )
