import argparse
import json

import pytest

from evalsuite.errors import DataError
from evalsuite.judge.cli import add_cli


def _run(argv):
    parser = argparse.ArgumentParser(prog="evalsuite")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


ROWS = [
    {
        "id": "g",
        "question": "who wrote frankenstein",
        "references": ["Mary Shelley"],
        "context": ["Mary Shelley wrote it."],
        "answer": "Mary Shelley",
        "label": "good",
        "question_id": "q1",
    },
    {
        "id": "w",
        "question": "who wrote frankenstein",
        "references": ["Mary Shelley"],
        "context": ["Mary Shelley wrote it."],
        "answer": "Charles Dickens",
        "label": "wrong",
        "question_id": "q1",
    },
    {
        "id": "p",
        "question": "who wrote frankenstein",
        "references": ["Mary Shelley"],
        "context": [],
        "answer": "Shelley",
        "label": "partial",
        "question_id": "q1",
    },
]


def test_judge_cli_json_output(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    _write(path, ROWS)
    assert _run(["judge", "--judge", "token-overlap", "--input", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in out["items"]] == ["g", "w", "p"]
    for row in out["items"]:
        assert {"id", "accuracy", "completeness", "accuracy_std", "completeness_std", "unscored", "raw"} <= set(row)
    assert out["items"][0]["accuracy"] == 5.0 and out["items"][1]["accuracy"] == 1.0
    summary = out["summary"]
    for key in (
        "items",
        "unscored",
        "model_calls",
        "cache_hits",
        "mean_accuracy",
        "mean_completeness",
        "mean_repeat_std",
        "spearman_vs_f1",
        "good_over_wrong",
        "good_over_partial",
    ):
        assert key in summary
    assert summary["items"] == 3 and summary["model_calls"] == 0
    assert summary["good_over_wrong"] == 1.0 and summary["good_wrong_pairs"] == 1
    assert "qualified" not in summary  # whether a judge may gate is --qualify's question, not the input's


def test_judge_cli_without_labels_has_no_pair_shares(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    _write(path, [{k: v for k, v in row.items() if k != "label"} for row in ROWS])
    assert _run(["judge", "--input", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert "good_over_wrong" not in summary


def test_judge_cli_qualify_reference_prints_the_table_with_the_anchors(capsys):
    assert _run(["judge", "--judge", "token-overlap", "--qualify"]) == 0
    out = capsys.readouterr().out
    assert "this judge: accuracy" in out and "0.811  0.740" in out
    assert (
        "GPT-4 as judge" in out
        and "0.850b" in out
        and "balanced accuracy of the published" in out
        and "0.695" in out
        and "0.848" in out
    )
    assert "qualified: no" in out and "below the bar 0.75" in out
    assert "2-fold cross-fit by question_id" in out and "long-form check" in out
    assert _run(["judge", "--judge", "token-overlap", "--qualify", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["qualified"] is False and data["gating_criteria"] == []
    assert data["criteria"][0]["criterion"] == "accuracy" and round(data["criteria"][0]["auc"], 3) == 0.811
    assert data["data"]["human_file"] == "kamalloo_nq301.jsonl" and data["data"]["subset"] is False
    assert {a["name"] for a in data["anchors"]} == {"gpt4_eval", "instructgpt_eval", "bem", "em"}


def test_judge_cli_qualify_a_bundled_g_eval_judge_on_a_subset(tmp_path, monkeypatch, capsys):
    """The G-Eval path of --qualify, on the bundled model: 6 human answers and 1 long-form question per dataset."""
    assert _run(["judge", "--judge", "bundled:smollm2-135m-instruct", "--qualify", "--limit", "6", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["judge"] == "bundled:smollm2-135m-instruct/compact/logprobs"
    assert data["data"]["subset"] is True and data["data"]["limit"] == 6 and 0 < data["data"]["items_scored"] <= 6
    assert data["data"]["longform_pairs"] == 2 and "limit // 5" in data["data"]["subset_rule"]
    assert isinstance(data["qualified"], bool) and data["reasons"]
    assert _run(["judge", "--judge", "bundled:smollm2-135m-instruct", "--qualify", "--limit", "6"]) == 0
    assert "a SUBSET of 1490" in capsys.readouterr().out


def test_limit_without_qualify_is_an_error():
    from evalsuite.errors import ConfigError

    with pytest.raises(ConfigError, match="--limit applies to --qualify"):
        _run(["judge", "--input", "x.jsonl", "--limit", "3"])


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"question": "q", "references": "x", "answer": 3}, r"line 2: field 'answer'"),
        ({"question": "q", "answer": "a"}, r"line 2: missing field 'references'"),
        ({"question": "q", "references": ["a"], "context": [1], "answer": "a"}, r"line 2: field 'context'"),
        ("[1, 2]", r"line 2: expected a JSON object"),
        ({"question": "q", "references": ["a"], "answer": "a", "label": "meh"}, r"line 2: field 'label'"),
    ],
)
def test_judge_cli_malformed_line_names_line_and_field(tmp_path, bad, match):
    path = tmp_path / "in.jsonl"
    _write(path, [ROWS[0], bad])
    with pytest.raises(DataError, match=match):
        _run(["judge", "--input", str(path), "--json"])


def test_main_exits_2_without_traceback_on_a_malformed_line(tmp_path, capsys):
    cli = pytest.importorskip("evalsuite.cli")
    path = tmp_path / "in.jsonl"
    _write(path, [ROWS[0], {"question": "q", "answer": "a"}])
    assert cli.main(["judge", "--input", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "references" in err and "Traceback" not in err


SAMPLE_ROWS = [
    {
        "id": f"{n}-{kind}",
        "question": question,
        "references": [gold],
        "context": [context],
        "answer": answer,
        "question_id": str(n),
    }
    for n, (question, gold, context, right, wrong) in enumerate(
        [
            (
                "Which planet is known as the red planet?",
                "Mars",
                "Mars looks red because of iron oxide on its surface.",
                "Mars",
                "Jupiter",
            ),
            (
                "What is the boiling point of water at sea level in Celsius?",
                "100 degrees",
                "At sea level water boils at 100 C.",
                "100 degrees Celsius",
                "50 degrees",
            ),
            (
                "Who painted the Mona Lisa?",
                "Leonardo da Vinci",
                "The Mona Lisa was painted by Leonardo da Vinci.",
                "Leonardo da Vinci painted it.",
                "Vincent van Gogh",
            ),
            (
                "What gas do humans exhale?",
                "carbon dioxide",
                "Exhaled air is rich in carbon dioxide.",
                "Carbon dioxide",
                "Helium",
            ),
            (
                "How many legs does a spider have?",
                "eight",
                "Spiders are arachnids with eight legs.",
                "Eight legs.",
                "Six",
            ),
        ]
    )
    for kind, answer in (("right", right), ("wrong", wrong))
]


def test_sample_mode_then_the_same_command_makes_no_model_calls(tmp_path, monkeypatch, capsys):
    """The bundled judge, 3 sampled runs per criterion on 4 items (each prompt is read once for its 3
    runs); the rerun is answered from the cache."""
    from evalsuite.storage import cache_dir

    models = cache_dir("models")
    fresh = tmp_path / "cache"
    fresh.mkdir()
    (fresh / "models").symlink_to(models, target_is_directory=True)  # the model store only: every cache is empty
    monkeypatch.setenv("EVALSUITE_CACHE", str(fresh))
    items = tmp_path / "items.jsonl"
    _write(items, SAMPLE_ROWS[:4])
    argv = [
        "judge",
        "--judge",
        "bundled:smollm2-135m-instruct",
        "--input",
        str(items),
        "--mode",
        "sample",
        "--repeats",
        "3",
        "--json",
    ]
    assert _run(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["summary"]["items"] == 4 and len(first["items"]) == 4
    assert first["summary"]["model_calls"] >= 24  # 4 items x 2 criteria x 3 runs, plus retries
    for row in first["items"]:
        assert len(row["raw"]) == 6
        assert row["unscored"] > 0 or (1 <= row["accuracy"] <= 5 and row["accuracy_std"] >= 0)
    assert first["summary"]["mean_repeat_std"] > 0  # sampled runs disagree
    assert _run(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["summary"]["model_calls"] == 0 and second["summary"]["cache_hits"] == first["summary"]["model_calls"]
    assert second["items"] == first["items"]
