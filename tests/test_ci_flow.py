"""The README's release-gate workflow, run for real in a project folder outside this repository.

A team's project holds only a ``pyproject.toml`` naming its matrix file, the matrix, and a base
model saved to a local path (the bundled SmolLM2 written out as a plain transformers folder, so
the ``hf:`` path runs without the hub). The test then does what the team's CI does:
commit a baseline (``evalsuite run --update-baseline``), train a candidate adapter
(``evalsuite finetune``), gate it against the stored baseline (``pytest --baseline latest
--candidate ...``), and read the JUnit file and the report: the exit status is the verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evalsuite.matrix import INCONCLUSIVE, NOT_GATED, PASSED, REGRESSION

pytestmark = pytest.mark.slow


def local_model(folder: Path) -> Path:
    """The bundled SmolLM2-135M-Instruct saved as a plain transformers folder, as a team's own model would be."""
    import shutil

    from evalsuite.models import load_model

    source = Path(load_model("bundled:smollm2-135m-instruct").backend.path)
    shutil.copytree(source, folder)
    return folder


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)


def test_commit_a_baseline_then_gate_a_candidate_adapter_outside_the_repository(tmp_path, cold_cache):
    project = tmp_path / "team-project"
    project.mkdir()
    model = local_model(tmp_path / "models" / "our-base")
    (project / "pyproject.toml").write_text('[tool.evalsuite]\nmatrix = "gate/matrix.toml"\n')
    (project / "gate").mkdir()
    (project / "gate" / "matrix.toml").write_text(f"""
[default]
models = [{{ spec = "hf:{model}", name = "tiny" }}]
datasets = ["nq"]
sizes = [0]
eval_limit = 6
max_new_tokens = 8
judges = ["token-overlap"]
margin = 0.5
""")
    env = dict(cold_cache)
    bin_dir = Path(sys.executable).parent

    # 1. commit a baseline
    first = run([str(bin_dir / "evalsuite"), "run", "--update-baseline"], project, env)
    assert first.returncode in (PASSED, NOT_GATED), first.stdout[-3000:] + first.stderr[-3000:]
    baselines = sorted((project / "reports" / "baselines").glob("*.json"))
    assert len(baselines) == 1
    stored = json.loads(baselines[0].read_text())
    assert [c["id"] for c in stored["cells"]] == ["nq-tiny-ft0"] and stored["provenance"]["packages"]["evalsuite"]

    # 2. train the release candidate
    tuned = run(
        [
            sys.executable,
            "-m",
            "evalsuite",
            "finetune",
            "--model",
            f"hf:{model}",
            "--dataset",
            "nq",
            "--size",
            "8",
            "--epochs",
            "1",
            "--max-seq-length",
            "256",
            "--json",
        ],
        project,
        env,
    )
    assert tuned.returncode == 0, tuned.stdout[-3000:] + tuned.stderr[-3000:]
    adapter = json.loads(tuned.stdout)["adapter_path"]

    # 3. gate it against the stored baseline, as the CI job does
    junit = project / "reports" / "junit.xml"
    gate = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--baseline",
            "latest",
            "--candidate",
            f"hf:{model}+lora:{adapter}",
            f"--junitxml={junit}",
            "-p",
            "no:cacheprovider",
        ],
        project,
        env,
    )
    results = json.loads((project / "reports" / "latest" / "results.json").read_text())
    cells = {c["id"]: c for c in results["cells"]}
    assert sorted(cells) == ["nq-candidate", "nq-tiny-ft0"], gate.stdout[-3000:] + gate.stderr[-3000:]
    assert cells["nq-tiny-ft0"]["source"] == str(baselines[0])  # taken from the file, not recomputed
    candidate = cells["nq-candidate"]
    assert candidate["model_spec"] == f"hf:{model}+lora:{adapter}" and candidate["baseline_id"] == "nq-tiny-ft0"

    # 4. the exit status is the verdict, and the JUnit file and the report say the same
    expected = {"passed": PASSED, "failed": REGRESSION, "inconclusive": INCONCLUSIVE, "ungated": NOT_GATED}[
        candidate["status"]
    ]
    assert gate.returncode == expected, gate.stdout[-3000:]
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"nq-candidate", "nq-tiny-ft0"}
    verdict = cases["nq-candidate"]
    assert (verdict.find("failure") is not None) == (candidate["status"] in ("failed", "inconclusive"))
    assert (verdict.find("skipped") is not None) == (candidate["status"] == "ungated")
    summary = (project / "reports" / "latest" / "summary.md").read_text()
    assert "| nq-candidate | " + candidate["status"] + " |" in summary
