"""Judges against people: ROC AUC, Cohen's kappa, accuracy and the within-question share, on all
answers and on those of 5+ words, the long-form shares and answers/s, with the published
evaluators alongside; on the graded long answers (judge_longform/liveqa_med.jsonl), ROC AUC and
Spearman with the grade per criterion, each with its question-bootstrap 95% interval, on the
qualify split (what qualifies) and, for information, on the fit split (judges without a model by
default; --fit-split for all, --no-fit-split for none); a judge fitted on the fit rows
(learned-claims) shows instead the question-grouped cross-validated figures of its fit there
(``graded_fit_cv``), its in-sample figures only with --fit-split. Each judge is measured afresh (no qualification,
verdict or vector cache) unless --cached, so answers/s (human-labelled answers; graded long answers
apart) is this machine's speed now.

    python -m benchmarks.judge_agreement --json
    python -m benchmarks.judge_agreement --judge bundled:gemma3-270m --limit 300
    python -m benchmarks.judge_agreement --judge bundled:smollm2-135m-instruct --judge bundled:gemma3-270m \\
        --limit 300 --record     # keep their qualification in evalsuite/judge/measured/bundled_geval.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys

from evalsuite.errors import EvalsuiteError
from evalsuite.judge import (
    FIT_SPLIT,
    gating_criteria,
    make_judge,
    measure_graded,
    qualify,
    record_measured,
    record_measured_graded,
)

DEFAULT_JUDGES = ("token-overlap", "learned-correctness", "learned-claims")


def _r(x, digits=3):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(x, digits)


def row(q) -> dict:
    """One judge's figures, flat."""
    out = {
        "judge": q.judge,
        "qualified": q.qualified,
        "gating_criteria": list(q.gating_criteria),
        "items": q.data.items_scored,
        "items_long": q.data.items_long,
        "subset": q.data.subset,
        "items_per_second": _r(q.items_per_second, 1),
        "graded_items_per_second": _r(q.graded_items_per_second, 1),
    }
    for c in q.criteria:
        out[c.criterion] = {
            "auc": _r(c.auc),
            "auc_5_words": _r(c.auc_long),
            "kappa": _r(c.kappa),
            "kappa_5_words": _r(c.kappa_long),
            "accuracy": _r(c.accuracy),
            "accuracy_5_words": _r(c.accuracy_long),
            "within_question": _r(c.within_question),
            "within_question_pairs": c.within_question_pairs,
            "within_question_5_words": _r(c.within_question_long),
            "within_question_5_words_pairs": c.within_question_long_pairs,
        }
    out["longform"] = {
        s.score: {"good_over_wrong": _r(s.good_over_wrong), "good_over_partial": _r(s.good_over_partial)}
        for s in q.longform.shares
    }
    out["longform"]["pairs_good_wrong"] = q.longform.pairs_good_wrong
    out["longform"]["pairs_good_partial"] = q.longform.pairs_good_partial
    out["graded"] = graded_row(q.graded) if q.graded is not None else None
    out["long_answer_gating_criteria"] = list(gating_criteria(q, long_answers=True))
    out["reasons"] = list(q.reasons)
    return out


def graded_row(g) -> dict:
    """Figures on the graded long answers of one split, each with its 95% question-bootstrap interval."""
    out = {
        "split": g.split,
        "answers": g.answers,
        "questions": g.questions,
        "correct": g.correct,
        "excellent": g.excellent,
        "subset": g.subset,
        "bootstrap": g.bootstrap,
        "seed": g.seed,
    }
    for c in g.criteria:
        out[c.criterion] = {
            "auc": _r(c.auc),
            "auc_ci": [_r(c.auc_low), _r(c.auc_high)],
            "auc_answers": c.auc_answers,
            "auc_positives": c.auc_positives,
            "auc_questions": c.auc_questions,
            "spearman": _r(c.spearman),
            "spearman_ci": [_r(c.spearman_low), _r(c.spearman_high)],
            "unscored": c.unscored,
        }
    return out


