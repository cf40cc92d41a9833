"""Fit the weights of the ``learned-correctness`` judge: ``python -m evalsuite.judge.fit_learned``.

Reads only ``judge_human/evouna_tq.jsonl`` from the data root (9,690 TriviaQA answers, 85%
correct) and writes ``evalsuite/judge/learned/correctness.v1.json``. Deterministic: the same
data file gives the same weights (``--check`` refits and compares with the shipped file).

Training rows. Each answer is featurized against its gold answers several ways: against all
of them (TriviaQA lists a median of 8 aliases), and against each of its first three gold
answers alone. The single-answer views make the training set look like the questions a judge
meets in use (Natural Questions lists 1-3 gold answers; a RAG reference is one answer), where
an answer must be recognised without an alias that matches it word for word.

Model. A logistic regression with an L2 penalty (C = 1 on the features as they are) and
balanced class weights (each class weighs half of the loss), solved by Newton's method.

Which file serves which purpose. ``evouna_tq.jsonl`` (TriviaQA questions, disjoint from the
judge's qualification set) is the only file read here: it fits the weights and chooses the
model. ``kamalloo_nq301.jsonl`` (Natural Questions) only measures the fitted judge, in
``evalsuite judge --qualify`` and ``benchmarks.judge_agreement``; it chooses nothing here, and
``judge_longform/liveqa_med.jsonl`` is not read by this judge's fit.

How the model is chosen (:func:`select_model`, recorded in ``correctness.v1.selection.json``):
5-fold cross-validation on this file, folds by question (sha256(question_id) mod 5), scored as
the ROC AUC of the held-out answers judged against their first gold answer alone (the hard,
NQ-like view). The candidates are the lexical features alone and the lexical features with the
two embedder similarities (answer vs question + gold, answer vs question), each at the penalties
C = 0.1, 1 and 10. Each candidate's difference from the best one gets a 95% interval from 200
bootstrap resamples of the questions (the same held-out answers on both sides). The rule: of the
candidates whose interval includes 0 (not shown worse than the best), take the one with the
fewest features, then the penalty closest to the default C = 1. On this file that is the
lexical features with the similarities at C = 1: cross-validated AUC 0.883, against 0.840 for
the lexical features alone (difference -0.044, interval [-0.052, -0.037]) and 0.878 at C = 0.1
(-0.005, [-0.008, -0.003]); C = 10 ties with it (0.883) and C = 1 is closer to the default. The
chosen cross-validation figures are also stored in the weights file.

Also tried, in earlier experiments whose code was not kept, and so not re-examined by this rule:
token alignment on the embedder's word-piece vectors (BERTScore-style precision, recall, F1),
cross-validated AUC 0.882 against 0.883 for the shipped features; answer vs gold-alone and
question + answer vs question + gold similarities, 0.884; the share of capitalized words,
0.886; those with question-word flags and gold count and length, 13 features in all, 0.889;
gradient-boosted trees on the same features; SmolLM2-135M's likelihood of the answer with and
without the gold in the prompt, which runs at 5 answers/s on 2 cores, a tenth of the speed asked
of this judge; all-MiniLM-L6-v2 fine-tuned as a cross-encoder on four fifths of this file,
0.816 on the held-out fifth. A candidate enters the shipped judge only through
:func:`select_model`, on this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.judge._agreement import roc_auc
from evalsuite.judge._features import FEATURES, LEXICAL, Similarity, feature_matrix
from evalsuite.judge._human import TRAINING_FILE, HumanItem, load_human
from evalsuite.judge._learned import DEFAULT_WEIGHTS, WEIGHTS_DIR
from evalsuite.judge._vectors import VectorStore
from evalsuite.storage import atomic_write_text

VERSION = "correctness.v1"
SELECTION_FILE = "correctness.v1.selection.json"
C = 1.0
PENALTIES = (0.1, 1.0, 10.0)
FEATURE_SETS = {"lexical": LEXICAL, "lexical+similarity": FEATURES}
SELECTION_RESAMPLES = 200
CV_FOLDS = 5
SINGLE_GOLD_VIEWS = 3  # each answer is also judged against each of its first three gold answers alone
DECIMALS = 6


def views(item: HumanItem) -> list[tuple[str, tuple[str, ...]]]:
    """(view name, gold answers) under which one training answer is featurized."""
    out = [("all", item.references)]
    for k, reference in enumerate(item.references[:SINGLE_GOLD_VIEWS]):
        out.append((f"gold{k + 1}", (reference,)))
    return out


def training_rows(items) -> tuple[list[tuple[str, tuple[str, ...], str]], np.ndarray, list[str], list[str], np.ndarray]:
    """(rows, labels, question ids, view names, long-answer flags), one row per (answer, view)."""
    rows, labels, groups, names, long = [], [], [], [], []
    for item in items:
        for name, references in views(item):
            rows.append((item.question, references, item.answer))
            labels.append(item.human)
            groups.append(item.question_id)
            names.append(name)
            long.append(item.long)
    return rows, np.asarray(labels, dtype=float), groups, names, np.asarray(long)


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = C, iterations: int = 100) -> tuple[float, np.ndarray]:
    """(intercept, coefficients) minimizing 0.5 * |coef|^2 + c * sum(class weight * log loss), by Newton's method.

    Class weights are balanced: n / (2 * n_class), so each class weighs half of the loss.
    """
    n, k = x.shape
    positives = y.sum()
    sample = np.where(y == 1, n / (2 * positives), n / (2 * (n - positives)))
    design = np.hstack([np.ones((n, 1)), x])
    beta = np.zeros(k + 1)
    penalty = np.eye(k + 1)
    penalty[0, 0] = 0.0  # the intercept is not penalized
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = penalty @ beta + c * design.T @ (sample * (p - y))
        hessian = penalty + c * (design * (sample * p * (1 - p))[:, None]).T @ design
        step = np.linalg.solve(hessian, gradient)
        beta = beta - step
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(beta[0]), beta[1:]


def fold_of(question_id: str) -> int:
    return int(hashlib.sha256(question_id.encode("utf-8")).hexdigest(), 16) % CV_FOLDS


def held_out_scores(matrix: np.ndarray, labels: np.ndarray, groups: list[str], c: float = C) -> np.ndarray:
    """Every row's score from the model fitted on the other folds (folds by question)."""
    folds = np.asarray([fold_of(g) for g in groups])
    scores = np.zeros(len(labels))
    for f in range(CV_FOLDS):
        train = folds != f
        intercept, coef = fit_logistic(matrix[train], labels[train], c)
        scores[~train] = matrix[~train] @ coef + intercept
    return scores


