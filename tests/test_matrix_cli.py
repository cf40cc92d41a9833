"""`evalsuite run | report | compare` argument handling and output, without running models."""

import argparse
import json
import shutil
from pathlib import Path

import pytest

from evalsuite.errors import ConfigError
from evalsuite.matrix import cli


def parser():
    p = argparse.ArgumentParser()
    cli.add_cli(p.add_subparsers(dest="command"))
    return p


def test_run_builds_the_pytest_command(monkeypatch):
    args = parser().parse_args(
        [
            "run",
            "--profile",
            "smoke",
            "-k",
            "nq and ft16",
            "-n",
            "2",
            "--margin",
            "auto",
            "--update-baseline",
            "--allow-ungated",
            "--junitxml",
            "out.xml",
        ]
    )
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    matrix = cli.find_matrix(args.matrix)  # [tool.evalsuite] matrix of this repository's pyproject.toml
    assert matrix == root / "test_cases" / "matrix.toml"
    cmd = cli.pytest_command(args, matrix)
    assert cmd[1:5] == ["-m", "pytest", str(matrix), "--matrix"]
    joined = " ".join(cmd)
    for part in (
        "--profile smoke",
        "-k nq and ft16",
        "-n 2",
        "--margin auto",
        "--update-baseline",
        "--allow-ungated",
        "--junitxml out.xml",
    ):
        assert part in joined
    assert cli.run_dir_of(args, matrix).name.startswith("smoke-")


def test_run_finds_the_matrix_or_names_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="no matrix file: pass --matrix FILE"):
        cli.find_matrix(None, cwd=tmp_path)
    (tmp_path / "matrix.toml").write_text("[default]\n")
    assert cli.find_matrix(None, cwd=tmp_path) == tmp_path / "matrix.toml"
    (tmp_path / "pyproject.toml").write_text('[tool.evalsuite]\nmatrix = "gate/m.toml"\n')
    with pytest.raises(ConfigError, match="does not exist"):
        cli.find_matrix(None, cwd=tmp_path)


def test_run_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--help"])
    out = capsys.readouterr().out
    for code in (
        "0  passed",
        "1  regression",
        "2  input or configuration error",
        "3  not gated",
        "4  inconclusive",
        "6  a test that is not a matrix cell failed",
    ):
        assert code in out
    assert "precedence: an error (2) outranks a regression (1)" in out


def test_report_and_compare_print_tables(tmp_path, capsys):
    import tests.test_report as synthetic

    session = synthetic.run.__wrapped__(tmp_path)
    session.finalize({})
    args = parser().parse_args(["report", str(session.run_dir)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| worse | ft40 |" in out and "report: " in out
    other = tmp_path / "other"
    shutil.copytree(session.run_dir, other)
    data = json.loads((other / "results.json").read_text())
    data["run_id"] = "other"
    (other / "results.json").write_text(json.dumps(data))
    args = parser().parse_args(["compare", str(session.run_dir), str(other)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "other minus synthetic-" in out and "| nq-worse-ft10 | token-overlap | accuracy |" in out


def test_exit_status_precedence_is_stated_once_and_followed():
    from evalsuite.matrix import (
        INCONCLUSIVE,
        INPUT_ERROR,
        NOT_GATED,
        PASSED,
        PRECEDENCE,
        REGRESSION,
        TEST_FAILED,
        exit_status,
    )

    assert PRECEDENCE == (INPUT_ERROR, REGRESSION, TEST_FAILED, INCONCLUSIVE, NOT_GATED, PASSED)
    every = {"a": "error", "b": "failed", "c": "inconclusive", "d": "ungated", "e": "passed"}
    seen = []
    outcomes = dict(every)
    for key in "abcd":  # remove the strongest status each time: the next one in precedence shows
        seen.append(
            exit_status(
                outcomes, allow_ungated=False, other_failures=["tests/test_x.py::test_y"] if key in "ab" else ()
            )
        )
        del outcomes[key]
    assert seen == [INPUT_ERROR, REGRESSION, INCONCLUSIVE, NOT_GATED]
    assert (
        exit_status({"e": "passed", "c": "inconclusive"}, allow_ungated=False, other_failures=["t::u"]) == TEST_FAILED
    )
    assert exit_status({"e": "passed"}, allow_ungated=False, other_failures=["t::u"]) == TEST_FAILED
    assert exit_status({"c": "inconclusive", "d": "skipped"}, allow_ungated=False, allow_inconclusive=True) == NOT_GATED
    assert exit_status({"c": "inconclusive", "d": "skipped"}, allow_ungated=True) == INCONCLUSIVE
    assert exit_status({"c": "inconclusive", "d": "ungated"}, allow_ungated=True, allow_inconclusive=True) == PASSED
    assert exit_status({"e": "passed"}, allow_ungated=False) == PASSED