def cv_row(cv: dict) -> dict:
    """A fitted judge's question-grouped cross-validated figures on the graded fit split, shaped as ``graded_row``."""
    out = {"split": "fit", "label": f"fit split, {cv['folds']}-fold cross-validated by question", "by": cv["by"]}
    for criterion in ("accuracy", "completeness"):
        c = cv[criterion]
        out[criterion] = {
            "auc": _r(c["auc"]),
            "auc_ci": [_r(x) for x in c["auc_ci95"]],
            "auc_answers": c["answers"],
            "auc_questions": c["questions"],
            "spearman": _r(c["spearman"]),
            "spearman_ci": [_r(x) for x in c["spearman_ci95"]],
        }
    return out


def anchors(q) -> list[dict]:
    return [
        {
            "evaluator": a.label,
            "balanced_accuracy": _r(a.balanced_accuracy),
            "balanced_accuracy_5_words": _r(a.balanced_accuracy_long),
            "accuracy": _r(a.accuracy),
            "kappa": _r(a.kappa),
            "n": a.n,
            "accuracy_5_words": _r(a.accuracy_long),
            "kappa_5_words": _r(a.kappa_long),
            "n_5_words": a.n_long,
            "source": a.source,
        }
        for a in q.anchors
    ]


def table(rows: list[dict], anchor_rows: list[dict]) -> str:
    def f(x):
        return "     - " if x is None else f"{x:7.3f}"

    head = (
        f"{'judge / criterion':44}{'AUC':>7}{'5+w':>7}{'kappa':>7}{'5+w':>7}{'acc':>7}{'5+w':>7}"
        f"{'within':>8}{'5+w':>7}{'LF g>w':>8}{'g>p':>7}{'ans/s':>8}"
    )
    lines = [head]
    for r in rows:
        for criterion in ("accuracy", "completeness"):
            c = r[criterion]
            lf = r["longform"][criterion]
            lines.append(
                f"{(r['judge'] + ' / ' + criterion)[:43]:44}{f(c['auc'])}{f(c['auc_5_words'])}{f(c['kappa'])}"
                f"{f(c['kappa_5_words'])}{f(c['accuracy'])}{f(c['accuracy_5_words'])}"
                f"{f(c['within_question']):>8}{f(c['within_question_5_words'])}"
                f"{f(lf['good_over_wrong']):>8}{f(lf['good_over_partial'])}{r['items_per_second'] or 0:8.1f}"
            )
            # judge names are long: the criterion always shows
            lines[-1] = f"{(r['judge'][:32] + ' / ' + criterion):44}" + lines[-1][44:]
        for split in ("graded", "graded_fit", "graded_fit_cv"):
            g = r.get(split)
            if not g:
                continue
            for criterion in ("accuracy", "completeness"):
                c = g[criterion]
                lines.append(
                    f"{'':4}graded long answers, {g.get('label') or g['split'] + ' split'}, {criterion}: AUC "
                    f"{f(c['auc'])} "
                    f"[{f(c['auc_ci'][0]).strip()}, {f(c['auc_ci'][1]).strip()}] ({c['auc_answers']} answers), "
                    f"Spearman with grade {f(c['spearman'])} [{f(c['spearman_ci'][0]).strip()}, "
                    f"{f(c['spearman_ci'][1]).strip()}]"
                )
        if r.get("graded_items_per_second") is not None:
            lines.append(f"{'':4}graded long answers scored at {r['graded_items_per_second']:.1f} answers/s")
        if r.get("graded"):
            lines.append(
                f"{'':4}on long-answer datasets: {', '.join(r['long_answer_gating_criteria']) or 'no criterion'} gates"
            )
        overall = r["longform"]["overall"]
        lines.append(
            f"{'':4}long-form overall good>wrong {f(overall['good_over_wrong'])} over "
            f"{r['longform']['pairs_good_wrong']} questions; qualified: {'yes' if r['qualified'] else 'no'}"
            f" ({', '.join(r['gating_criteria']) or 'no criterion'} gates)"
            + (f"; SUBSET of {r['items']} answers" if r["subset"] else "")
        )
    lines.append("published evaluators on the same answers:")
    for a in anchor_rows:
        auc = f"{a['balanced_accuracy']:.3f} (balanced accuracy)" if a["balanced_accuracy"] is not None else "-"
        lines.append(
            f"  {a['evaluator'][:42]:42} AUC {auc:14} kappa {f(a['kappa'])} / {f(a['kappa_5_words'])} (5+w)"
            f"  acc {f(a['accuracy'])} / {f(a['accuracy_5_words'])} (5+w)  n={a['n']}"
        )
    return "\n".join(lines)


