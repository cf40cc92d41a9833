"""``evalsuite finetune``: train (or fetch from the store) a LoRA adapter on a dataset's fine-tune pool."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ._config import FinetuneConfig


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="train a LoRA adapter on the first N fine-tune pool pairs",
        description="Train a LoRA adapter on the first N pairs of a dataset's fine-tune pool "
        "(RAG prompts as at evaluation, gold answer as completion). The same request is served from the store.",
    )
    p.add_argument("--model", default="bundled:smollm2-135m-instruct", help="base model spec (bundled: or hf:)")
    p.add_argument("--dataset", required=True, help="qasper, nq or bioasq")
    p.add_argument("--dataset-path", default=None, help="dataset file or folder (default: the sample in the data root)")
    p.add_argument("--size", type=int, required=True, help="how many pool pairs to train on")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the pool/eval split (the matrix's seed)")
    p.add_argument("--top-k", type=int, default=5, help="retrieved chunks per training prompt (the matrix's top_k)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = p.add_argument_group("hyperparameters (defaults from FinetuneConfig)")
    for f in dataclasses.fields(FinetuneConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default {f.default!r})"
        if f.name == "target_modules":
            group.add_argument(flag, default=None, help=help_text + "; comma-separated")
        else:
            group.add_argument(flag, type=type(f.default), default=None, help=help_text)
    p.set_defaults(func=run_finetune)


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    values = {}
    for f in dataclasses.fields(FinetuneConfig):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if f.name == "target_modules":
            value = tuple(m.strip() for m in value.split(",") if m.strip())
        values[f.name] = value
    return FinetuneConfig.from_dict(values)


def run_finetune(args: argparse.Namespace) -> int:
    from . import train_adapter  # deferred: a command loads only the stages it runs

    config = config_from_args(args)
    progress = not (args.no_progress or args.json)
    result = train_adapter(
        args.model,
        args.dataset,
        args.size,
        config,
        dataset_path=args.dataset_path,
        seed=args.split_seed,
        top_k=args.top_k,
        progress=progress,
    )
    row = {
        "adapter_path": result.path,
        "key": result.key,
        "cached": result.cached,
        "train_loss_first": result.train_loss_first,
        "train_loss_last": result.train_loss_last,
        "seconds": round(result.seconds, 3),
        "tokens_per_second": round(result.tokens_per_second, 2),
    }
    if args.json:
        json.dump(row, sys.stdout, indent=2)
        print()
    else:
        state = "from the store" if result.cached else "trained"
        print(f"adapter {state}: {result.path}")
        print(
            f"loss {result.train_loss_first:.3f} -> {result.train_loss_last:.3f}, "
            f"{result.tokens_per_second:.0f} tokens/s, effective batch {result.manifest.get('effective_batch_size')}"
        )
        print(f"use it as: {args.model}+lora:{result.path}")
    return 0
