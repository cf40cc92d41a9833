"""``evalsuite run``, ``evalsuite report`` and ``evalsuite compare``.

``run`` drives pytest on ``test_cases/`` (so the command line and ``pytest test_cases``
are the same run, resumable, with the same report) and ends by printing the summary tables
and the report path.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from evalsuite.errors import ConfigError

SUMMARY_ENV = "EVALSUITE_MATRIX_SUMMARY"

# (option, dest, help) passed through to the pytest plugin unchanged
_PASS_THROUGH = (
    ("--matrix", "matrix", "matrix file (default: test_cases/matrix.toml)"),
    ("--models", "models", "comma-separated model specs replacing the profile's models"),
    ("--sizes", "sizes", "comma-separated fine-tuning sizes, e.g. 0,20,100"),
    ("--datasets", "datasets", "comma-separated datasets: qasper,nq,bioasq"),
    ("--judge", "judge", "comma-separated judge specs: reference and/or model specs"),
    ("--judge-mode", "judge_mode", "logprobs or sample"),
    ("--judge-repeats", "judge_repeats", "judge runs per answer (sample mode)"),
    ("--eval-limit", "eval_limit", "eval questions per dataset"),
    ("--margin", "margin", "non-inferiority margin (1-5 scale) or 'auto'"),
    ("--baseline", "baseline", "stored run or baseline file to compare with instead of computing baselines"),
    ("--candidate", "candidate", "model or adapter spec to gate against the baseline"),
    ("--run-id", "run_id", "run folder name (default: derived from the configuration)"),
    ("--report-dir", "report_dir", "reports root (default: reports/ in the repository)"),
    ("--junitxml", "junitxml", "also write a JUnit XML file"),
)


def project_root() -> Path:
    """The folder holding ``test_cases/test_matrix.py``: the package's repository, else the current folder."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "test_cases" / "test_matrix.py").is_file():
            return root
    raise ConfigError("test_cases/test_matrix.py not found next to the evalsuite package or in the current folder; "
                      "run from the repository root")


def pytest_command(args: argparse.Namespace, root: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", str(root / "test_cases" / "test_matrix.py"), "-p", "fixtures.matrix_plugin",
           "--profile", args.profile, "-q", "-rfEs"]
    for option, dest, _ in _PASS_THROUGH:
        value = getattr(args, dest)
        if value is not None:
            cmd += [option, str(value)]
    if args.update_baseline:
        cmd.append("--update-baseline")
    if args.k:
        cmd += ["-k", args.k]
    if args.n:
        cmd += ["-n", str(args.n)]
    return cmd + list(args.pytest_args or [])


def run_dir_of(args: argparse.Namespace, root: Path) -> Path:
    """The run folder the pytest run writes (same derivation as the plugin)."""
    from evalsuite.matrix import load_config

    overrides = {"models": args.models, "sizes": args.sizes, "datasets": args.datasets, "judges": args.judge,
                 "judge_mode": args.judge_mode, "judge_repeats": args.judge_repeats, "eval_limit": args.eval_limit,
                 "margin": args.margin, "candidate": args.candidate, "baseline_from": args.baseline}
    cfg = load_config(Path(args.matrix) if args.matrix else root / "test_cases" / "matrix.toml", args.profile, overrides)
    report_root = Path(args.report_dir) if args.report_dir else root / "reports"
    return report_root / "runs" / (args.run_id or cfg.run_id())


def _run(args: argparse.Namespace) -> int:
    from evalsuite.report import load_results, summary_tables

    root = project_root()
    run_dir = run_dir_of(args, root)  # validates the configuration before pytest starts
    cmd = pytest_command(args, root)
    print("+ " + " ".join(cmd[1:]), file=sys.stderr)
    env = {**os.environ, SUMMARY_ENV: "0"}  # the tables are printed once, below
    proc = subprocess.run(cmd, cwd=root, env=env)
    if (run_dir / "results.json").is_file():
        results = load_results(run_dir)
        s = results["session"]
        print(summary_tables(results))
        print(f"reused {len(s['reused'])} finished cells, computed {len(s['computed'])}")
        print(f"report: {run_dir / 'summary.md'}  (html: {run_dir / 'report.html'})")
    return proc.returncode


def _report(args: argparse.Namespace) -> int:
    from evalsuite.report import load_results, render, summary_tables

    written = render(args.run_dir)
    print(summary_tables(load_results(args.run_dir)))
    print(f"report: {written['summary']}  (html: {written['html']})")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from evalsuite.report import compare_runs, comparison_markdown, load_results

    print(comparison_markdown(compare_runs(load_results(args.run_a), load_results(args.run_b))), end="")
    return 0


def add_cli(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the evaluation matrix (through pytest) and print the summary")
    run.add_argument("--profile", default="default", help="profile of the matrix file (default, smoke, paper)")
    run.add_argument("-k", default=None, metavar="EXPR", help="select cells, e.g. qasper, ft100, 'nq and smollm2'")
    run.add_argument("-n", default=None, metavar="WORKERS", help="pytest-xdist workers (e.g. 2 or auto)")
    for option, dest, help_text in _PASS_THROUGH:
        run.add_argument(option, dest=dest, default=None, help=help_text)
    run.add_argument("--update-baseline", action="store_true", help="append this run's baselines to reports/baselines/")
    run.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")
    run.set_defaults(func=_run)

    report = subparsers.add_parser("report", help="re-render summary.md, report.html and figures of a run")
    report.add_argument("run_dir", help="run folder (reports/runs/<run-id> or reports/latest)")
    report.set_defaults(func=_report)

    compare = subparsers.add_parser("compare", help="cell-by-cell paired differences between two runs (B - A)")
    compare.add_argument("run_a", help="first run folder (or its results.json)")
    compare.add_argument("run_b", help="second run folder (or its results.json)")
    compare.set_defaults(func=_compare)
