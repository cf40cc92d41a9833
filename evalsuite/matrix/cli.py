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
import tomllib
from pathlib import Path

from evalsuite.redaction import scrub_text
from evalsuite.errors import ConfigError

SUMMARY_ENV = "EVALSUITE_MATRIX_SUMMARY"

# (option, dest, help) passed through to the pytest plugin unchanged
_PASS_THROUGH = (
    ("--models", "models", "comma-separated model specs replacing the profile's models"),
    ("--sizes", "sizes", "comma-separated fine-tuning sizes, e.g. 0,20,100"),
    ("--datasets", "datasets", "comma-separated dataset names of the matrix file"),
    ("--judge", "judge", "comma-separated judge specs: registered names (reference, learned-correctness) or model specs"),
    ("--judge-mode", "judge_mode", "logprobs or sample"),
    ("--judge-repeats", "judge_repeats", "judge runs per answer (sample mode)"),
    ("--eval-limit", "eval_limit", "eval questions per dataset"),
    ("--margin", "margin", "non-inferiority margin (1-5 scale) or 'auto'"),
    ("--baseline", "baseline", "stored run or baseline file to compare with instead of computing baselines"),
    ("--candidate", "candidate", "model or adapter spec to gate against the baseline"),
    ("--candidate-base", "candidate_base", "matrix model whose baseline the candidate is compared with"),
    ("--run-id", "run_id", "run folder name (default: derived from the configuration)"),
    ("--report-dir", "report_dir", "reports root (default: reports/ in the current folder)"),
    ("--junitxml", "junitxml", "also write a JUnit XML file"),
    ("--shard", "shard", "run shard I of N (e.g. 2/4): whole (dataset, model) groups; merge with `evalsuite report --merge`"),
)


