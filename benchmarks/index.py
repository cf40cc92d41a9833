"""What an index build costs, whole or as a quick run's subset, and what the subset changes.

    python -m benchmarks.index --json                      # the smoke profile's datasets
    python -m benchmarks.index --distractors 300 --precision int8

For each dataset: the subset a profile needs (``evalsuite.datasets.subset.subset_corpus``
over its eval questions and the pool pairs of its largest fine-tuning size, plus seeded
distractors), built on an empty temporary cache: passages, chunks, seconds, chunks/s. Then
how retrieval over the subset compares with the whole corpus for the eval questions: the
share with the same top-k chunks and recall@k against gold evidence on both (the whole
corpus's index is taken from the cache, built there if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from evalsuite import datasets, splits
from evalsuite.datasets.subset import subset_corpus
from evalsuite.matrix import load_config
from evalsuite.retrieval import Embedder, build_index

ROOT = Path(__file__).resolve().parents[1]


def _recall(results, questions) -> float | None:
    with_evidence = [(ex, chunks) for ex, chunks in zip(questions, results) if ex.evidence]
    if not with_evidence:
        return None
    return sum(any(c.passage_id in set(ex.evidence) for c in chunks) for ex, chunks in with_evidence) / len(
        with_evidence
    )


def measure(name: str, config, distractors: int, seed: int, precision: str) -> dict:

    dataset = datasets.load(name)
    split = splits.split(dataset, seed=config.seed)
    questions = list(split.eval[: config.eval_limit])
    pairs = list(split.pool[: max(config.sizes)])
    small = subset_corpus(dataset, questions + pairs, distractors=distractors, seed=seed)
    embedder = Embedder(precision=precision)
    cache = os.environ.get("EVALSUITE_CACHE")
    scratch = tempfile.mkdtemp(prefix="evalsuite-index-")
    os.environ["EVALSUITE_CACHE"] = scratch
    try:
        embedder.model  # loaded before the clock starts, as a run has it loaded for the questions
        start = time.perf_counter()
        part = build_index(small, embedder=embedder, progress=False)
        seconds = time.perf_counter() - start
    finally:
        if cache is None:
            os.environ.pop("EVALSUITE_CACHE")
        else:
            os.environ["EVALSUITE_CACHE"] = cache
    whole = build_index(dataset, embedder=embedder, progress=True)
    shutil.rmtree(scratch, ignore_errors=True)
    k = config.top_k
    on_part = part.retrieve_many(questions, k)
    on_whole = whole.retrieve_many(questions, k)
    same = sum([c.id for c in a] == [c.id for c in b] for a, b in zip(on_part, on_whole))
    return {
        "dataset": name,
        "scope": dataset.retrieval_scope,
        "questions": len(questions),
        "pool_pairs": len(pairs),
        "passages": len(small.passages),
        "passages_whole": len(dataset.passages),
        "chunks": len(part.chunks),
        "chunks_whole": len(whole.chunks),
        "seconds": round(seconds, 1),
        "chunks_per_s": round(len(part.chunks) / seconds, 1),
        "same_top_k": same,
        f"recall@{k}_subset": _recall(on_part, questions),
        f"recall@{k}_whole": _recall(on_whole, questions),
        "embedder": embedder.identity,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision", default="auto", help="embedder precision: auto (this machine's path), int8, bf16, fp32"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    config = load_config(ROOT / "test_cases" / "matrix.toml", args.profile)
    rows = [measure(name, config, args.distractors, args.seed, args.precision) for name in config.datasets]
    out = {
        "profile": args.profile,
        "distractors": args.distractors,
        "seed": args.seed,
        "datasets": rows,
        "subset_seconds": round(sum(r["seconds"] for r in rows), 1),
    }
    print(
        json.dumps(out, indent=2)
        if args.json
        else "\n".join(
            f"{r['dataset']:8} {r['passages']:>6} of {r['passages_whole']} passages, {r['chunks']:>6} chunks in "
            f"{r['seconds']:>6.1f} s; "
            f"same top-{config.top_k} as the whole corpus for {r['same_top_k']}/{r['questions']} questions"
            for r in rows
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
