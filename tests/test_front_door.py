"""The two front doors of a matrix run, `pytest --matrix FILE` (the plugin) and `evalsuite run`:
one table of options, one way to build the configuration, one rule for finding the matrix file;
and the defaults of MatrixConfig are the [default] profile of test_cases/matrix.toml."""

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from _pytest.config.argparsing import Parser

from evalsuite import pytest_plugin
from evalsuite.errors import ConfigError
from evalsuite.matrix import (
    RUN_OPTIONS,
    MatrixConfig,
    cli,
    config_from_options,
    find_matrix,
    load_config,
    option_overrides,
    options_of,
    read_profiles,
)

ROOT = Path(__file__).resolve().parents[1]
MATRIX = ROOT / "test_cases" / "matrix.toml"

# every option each door took before the table existed: these spellings keep working
PLUGIN_FLAGS = {
    "--matrix",
    "--profile",
    "--models",
    "--sizes",
    "--datasets",
    "--judge",
    "--judge-mode",
    "--judge-repeats",
    "--eval-limit",
    "--margin",
    "--baseline",
    "--candidate",
    "--candidate-base",
    "--update-baseline",
    "--allow-ungated",
    "--allow-inconclusive",
    "--shard",
    "--dry-run",
    "--plan-json",
    "--run-id",
    "--report-dir",
}
RUN_FLAGS = {
    "--matrix",
    "--profile",
    "-k",
    "-n",
    "--models",
    "--sizes",
    "--datasets",
    "--judge",
    "--judge-mode",
    "--judge-repeats",
    "--eval-limit",
    "--margin",
    "--baseline",
    "--candidate",
    "--candidate-base",
    "--run-id",
    "--report-dir",
    "--junitxml",
    "--shard",
    "--update-baseline",
    "--allow-ungated",
    "--allow-inconclusive",
    "--dry-run",
    "--json",
}


def pytest_parser() -> Parser:
    parser = Parser()
    pytest_plugin.pytest_addoption(parser)
    return parser


def pytest_flags() -> dict[str, str]:
    group = pytest_parser().getgroup("evalsuite")
    return {name: opt.dest for opt in group.options for name in opt.names()}


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.add_cli(parser.add_subparsers(dest="command"))
    return parser


