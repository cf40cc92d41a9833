"""Retrieval quality on a dataset's eval split: recall@k and MRR against gold evidence."""

from __future__ import annotations

import time
from typing import Sequence

from ..records import Chunk, Dataset, Example
from ..splits import split
from . import get_retriever


def retrieval_eval(dataset: Dataset, k: int = 5, *, seed: int = 0, progress: bool = False, **settings) -> dict:
    """recall@k and MRR@k over eval questions that have evidence; a hit is a retrieved chunk cut from a gold passage."""

    retriever = get_retriever(dataset, progress=progress, **settings)
    questions = [ex for ex in split(dataset, seed).eval if ex.evidence]
    start = time.perf_counter()
    results = retriever.retrieve_many(questions, k)
    return {
        **score_retrieval(questions, results, k),
        "seconds": round(time.perf_counter() - start, 3),
        "index_seconds": round(retriever.build_seconds, 3),
        "index_cached": retriever.cached,
        "chunks": len(retriever.chunks),
    }


def score_retrieval(questions: Sequence[Example], results: Sequence[Sequence[Chunk]], k: int) -> dict:
    """recall@k and MRR@k of retrieved chunks against the gold evidence of the questions that have
    some (the others are not counted); a hit is a chunk cut from a gold passage."""
    hits, rr, n = 0, 0.0, 0
    for ex, chunks in zip(questions, results):
        if not ex.evidence:
            continue
        n += 1
        gold = set(ex.evidence)
        ranks = [i for i, c in enumerate(list(chunks)[:k], start=1) if c.passage_id in gold]
        if ranks:
            hits += 1
            rr += 1.0 / ranks[0]
    return {f"recall@{k}": hits / n if n else float("nan"), "mrr": rr / n if n else float("nan"), "questions": n}
