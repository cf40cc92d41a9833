"""How far a cheaper inference path moves the answers of the un-tuned model from fp32.

    python -m benchmarks.agreement --json                    # int8 vs fp32, default profile
    python -m benchmarks.agreement --dtype bf16 --profile smoke

For each dataset of the profile: the profile's eval questions with their retrieved passages
(the run's own RAG prompts), answered greedily by the profile's first model in fp32 and in
``--dtype``; the share of identical answers, and the mean difference (path - fp32) of the
token-overlap judge's accuracy and completeness and of token F1, with the paired standard
error. Answers are cached like any other (keyed by the precision), so a rerun is fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from pathlib import Path

from evalsuite.judge import JudgeItem, make_judge
from evalsuite.matrix import load_config, prepare_dataset
from evalsuite.metrics import reference_metrics
from evalsuite.models import GenerationSettings, load_model

ROOT = Path(__file__).resolve().parents[1]


def _paired(a: list[float], b: list[float]) -> dict:
    diffs = [y - x for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    if not diffs:
        return {"mean_difference": None, "standard_error": None, "n": 0}
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return {
        "mean_difference": round(statistics.fmean(diffs), 4),
        "standard_error": round(se, 4),
        "n": len(diffs),
        "fp32_mean": round(statistics.fmean(a), 4),
        "path_mean": round(statistics.fmean(b), 4),
    }


def compare(dataset: str, config, dtype: str) -> dict:

    ctx = prepare_dataset(dataset, config)
    spec = config.models[0].spec
    settings = GenerationSettings(max_new_tokens=config.max_new_tokens, seed=config.seed)
    answers = {}
    for name in ("fp32", dtype):
        answers[name] = [
            g.text for g in load_model(spec, dtype=name).generate(list(ctx.prompts), settings, progress=True)
        ]
    judge = make_judge("token-overlap")
    scores = {}
    for name, texts in answers.items():
        items = [
            JudgeItem(
                id=ex.id,
                question=ex.question,
                references=tuple(ex.references),
                context=tuple(c.text for c in cs),
                answer=t,
            )
            for ex, cs, t in zip(ctx.eval_items, ctx.chunks, texts)
        ]
        verdicts = judge.judge(items)
        scores[name] = {
            "accuracy": [v.accuracy for v in verdicts],
            "completeness": [v.completeness for v in verdicts],
            "f1": [reference_metrics(t, tuple(ex.references))["f1"] for ex, t in zip(ctx.eval_items, texts)],
        }
    same = sum(a == b for a, b in zip(answers["fp32"], answers[dtype]))
    return {
        "dataset": dataset,
        "questions": len(ctx.prompts),
        "identical": same,
        "identical_share": round(same / len(ctx.prompts), 3),
        **{k: _paired(scores["fp32"][k], scores[dtype][k]) for k in ("accuracy", "completeness", "f1")},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--dtype", default="int8", help="the path compared with fp32 (default int8)")
    parser.add_argument("--datasets", default=None, help="comma-separated subset of the profile's datasets")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    config = load_config(ROOT / "test_cases" / "matrix.toml", args.profile)
    names = args.datasets.split(",") if args.datasets else list(config.datasets)
    rows = [compare(name, config, args.dtype) for name in names]
    total = sum(r["questions"] for r in rows)
    out = {
        "profile": args.profile,
        "path": args.dtype,
        "datasets": rows,
        "identical_share": round(sum(r["identical"] for r in rows) / total, 3) if total else None,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for r in rows:
            print(
                f"{r['dataset']:8} identical {r['identical']}/{r['questions']}  "
                + "  ".join(
                    f"{k} {r[k]['mean_difference']:+.3f} (se {r[k]['standard_error']:.3f})"
                    for k in ("accuracy", "completeness", "f1")
                )
            )
        print(f"all      identical share {out['identical_share']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
