from pathlib import Path

from evalsuite.matrix import BASELINE, CANDIDATE, FINETUNED, build_config, expand_cells, load_config

MATRIX = Path(__file__).resolve().parents[1] / "test_cases" / "matrix.toml"


def test_ids_and_order_follow_the_config():
    cells = expand_cells(load_config(MATRIX, "default"))
    ids = [c.id for c in cells]
    assert ids == [f"{d}-smollm2-ft{s}" for d in ("qasper", "nq", "bioasq") for s in (0, 5, 12, 30)]
    assert all(c.baseline_id == f"{c.dataset}-smollm2-ft0" for c in cells)
    assert [c.kind for c in cells[:4]] == [BASELINE, FINETUNED, FINETUNED, FINETUNED]
    assert len(set(ids)) == len(ids)
    # Expansion is a pure function of the configuration: every xdist worker sees one order.
    assert [c.id for c in expand_cells(load_config(MATRIX, "default"))] == ids


def test_baseline_always_present_and_reference_models_only_baseline():
    cfg = build_config(
        "x",
        {
            "sizes": [100, 20],
            "models": [
                "bundled:smollm2-135m-instruct",
                {"spec": "openai:gpt-4", "name": "gpt4", "baseline_only": True},
            ],
            "datasets": ["nq"],
        },
    )
    assert [c.id for c in expand_cells(cfg)] == ["nq-smollm2-ft0", "nq-smollm2-ft100", "nq-smollm2-ft20", "nq-gpt4-ft0"]


def test_candidate_cell_per_dataset_compares_with_its_base():
    cfg = load_config(MATRIX, "smoke", {"candidate": "bundled:smollm2-135m-instruct+lora:/tmp/adapter"})
    cand = [c for c in expand_cells(cfg) if c.kind == CANDIDATE]
    assert [c.id for c in cand] == ["qasper-candidate", "nq-candidate", "bioasq-candidate"]
    assert cand[1].baseline_id == "nq-smollm2-ft0"
    assert cand[1].spec == "bundled:smollm2-135m-instruct+lora:/tmp/adapter"


def test_keyword_selection_is_unambiguous():
    ids = [c.id for c in expand_cells(load_config(MATRIX, "default"))]
    assert [i for i in ids if "ft12" in i] == ["qasper-smollm2-ft12", "nq-smollm2-ft12", "bioasq-smollm2-ft12"]
    assert [i for i in ids if "ft0" in i] == ["qasper-smollm2-ft0", "nq-smollm2-ft0", "bioasq-smollm2-ft0"]
    assert all(i.startswith("nq-") for i in ids if "nq" in i)
