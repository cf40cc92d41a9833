"""Properties of chunking and splitting (hypothesis), and the split rule on the bundled data."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from evalsuite.datasets import load
from evalsuite.records import Dataset, Example, Passage
from evalsuite.retrieval.chunking import ChunkerSettings, chunk_passage
from evalsuite.splits import split

words = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=400)


@given(text=words, size=st.integers(1, 40), overlap_frac=st.floats(0, 0.9))
def test_chunks_cover_the_text_none_empty_provenance_round_trips(text, size, overlap_frac):
    overlap = min(size - 1, int(size * overlap_frac))
    passage = Passage("p1", "t", "doc", "Sec", text)
    chunks = chunk_passage(passage, ChunkerSettings(size, overlap))
    covered = [False] * len(text)
    for c in chunks:
        assert c.text.strip(), "no empty chunk"
        assert text[c.start : c.end] == c.text and c.passage_id == "p1" and c.doc_id == "doc" and c.title == "Sec"
        assert len(c.text.split()) <= size
        for i in range(c.start, c.end):
            covered[i] = True
    for m in re.finditer(r"\S", text):  # every non-space character lies in some chunk
        assert covered[m.start()]
    assert len({c.id for c in chunks}) == len(chunks)


def _examples(draw_docs):
    return tuple(
        Example(
            id=f"q{i}",
            dataset="t",
            question=f"question {i % 17}?",
            references=("a",),
            answer_type="short",
            doc_ids=docs,
        )
        for i, docs in enumerate(draw_docs)
    )


doc_lists = st.lists(
    st.lists(st.sampled_from([f"d{j}" for j in range(30)]), min_size=1, max_size=3).map(tuple), min_size=1, max_size=120
)


@settings(max_examples=60, deadline=None)
@given(docs=doc_lists, seed=st.integers(0, 5))
def test_splits_deterministic_and_disjoint(docs, seed):
    examples = _examples(docs)
    ds = Dataset("t", "mem", examples, ())
    a, b = split(ds, seed), split(ds, seed)
    assert a == b  # deterministic
    shuffled = split(Dataset("t", "mem", tuple(reversed(examples)), ()), seed)
    assert [e.id for e in shuffled.eval] == [e.id for e in a.eval]  # independent of file order
    pool_ids, eval_ids = {e.id for e in a.pool}, {e.id for e in a.eval}
    assert not pool_ids & eval_ids and len(pool_ids) + len(eval_ids) == len(examples)
    pool_docs = {d for e in a.pool for d in e.doc_ids}
    assert not pool_docs & {d for e in a.eval for d in e.doc_ids}  # disjoint by document

    def norm(s):
        return s.lower().strip("?")

    assert not {norm(e.question) for e in a.pool} & {norm(e.question) for e in a.eval}


def test_bundled_splits_rule_and_nesting():
    for name, eval_size in (("qasper", 40), ("nq", 589), ("bioasq", 503)):
        ds = load(name)
        sp = split(ds)
        assert len(sp.eval) == eval_size, sp.rule
        assert len(sp.pool) == len(ds.examples) - eval_size
        pool_docs = {d for e in sp.pool for d in e.doc_ids}
        assert not pool_docs & {d for e in sp.eval for d in e.doc_ids}
    assert split(load("qasper"), 1).eval != split(load("qasper"), 0).eval