def _command(argv) -> str:
    threads = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS",) if k in os.environ)
    return (
        (f"{threads} " if threads else "")
        + "python -m benchmarks.judge_agreement "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    )


def record_graded(specs, args, argv) -> int:
    """Measure only the graded long answers (qualify split) of model judges and add them to their recorded entry."""
    import time

    out = []
    try:
        for spec in specs:
            if ":" not in spec:
                raise EvalsuiteError(f"--record-graded is for model judges (a spec with ':'), not {spec!r}")
            judge = make_judge(spec, mode=args.mode, repeats=1, cache=args.cached)
            start = time.perf_counter()
            g = measure_graded(judge, limit=args.limit, progress=args.progress)
            seconds = time.perf_counter() - start
            record_measured_graded(
                spec,
                g.as_json(),
                _command(argv),
                note=f"{g.answers} answers in {seconds:.0f} s on a 2-core CPU shared with other jobs",
            )
            out.append({"spec": spec, "graded": graded_row(g), "seconds": round(seconds, 1)})
    except EvalsuiteError as err:
        print(f"judge_agreement: error: {err}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.judge_agreement",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--judge", action="append", default=None, help=f"judge spec (repeatable); default: {', '.join(DEFAULT_JUDGES)}"
    )
    parser.add_argument("--limit", type=int, default=None, help="score a question-grouped subset of about N answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=("logprobs", "sample"), default="logprobs", help="G-Eval judges' mode")
    parser.add_argument(
        "--cached", action="store_true", help="reuse a cached qualification (answers/s as first measured)"
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the G-Eval judges' qualification to evalsuite/judge/measured/bundled_geval.json",
    )
    fit = parser.add_mutually_exclusive_group()
    fit.add_argument(
        "--fit-split",
        action="store_true",
        help="measure every judge on the graded fit split too (default: judges without a model only)",
    )
    fit.add_argument("--no-fit-split", action="store_true", help="measure no judge on the graded fit split")
    parser.add_argument(
        "--record-graded",
        action="store_true",
        help="measure the G-Eval judges on the graded long answers only (qualify split, --limit) and add "
        "the figures to their entry in evalsuite/judge/measured/bundled_geval.json",
    )
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    specs = args.judge or list(DEFAULT_JUDGES)
    if args.record_graded:
        return record_graded(specs, args, argv)
    rows, anchor_rows = [], []
    try:
        for spec in specs:
            # measured afresh: no verdict or vector cache unless --cached, so answers/s is this machine's speed
            options = {"mode": args.mode, "repeats": 1, "cache": args.cached} if ":" in spec else {"cache": args.cached}
            judge = make_judge(spec, **options)
            q = qualify(judge, seed=args.seed, limit=args.limit, progress=args.progress, cache=args.cached)
            rows.append({"spec": spec, **row(q)})
            fitted = getattr(judge, "fit_split_cross_validation", None)
            if fitted:  # fitted on the fit rows: its figures there are the held-out ones of its fit, by question
                rows[-1]["graded_fit_cv"] = cv_row(fitted)
            if args.fit_split or (":" not in spec and not args.no_fit_split and not fitted):
                # for information: fit rows choose, never qualify
                rows[-1]["graded_fit"] = graded_row(
                    measure_graded(judge, split=FIT_SPLIT, limit=args.limit, seed=args.seed, progress=args.progress)
                )
            anchor_rows = anchors(q)
            if args.record and ":" in spec:
                record_measured(
                    spec,
                    q.as_json(),
                    _command(argv),
                    note="measured on a 2-core CPU shared with other jobs: answers/s is a lower bound",
                )
    except EvalsuiteError as err:
        print(f"judge_agreement: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"judges": rows, "anchors": anchor_rows}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(table(rows, anchor_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