def select_model(matrix: np.ndarray, labels: np.ndarray, groups: list[str], names: list[str], *, seed: int = 0) -> dict:
    """Choose the feature set and penalty by cross-validation on the training file (see the module doc)."""
    view = np.asarray(names) == "gold1"
    y, g = labels[view], np.asarray(groups)[view]
    candidates = []
    for set_name, features in FEATURE_SETS.items():
        columns = [FEATURES.index(f) for f in features]
        for c in PENALTIES:
            scores = held_out_scores(matrix[:, columns], labels, groups, c)[view]
            candidates.append(
                {
                    "features": set_name,
                    "C": c,
                    "n_features": len(features),
                    "scores": scores,
                    "cv_auc": roc_auc(scores, y),
                }
            )
    best = max(candidates, key=lambda cand: cand["cv_auc"])
    questions = sorted(set(g))
    rows_of = {q: np.flatnonzero(g == q) for q in questions}
    rng = np.random.default_rng(seed)
    draws = [
        np.concatenate([rows_of[questions[i]] for i in rng.integers(0, len(questions), len(questions))])
        for _ in range(SELECTION_RESAMPLES)
    ]
    for cand in candidates:
        diffs = [roc_auc(cand["scores"][idx], y[idx]) - roc_auc(best["scores"][idx], y[idx]) for idx in draws]
        low, high = np.quantile(diffs, [0.025, 0.975])
        cand["diff_from_best"] = round(cand["cv_auc"] - best["cv_auc"], 4)
        cand["diff_ci95"] = [round(float(low), 4), round(float(high), 4)]
        cand["not_worse"] = bool(high >= 0)
    eligible = [cand for cand in candidates if cand["not_worse"]]
    chosen = min(eligible, key=lambda cand: (cand["n_features"], abs(np.log10(cand["C"]))))
    return {
        "file": TRAINING_FILE,
        "purpose": "fitting and choosing; the qualification set is not read",
        "metric": "ROC AUC of held-out answers against their first gold answer alone, 5 folds by question",
        "rule": "of the candidates not shown worse than the best (95% question-bootstrap interval of the "
        "difference includes 0), the fewest features, then the penalty closest to C = 1",
        "resamples": SELECTION_RESAMPLES,
        "seed": seed,
        "candidates": [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cand.items() if k != "scores"}
            for cand in candidates
        ],
        "chosen": {"features": chosen["features"], "C": chosen["C"]},
    }


