"""The built wheel, installed into a fresh virtual environment, runs a team's own dataset
from a project folder outside this repository: ``pytest --matrix matrix.toml -k <name>`` and
``evalsuite run`` collect the cells, gate them, write the report, and exit with the verdict.

The fresh environment gets evalsuite only from the wheel (its package data, its entry points);
the heavy third-party packages are taken from this environment's site-packages through a
``.pth`` line instead of being downloaded again. The dataset (30 questions, a corpus file and a
file of fine-tuning pairs) is written by the test from the data root's NQ sample.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from evalsuite.datasets import data_root
from evalsuite.matrix import INCONCLUSIVE, NOT_GATED, PASSED, REGRESSION

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def build_wheel(out: Path) -> Path:
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = out.glob("evalsuite-*.whl")
    return wheel


def fresh_venv(folder: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # run where this checkout is not importable
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
        env=env,
    ).stdout.strip()
    Path(site, "evalsuite_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
        env=env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    where = subprocess.run(
        [str(python), "-c", "import evalsuite; print(evalsuite.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
        env=env,
    ).stdout.strip()
    assert where.startswith(site), where  # the package comes from the wheel, not from this checkout
    return python


def team_dataset(folder: Path) -> None:
    """30 questions with their gold passages and 30 distractors as a corpus, and 10 other
    questions as fine-tuning pairs, in the generic qa format."""
    rows = [
        json.loads(line) for line in (data_root() / "nq" / "dev.jsonl").read_text(encoding="utf-8").splitlines()[:200]
    ]
    random.Random(7).shuffle(rows)
    questions, pairs, distractors = rows[:30], rows[30:40], rows[40:70]
    folder.mkdir(parents=True)
    with (
        open(folder / "kb.jsonl", "w", encoding="utf-8") as corpus,
        open(folder / "faq.jsonl", "w", encoding="utf-8") as faq,
    ):
        for i, row in enumerate(questions + distractors):
            ctx = row["ctxs"][0]
            corpus.write(json.dumps({"id": f"kb-{i}", "title": ctx["title"], "text": ctx["text"]}) + "\n")
            if i < len(questions):
                faq.write(
                    json.dumps(
                        {
                            "id": f"faq-{i}",
                            "question": row["question"],
                            "answers": row["answers"],
                            "evidence": [f"kb-{i}"],
                        }
                    )
                    + "\n"
                )
    with open(folder / "pairs.jsonl", "w", encoding="utf-8") as fh:
        for row in pairs:
            fh.write(json.dumps({"question": row["question"], "answers": row["answers"]}) + "\n")


def test_the_installed_wheel_runs_a_teams_own_dataset_outside_the_repository(tmp_path, cold_cache):
    python = fresh_venv(tmp_path / "venv", build_wheel(tmp_path / "dist"))
    project = tmp_path / "support-team"
    team_dataset(project / "data")
    (project / "matrix.toml").write_text("""
[default]
models = [{ spec = "bundled:smollm2-135m-instruct", name = "smollm2" }]
datasets = [{ name = "support-faq", path = "data/faq.jsonl", corpus = "data/kb.jsonl" }]
sizes = [0, 8]
eval_limit = 10
max_new_tokens = 24
judges = ["token-overlap"]
margin = 1.0

[default.finetune]
train_file = "data/pairs.jsonl"
epochs = 1
max_seq_length = 384
""")
    env = dict(cold_cache)
    env.pop("PYTHONPATH", None)

    gate = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "--matrix",
            "matrix.toml",
            "-k",
            "support-faq",
            "-p",
            "no:cacheprovider",
            "--junitxml=reports/junit.xml",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    results = json.loads((project / "reports" / "latest" / "results.json").read_text())
    cells = {c["id"]: c for c in results["cells"]}
    assert sorted(cells) == ["support-faq-smollm2-ft0", "support-faq-smollm2-ft8"], (
        gate.stdout[-3000:] + gate.stderr[-3000:]
    )
    statuses = {c["status"] for c in cells.values()}
    expected = (
        REGRESSION
        if "failed" in statuses
        else INCONCLUSIVE
        if "inconclusive" in statuses
        else NOT_GATED
        if "ungated" in statuses
        else PASSED
    )
    assert gate.returncode == expected, gate.stdout[-3000:] + gate.stderr[-3000:]
    tuned = cells["support-faq-smollm2-ft8"]
    assert tuned["finetune_pairs"] == f"the first 8 pairs of {project / 'data' / 'pairs.jsonl'}"
    summary = (project / "reports" / "latest" / "summary.md").read_text()
    assert "support-faq" in summary and str(project / "data" / "faq.jsonl") in summary
    assert (project / "reports" / "junit.xml").is_file()

    again = subprocess.run(
        [str(python.parent / "evalsuite"), "run"], cwd=project, env=env, capture_output=True, text=True, timeout=1200
    )
    assert again.returncode == expected, again.stdout[-3000:] + again.stderr[-3000:]
    assert "reused 2 finished cells, computed 0" in again.stdout
