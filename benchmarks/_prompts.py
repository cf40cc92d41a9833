"""The 16 RAG prompts both benchmarks use: the first NQ eval questions with their retrieved passages."""

from __future__ import annotations

import os

from evalsuite import datasets, prompts, retrieval, splits


def rag_prompts(n: int = 16, dataset_name: str = "nq", k: int = 5):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    dataset = datasets.load(dataset_name)
    examples = list(splits.split(dataset).eval[:n])
    chunks = retrieval.get_retriever(dataset, progress=False).retrieve_many(examples, k)
    return examples, [prompts.rag_prompt(ex.question, ch) for ex, ch in zip(examples, chunks)]
