"""The retrieval index store: damaged files are found, quarantined and rebuilt with the same results;
a hit is verified once per process and never loads the embedder model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite import artifacts as _artifacts
from evalsuite.records import Dataset, Passage
from evalsuite.retrieval import build_index
from evalsuite.storage import CorruptionWarning

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "The Eiffel tower is in Paris.",
    "Insulin is made by the pancreas.",
    "The Nile is a river in Africa.",
    "Python is a programming language.",
    "Mount Everest is the highest mountain.",
]
QUESTIONS = ["Which organ makes insulin?", "Where is the Eiffel tower?", "What is the highest mountain?"]
TINY = "Dataset('tiny', 'mem', (), tuple(Passage(f'p{i}', 't', f'd{i % 3}', '', t) for i, t in enumerate(TEXTS)))"


def tiny() -> Dataset:
    return eval(TINY, {"Dataset": Dataset, "Passage": Passage, "TEXTS": TEXTS})


def top_ids(retriever) -> list[list[str]]:
    return [[c.passage_id for c in chunks] for chunks in retriever.retrieve_many(QUESTIONS, k=3)]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    return tmp_path


def damage(kind: str, path: Path) -> None:
    if kind == "truncate-index":
        data = (path / "index.faiss").read_bytes()
        (path / "index.faiss").write_bytes(data[: len(data) // 2])
    elif kind == "overwrite-chunks":  # same size, other bytes: only the sha256 tells
        text = (path / "chunks.jsonl").read_text()
        (path / "chunks.jsonl").write_text(text.replace("Paris", "Rome!"))
    elif kind == "garble-manifest":
        (path / "manifest.json").write_text("{not json")
    elif kind == "delete-index":
        (path / "index.faiss").unlink()


@pytest.mark.parametrize("kind", ["truncate-index", "overwrite-chunks", "garble-manifest", "delete-index"])
def test_damaged_index_is_quarantined_and_rebuilt_with_the_same_results(cache, kind):
    first = build_index(tiny(), progress=False)
    expected = top_ids(first)
    damage(kind, first.path)
    _artifacts.forget(first.path)  # as in a new process: the next hit verifies again
    with pytest.warns(CorruptionWarning) as caught:
        again = build_index(tiny(), progress=False)
    caught = [w for w in caught if issubclass(w.category, CorruptionWarning)]
    assert len(caught) == 1
    [moved] = sorted((cache / "quarantine" / "index").iterdir())
    message = str(caught[0].message)
    assert f"stored retrieval index of tiny {first.path} failed verification" in message
    assert str(moved) in message and "building it again" in message
    assert not again.cached and again.path == first.path and top_ids(again) == expected
    assert json.loads((again.path / "manifest.json").read_text())["files"]["index.faiss"]["size"] > 0
    assert build_index(tiny(), progress=False).cached  # and the rebuilt one is a hit


def test_a_hit_is_verified_once_per_process(cache, monkeypatch):
    calls = []
    real = _artifacts.sha256_file
    monkeypatch.setattr(_artifacts, "sha256_file", lambda p: calls.append(Path(p).name) or real(p))
    first = build_index(tiny(), progress=False)
    assert sorted(calls) == ["chunks.jsonl", "index.faiss"]  # recorded when written, and trusted since
    calls.clear()
    assert build_index(tiny(), progress=False).cached and calls == []
    _artifacts.forget(first.path)  # a new process
    assert build_index(tiny(), progress=False).cached and sorted(calls) == ["chunks.jsonl", "index.faiss"]
    calls.clear()
    assert build_index(tiny(), progress=False).cached and calls == []
    manifest = first.path / "manifest.json"
    os.utime(manifest, (1_000_000, 1_000_000))
    build_index(tiny(), progress=False)
    assert manifest.stat().st_mtime > 1_000_000  # the hit stamped its last use


def test_an_index_stored_before_checksums_is_kept_when_whole(cache):
    first = build_index(tiny(), progress=False)
    manifest = json.loads((first.path / "manifest.json").read_text())
    legacy = {k: v for k, v in manifest.items() if k not in ("files", "key")}
    (first.path / "meta.json").write_text(json.dumps(legacy))
    (first.path / "manifest.json").unlink()
    _artifacts.forget(first.path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptionWarning)
        again = build_index(tiny(), progress=False)
    assert again.cached and top_ids(again) == top_ids(first)
    assert json.loads((again.path / "manifest.json").read_text())["files"] == manifest["files"]
    # an old index whose file is cut short is not kept
    (again.path / "manifest.json").unlink()
    data = (again.path / "index.faiss").read_bytes()
    (again.path / "index.faiss").write_bytes(data[:100])
    _artifacts.forget(again.path)
    with pytest.warns(CorruptionWarning, match="RuntimeError"):
        assert not build_index(tiny(), progress=False).cached


LAZY = f"""
import json, sys
from evalsuite.records import Dataset, Passage
from evalsuite.retrieval import get_retriever
TEXTS = {TEXTS!r}
retriever = get_retriever({TINY}, progress=False)
state = {{"cached": retriever.cached, "model_loaded": "model" in vars(retriever.embedder),
          "sentence_transformers": "sentence_transformers" in sys.modules}}
top = retriever.retrieve("Which organ makes insulin?", k=1)[0].passage_id
state.update(top=top, model_loaded_after_query="model" in vars(retriever.embedder))
print(json.dumps(state))
"""


def test_get_retriever_on_a_stored_index_loads_the_embedder_only_to_encode_a_question(cache):
    env = dict(os.environ, PYTHONPATH=str(ROOT), EVALSUITE_CACHE=str(cache))
    runs = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", LAZY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    built, stored = runs
    assert not built["cached"] and built["model_loaded"]  # building encodes the chunks
    assert stored == {
        "cached": True,
        "model_loaded": False,
        "sentence_transformers": False,
        "top": "p1",
        "model_loaded_after_query": True,
    }
