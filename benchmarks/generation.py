"""Greedy generation throughput of the bundled model: one prompt at a time vs batches of 16,
on the path a run takes on this machine, and that path against fp32.

    python -m benchmarks.generation --json

The path is what ``dtype="auto"`` picks (``evalsuite.models.inference_precision``): fp32 on a
CPU with native bf16, int8 on a CPU without (never emulated bf16); ``--dtype`` measures
another. Batching speeds up decoding, not the prompt's forward pass, so the ratio depends on
the prompt length: the default, RAG prompts with the top 2 passages (about 250 tokens) and
64 new tokens, is the setting of the figures in the design notes; ``--k 5`` gives the
evaluation's own prompts (about 520 tokens), where the prompt pass takes most of the time.
``prompt_tokens_per_second`` is the prompt pass alone (batches of 16, one new token).
"""

from __future__ import annotations

import argparse
import json
import time

from evalsuite import throughput as _throughput
from evalsuite.models import GenerationSettings, inference_precision, load_model

from ._prompts import rag_prompts


def measure(model, prompts, settings) -> tuple[float, float]:
    """(completion tokens per second, mean prompt tokens)."""
    start = time.perf_counter()
    out = model.generate(prompts, settings)
    return sum(g.completion_tokens for g in out) / (time.perf_counter() - start), sum(
        g.prompt_tokens for g in out
    ) / len(out)


def prompt_speed(model, prompts) -> float:

    start = time.perf_counter()
    out = model.generate(prompts, GenerationSettings(max_new_tokens=1))
    return sum(g.prompt_tokens for g in out) / (time.perf_counter() - start)


def path_figures(spec: str, dtype: str, prompts, settings) -> dict:

    one = load_model(spec, cache=False, batch_size=1, dtype=dtype)  # cache off: every token is generated
    sixteen = load_model(spec, cache=False, batch_size=16, dtype=dtype)
    for model in (one, sixteen):  # warm-up: each backend's first call builds its own state (not timed)
        model.generate(prompts[:2], GenerationSettings(max_new_tokens=2))
    batch1, prompt_tokens = measure(one, prompts, settings)
    batch16, _ = measure(sixteen, prompts, settings)
    return {
        "batch1": batch1,
        "batch16": batch16,
        "prompt": prompt_speed(sixteen, prompts),
        "prompt_tokens": prompt_tokens,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bundled:smollm2-135m-instruct")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--k", type=int, default=2, help="retrieved passages per prompt")
    parser.add_argument(
        "--dtype",
        default="auto",
        help="auto (the path a run takes here: fp32 with native bf16, else int8), int8, fp32 or bf16",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    path = inference_precision("cpu", args.dtype)
    _, prompts = rag_prompts(16, k=args.k)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    chosen = path_figures(args.model, path, prompts, settings)
    fp32 = chosen if path == "fp32" else path_figures(args.model, "fp32", prompts, settings)
    result = {
        "path": path,
        "tokens_per_second_batch1": chosen["batch1"],
        "tokens_per_second_batch16": chosen["batch16"],
        "ratio": chosen["batch16"] / chosen["batch1"],
        "prompt_tokens_per_second": chosen["prompt"],
        "fp32_tokens_per_second_batch1": fp32["batch1"],
        "fp32_tokens_per_second_batch16": fp32["batch16"],
        "fp32_prompt_tokens_per_second": fp32["prompt"],
        "ratio_to_fp32_batch1": chosen["batch1"] / fp32["batch1"],
        "ratio_to_fp32_batch16": chosen["batch16"] / fp32["batch16"],
        "prompt_tokens_mean": chosen["prompt_tokens"],
        "max_new_tokens": args.max_new_tokens,
    }
    result = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
    for name, figures in ((path, chosen), ("fp32", fp32)):
        _throughput.save(
            f"generate/{name}",
            {
                "prompt_tokens_per_s": figures["prompt"],
                "generated_tokens_per_s_batch1": figures["batch1"],
                "generated_tokens_per_s_batch16": figures["batch16"],
                "prompt_tokens_mean": figures["prompt_tokens"],
                "model": args.model,
            },
        )
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