def run_flags() -> dict[str, str]:
    sub = next(a for a in run_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    return {
        flag: action.dest for action in sub._actions for flag in action.option_strings if flag not in ("-h", "--help")
    }


def test_every_option_is_in_the_table_once_and_the_doors_are_generated_from_it():
    flags = [o.flag for o in RUN_OPTIONS]
    assert len(flags) == len(set(flags)) and len({o.dest for o in RUN_OPTIONS}) == len(RUN_OPTIONS)
    assert pytest_flags() == {o.flag: o.dest for o in options_of("pytest")}
    assert run_flags() == {o.flag: o.dest for o in options_of("run")}
    assert PLUGIN_FLAGS <= set(pytest_flags()) and RUN_FLAGS <= set(run_flags())
    both = {o.flag for o in RUN_OPTIONS if set(o.doors) == {"pytest", "run"}}
    assert both == PLUGIN_FLAGS & RUN_FLAGS  # what both doors took, both still take
    for option in RUN_OPTIONS:
        assert option.help and option.doors
        assert option.override is None or option.override in {f.name for f in dataclasses.fields(MatrixConfig)}


ARGS = [
    "--profile",
    "smoke",
    "--models",
    "bundled:smollm2-135m-instruct",
    "--sizes",
    "0,16",
    "--datasets",
    "nq,qasper",
    "--judge",
    "token-overlap",
    "--judge-mode",
    "sample",
    "--judge-repeats",
    "2",
    "--eval-limit",
    "7",
    "--margin",
    "1.5",
    "--candidate",
    "bundled:smollm2-135m-instruct",
    "--candidate-base",
    "smollm2",
    "--baseline",
    "latest",
]


@pytest.mark.parametrize("args", [[], ["--profile", "paper"], ["--margin", "auto", "--sizes", "0,3"], ARGS])
def test_the_same_arguments_give_the_same_configuration_through_either_door(args):
    plugin = pytest_parser().parse_known_args(args)
    run = run_parser().parse_args(["run", *args])
    assert option_overrides(plugin) == option_overrides(run)
    config = config_from_options(MATRIX, run)
    assert config_from_options(MATRIX, plugin) == config
    assert cli.run_dir_of(run, MATRIX).name == config.run_id()
    if args == ARGS:  # the overrides reach the configuration
        assert (config.profile, config.sizes, config.dataset_names, config.judges, config.judge_mode) == (
            "smoke",
            (0, 16),
            ("nq", "qasper"),
            ("token-overlap",),
            "sample",
        )
        assert (config.judge_repeats, config.eval_limit, config.margin, config.baseline_from) == (2, 7, 1.5, "latest")
        assert config.candidate == "bundled:smollm2-135m-instruct" and config.candidate_base == "smollm2"


def test_run_passes_its_options_on_to_the_plugin_unchanged():
    """`evalsuite run` starts pytest with the plugin's spellings of its options: the plugin parses them back."""
    run = run_parser().parse_args(
        [
            "run",
            *ARGS,
            "--shard",
            "1/2",
            "--run-id",
            "r",
            "--update-baseline",
            "--allow-ungated",
            "--allow-inconclusive",
            "-k",
            "nq",
            "-n",
            "2",
            "--dry-run",
        ]
    )
    cmd = cli.pytest_command(run, MATRIX)
    assert "--dry-run" not in cmd and "--json" not in cmd  # the dry run adds its own (with --plan-json)
    plugin = pytest_parser().parse_known_args(cmd[3:])
    for option in options_of("pytest"):
        if option.dest not in ("matrix", "dry_run", "plan_json", "report_dir"):
            assert getattr(plugin, option.dest) == getattr(run, option.dest), option.flag
    assert plugin.matrix == str(MATRIX)  # the file `evalsuite run` found, named
    assert cmd[cmd.index("-k") + 1] == "nq" and cmd[cmd.index("-n") + 1] == "2"


def test_one_rule_finds_the_matrix_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # nothing named: `evalsuite run` needs one and says how; the plugin stays out of the way
    with pytest.raises(ConfigError, match="no matrix file: pass --matrix FILE"):
        find_matrix(None, tmp_path)
    assert find_matrix(None, tmp_path, named_only=True) is None
    (tmp_path / "matrix.toml").write_text("[default]\n")
    assert find_matrix(None, tmp_path) == tmp_path / "matrix.toml"
    assert find_matrix(None, tmp_path, named_only=True) is None  # present, but nobody named it
    # [tool.evalsuite] matrix, relative to pyproject.toml, comes before ./matrix.toml
    (tmp_path / "pyproject.toml").write_text('[tool.evalsuite]\nmatrix = "gate/m.toml"\n')
    for named_only in (False, True):
        with pytest.raises(ConfigError, match=r"matrix = 'gate/m.toml' does not exist; fix the path or pass --matrix"):
            find_matrix(None, tmp_path, named_only=named_only)
    (tmp_path / "gate").mkdir()
    (tmp_path / "gate" / "m.toml").write_text("[default]\n")
    for named_only in (False, True):
        assert find_matrix(None, tmp_path, named_only=named_only) == tmp_path / "gate" / "m.toml"
    # --matrix comes first, relative to the current folder
    assert find_matrix("matrix.toml", tmp_path / "gate", named_only=True) == tmp_path / "matrix.toml"
    with pytest.raises(ConfigError, match="matrix file absent.toml not found; check --matrix"):
        find_matrix("absent.toml", tmp_path)
    for text, fragment in (
        ("[tool.evalsuite\n", "not valid TOML"),
        ("[tool.evalsuite]\nmatrix = 3\n", "must be the path"),
    ):
        (tmp_path / "pyproject.toml").write_text(text)
        with pytest.raises(ConfigError, match=fragment):
            find_matrix(None, tmp_path, named_only=True)
    # both doors use it: the plugin with pytest's root folder, `evalsuite run` with the current one
    (tmp_path / "pyproject.toml").write_text('[tool.evalsuite]\nmatrix = "gate/m.toml"\n')
    config = SimpleNamespace(option=SimpleNamespace(matrix=None), rootpath=tmp_path)
    assert pytest_plugin.matrix_file(config) == cli.find_matrix(None) == tmp_path / "gate" / "m.toml"
    config.option.matrix = "matrix.toml"
    assert pytest_plugin.matrix_file(config) == cli.find_matrix("matrix.toml") == tmp_path / "matrix.toml"


def test_the_plugin_stops_on_a_named_matrix_file_that_is_missing(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert True\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:plugins", "--matrix", "absent.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "evalsuite: matrix file absent.toml not found; check --matrix" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_the_defaults_are_the_default_profile(tmp_path):
    """A matrix file of one's own that sets nothing gets exactly [default] of test_cases/matrix.toml."""
    (tmp_path / "matrix.toml").write_text("[default]\n")
    empty = load_config(tmp_path / "matrix.toml", "default")
    shipped = load_config(MATRIX, "default")
    for field in dataclasses.fields(MatrixConfig):
        assert getattr(empty, field.name) == getattr(shipped, field.name), field.name
    assert empty == shipped == MatrixConfig() and empty.run_id() == shipped.run_id()
    # every key of MatrixConfig a matrix file can set is written in [default] or left out on purpose
    unset = {"qualify_limit", "recipes", "serve"}
    keys = {f.name for f in dataclasses.fields(MatrixConfig)} - {
        "profile",
        "candidate",
        "candidate_base",
        "baseline_from",
    }
    assert set(read_profiles(MATRIX)["default"]) == keys - unset


def readme_defaults() -> tuple[dict, set, dict]:
    """README's table of keys and defaults (TOML lines, or "not set") and its row of the default profile."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Default sizes and profiles", 1)[1].split("\n## ", 1)[0]
    values, unset = {}, set()
    for key, cell in re.findall(r"^\| (\w+) \| (.+?) \|$", section, flags=re.M):
        if cell.startswith("`"):
            values.update(tomllib.loads(cell.strip("`")))
            assert key in values, key
        elif cell.startswith("not set"):
            unset.add(key)
    row = re.search(r"^\| `default` \| (.+) \|$", section, flags=re.M).group(1).split(" | ")
    profile = dict(zip(("datasets", "sizes", "eval_limit", "judges", "margin"), row))
    return values, unset, profile


def test_the_readme_table_of_defaults_agrees(tmp_path):
    values, unset, profile = readme_defaults()
    keys = {f.name for f in dataclasses.fields(MatrixConfig)} - {
        "profile",
        "candidate",
        "candidate_base",
        "baseline_from",
    }
    assert set(values) | unset == keys and not set(values) & unset
    assert values == read_profiles(MATRIX)["default"]  # the table is [default], value for value
    for key in unset:
        assert getattr(MatrixConfig(), key) in (None, ())
    default = MatrixConfig()
    assert profile["datasets"] == ", ".join(default.dataset_names)
    assert profile["sizes"] == ", ".join(map(str, default.sizes))
    assert profile["eval_limit"] == f"{default.eval_limit} per dataset"
    assert profile["judges"] == ", ".join(default.judges)
    assert float(profile["margin"]) == default.margin
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"margin {default.margin}, `[default]`'s, unless the profile sets it" in text
    assert "margin 0.25 unless" not in text


def test_the_readme_lists_every_option():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("makes both doors' options and `--help`):", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"`(--?[a-z][a-z-]*)", table))
    assert listed == {o.flag for o in RUN_OPTIONS}
