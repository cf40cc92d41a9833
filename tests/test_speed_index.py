"""Indexes as shipped files (export, fetch, verify), the int8 embedder, and corpus subsets."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import numpy as np
import pytest

from evalsuite.datasets import load
from evalsuite.datasets.subset import subset_corpus
from evalsuite.errors import DataError
from evalsuite.records import Dataset, Example, Passage
from evalsuite.retrieval import ChunkerSettings, Embedder, build_index, get_retriever
from evalsuite.retrieval.prebuilt import export_index, fetch_prebuilt_index, index_key
from evalsuite.splits import split

TEXTS = [
    "The Eiffel tower is in Paris.",
    "Insulin is made by the pancreas.",
    "The Nile is a river in Africa.",
    "Python is a programming language.",
    "Mount Everest is the highest mountain.",
    "Bees make honey from nectar.",
]


def tiny() -> Dataset:
    return Dataset("tiny", "mem", (), tuple(Passage(f"p{i}", "tiny", f"d{i % 3}", "", t) for i, t in enumerate(TEXTS)))


@pytest.fixture
def published(tmp_path, monkeypatch):
    """An index built in one cache and exported to a mirror folder; the test then runs on an empty cache."""
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "builder"))
    folder = export_index(tiny(), tmp_path / "mirror" / "indexes", embedder=Embedder(precision="fp32"), progress=False)
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "user"))
    return tmp_path / "mirror", folder


def test_export_writes_the_files_and_a_manifest_of_their_hashes(published):
    import hashlib

    _, folder = published
    manifest = json.loads((folder / "manifest.json").read_text())
    assert folder.name == f"tiny-{manifest['key']}"
    assert manifest["key"] == index_key(tiny(), ChunkerSettings(), Embedder(precision="fp32"))
    assert manifest["embedder"].endswith("|float32|max128") and manifest["chunks"] == len(TEXTS)
    assert sorted(manifest["files"]) == ["chunks.jsonl", "index.faiss"]
    for name, expected in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == expected["sha256"] and len(data) == expected["size"]


def test_fetched_index_is_used_without_embedding(published):
    mirror, folder = published
    embedder = Embedder(precision="fp32")
    installed = fetch_prebuilt_index(mirror, tiny(), embedder=embedder)
    assert installed is not None and installed.name == folder.name
    assert json.loads((installed / "manifest.json").read_text())["installed_from"] == str(mirror)
    retriever = build_index(tiny(), embedder=embedder, progress=False)
    assert retriever.cached and retriever.path == installed  # found in the store: nothing was embedded
    assert retriever.retrieve("Which organ makes insulin?", k=1)[0].passage_id == "p1"
    assert fetch_prebuilt_index(mirror, tiny(), embedder=embedder) == installed  # already there: nothing to do


def test_no_index_of_this_key_means_none(published):
    mirror, _ = published
    assert fetch_prebuilt_index(mirror, tiny(), embedder=Embedder(precision="int8")) is None  # another precision
    changed = Dataset("tiny", "mem", (), tiny().passages[:-1])
    assert fetch_prebuilt_index(mirror, changed, embedder=Embedder(precision="fp32")) is None  # another corpus


def test_a_corrupt_file_is_refused_and_nothing_installed(published):
    from evalsuite.retrieval.prebuilt import store_folder

    mirror, folder = published
    raw = bytearray((folder / "index.faiss").read_bytes())
    raw[-1] ^= 0xFF
    (folder / "index.faiss").write_bytes(bytes(raw))
    embedder = Embedder(precision="fp32")
    with pytest.raises(DataError, match=r"index\.faiss has sha256 .* the manifest"):
        fetch_prebuilt_index(mirror, tiny(), embedder=embedder)
    assert not (store_folder(tiny(), index_key(tiny(), ChunkerSettings(), embedder)) / "index.faiss").exists()


def test_fetch_over_http(published):
    mirror, folder = published
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        installed = fetch_prebuilt_index(url, tiny(), embedder=Embedder(precision="fp32"))
        assert (
            installed is not None and (installed / "index.faiss").read_bytes() == (folder / "index.faiss").read_bytes()
        )
        assert fetch_prebuilt_index(url, tiny(), embedder=Embedder(precision="int8")) is None  # a 404 is "no index"
    finally:
        server.shutdown()


def test_int8_embedder_names_its_path_and_stays_close_to_fp32():
    fp32, int8 = Embedder(precision="fp32"), Embedder(precision="int8")
    assert int8.identity != fp32.identity and "|int8-" in int8.identity and int8.precision == "int8"
    a, b = fp32.encode(TEXTS), int8.encode(TEXTS)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.97  # the same direction, nearly
    assert (a @ a.T).argsort(axis=1)[:, -2:].tolist() == (b @ b.T).argsort(axis=1)[:, -2:].tolist()
    assert np.array_equal(int8.encode(TEXTS), b)  # repeatable


def test_auto_precision_is_int8_without_bf16(monkeypatch):
    monkeypatch.setenv("EVALSUITE_CPU_BF16", "0")
    assert Embedder().precision == "int8"
    monkeypatch.setenv("EVALSUITE_CPU_BF16", "1")
    assert Embedder().precision == "bf16"


def test_subset_keeps_the_questions_documents_and_seeded_distractors():
    nq = load("nq")
    questions = list(split(nq).eval[:10])
    small = subset_corpus(nq, questions, distractors=50, seed=0)
    assert small.examples == nq.examples and small.name == nq.name and small.source != nq.source
    docs = {d for ex in questions for d in ex.doc_ids}
    needed = [p for p in nq.passages if p.doc_id in docs or any(p.id in ex.evidence for ex in questions)]
    assert set(needed) <= set(small.passages)
    assert len(small.passages) == len(set(needed)) + 50
    ids = [p.id for p in small.passages]
    assert ids == [p.id for p in nq.passages if p.id in set(ids)]  # corpus order
    assert subset_corpus(nq, questions, distractors=50, seed=0) == small
    other = subset_corpus(nq, questions, distractors=50, seed=1)
    assert other.passages != small.passages and other.source != small.source
    with pytest.raises(Exception, match="distractors must be >= 0"):
        subset_corpus(nq, questions, distractors=-1)
    with pytest.raises(Exception, match="is not from nq"):
        subset_corpus(nq, [Example("x", "bioasq", "q?", ("a",), "factoid")])


def test_document_scoped_subset_retrieves_as_the_whole_corpus():
    from test_retrieval import eval_corpus

    qasper, _ = eval_corpus("qasper")  # "whole": the papers of every Qasper eval question (the recall test's index)
    questions = list(split(qasper).eval[:6])
    small = subset_corpus(qasper, questions, distractors=20, seed=0)
    assert len(small.passages) < len(qasper.passages)
    docs = {d for ex in questions for d in ex.doc_ids}
    assert {p.doc_id for p in small.passages} == docs  # no distractor: a question never searches outside its paper
    whole = get_retriever(qasper, progress=False).retrieve_many(questions, 5)
    part = get_retriever(small, progress=False).retrieve_many(questions, 5)
    assert [[c.id for c in cs] for cs in part] == [[c.id for c in cs] for cs in whole]


@pytest.mark.slow
def test_download_installs_the_mirrors_prebuilt_index(tmp_path, monkeypatch, capsys):
    """`evalsuite datasets download NAME --mirror M` also installs M's prebuilt index of that dataset
    when its key is the one this machine would build: a fresh cache then embeds nothing."""
    from evalsuite.cli import main
    from evalsuite.datasets import data_root

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "nq").symlink_to(data_root() / "nq")  # the data root has the mirror's layout
    nq = load("nq")
    folder = export_index(nq, mirror / "indexes", progress=False)  # this session's store builds it once
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "fresh-cache"))
    monkeypatch.setenv("EVALSUITE_DATA", str(tmp_path / "fresh-data"))
    assert main(["datasets", "download", "nq", "--mirror", str(mirror), "--quiet"]) == 0
    assert f"index    nq: installed {folder.name} from the mirror" in capsys.readouterr().out
    retriever = build_index(load("nq"), progress=False)
    assert retriever.cached and retriever.path.name == folder.name
    # a mirror without the index: the command says it is built on first use, and installs nothing
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "nq").symlink_to(data_root() / "nq")
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "other-cache"))
    assert main(["datasets", "download", "nq", "--mirror", str(bare)]) == 0
    assert "nq: the mirror has no prebuilt index" in capsys.readouterr().out
    assert not (tmp_path / "other-cache").joinpath("index").exists() or not any(
        (tmp_path / "other-cache" / "index").rglob("index.faiss")
    )
