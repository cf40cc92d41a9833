"""``evalsuite run``, ``evalsuite report`` and ``evalsuite compare``.

``run`` drives pytest on the matrix file through the evalsuite pytest plugin (so the command
line and ``pytest --matrix FILE`` are the same run, resumable, with the same report), in this
repository or any other, and ends by printing the summary tables and the report path. Its
exit status is the gate's verdict.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from evalsuite.errors import ConfigError
from evalsuite.redaction import scrub_text

SUMMARY_ENV = "EVALSUITE_MATRIX_SUMMARY"


def find_matrix(explicit: str | None = None, cwd: Path | None = None) -> Path:
    """The matrix file: ``--matrix``, else ``[tool.evalsuite] matrix`` of ./pyproject.toml, else
    ./matrix.toml (:func:`evalsuite.matrix.find_matrix`, the rule the pytest plugin follows too)."""
    from evalsuite.matrix import find_matrix as find  # deferred: a command loads only the stages it runs

    return find(explicit, cwd or Path.cwd())


def pytest_command(args: argparse.Namespace, matrix: Path) -> list[str]:
    from evalsuite.matrix import forwarded_arguments  # deferred: a command loads only the stages it runs

    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(matrix),
        "--matrix",
        str(matrix),
        "--profile",
        args.profile,
        "-q",
        "-rfEs",
        "-p",
        "no:cacheprovider",
    ]
    return cmd + forwarded_arguments(args) + list(args.pytest_args or [])


def run_dir_of(args: argparse.Namespace, matrix: Path, cwd: Path | None = None) -> Path:
    """The run folder the pytest run writes (same derivation as the plugin)."""
    from evalsuite.matrix import config_from_options  # deferred: a command loads only the stages it runs

    cfg = config_from_options(matrix, args)
    report_root = Path(args.report_dir) if args.report_dir else (cwd or Path.cwd()) / "reports"
    return report_root / "runs" / (args.run_id or cfg.run_id())


STATUS_FILE = "last-run.json"  # in the reports root: the last `evalsuite run`'s verdict, for CI


def _write_status(report_root: Path, status: int, run_dir: Path | None, message: str = "") -> None:
    """``reports/last-run.json``: the exit status, its meaning, and each cell's status (passed, failed,
    inconclusive, ungated, skipped, error, not run) with the counts, so a CI can tell them apart."""
    from evalsuite.matrix import EXIT_STATUSES  # deferred: a command loads only the stages it runs
    from evalsuite.storage import atomic_write_json  # deferred: a command loads only the stages it runs

    meaning = EXIT_STATUSES.get(status, "interrupted" if status == 130 else f"pytest exit status {status}")
    cells: dict[str, str] = {}
    results_file = run_dir / "results.json" if run_dir else None
    if results_file is not None and results_file.is_file():
        import json

        try:
            results = json.loads(results_file.read_text(encoding="utf-8"))
            ran = set((results.get("session") or {}).get("ran") or [])
            cells = {c["id"]: str(c.get("status")) for c in results.get("cells", []) if c.get("id") in ran}
        except (OSError, ValueError, KeyError, TypeError):
            cells = {}
    counts: dict[str, int] = {}
    for cell_status in cells.values():
        counts[cell_status] = counts.get(cell_status, 0) + 1
    atomic_write_json(
        report_root / STATUS_FILE,
        {
            "exit_status": status,
            "meaning": meaning,
            "run_dir": str(run_dir) if run_dir else None,
            "cells": cells,
            "counts": dict(sorted(counts.items())),
            "message": scrub_text(message),
        },
    )
    print(f"evalsuite run: exit status {status}: {meaning.split(':')[0]}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from evalsuite.matrix import INPUT_ERROR  # deferred: a command loads only the stages it runs
    from evalsuite.report import load_results, summary_tables  # deferred: a command loads only the stages it runs

    report_root = Path(args.report_dir) if args.report_dir else Path.cwd() / "reports"
    args.report_dir = str(report_root)  # the same root the plugin uses: the folder pytest runs in
    try:
        matrix = find_matrix(args.matrix)
        run_dir = run_dir_of(args, matrix)  # validates the configuration before pytest starts
    except ConfigError as err:
        _write_status(report_root, INPUT_ERROR, None, str(err))
        raise
    cmd = pytest_command(args, matrix)
    if args.dry_run:
        return _dry_run(args, cmd)
    print("+ " + scrub_text(" ".join(cmd[1:])), file=sys.stderr)
    env = {**os.environ, SUMMARY_ENV: "0"}  # the tables are printed once, below
    proc = subprocess.run(cmd, env=env)
    if (run_dir / "results.json").is_file():
        results = load_results(run_dir)
        s = results["session"]
        print(summary_tables(results))
        print(f"reused {len(s['reused'])} finished cells, computed {len(s['computed'])}")
        print(f"report: {run_dir / 'summary.md'}  (html: {run_dir / 'report.html'})")
    _write_status(report_root, proc.returncode, run_dir)
    return proc.returncode


def _dry_run(args: argparse.Namespace, cmd: list[str]) -> int:
    """The plan (as a table, or JSON with --json) from the pytest plugin's --dry-run; nothing runs, no report."""
    import json
    import tempfile

    from evalsuite.matrix import INPUT_ERROR  # deferred: a command loads only the stages it runs

    if "-n" in cmd:  # the plan is made in one process
        i = cmd.index("-n")
        del cmd[i : i + 2]
    cmd = [c for c in cmd if not c.startswith("--junitxml") and c != args.junitxml]
    with tempfile.TemporaryDirectory(prefix="evalsuite-plan-") as tmp:
        out = Path(tmp) / "plan.json"
        proc = subprocess.run(
            cmd + ["--dry-run", "--plan-json", str(out)],
            capture_output=True,
            text=True,
            env={**os.environ, SUMMARY_ENV: "0"},
        )
        if proc.returncode != 0 or not out.is_file():
            sys.stderr.write(scrub_text(proc.stdout[-4000:] + proc.stderr[-2000:]))
            return proc.returncode or INPUT_ERROR
        data = json.loads(out.read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        text = proc.stdout
        start = text.find("dry run: profile")
        print(text[start:].rstrip() if start >= 0 else json.dumps(data, indent=2))
    return 0


def _report(args: argparse.Namespace) -> int:
    # deferred: a command loads only the stages it runs
    from evalsuite.report import load_results, render, summary_tables

    if args.merge:
        from evalsuite.matrix import merge_runs  # deferred: a command loads only the stages it runs

        dirs = [Path(d) for d in args.run_dirs]
        first = load_results(dirs[0])
        out = Path(args.out) if args.out else Path.cwd() / "reports" / "runs" / str(first["run_id"])
        run_dir = merge_runs(dirs, out)
        print(f"merged {len(dirs)} run folders into {run_dir}")
    else:
        if len(args.run_dirs) != 1:
            raise ConfigError("give one run folder, or several with --merge")
        run_dir = Path(args.run_dirs[0])
    written = render(run_dir)
    print(summary_tables(load_results(run_dir)))
    print(f"report: {written['summary']}  (html: {written['html']})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    # deferred: a command loads only the stages it runs
    from evalsuite.report import compare_runs, comparison_markdown, load_results

    print(comparison_markdown(compare_runs(load_results(args.run_a), load_results(args.run_b))), end="")
    return 0


def add_cli(subparsers) -> None:
    # deferred: a command loads only the stages it runs
    from evalsuite.matrix import add_run_arguments, exit_status_help

    epilog = exit_status_help()
    run = subparsers.add_parser(
        "run",
        help="run the evaluation matrix (through pytest) and print the summary",
        description="Run the evaluation matrix through pytest and print the summary tables.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(run)  # the table of options shared with the pytest plugin (evalsuite.matrix.RUN_OPTIONS)
    run.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")
    run.set_defaults(func=_run)

    report = subparsers.add_parser(
        "report",
        help="re-render summary.md, report.html and figures of a run, or merge the run folders of shards (--merge)",
    )
    report.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run folder (reports/runs/<run-id> or reports/latest)"
    )
    report.add_argument(
        "--merge",
        action="store_true",
        help="combine the run folders of the shards of one run (pytest --shard I/N) into one report",
    )
    report.add_argument("--out", default=None, help="where --merge writes (default: reports/runs/<run-id> here)")
    report.set_defaults(func=_report)

    compare = subparsers.add_parser("compare", help="cell-by-cell paired differences between two runs (B - A)")
    compare.add_argument("run_a", help="first run folder (or its results.json)")
    compare.add_argument("run_b", help="second run folder (or its results.json)")
    compare.set_defaults(func=_compare)
