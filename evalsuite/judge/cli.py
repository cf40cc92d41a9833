"""``evalsuite judge``: score a JSON-lines file of answers, qualify a judge against people, or freeze its steps.

    evalsuite judge --judge reference --input answers.jsonl --json
    evalsuite judge --judge learned-correctness --qualify
    evalsuite judge --judge bundled:gemma3-270m --qualify --limit 300
    evalsuite judge --judge openai:gpt-4o --qualify --limit 300 --json
    evalsuite judge --judge bundled:gemma3-270m --mode sample --repeats 10 --input answers.jsonl
    evalsuite judge --judge bundled:smollm2-135m-instruct --write-steps

Input lines: question, references (list of str), context (list of str), answer, optional id,
optional label (good|partial|wrong) and question_id. --qualify scores the human-labelled answers
of the data root's judge_human/kamalloo_nq301.jsonl, the long-form check built from the
fine-tune pools and the qualify rows of the graded long answers of
judge_longform/liveqa_med.jsonl, and prints the agreement tables with the published evaluators
alongside and the rule's verdict per criterion on datasets of short and of long gold answers.
--dry-run prices a qualification (calls, tokens, seconds, cost) without scoring anything.
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
        "judge",
        help="score answers on accuracy and completeness with a judge, or qualify a judge against people",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--judge",
        default="token-overlap",
        help="reference, learned-correctness, learned-claims, a model spec (bundled:gemma3-270m, openai:gpt-4o) "
        "or deepeval:<model spec>",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--input", type=Path, help="JSON-lines file of items to judge")
    what.add_argument(
        "--qualify",
        action="store_true",
        help="measure the judge against human labels and on the long-form check, and say whether it gates",
    )
    what.add_argument(
        "--write-steps", action="store_true", help="have the judge model write its evaluation steps once (frozen files)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="--qualify: score a deterministic subset of about N answers of each set, whole questions "
        "(API judges); the graded long answers take N of their qualify rows, by question",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="--qualify: split seed of the pools the long-form check uses"
    )
    parser.add_argument("--mode", choices=("logprobs", "sample"), default="logprobs")
    parser.add_argument("--repeats", type=int, default=10, help="runs per item in sample mode")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature in sample mode")
    parser.add_argument(
        "--engine",
        choices=("native", "deepeval"),
        default="native",
        help="deepeval: deepeval's GEval on the model (the same as --judge deepeval:<model spec>)",
    )
    parser.add_argument("--form", default=None, help="prompt form: geval-chat, compact, fewshot, fewshot-chat")
    parser.add_argument("--steps-version", default="v1", help="frozen evaluation steps to use (or to write)")
    parser.add_argument("--max-new-tokens", type=int, default=4, help="tokens a sampled judge run may write")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="--qualify: print what the qualification would cost (model calls, tokens, seconds, cost) "
        "and score nothing",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="MATRIX_TOML",
        help="--dry-run: the [prices] table of this matrix file costs the judge model's tokens",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="do not read or write the judge and qualification caches"
    )
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _num(value, digits: int = 4):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(value, digits) if isinstance(value, float) else value


def _finite_mean(values) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _is_model_spec(spec: str) -> bool:
    return ":" in spec


def make_from_args(args):
    from evalsuite.judge import make_judge  # deferred: a command loads only the stages it runs

    options = {"mode": args.mode, "repeats": args.repeats, "temperature": args.temperature, "cache": not args.no_cache}
    if _is_model_spec(args.judge) or args.engine == "deepeval":
        options["steps_version"] = args.steps_version
        deepeval = args.engine == "deepeval" or args.judge.startswith("deepeval:")
        if not deepeval:
            options["max_new_tokens"] = args.max_new_tokens
            if args.form:
                options["form"] = args.form
    return make_judge(args.judge, engine=args.engine, **options)


# --------------------------------------------------------------------------- --input


def _pair_shares(verdicts, labels, question_ids) -> dict:
    groups: dict[str, dict[str, float]] = {}
    for verdict, label, qid in zip(verdicts, labels, question_ids):
        if label is not None:
            groups.setdefault(qid, {})[label] = verdict.overall
    out = {}
    for better, worse in (("good", "wrong"), ("good", "partial")):
        wins = [g[better] > g[worse] for g in groups.values() if better in g and worse in g]  # nan never wins
        out[f"{better}_over_{worse}"] = _num(sum(wins) / len(wins)) if wins else None
        out[f"{better}_{worse}_pairs"] = len(wins)
    return out


def judge_file(args, items, labels, question_ids) -> dict:
    from evalsuite.metrics import spearman, token_f1  # deferred: a command loads only the stages it runs

    judge = make_from_args(args)
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
    if any(label is not None for label in labels):
        summary.update(_pair_shares(verdicts, labels, question_ids))
    rows = [
        {
            "id": v.item_id,
            "accuracy": _num(v.accuracy),
            "completeness": _num(v.completeness),
            "accuracy_std": _num(v.accuracy_std),
            "completeness_std": _num(v.completeness_std),
            "unscored": v.unscored,
            "raw": list(v.raw),
            "mode": v.mode,
            "logprobs_missing": v.logprobs_missing,
        }
        for v in verdicts
    ]
    return {
        "judge": judge.name,
        "config": {k: v for k, v in judge.config.items() if k != "model_options"},
        "steps_version": judge.steps_version,
        "items": rows,
        "summary": summary,
    }


def _print_items(result: dict) -> None:
    s = result["summary"]
    print(f"judge: {s['judge']}  (steps {result['steps_version']})")
    for row in result["items"]:
        print(
            f"  {row['id']}: accuracy {row['accuracy']}  completeness {row['completeness']}"
            f"  (std {row['accuracy_std']}/{row['completeness_std']}, unscored {row['unscored']})"
        )
    keys = (
        "items",
        "unscored",
        "model_calls",
        "cache_hits",
        "mean_accuracy",
        "mean_completeness",
        "mean_repeat_std",
        "spearman_vs_f1",
        "good_over_wrong",
        "good_over_partial",
        "items_per_second",
    )
    print("  ".join(f"{k}={s[k]}" for k in keys if k in s))
    print("whether this judge may gate: evalsuite judge --judge SPEC --qualify")


# --------------------------------------------------------------------------- --qualify


def _f(x, digits: int = 3) -> str:
    return "   -  " if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def qualification_table(q) -> str:
    """The human-agreement table of one qualification, with the published evaluators alongside."""
    d = q.data
    lines = [
        f"judge: {q.judge}",
        f"human labels: {d.human_file} (sha256 {d.human_sha256[:16]}...): {d.items_scored} answers to {d.questions} "
        f"questions, {d.items_long} of {q.rule.long_words}+ words"
        + (f" -- a SUBSET of {d.items_total} (--limit {d.limit}: {d.subset_rule})" if d.subset else ""),
        f"decision threshold: {d.threshold_method}",
        "",
        f"{'':26}{'ROC AUC':>14}{'kappa':>14}{'accuracy':>14}   within-question (pairs)",
        f"{'':26}{'all':>7}{'5+w':>7}{'all':>7}{'5+w':>7}{'all':>7}{'5+w':>7}   {'all':>13} {'5+w':>13}",
    ]
    for c in q.criteria:
        lines.append(
            f"{'this judge: ' + c.criterion:26}{_f(c.auc):>7}{_f(c.auc_long):>7}{_f(c.kappa):>7}"
            f"{_f(c.kappa_long):>7}{_f(c.accuracy):>7}{_f(c.accuracy_long):>7}   "
            f"{_f(c.within_question):>6} ({c.within_question_pairs:>4}) "
            f"{_f(c.within_question_long):>6} ({c.within_question_long_pairs:>4})"
        )
    lines.append("published evaluators on the same answers (their 0/1 decisions; Kamalloo et al. 2023):")
    for a in q.anchors:
        auc = f"{a.balanced_accuracy:.3f}b" if math.isfinite(a.balanced_accuracy) else "  -  "
        name = a.label.split(" (")[0]
        lines.append(
            f"  {name[:24]:24}{auc:>7}{'':>7}{_f(a.kappa):>7}{_f(a.kappa_long):>7}{_f(a.accuracy):>7}"
            f"{_f(a.accuracy_long):>7}   n={a.n}, {a.n_long} of 5+ words"
        )
    lines.append(
        "  (b = balanced accuracy of the published binary decisions, the ROC AUC of a 0/1 score; "
        "computed from the file)"
    )
    lf = q.longform
    shares = "; ".join(f"{s.score} {_f(s.good_over_wrong, 2)}" for s in lf.shares)
    partial = "; ".join(f"{s.score} {_f(s.good_over_partial, 2)}" for s in lf.shares)
    lines += [
        "",
        f"long-form check (fine-tune pool questions, seed {d.seed}; {d.longform_items} answers): "
        f"good > wrong in {lf.pairs_good_wrong} questions: {shares}",
        f"  good > partial in {lf.pairs_good_partial} questions: {partial}",
        f"speed: {_f(q.items_per_second, 1)} answers/s (as measured; the machine may have been shared)",
        "",
        f"qualified: {'yes' if q.qualified else 'no'}; gating criteria: {', '.join(q.gating_criteria) or 'none'}",
        f"rule: {q.rule.text()}",
    ]
    lines += [f"- {r}" for r in q.reasons]
    lines += ["", *graded_table(q)]
    return "\n".join(lines)


def _ci(x, low, high) -> str:
    return f"{_f(x)} [{_f(low)}, {_f(high)}]"


def graded_table(q) -> list[str]:
    """The graded long-answer figures of one qualification, with intervals, and the rule's verdict per
    criterion on datasets of short and of long gold answers."""
    from evalsuite.judge import gating_decision  # deferred: a command loads only the stages it runs

    g = q.graded
    if g is None:
        return ["graded long answers: not measured (a qualification stored before they were part of it)"]
    lines = [
        f"graded long answers: {g.file} (sha256 {g.sha256[:16]}...), {g.split} split: {g.answers} answers to "
        f"{g.questions} questions, {g.correct} correct (grade >= 3), {g.excellent} excellent (grade 4)"
        + (f" -- a SUBSET of {g.answers_total} (--limit {g.limit}: {g.subset_rule})" if g.subset else ""),
        f"95% intervals: {g.bootstrap} bootstrap resamples of the questions (seed {g.seed})",
        "",
        f"{'':26}{'ROC AUC [95% interval]':>26}{'answers':>9}{'Spearman with grade':>28}{'bar':>6}",
    ]
    for c in g.criteria:
        what = "correct vs not" if c.criterion == "accuracy" else "excellent vs incomplete"
        lines.append(
            f"{'this judge: ' + c.criterion:26}{_ci(c.auc, c.auc_low, c.auc_high):>26}{c.auc_answers:>9}"
            f"{_ci(c.spearman, c.spearman_low, c.spearman_high):>28}{q.rule.graded_bar(c.criterion):>6.2f}"
            f"  ({what}; {c.unscored} unscored)"
        )
    lines += ["", "the rule's verdict per criterion and dataset:"]
    for long, words in (
        (False, f"short gold answers (median under {q.rule.long_gold_words} words)"),
        (True, f"long gold answers (median {q.rule.long_gold_words}+ words: Qasper, BioASQ)"),
    ):
        decision = gating_decision(q, long_answers=long)
        lines.append(f"  {words}: gating criteria: {', '.join(decision.criteria) or 'none'}")
        lines += [f"    - {why}" for _, why in decision.reasons]
    return lines


def dry_run(args) -> int:
    """Price a qualification: one row per set the judge would score, and the total."""
    from dataclasses import asdict

    from evalsuite.matrix import qualification_costs, read_prices  # the pricing of a run's plan, reused

    judge = make_from_args(args)
    prices = read_prices(args.prices) if args.prices else {}
    rows = qualification_costs(judge, seed=args.seed, limit=args.limit, prices=prices)
    seconds = [r.seconds for r in rows]
    costs = [r.cost for r in rows if r.cost is not None]
    total = {
        "calls": sum(r.calls for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "seconds": None if any(x is None for x in seconds) else round(sum(seconds), 1),
        "cost": sum(costs) if costs else None,
    }
    if args.json:
        json.dump(
            {
                "judge": judge.name,
                "limit": args.limit,
                "seed": args.seed,
                "parts": [asdict(r) for r in rows],
                "total": total,
            },
            sys.stdout,
            ensure_ascii=False,
            indent=1,
        )
        sys.stdout.write("\n")
        return 0
    print(
        f"dry run: qualifying {judge.name}" + (f" (--limit {args.limit})" if args.limit else "") + "; nothing is scored"
    )
    print(f"{'set':58}{'answers':>8}{'calls':>8}{'prompt tok':>12}{'answer tok':>11}{'seconds':>9}{'cost':>9}")
    for r in rows:
        what = r.model.split(": ", 1)[-1]
        answers = r.token_method.rsplit("; ", 1)[-1].split()[0]
        print(
            f"{what[:57]:58}{answers:>8}{r.calls:>8}{r.prompt_tokens:>12}{r.completion_tokens:>11}"
            f"{'-' if r.seconds is None else f'{r.seconds:.0f}':>9}{'-' if r.cost is None else f'{r.cost:.2f}':>9}"
        )
        print(f"  seconds: {r.source}; tokens: {r.token_method}")
    total_seconds = "-" if total["seconds"] is None else f"{total['seconds']:.0f}"
    total_cost = "-" if total["cost"] is None else f"{total['cost']:.2f}"
    print(
        f"{'total':58}{'':>8}{total['calls']:>8}{total['prompt_tokens']:>12}{total['completion_tokens']:>11}"
        f"{total_seconds:>9}{total_cost:>9}"
    )
    if not prices and judge.config.get("factory") not in ("token-overlap", "learned-correctness", "learned-claims"):
        print("cost: no [prices] given (pass --prices MATRIX_TOML with a [prices] line for the judge model)")
    return 0


def run(args) -> int:
    from evalsuite.judge import generate_steps, load_items, qualify  # deferred: a command loads only the stages it runs

    if args.repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {args.repeats}")
    if args.limit is not None and not args.qualify:
        raise ConfigError("--limit applies to --qualify only; drop it or add --qualify")
    if args.write_steps:
        if not _is_model_spec(args.judge):
            raise ConfigError(f"the {args.judge} judge has no evaluation steps; pass --judge with a model spec")
        from evalsuite.judge import CRITERIA  # deferred: a command loads only the stages it runs

        for criterion in CRITERIA:
            print(generate_steps(criterion, args.judge, version=args.steps_version))
        return 0
    if (args.dry_run or args.prices) and not args.qualify:
        raise ConfigError("--dry-run and --prices apply to --qualify only; add --qualify")
    if args.prices and not args.dry_run:
        raise ConfigError("--prices applies to --dry-run only; add --dry-run")
    if args.qualify and args.dry_run:
        return dry_run(args)
    if args.qualify:
        judge = make_from_args(args)
        q = qualify(judge, seed=args.seed, limit=args.limit, progress=args.progress, cache=not args.no_cache)
        if args.json:
            json.dump(q.as_json(), sys.stdout, ensure_ascii=False, indent=1)
            sys.stdout.write("\n")
        else:
            print(qualification_table(q))
        return 0
    loaded = load_items(args.input)
    result = judge_file(args, [i for i, _, _ in loaded], [lab for _, lab, _ in loaded], [q for _, _, q in loaded])
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        _print_items(result)
    return 0
