"""Stored baselines: append-only files with provenance, found by path, run id, name or 'latest'."""

import datetime as dt
import json

import pytest

from evalsuite.errors import ConfigError
from evalsuite.matrix import RunStore
from evalsuite.matrix._baselines import load_cells, write_baseline


def cells():
    item = {
        "id": "q1",
        "answer": "a",
        "verdicts": {"token-overlap": {"accuracy": 3.0, "completeness": 4.0, "raw": ["long"]}},
    }
    base = {
        "id": "nq-smollm2-ft0",
        "kind": "baseline",
        "status": "passed",
        "model": "smollm2",
        "model_spec": "bundled:smollm2-135m-instruct",
        "model_identity": "abc",
        "dataset": "nq",
        "dataset_source": "nq/dev.jsonl",
        "dataset_fingerprint": "f00",
        "items": [item],
    }
    tuned = {**base, "id": "nq-smollm2-ft20", "kind": "finetuned"}
    skipped = {"id": "bioasq-smollm2-ft0", "kind": "baseline", "status": "skipped"}
    return [base, tuned, skipped]


def test_write_is_append_only_with_provenance(tmp_path):
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    prov = {
        "git": {"commit": "c0ffee", "dirty": True},
        "packages": {"torch": "2.13.0"},
        "token": "sk-abcdefghijklmnopqrstuvwx",
    }
    first = write_baseline(
        tmp_path, run_id="smoke-1", cells=cells(), config={"profile": "smoke"}, provenance=prov, now=now
    )
    second = write_baseline(
        tmp_path, run_id="smoke-1", cells=cells(), config={"profile": "smoke"}, provenance=prov, now=now
    )
    assert first != second and first.exists() and second.exists()
    data = json.loads(first.read_text())
    assert [c["id"] for c in data["cells"]] == ["nq-smollm2-ft0"]  # baselines only, finished only
    assert "raw" not in data["cells"][0]["items"][0]["verdicts"]["token-overlap"]
    assert data["provenance"]["git"] == {"commit": "c0ffee", "dirty": True}
    assert data["models"] == [["smollm2", "bundled:smollm2-135m-instruct", "abc"]]
    assert data["datasets"] == [["nq", "nq/dev.jsonl", "f00"]]
    assert "sk-" not in first.read_text()
    with pytest.raises(ConfigError, match="no finished baseline"):
        write_baseline(tmp_path, run_id="x", cells=cells()[1:], config={}, provenance={})


def test_load_cells_by_file_run_and_latest(tmp_path):
    root = tmp_path / "reports"
    path = write_baseline(root / "baselines", run_id="r", cells=cells(), config={}, provenance={})
    for ref in (str(path), path.name, path.stem, "latest"):
        found_path, found = load_cells(ref, root)
        assert found_path == path and list(found) == ["nq-smollm2-ft0"]
    store = RunStore(root / "runs" / "run-7")
    for c in cells():
        store.write(c["id"], c)
    found_path, found = load_cells("run-7", root)
    assert sorted(found) == ["nq-smollm2-ft0", "nq-smollm2-ft20"]
    with pytest.raises(ConfigError, match="no such file, run folder"):
        load_cells("nowhere", root)


def test_an_incomparable_baseline_names_every_difference():
    from evalsuite.matrix._baselines import differences

    stored = {
        "dataset_fingerprint": "f00",
        "generation": {"max_new_tokens": 40, "seed": 0},
        "judge_configs": {
            "token-overlap": {"factory": "token-overlap"},
            "learned": {"factory": "learned", "weights": "w1", "cache": True},
        },
    }
    same = differences(
        stored,
        fingerprint="f00",
        generation={"max_new_tokens": 40, "seed": 0},
        judge_configs={
            "token-overlap": {"factory": "token-overlap"},
            "learned": {"factory": "learned", "weights": "w1", "cache": False},
        },
    )
    assert same == []  # where verdicts are cached does not matter
    diffs = differences(
        stored,
        fingerprint="f01",
        generation={"max_new_tokens": 64, "seed": 0},
        judge_configs={"learned": {"factory": "learned", "weights": "w2"}, "other": {"factory": "x"}},
    )
    text = "; ".join(diffs)
    assert "dataset fingerprint f00 vs this run's f01" in text
    assert "generation max_new_tokens = 40 vs this run's 64" in text
    assert "judge learned: weights = 'w1' vs 'w2'" in text
    assert "judge other did not score the baseline" in text
