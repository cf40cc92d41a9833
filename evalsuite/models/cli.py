"""``evalsuite generate``: answer the first K eval questions of a dataset with retrieved context."""

from __future__ import annotations

import argparse
import json
import sys


def add_cli(subparsers) -> None:
    from . import DEFAULT_MODEL  # deferred: a command loads only the stages it runs

    p = subparsers.add_parser(
        "generate",
        help="answer eval questions with a model (RAG prompts)",
        description="Answer the first K eval-set questions of a dataset, with the retrieved passages in the prompt.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL})")
    p.add_argument("--dataset", required=True, help="qasper, nq or bioasq")
    p.add_argument("--dataset-path", default=None, help="dataset file or folder (default: the shipped sample)")
    p.add_argument("--limit", type=int, default=5, help="how many eval questions (default 5)")
    p.add_argument("--batch-size", type=int, default=None, help="prompts per batch for local models (default 8)")
    p.add_argument("--concurrency", type=int, default=None, help="parallel requests for openai: models (default 8)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="longest answer in tokens (default 128)")
    p.add_argument("--k", type=int, default=5, help="retrieved passages per question (default 5)")
    p.add_argument("--no-cache", action="store_true", help="generate again instead of reading the generation cache")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from evalsuite import datasets, prompts, retrieval, splits  # deferred: a command loads only the stages it runs
    from evalsuite.errors import ConfigError  # deferred: a command loads only the stages it runs

    from . import GenerationSettings, load_model, parse_spec  # deferred: a command loads only the stages it runs

    if args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    options: dict = {"cache": not args.no_cache}
    scheme = parse_spec(args.model).scheme
    if args.batch_size is not None and scheme in ("bundled", "hf"):
        options["batch_size"] = args.batch_size
    if args.concurrency is not None and scheme == "openai":
        options["concurrency"] = args.concurrency
    dataset = datasets.load(args.dataset, args.dataset_path)
    examples = list(splits.split(dataset).eval[: args.limit])
    retriever = retrieval.get_retriever(dataset, progress=not args.json)
    chunks = retriever.retrieve_many(examples, k=args.k)
    batch = [prompts.rag_prompt(ex.question, ch) for ex, ch in zip(examples, chunks)]
    model = load_model(args.model, **options)
    answers = model.generate(batch, GenerationSettings(max_new_tokens=args.max_new_tokens), progress=not args.json)
    rows = [
        {
            "id": ex.id,
            "question": ex.question,
            "answer": gen.text,
            "prompt_tokens": gen.prompt_tokens,
            "completion_tokens": gen.completion_tokens,
            "seconds": round(gen.seconds, 4),
        }
        for ex, gen in zip(examples, answers)
    ]
    if args.json:
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        for row in rows:
            print(f"[{row['id']}] {row['question']}\n  -> {row['answer'].strip()}\n")
        stats = model.stats
        print(
            f"{model.spec}: {stats['model_calls']} generated, {stats['cache_hits']} from cache, "
            f"{stats['prompt_tokens']} prompt + {stats['completion_tokens']} completion tokens"
        )
    return 0
