"""Greedy generation throughput of the bundled model, one prompt at a time vs batches of 16.

    python -m benchmarks.generation --json
"""
from __future__ import annotations

import argparse
import json
import time

from ._prompts import rag_prompts


def measure(model, prompts, settings) -> float:
    start = time.perf_counter()
    out = model.generate(prompts, settings)
    return sum(g.completion_tokens for g in out) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="bundled:smollm2-135m-instruct")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from evalsuite.models import GenerationSettings, load_model

    _, prompts = rag_prompts(16)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    one = load_model(args.model, cache=False, batch_size=1)  # cache off: every token is generated
    sixteen = load_model(args.model, cache=False, batch_size=16)
    one.generate(prompts[:1], GenerationSettings(max_new_tokens=2))  # warm-up
    result = {"tokens_per_second_batch1": measure(one, prompts, settings),
              "tokens_per_second_batch16": measure(sixteen, prompts, settings)}
    result["ratio"] = result["tokens_per_second_batch16"] / result["tokens_per_second_batch1"]
    result = {k: round(v, 2) for k, v in result.items()}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