def cross_validate(
    matrix: np.ndarray, labels: np.ndarray, groups: list[str], names: list[str], long: np.ndarray
) -> dict:
    """Held-out ROC AUC per view (all gold answers, first gold answer alone), all answers and 5+ words."""
    names_arr = np.asarray(names)
    scores = held_out_scores(matrix, labels, groups)
    out = {}
    for view in ("all", "gold1"):
        mask = names_arr == view
        out[view] = {
            "auc": round(roc_auc(scores[mask], labels[mask]), 4),
            "auc_5_words": round(roc_auc(scores[mask & long], labels[mask & long]), 4),
            "answers": int(mask.sum()),
        }
    return {"folds": CV_FOLDS, "by": "sha256(question_id) mod 5", "views": out}


def build_weights(path: str | Path | None = None, *, progress: bool = False, vector_cache: bool = True) -> dict:
    """The weights file's content, fitted on the training file (default: the data root's evouna_tq.jsonl)."""
    return build(path, progress=progress, vector_cache=vector_cache)[0]


def build(path: str | Path | None = None, *, progress: bool = False, vector_cache: bool = True) -> tuple[dict, dict]:
    """``(weights, selection)``: the model chosen by :func:`select_model` on the training file, fitted on all of it."""
    human = load_human(TRAINING_FILE, path)
    store = None
    if vector_cache:
        store = VectorStore()
    similarity = Similarity(store=store)
    rows, labels, groups, names, long = training_rows(human.items)
    matrix = feature_matrix(rows, similarity, progress=progress)
    selection = select_model(matrix, labels, groups, names)
    if (selection["chosen"]["features"], selection["chosen"]["C"]) != ("lexical+similarity", C):
        raise EvalsuiteError(
            f"the cross-validated selection chose {selection['chosen']}, not the features and "
            f"penalty of {VERSION}: write a new weights version for it (VERSION, FEATURES, C)"
        )
    intercept, coef = fit_logistic(matrix, labels)
    questions = len({item.question_id for item in human.items})
    return {
        "version": VERSION,
        "accuracy": {
            "model": "logistic regression: p(correct) = 1 / (1 + exp(-(intercept + sum(weight * feature))))",
            "features": list(FEATURES),
            "weights": {name: round(float(w), DECIMALS) for name, w in zip(FEATURES, coef)},
            "intercept": round(intercept, DECIMALS),
            "fit": {
                "penalty": "l2",
                "C": C,
                "class_weight": "balanced",
                "solver": "newton",
                "views": ["all gold answers"] + [f"gold answer {k + 1} alone" for k in range(SINGLE_GOLD_VIEWS)],
            },
        },
        "completeness": {"rule": "1 + 4 * soft_recall (not fitted: no data labels completeness)"},
        "embedder": similarity.identity,
        "training": {
            "file": human.file,
            "sha256": human.sha256,
            "answers": len(human.items),
            "questions": questions,
            "correct": int(sum(item.human for item in human.items)),
            "rows": len(rows),
        },
        "cross_validation": cross_validate(matrix, labels, groups, names, long),
        "command": "python -m evalsuite.judge.fit_learned",
    }, selection


def render(weights: dict) -> str:
    return json.dumps(weights, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def fit_command(
    prog: str, doc: str, build_fn, default_out: Path, selection_file: str, data_help: str, argv: list[str] | None = None
) -> int:
    """The command line of a fit module: fit with ``build_fn(data, progress=)``, then write (or ``--check``) the
    weights file and its selection file."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {prog}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=None, help=data_help)
    parser.add_argument("--out", type=Path, default=default_out, help="weights file to write")
    parser.add_argument("--check", action="store_true", help="refit and compare with --out instead of writing it")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    try:
        weights, selection = build_fn(args.data, progress=not args.no_progress)
    except EvalsuiteError as err:
        print(f"{prog.rsplit('.', 1)[-1]}: error: {err}", file=sys.stderr)
        return 2
    outputs = {args.out: render(weights), args.out.parent / selection_file: render(selection)}
    if args.check:
        differs = [
            path for path, text in outputs.items() if not (path.is_file() and path.read_text(encoding="utf-8") == text)
        ]
        for path in outputs:
            print(f"{path}: {'DIFFERS from the refit' if path in differs else 'reproduced'}", file=sys.stderr)
        return 1 if differs else 0
    for path, text in outputs.items():
        atomic_write_text(path, text)
        print(f"wrote {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return fit_command(
        "evalsuite.judge.fit_learned",
        __doc__,
        build,
        WEIGHTS_DIR / DEFAULT_WEIGHTS,
        SELECTION_FILE,
        "training file (default: the data root's evouna_tq.jsonl)",
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