def find_matrix(explicit: str | None = None, cwd: Path | None = None) -> Path:
    """The matrix file: ``--matrix``, else ``[tool.evalsuite] matrix`` of ./pyproject.toml, else ./matrix.toml."""
    cwd = cwd or Path.cwd()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"matrix file {path} not found; check --matrix")
        return path.resolve()
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("evalsuite", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{pyproject}: not valid TOML ({exc}); fix the syntax") from None
        if isinstance(table, dict) and table.get("matrix"):
            path = (cwd / str(table["matrix"])).resolve()
            if not path.is_file():
                raise ConfigError(f"{pyproject}: [tool.evalsuite] matrix = {table['matrix']!r} does not exist")
            return path
    if (cwd / "matrix.toml").is_file():
        return (cwd / "matrix.toml").resolve()
    raise ConfigError("no matrix file: pass --matrix FILE, add [tool.evalsuite] matrix = \"...\" to pyproject.toml, "
                      "or create matrix.toml in this folder")


def pytest_command(args: argparse.Namespace, matrix: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", str(matrix), "--matrix", str(matrix), "--profile", args.profile,
           "-q", "-rfEs", "-p", "no:cacheprovider"]
    for option, dest, _ in _PASS_THROUGH:
        value = getattr(args, dest)
        if value is not None:
            cmd += [option, str(value)]
    for flag, dest in (("--update-baseline", "update_baseline"), ("--allow-ungated", "allow_ungated"),
                       ("--allow-inconclusive", "allow_inconclusive")):
        if getattr(args, dest):
            cmd.append(flag)
    if args.k:
        cmd += ["-k", args.k]
    if args.n:
        cmd += ["-n", str(args.n)]
    return cmd + list(args.pytest_args or [])


def run_dir_of(args: argparse.Namespace, matrix: Path, cwd: Path | None = None) -> Path:
    """The run folder the pytest run writes (same derivation as the plugin)."""
    from evalsuite.matrix import load_config

    overrides = {"models": args.models, "sizes": args.sizes, "datasets": args.datasets, "judges": args.judge,
                 "judge_mode": args.judge_mode, "judge_repeats": args.judge_repeats, "eval_limit": args.eval_limit,
                 "margin": args.margin, "candidate": args.candidate, "candidate_base": args.candidate_base,
                 "baseline_from": args.baseline}
    cfg = load_config(matrix, args.profile, overrides)
    report_root = Path(args.report_dir) if args.report_dir else (cwd or Path.cwd()) / "reports"
    return report_root / "runs" / (args.run_id or cfg.run_id())


STATUS_FILE = "last-run.json"  # in the reports root: the last `evalsuite run`'s verdict, for CI


def _write_status(report_root: Path, status: int, run_dir: Path | None, message: str = "") -> None:
    """``reports/last-run.json``: the exit status, its meaning, and each cell's status (passed, failed,
    inconclusive, ungated, skipped, error, not run) with the counts, so a CI can tell them apart."""
    from evalsuite.storage import atomic_write_json
    from evalsuite.matrix import EXIT_STATUSES

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
    atomic_write_json(report_root / STATUS_FILE, {"exit_status": status, "meaning": meaning,
                                                  "run_dir": str(run_dir) if run_dir else None,
                                                  "cells": cells, "counts": dict(sorted(counts.items())),
                                                  "message": scrub_text(message)})
    print(f"evalsuite run: exit status {status}: {meaning.split(':')[0]}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from evalsuite.matrix import INPUT_ERROR
    from evalsuite.report import load_results, summary_tables

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

    from evalsuite.matrix import INPUT_ERROR

    if "-n" in cmd:  # the plan is made in one process
        i = cmd.index("-n")
        del cmd[i:i + 2]
    cmd = [c for c in cmd if not c.startswith("--junitxml") and c != args.junitxml]
    with tempfile.TemporaryDirectory(prefix="evalsuite-plan-") as tmp:
        out = Path(tmp) / "plan.json"
        proc = subprocess.run(cmd + ["--dry-run", "--plan-json", str(out)], capture_output=True, text=True,
                              env={**os.environ, SUMMARY_ENV: "0"})
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
    from evalsuite.report import load_results, render, summary_tables

    if args.merge:
        from evalsuite.matrix import merge_runs

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
    from evalsuite.report import compare_runs, comparison_markdown, load_results

    print(comparison_markdown(compare_runs(load_results(args.run_a), load_results(args.run_b))), end="")
    return 0


def add_cli(subparsers) -> None:
    from evalsuite.matrix import exit_status_help

    epilog = exit_status_help()
    run = subparsers.add_parser("run", help="run the evaluation matrix (through pytest) and print the summary",
                                description="Run the evaluation matrix through pytest and print the summary tables.",
                                epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--matrix", default=None,
                     help="matrix file (default: [tool.evalsuite] matrix in ./pyproject.toml, else ./matrix.toml)")
    run.add_argument("--profile", default="default", help="profile of the matrix file (default, smoke, paper)")
    run.add_argument("-k", default=None, metavar="EXPR", help="select cells, e.g. qasper, ft100, 'nq and smollm2'")
    run.add_argument("-n", default=None, metavar="WORKERS", help="pytest-xdist workers (e.g. 2 or auto)")
    for option, dest, help_text in _PASS_THROUGH:
        run.add_argument(option, dest=dest, default=None, help=help_text)
    run.add_argument("--update-baseline", action="store_true", help="append this run's baselines to reports/baselines/")
    run.add_argument("--allow-ungated", action="store_true",
                     help="exit 0 although cells were skipped, too few of their answers were scored, or no qualified "
                          "judge gated them (status 3 otherwise)")
    run.add_argument("--allow-inconclusive", action="store_true",
                     help="exit 0 although cells were inconclusive: their interval neither cleared the margin nor lay "
                          "beyond it (status 4 otherwise)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan: cells (stored or to compute), per stage the model calls, prompt and answer "
                          "tokens, the estimated wall time here and the API cost from [prices]; runs nothing")
    run.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    run.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")
    run.set_defaults(func=_run)

    report = subparsers.add_parser("report", help="re-render summary.md, report.html and figures of a run, "
                                                  "or merge the run folders of shards (--merge)")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder (reports/runs/<run-id> or reports/latest)")
    report.add_argument("--merge", action="store_true",
                        help="combine the run folders of the shards of one run (pytest --shard I/N) into one report")
    report.add_argument("--out", default=None, help="where --merge writes (default: reports/runs/<run-id> here)")
    report.set_defaults(func=_report)

    compare = subparsers.add_parser("compare", help="cell-by-cell paired differences between two runs (B - A)")
    compare.add_argument("run_a", help="first run folder (or its results.json)")
    compare.add_argument("run_b", help="second run folder (or its results.json)")
    compare.set_defaults(func=_compare)
