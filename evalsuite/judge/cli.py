"""``evalsuite judge``: score a JSON-lines file of answers, qualify a judge, or freeze its steps.

    evalsuite judge --judge reference --input answers.jsonl --json
    evalsuite judge --judge bundled:gemma3-270m --mode sample --repeats 10 --input answers.jsonl
    evalsuite judge --judge bundled:smollm2-135m-instruct --qualify
    evalsuite judge --judge bundled:smollm2-135m-instruct --write-steps

Input lines: question, references (list of str), context (list of str), answer,
optional id, optional label (good|partial|wrong) and question_id.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from evalsuite.errors import ConfigError


def add_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "judge", help="score answers on accuracy and completeness with a judge, or qualify a judge",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--judge", default="reference",
                        help="'reference' (token overlap, no model) or a model spec such as bundled:gemma3-270m")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--input", type=Path, help="JSON-lines file of items to judge")
    what.add_argument("--qualify", action="store_true", help="measure the judge on the calibration set")
    what.add_argument("--write-steps", action="store_true",
                      help="have the judge model write its evaluation steps once (frozen files)")
    parser.add_argument("--calibration", type=Path, default=None, help="calibration set for --qualify (default: shipped)")
    parser.add_argument("--mode", choices=("logprobs", "sample"), default="logprobs")
    parser.add_argument("--repeats", type=int, default=10, help="runs per item in sample mode")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature in sample mode")
    parser.add_argument("--engine", choices=("native", "deepeval"), default="native")
    parser.add_argument("--form", default=None, help="prompt form: geval-chat, fewshot, fewshot-chat")
    parser.add_argument("--steps-version", default="v1", help="frozen evaluation steps to use (or to write)")
    parser.add_argument("--max-new-tokens", type=int, default=4, help="tokens a sampled judge run may write")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the judge cache")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _finite_mean(values) -> float | None:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return sum(finite) / len(finite) if finite else None


def _num(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, 4)


def _options(args) -> dict:
    options = {}
    if args.judge == "reference":
        return options
    if args.form and args.engine == "native":
        options["form"] = args.form
    if args.engine == "native":
        options["max_new_tokens"] = args.max_new_tokens
    options["steps_version"] = args.steps_version
    return options


def judge_file(args, items, labels, question_ids) -> dict:
    from evalsuite.judge import make_judge, qualification_from
    from evalsuite.judge._qualify import CalibrationItem
    from evalsuite.metrics import spearman, token_f1

    judge = make_judge(args.judge, mode=args.mode, repeats=args.repeats, temperature=args.temperature,
                       engine=args.engine, cache=not args.no_cache, **_options(args))
    start = time.perf_counter()
    verdicts = judge.judge(items, progress=args.progress)
    seconds = time.perf_counter() - start
    f1 = [token_f1(item.answer, item.references) for item in items]
    stds = [(v.accuracy_std + v.completeness_std) / 2 for v in verdicts]
    summary = {
        "judge": judge.name,
        "items": len(verdicts),
        "unscored": sum(v.unscored for v in verdicts),
        "model_calls": judge.stats["model_calls"],
        "cache_hits": judge.stats["cache_hits"],
        "mean_accuracy": _num(_finite_mean(v.accuracy for v in verdicts)),
        "mean_completeness": _num(_finite_mean(v.completeness for v in verdicts)),
        "mean_repeat_std": _num(_finite_mean(stds)),
        "spearman_vs_f1": _num(spearman([v.overall for v in verdicts], f1)),
        "seconds": round(seconds, 2),
        "items_per_second": round(len(verdicts) / seconds, 3) if seconds > 0 else None,
        "logprobs_missing": sum(v.logprobs_missing for v in verdicts),
    }
    qualification = None
    if any(label is not None for label in labels):
        calibration = [CalibrationItem(item, label or "", qid, "") for item, label, qid in zip(items, labels, question_ids)]
        qualification = qualification_from(judge.name, verdicts, calibration)
        summary["good_over_wrong"] = _num(qualification.share_good_over_wrong)
        summary["good_over_partial"] = _num(qualification.share_good_over_partial)
        summary["pairs"] = qualification.pairs
        summary["qualified"] = qualification.qualified
        summary["bar"] = qualification.bar
    else:
        summary["qualified"] = None
    rows = [
        {"id": v.item_id, "accuracy": _num(v.accuracy), "completeness": _num(v.completeness),
         "accuracy_std": _num(v.accuracy_std), "completeness_std": _num(v.completeness_std),
         "unscored": v.unscored, "raw": list(v.raw), "mode": v.mode, "logprobs_missing": v.logprobs_missing}
        for v in verdicts
    ]
    return {"judge": judge.name, "config": {k: v for k, v in judge.config.items() if k != "model_options"},
            "steps_version": judge.steps_version, "items": rows, "summary": summary}


def _print_human(result: dict) -> None:
    s = result["summary"]
    print(f"judge: {s['judge']}  (steps {result['steps_version']})")
    for row in result["items"]:
        print(f"  {row['id']}: accuracy {row['accuracy']}  completeness {row['completeness']}"
              f"  (std {row['accuracy_std']}/{row['completeness_std']}, unscored {row['unscored']})")
    keys = ("items", "unscored", "model_calls", "cache_hits", "mean_accuracy", "mean_completeness",
            "mean_repeat_std", "spearman_vs_f1", "good_over_wrong", "qualified", "items_per_second")
    print("  ".join(f"{k}={s[k]}" for k in keys if k in s))
    if s.get("qualified") is False:
        print(f"not qualified: good beats wrong in {s['good_over_wrong']} of pairs (bar {s['bar']}); "
              "its scores are shown but must not gate a cell")


def run(args) -> int:
    from evalsuite.judge import generate_steps, load_calibration, load_items

    if args.repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {args.repeats}")
    if args.write_steps:
        if args.judge == "reference":
            raise ConfigError("the reference judge has no evaluation steps; pass --judge with a model spec")
        from evalsuite.judge import CRITERIA

        for criterion in CRITERIA:
            print(generate_steps(criterion, args.judge, version=args.steps_version))
        return 0
    if args.qualify:
        calibration = load_calibration(args.calibration)
        items = [c.item for c in calibration]
        labels = [c.label for c in calibration]
        question_ids = [c.question_id for c in calibration]
    else:
        loaded = load_items(args.input)
        items = [item for item, _ in loaded]
        labels = [label for _, label in loaded]
        question_ids = [item.question for item in items]
        raw_lines = [json.loads(line) for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
        question_ids = [str(d.get("question_id", q)) for d, q in zip(raw_lines, question_ids)]
    result = judge_file(args, items, labels, question_ids)
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        _print_human(result)
    return 0
