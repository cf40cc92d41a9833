"""Retrieval on the bundled eval splits, the index cache, and the RAG prompt."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evalsuite.datasets import load
from evalsuite.prompts import rag_prompt
from evalsuite.records import Dataset, Passage
from evalsuite.retrieval import build_index, get_retriever

# Retrieval is scored on the eval questions with gold evidence of each sample, over an index
# that a cold test session builds anyway or can build cheaply: Qasper, the papers of its eval
# questions (each question searches its own paper, so these are the whole corpus's figures); NQ,
# the whole corpus (the fine-tuning tests index it); BioASQ, the documents of its first 200
# eval questions plus 1,000 seeded distractor passages (2,656 chunks instead of 15,102).
# Measured (seed 0, the bundled all-MiniLM-L6-v2, recall@5 / MRR) on both CPU paths, bf16 and
# int8; each bound sits a little under the lower of the two.
#   qasper  36 questions, 2,303 chunks   bf16 0.528 / 0.287   int8 0.472 / 0.263
#   nq     589 questions, 3,972 chunks   bf16 0.978 / 0.934   int8 0.980 / 0.932
#   bioasq 200 questions, 2,656 chunks   bf16 0.940 / 0.903   int8 0.945 / 0.910
RECALL_AT_5_BOUND = {"qasper": 0.44, "nq": 0.95, "bioasq": 0.91}
SUBSET = {"qasper": (None, 0), "nq": None, "bioasq": (200, 1000)}  # (questions, distractors); None = whole corpus


def eval_corpus(name: str):
    """(the dataset the recall test indexes, its eval questions with gold evidence that are scored)."""
    from evalsuite.datasets.subset import subset_corpus
    from evalsuite.splits import split

    ds = load(name)
    questions = [ex for ex in split(ds, 0).eval if ex.evidence]
    if SUBSET[name] is None:
        return ds, questions
    limit, distractors = SUBSET[name]
    questions = questions[:limit]
    return subset_corpus(ds, questions, distractors=distractors, seed=0), questions


@pytest.mark.parametrize("name", ["qasper", "nq", "bioasq"])
def test_recall_at_5_on_the_eval_questions(name):
    from evalsuite.retrieval.evaluate import score_retrieval

    ds, questions = eval_corpus(name)
    retriever = get_retriever(ds, progress=False)
    result = score_retrieval(questions, retriever.retrieve_many(questions, 5), 5)
    assert result["questions"] == len(questions) >= 30
    assert result["recall@5"] >= RECALL_AT_5_BOUND[name], result
    assert 0 < result["mrr"] <= result["recall@5"]


def test_qasper_retrieval_stays_in_the_questions_paper():
    ds, questions = eval_corpus("qasper")
    retriever = get_retriever(ds, progress=False)
    for ex in questions[:10]:
        chunks = retriever.retrieve(ex, k=5)
        assert chunks and {c.doc_id for c in chunks} == set(ex.doc_ids)


def test_index_is_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    passages = tuple(
        Passage(f"p{i}", "t", f"d{i % 3}", "", text)
        for i, text in enumerate(
            [
                "The Eiffel tower is in Paris.",
                "Insulin is made by the pancreas.",
                "The Nile is a river in Africa.",
                "Python is a programming language.",
                "Mount Everest is the highest mountain.",
            ]
        )
    )
    ds = Dataset("tiny", "mem", (), passages)
    first = build_index(ds, progress=False)
    assert not first.cached and (first.path / "index.faiss").exists()
    again = build_index(ds, progress=False)
    assert again.cached and again.key == first.key
    assert again.retrieve("Which organ makes insulin?", k=1)[0].passage_id == "p1"
    changed = Dataset("tiny", "mem", (), passages[:-1] + (Passage("p4", "t", "d1", "", "Everest is in Nepal."),))
    assert build_index(changed, progress=False).key != first.key
    hnsw = build_index(ds, kind="hnsw", progress=False)
    assert hnsw.key != first.key and hnsw.retrieve("Where is the Eiffel tower?", k=1)[0].passage_id == "p0"


def test_rag_prompt_numbers_passages_and_keeps_ids():
    ds = load("nq")
    ex = ds.examples[0]
    chunks = get_retriever(ds, progress=False).retrieve(ex, k=5)
    prompt = rag_prompt(ex.question, chunks)
    assert [m.role for m in prompt.messages] == ["system", "user"]
    user = prompt.messages[1].content
    assert user.count("\n[") + user.startswith("[") >= 4 and "[1]" in user and "[5]" in user
    assert user.rstrip().endswith("Answer:") and ex.question in user
    assert prompt.passage_ids == tuple(c.id for c in chunks)
    assert prompt.key() == rag_prompt(ex.question, chunks).key()


def test_retrieval_eval_cli_json(tmp_path):
    """`evalsuite retrieval-eval NAME --path ... --json` on a small set written for the test."""
    facts = [
        ("Which organ makes insulin?", "the pancreas", "Insulin is made by the beta cells of the pancreas."),
        ("Where is the Eiffel tower?", "Paris", "The Eiffel tower stands on the Champ de Mars in Paris."),
        ("Which river flows through Cairo?", "the Nile", "Cairo lies on the banks of the Nile river."),
        ("What is the highest mountain?", "Mount Everest", "Mount Everest is the highest mountain above sea level."),
    ]
    questions, corpus = tmp_path / "faq.jsonl", tmp_path / "kb.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": q, "answers": [a], "evidence": [f"p{i}"]}) + "\n"
            for i, (q, a, _) in enumerate(facts)
        )
    )
    corpus.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "title": f"fact {i}", "text": t}) + "\n" for i, (_, _, t) in enumerate(facts)
        )
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalsuite",
            "retrieval-eval",
            "facts",
            "--path",
            str(questions),
            "--corpus",
            str(corpus),
            "--k",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert set(out) == {"recall@1", "mrr", "questions", "seconds"}
    assert out["questions"] >= 1 and out["recall@1"] == 1.0 and out["mrr"] == 1.0
