"""Fine-tuning recipes as a matrix axis: named sets of fine-tuning options over the profile's
``[finetune]``, each a fine-tuned cell per size gated against the one baseline of its
(dataset, model). The dataset is invented here (the ``qa`` format)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_dry_run import write_dataset

from evalsuite.errors import ConfigError
from evalsuite.finetune import FinetuneConfig
from evalsuite.matrix import (
    MatrixConfig,
    MatrixSession,
    build_config,
    build_plan,
    expand_cells,
    load_config,
    shard_cells,
)

MATRIX = """
[default]
models = [{{ spec = "bundled:smollm2-135m-instruct", name = "smollm2" }}]
datasets = [{{ name = "widgets", path = "{data}" }}, {{ name = "gadgets", path = "{data}" }}]
sizes = [0, 4, 8]
eval_limit = 5
max_new_tokens = 16
judges = ["token-overlap"]

[default.finetune]
epochs = 1
max_seq_length = 128

[study]
recipes = [
  {{ name = "r8e1", r = 8, epochs = 1 }},
  {{ name = "r64e3", r = 64, alpha = 128, epochs = 3, effective_batch_size = 16 }},
  {{ name = "same", r = 8, epochs = 1 }},
  {{ name = "q", quantization = "qlora" }},
]
"""


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    path = tmp_path / "matrix.toml"
    path.write_text(MATRIX.format(data=write_dataset(tmp_path)), encoding="utf-8")
    return path


def test_a_profile_without_recipes_keeps_its_cell_ids_and_run_id(matrix):
    config = load_config(matrix, "default")
    assert [c.id for c in expand_cells(config)] == [
        "widgets-smollm2-ft0",
        "widgets-smollm2-ft4",
        "widgets-smollm2-ft8",
        "gadgets-smollm2-ft0",
        "gadgets-smollm2-ft4",
        "gadgets-smollm2-ft8",
    ]
    assert all(c.recipe is None for c in expand_cells(config))
    data = config.to_dict()
    assert "recipes" not in data  # the configuration hashed into the run id is the one written before recipes
    # a results.json written then reads back to the same run id, so a rerun finds and reuses its cells
    assert MatrixConfig.from_dict(data).run_id() == config.run_id()


def test_recipes_multiply_fine_tuned_cells_but_not_baselines(matrix):
    config = load_config(matrix, "study")
    ids = [c.id for c in expand_cells(config)]
    assert ids[:5] == [
        "widgets-smollm2-ft0",
        "widgets-smollm2-ft4-r8e1",
        "widgets-smollm2-ft4-r64e3",
        "widgets-smollm2-ft4-same",
        "widgets-smollm2-ft4-q",
    ]
    assert sum(i.endswith("-ft0") for i in ids) == 2 and len(ids) == 2 * (1 + 2 * 4)
    assert {c.baseline_id for c in expand_cells(config) if c.dataset == "widgets"} == {"widgets-smollm2-ft0"}
    assert MatrixConfig.from_dict(config.to_dict()).run_id() == config.run_id()


def test_recipe_options_lie_over_the_profile_table_with_the_studys_names(matrix):
    config = load_config(matrix, "study")
    assert config.recipe_options("r64e3") == {
        "epochs": 3,
        "lora_alpha": 128,
        "lora_r": 64,
        "max_seq_length": 128,
        "effective_batch_size": 16,
    }
    ft = FinetuneConfig.from_dict(config.recipe_options("r64e3"))
    assert (ft.per_device_batch_size, ft.gradient_accumulation, ft.effective_batch_size) == (4, 4, 16)
    # two names, the same options: one adapter (the store keys on the options, not on the name)
    assert FinetuneConfig.from_dict(config.recipe_options("r8e1")) == FinetuneConfig.from_dict(
        config.recipe_options("same")
    )
    with pytest.raises(ConfigError, match="not a multiple of per_device_batch_size 4"):
        FinetuneConfig.from_dict({"effective_batch_size": 6})
    with pytest.raises(ConfigError, match="needs gradient_accumulation 2, not 3"):
        FinetuneConfig.from_dict({"effective_batch_size": 8, "gradient_accumulation": 3})


def test_an_unknown_recipe_key_is_a_one_line_error_naming_key_and_recipe(matrix):
    text = matrix.read_text().replace('{ name = "q", quantization = "qlora" }', '{ name = "q", rank = 4 }')
    matrix.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(matrix, "study")
    message = str(err.value)
    assert "recipe 'q': unknown key 'rank'" in message and "\n" not in message and str(matrix) in message
    with pytest.raises(ConfigError, match="recipe 'bad': invalid fine-tuning config: epochs must be > 0"):
        build_config("x", {"recipes": [{"name": "bad", "epochs": 0}]})
    with pytest.raises(ConfigError, match="two recipes share the name"):
        build_config("x", {"recipes": [{"name": "a"}, {"name": "a", "r": 4}]})
    with pytest.raises(ConfigError, match="recipe name 'R 8'"):
        build_config("x", {"recipes": [{"name": "R 8"}]})


def test_shards_keep_recipes_with_their_baseline(matrix):
    cells = expand_cells(load_config(matrix, "study"))
    for count in (2, 3):
        seen = []
        for index in range(1, count + 1):
            mine = shard_cells(cells, index, count)
            ids = {c.id for c in mine}
            assert all(c.baseline_id in ids for c in mine)
            seen += [c.id for c in mine]
        assert sorted(seen) == sorted(c.id for c in cells)


def test_the_dry_run_counts_recipe_cells_and_their_training(matrix, tmp_path):
    plain = build_plan(load_config(matrix, "default"), report_root=tmp_path / "reports")
    study = build_plan(load_config(matrix, "study"), report_root=tmp_path / "reports")
    assert len(plain.cells) == 6 and len(study.cells) == 18
    trained = [s for s in study.stages if s.stage == "fine-tuning"]
    assert len(trained) == 2 * 2 * 4  # datasets x sizes x recipes
    by_cell = {s.model: s.prompt_tokens for s in trained}
    # three epochs train on three times the tokens of one epoch at the same size
    assert by_cell["widgets-smollm2-ft4-r64e3"] == 3 * by_cell["widgets-smollm2-ft4-r8e1"]
    assert by_cell["widgets-smollm2-ft4-r8e1"] == by_cell["widgets-smollm2-ft4-same"]
    generation = [s for s in study.stages if s.stage == "generation"]
    assert sum(s.calls for s in generation) == 18 * 5


def test_a_qlora_recipe_is_skipped_with_its_reason_on_a_machine_without_cuda(matrix, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine can train QLoRA")
    session = MatrixSession(load_config(matrix, "study"), report_root=tmp_path / "reports")
    cell = session.by_id["widgets-smollm2-ft4-q"]
    reason = session.skip_reason(cell)
    assert reason.startswith("recipe q: quantization='qlora' needs a CUDA GPU")
    assert session.skip_reason(session.by_id["widgets-smollm2-ft4-r8e1"]) is None
    assert session.evaluate(cell).status == "skipped"
    record = session.store.read(cell.id)  # the cell file names the recipe with its options, for the report
    assert record["status"] == "skipped" and record["reason"] == reason
    assert record["recipe"]["name"] == "q" and record["recipe"]["options"] == {"quantization": "qlora"}


def test_keyword_selection_picks_recipes(matrix):
    def collected(expr: str) -> list[str]:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(matrix),
                "--matrix",
                str(matrix),
                "--profile",
                "study",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                "-k",
                expr,
            ],
            cwd=matrix.parent,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return sorted(line.rsplit("::", 1)[-1] for line in proc.stdout.splitlines() if "::" in line)

    assert collected("r64e3") == [
        "gadgets-smollm2-ft4-r64e3",
        "gadgets-smollm2-ft8-r64e3",
        "widgets-smollm2-ft4-r64e3",
        "widgets-smollm2-ft8-r64e3",
    ]
    assert collected("widgets and ft8") == [
        "widgets-smollm2-ft8-q",
        "widgets-smollm2-ft8-r64e3",
        "widgets-smollm2-ft8-r8e1",
        "widgets-smollm2-ft8-same",
    ]


@pytest.mark.slow
def test_two_recipe_names_with_the_same_options_share_one_trained_adapter(matrix, tmp_path):
    config = load_config(matrix, "study", {"datasets": "widgets", "sizes": "0,4"})
    session = MatrixSession(config, report_root=tmp_path / "reports")
    first = session.resources.adapter(session.by_id["widgets-smollm2-ft4-r8e1"])
    second = session.resources.adapter(session.by_id["widgets-smollm2-ft4-same"])
    assert first.path == second.path and second.cached
    other = FinetuneConfig.from_dict(config.recipe_options("r64e3"))
    assert other != FinetuneConfig.from_dict(config.recipe_options("r8e1"))


def test_the_report_answers_which_recipe(tmp_path):
    """The fourth research question and the recipe column, from a results.json written for the test."""
    from evalsuite.report import render

    def item(i, score):
        return {
            "id": f"q{i}",
            "question": f"q{i}?",
            "answer": "a",
            "references": ["a"],
            "passages": [],
            "verdicts": {"learned-correctness": {"accuracy": score, "completeness": score}},
            "metrics": {},
        }

    base_scores = [5.0, 1.0] * 10

    def cell(cid, size, recipe, scores, ci):
        low, high = ci or (0.0, 0.0)
        stats = {
            "n": 20,
            "diff": (low + high) / 2,
            "ci_low": low,
            "ci_high": high,
            "margin": 0.5,
            "gating": True,
            "outcome": "pass",
            "baseline_mean": 3.0,
            "cell_mean": 3.0,
            "wilcoxon_p": 0.5,
        }
        out = {
            "id": cid,
            "dataset": "widgets",
            "model": "smollm2",
            "spec": "s",
            "size": size,
            "kind": "finetuned" if size else "baseline",
            "baseline_id": "widgets-smollm2-ft0",
            "status": "passed",
            "items": [item(i, s) for i, s in enumerate(scores)],
            "judges": ["learned-correctness"],
            "summary": {
                "judges": {
                    "learned-correctness": {c: {"mean": 3.0, "std": 2.0, "n": 20} for c in ("accuracy", "completeness")}
                }
            },
        }
        if recipe:
            out["recipe"] = {
                "name": recipe,
                "options": {"lora_r": 8},
                "effective_batch_size": 16,
                "per_device_batch_size": 4,
                "gradient_accumulation": 4,
            }
            out["gate"] = {"judges": {"learned-correctness": {"accuracy": stats, "completeness": stats}}}
        return out

    worse = [1.0] * 20
    results = {
        "run_id": "r",
        "profile": "study",
        "config": {"datasets": ["widgets"], "models": [], "margin": 0.5},
        "judges": [
            {
                "name": "learned-correctness",
                "gating": True,
                "gating_criteria": ["accuracy"],
                "spec": "learned-correctness",
                "why": "qualifies",
                "qualification": None,
            }
        ],
        "cells": [
            cell("widgets-smollm2-ft0", 0, None, base_scores, None),
            cell("widgets-smollm2-ft4-r8e1", 4, "r8e1", base_scores, (-0.3, 0.3)),
            cell("widgets-smollm2-ft4-r64e3", 4, "r64e3", worse, (-2.6, -1.4)),
            {
                "id": "widgets-smollm2-ft4-q",
                "dataset": "widgets",
                "model": "smollm2",
                "spec": "s",
                "size": 4,
                "kind": "finetuned",
                "baseline_id": "widgets-smollm2-ft0",
                "status": "skipped",
                "reason": "recipe q: quantization='qlora' needs a CUDA GPU",
                "recipe": {
                    "name": "q",
                    "options": {"quantization": "qlora"},
                    "effective_batch_size": 4,
                    "per_device_batch_size": 4,
                    "gradient_accumulation": 1,
                },
            },
        ],
        "session": {"ran": [], "computed": [], "reused": []},
        "provenance": {},
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps(results))
    render(run_dir)
    summary = (run_dir / "summary.md").read_text()
    assert "4. Does any fine-tuning recipe avoid the degradation?" in summary
    assert "Recipes with no cell regressed significantly on either criterion: r8e1." in summary
    row = next(line for line in summary.splitlines() if line.startswith("| r64e3 |"))
    assert "| 16 (4 x 4) |" in row and "| 1 | 0 | 0 | 1 |" in row and "-2.000" in row
    assert "Recipes that could not run on this machine: q (recipe q: quantization='qlora' needs a CUDA GPU)" in summary
    assert "| model | size | recipe | widgets |" in summary
    # each recipe's size trend runs from the one baseline; the reference metrics name the recipe of each row
    trend = next(line for line in summary.splitlines() if line.startswith("| widgets | smollm2 | r64e3 | accuracy |"))
    assert "| 40 | 0,4 |" in trend and "| -" in trend
    assert any(line.startswith("| widgets | smollm2 | ft4 | r8e1 |") for line in summary.splitlines())
    assert any(line.startswith("| widgets | smollm2 | ft0 | – |") for line in summary.splitlines())
    assert (run_dir / "figures" / "recipes.png").is_file()

    # a run whose only selected cells are the skipped recipe still says which recipe could not run here
    assert any(line.startswith("| q | quantization=qlora | 4 (4 x 1) |") for line in summary.splitlines())
    results["cells"] = [dict(results["cells"][0], status="not run", items=[]), results["cells"][-1]]
    results["judges"] = []
    (run_dir / "results.json").write_text(json.dumps(results))
    render(run_dir)
    summary = (run_dir / "summary.md").read_text()
    assert "No cell was scored" in summary
    assert "Recipes that could not run on this machine: q (recipe q: quantization='qlora' needs a CUDA GPU)" in summary
