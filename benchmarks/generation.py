"""Greedy generation throughput of the bundled model, one prompt at a time vs batches of 16.

    python -m benchmarks.generation --json

Batching speeds up decoding, not the prompt's forward pass, so the ratio depends on the
prompt length: the default, RAG prompts with the top 2 passages (about 250 tokens) and 64
new tokens, is the setting of the figures in the design notes; ``--k 5`` gives the
evaluation's own prompts (about 520 tokens), where the prompt pass takes most of the time.
"""
from __future__ import annotations

import argparse
import json
import time

from ._prompts import rag_prompts


def measure(model, prompts, settings) -> tuple[float, float]:
    """(completion tokens per second, mean prompt tokens)."""
    start = time.perf_counter()
    out = model.generate(prompts, settings)
    return sum(g.completion_tokens for g in out) / (time.perf_counter() - start), sum(g.prompt_tokens for g in out) / len(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="bundled:smollm2-135m-instruct")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--k", type=int, default=2, help="retrieved passages per prompt")
    parser.add_argument("--dtype", default="bf16", help="bf16 (default: the fast path batching is measured on), fp32, or auto (fp32 on the CPU)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from evalsuite.models import GenerationSettings, load_model

    _, prompts = rag_prompts(16, k=args.k)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    one = load_model(args.model, cache=False, batch_size=1, dtype=args.dtype)  # cache off: every token is generated
    sixteen = load_model(args.model, cache=False, batch_size=16, dtype=args.dtype)
    one.generate(prompts[:1], GenerationSettings(max_new_tokens=2))  # warm-up
    batch1, prompt_tokens = measure(one, prompts, settings)
    batch16, _ = measure(sixteen, prompts, settings)
    result = {"tokens_per_second_batch1": batch1, "tokens_per_second_batch16": batch16, "ratio": batch16 / batch1,
              "prompt_tokens_mean": prompt_tokens, "max_new_tokens": args.max_new_tokens}
    result = {k: round(v, 2) for k, v in result.items()}
    result["dtype"] = args.dtype
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
