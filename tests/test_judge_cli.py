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
    {"id": "g", "question": "who wrote frankenstein", "references": ["Mary Shelley"], "context": ["Mary Shelley wrote it."],
     "answer": "Mary Shelley", "label": "good", "question_id": "q1"},
    {"id": "w", "question": "who wrote frankenstein", "references": ["Mary Shelley"], "context": ["Mary Shelley wrote it."],
     "answer": "Charles Dickens", "label": "wrong", "question_id": "q1"},
    {"id": "p", "question": "who wrote frankenstein", "references": ["Mary Shelley"], "context": [],
     "answer": "Shelley", "label": "partial", "question_id": "q1"},
]


def test_judge_cli_json_output(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    _write(path, ROWS)
    assert _run(["judge", "--judge", "reference", "--input", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["id"] for row in out["items"]] == ["g", "w", "p"]
    for row in out["items"]:
        assert {"id", "accuracy", "completeness", "accuracy_std", "completeness_std", "unscored", "raw"} <= set(row)
    assert out["items"][0]["accuracy"] == 5.0 and out["items"][1]["accuracy"] == 1.0
    summary = out["summary"]
    for key in ("items", "unscored", "model_calls", "cache_hits", "mean_accuracy", "mean_completeness",
                "mean_repeat_std", "spearman_vs_f1", "good_over_wrong", "qualified"):
        assert key in summary
    assert summary["items"] == 3 and summary["model_calls"] == 0
    assert summary["good_over_wrong"] == 1.0 and summary["qualified"] is True


def test_judge_cli_without_labels_has_no_qualification(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    _write(path, [{k: v for k, v in row.items() if k != "label"} for row in ROWS])
    assert _run(["judge", "--input", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert "good_over_wrong" not in summary and summary["qualified"] is None


def test_judge_cli_qualify_reference(capsys):
    assert _run(["judge", "--judge", "reference", "--qualify", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["good_over_wrong"] == 1.0 and summary["pairs"] >= 30 and summary["qualified"] is True


@pytest.mark.parametrize(
    "bad,match",
    [({"question": "q", "references": "x", "answer": 3}, r"line 2: field 'answer'"),
     ({"question": "q", "answer": "a"}, r"line 2: missing field 'references'"),
     ({"question": "q", "references": ["a"], "context": [1], "answer": "a"}, r"line 2: field 'context'"),
     ("[1, 2]", r"line 2: expected a JSON object"),
     ({"question": "q", "references": ["a"], "answer": "a", "label": "meh"}, r"line 2: field 'label'")],
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


def test_sample_mode_on_100_calibration_items_then_the_same_command_makes_no_model_calls(tmp_path, monkeypatch, capsys):
    """The bundled judge, 10 sampled runs per criterion on 100 items (about 2 minutes on two
    cores: each prompt is read once for its 10 runs); the rerun is answered from the cache."""
    from evalsuite._io import cache_dir

    models = cache_dir("models")
    fresh = tmp_path / "cache"
    fresh.mkdir()
    (fresh / "models").symlink_to(models, target_is_directory=True)  # the model store only: every cache is empty
    monkeypatch.setenv("EVALSUITE_CACHE", str(fresh))
    from evalsuite.judge._qualify import CALIBRATION_FILE

    lines = CALIBRATION_FILE.read_text(encoding="utf-8").splitlines()[:100]
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["judge", "--judge", "bundled:smollm2-135m-instruct", "--input", str(items), "--mode", "sample",
            "--repeats", "10", "--json"]
    assert _run(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["summary"]["items"] == 100 and len(first["items"]) == 100
    assert first["summary"]["model_calls"] >= 2000  # 100 items x 2 criteria x 10 runs, plus retries
    for row in first["items"]:
        assert len(row["raw"]) == 20
        assert row["unscored"] > 0 or (1 <= row["accuracy"] <= 5 and row["accuracy_std"] >= 0)
    assert first["summary"]["mean_repeat_std"] > 0  # sampled runs disagree
    assert _run(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["summary"]["model_calls"] == 0 and second["summary"]["cache_hits"] == first["summary"]["model_calls"]
    assert second["items"] == first["items"]
