"""`evalsuite run | report | compare` argument handling and output, without running models."""
import argparse
import json
import shutil

from evalsuite.matrix import cli


def parser():
    p = argparse.ArgumentParser()
    cli.add_cli(p.add_subparsers(dest="command"))
    return p


def test_run_builds_the_pytest_command():
    args = parser().parse_args(["run", "--profile", "smoke", "-k", "nq and ft16", "-n", "2", "--margin", "auto",
                                "--update-baseline", "--junitxml", "out.xml"])
    root = cli.project_root()
    cmd = cli.pytest_command(args, root)
    assert cmd[1:4] == ["-m", "pytest", str(root / "test_cases" / "test_matrix.py")]
    joined = " ".join(cmd)
    for part in ("--profile smoke", "-k nq and ft16", "-n 2", "--margin auto", "--update-baseline", "--junitxml out.xml"):
        assert part in joined
    assert cli.run_dir_of(args, root).name.startswith("smoke-")


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
    assert "other minus synthetic-" in out and "| nq-worse-ft10 | reference | accuracy |" in out
