import dataclasses
import json
from pathlib import Path

import pytest

from evalsuite.errors import ConfigError, EvalsuiteError
from evalsuite.matrix import MatrixConfig, expand_cells, load_config, read_profiles, short_name

MATRIX = Path(__file__).resolve().parents[1] / "test_cases" / "matrix.toml"


def write(tmp_path, text):
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return path


def test_shipped_profiles_are_valid_and_smoke_is_small():
    profiles = read_profiles(MATRIX)
    assert {"default", "smoke", "paper"} <= set(profiles)
    smoke = load_config(MATRIX, "smoke")
    assert [m.name for m in smoke.models] == ["smollm2"]
    assert smoke.models[0].spec == "bundled:smollm2-135m-instruct"
    assert smoke.dataset_names == ("qasper", "nq", "bioasq")
    assert smoke.sizes == (0, 16)
    assert smoke.eval_limit <= 10
    assert "token-overlap" in smoke.judges and smoke.judge_mode == "logprobs"
    default = load_config(MATRIX, "default")
    assert default.sizes == (0, 5, 12, 30) and default.corpus_subset == 1000
    assert default.dataset("nq").options  # the subset reaches the dataset spec
    paper = load_config(MATRIX, "paper")
    assert paper.judge_mode == "sample" and paper.judge_repeats == 10
    assert paper.corpus_subset is None and paper.dataset("nq").options == ()  # `corpus_subset = false`: whole corpus
    assert paper.margin == 0.25 and default.margin == 0.75
    assert [m.baseline_only for m in paper.models] == [False, False, True]


def test_profile_is_a_difference_from_default(tmp_path):
    path = write(
        tmp_path,
        """
[default]
sizes = [0, 20]
eval_limit = 30
[default.finetune]
epochs = 1
max_seq_length = 512
[quick]
eval_limit = 5
[quick.finetune]
max_seq_length = 128
""",
    )
    cfg = load_config(path, "quick")
    assert cfg.sizes == (0, 20) and cfg.eval_limit == 5
    assert cfg.finetune_options == {"epochs": 1, "max_seq_length": 128}


@pytest.mark.parametrize(
    "text, key",
    [
        ("[default]\nsizez = [0]\n", "sizez"),
        ("[default]\n[smoke]\nmodel = 'x'\n", "model"),
        ("[default]\nmodels = [{spec = 'bundled:x', nick = 'y'}]\n", "nick"),
        ("stray = 1\n[default]\n", "stray"),
        ("[default]\n[default.finetune]\nepochz = 1\n", "epochz"),
    ],
)
def test_unknown_key_names_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        for name in read_profiles(path):
            load_config(path, name)
    assert key in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[default]\ndatasets = ['squad']\n", "unknown dataset 'squad'"),
        ("[default]\nsizes = [0, -1]\n", "-1"),
        ("[default]\nmargin = 'wide'\n", "margin"),
        ("[default]\njudge_mode = 'vote'\n", "judge_mode"),
        ("[default]\neval_limit = 0\n", "eval_limit"),
        ("[default]\ncorpus_subset = true\n", "false for the whole corpus"),
        ("[default]\nmodels = ['bundled:a-1-x', 'hf:b/a-1-y']\n", "share a short name"),
    ],
)
def test_invalid_values_are_config_errors(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        load_config(write(tmp_path, text), "default")
    assert fragment in str(err.value) and str(tmp_path) in str(err.value)


def test_missing_profile_and_file(tmp_path):
    with pytest.raises(ConfigError, match="no profile 'nope'"):
        load_config(MATRIX, "nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_overrides_from_options():
    cfg = load_config(
        MATRIX,
        "default",
        {
            "sizes": "0,100",
            "datasets": "nq",
            "judges": "token-overlap",
            "eval_limit": "7",
            "margin": "auto",
            "models": "bundled:smollm2-135m-instruct",
        },
    )
    assert cfg.sizes == (0, 100) and cfg.dataset_names == ("nq",) and cfg.judges == ("token-overlap",)
    assert cfg.eval_limit == 7 and cfg.margin == "auto"
    assert cfg.models[0].name == "smollm2"
    with pytest.raises(ConfigError, match="--sizes"):
        load_config(MATRIX, "default", {"sizes": "0,many"})


def test_frozen_sorted_json_and_run_id():
    cfg = load_config(MATRIX, "smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.eval_limit = 3
    text = cfg.to_json()
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert cfg.run_id() == load_config(MATRIX, "smoke").run_id()
    assert cfg.run_id().startswith("smoke-")
    assert cfg.run_id() != load_config(MATRIX, "smoke", {"eval_limit": 9}).run_id()


def test_short_names():
    assert short_name("bundled:smollm2-135m-instruct") == "smollm2"
    assert short_name("bundled:gemma3-270m") == "gemma3"
    assert short_name("hf:meta-llama/Llama-2-7b-chat-hf") == "llama2"
    assert short_name("hf:mistralai/Mistral-7B-Instruct-v0.2") == "mistral7b"
    assert short_name("openai:gpt-4") == "gpt4"
    assert short_name("openai:http://127.0.0.1:8000/v1#my-model") == "my"


def test_default_config_is_valid():
    assert expand_cells(MatrixConfig())[0].id == "qasper-smollm2-ft0"


def test_datasets_of_ones_own_resolve_against_the_matrix_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "faq.jsonl").write_text(
        '{"question": "How do I reset it?", "answers": ["Hold the button."]}\n'
    )
    (tmp_path / "data" / "pairs.jsonl").write_text('{"question": "Is it waterproof?", "answers": ["No."]}\n')
    (tmp_path / "m.toml").write_text(
        '[default]\ndatasets = ["nq", {name = "support-faq", path = "data/faq.jsonl"}]\n'
        '[default.finetune]\ntrain_file = "data/pairs.jsonl"\nepochs = 2\n'
    )
    cfg = load_config(tmp_path / "m.toml", "default")
    assert cfg.dataset_names == ("nq", "support-faq")
    assert cfg.dataset("support-faq").path == str(tmp_path / "data" / "faq.jsonl")
    assert cfg.train_file == str(tmp_path / "data" / "pairs.jsonl") and cfg.finetune_options == {"epochs": 2}
    ids = [c.id for c in expand_cells(cfg)]
    assert ids[0] == "nq-smollm2-ft0" and "support-faq-smollm2-ft0" in ids
    assert MatrixConfig.from_dict(cfg.to_dict()) == cfg  # what results.json records is enough to rebuild it
    assert load_config(tmp_path / "m.toml", "default", {"datasets": "support-faq"}).dataset_names == ("support-faq",)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for f in ("faq.jsonl", "pairs.jsonl"):
        (moved / f).write_text((tmp_path / "data" / f).read_text())
    (moved / "m.toml").write_text((tmp_path / "m.toml").read_text().replace("data/", ""))
    assert load_config(moved / "m.toml", "default").run_id() == cfg.run_id()  # by content, not by folder
    (tmp_path / "bad.toml").write_text('[default]\ndatasets = [{name = "faq", path = "missing.jsonl"}]\n')
    with pytest.raises(EvalsuiteError, match="missing.jsonl"):
        load_config(tmp_path / "bad.toml", "default")
