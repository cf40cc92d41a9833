"""Fit the long-answer weights of the ``learned-claims`` judge: ``python -m evalsuite.judge.fit_claims``.

Which file serves which purpose.

- ``judge_longform/liveqa_med.jsonl``, rows with ``split="fit"`` (52 questions, 1,492 graded
  long answers): the only rows read here. They fit the long-answer weights and choose the
  features, the target and the penalty. The ``split="qualify"`` rows are never read by this
  module (:func:`fit_rows` keeps the fit rows before any feature is computed; a test changes
  the qualify rows of a small file and checks that the weights stay the same); they only
  measure the shipped judge, in ``evalsuite judge --qualify`` and ``benchmarks.judge_agreement``.
- ``judge_human/evouna_tq.jsonl`` (short TriviaQA answers): fits the short-answer model, which
  ``learned-claims`` takes unchanged from ``learned-correctness`` (``correctness.v1.json``,
  written by :mod:`evalsuite.judge.fit_learned` from that file alone); not read here.
- ``judge_human/kamalloo_nq301.jsonl``: qualification only; never read by either fit.

Model. Accuracy: a logistic regression (L2 penalty, balanced class weights, Newton's method, as
:func:`evalsuite.judge.fit_learned.fit_logistic`) of correct (grade >= 3) on the features, or
the ordinal variant: the mean of three such regressions, of grade >= 2, >= 3 and = 4.
Completeness: a logistic regression of excellent (grade 4) against incomplete (grade 3), fitted
on the correct answers only (completeness is the part of a correct answer that is there).

How they are chosen (:func:`select`, recorded in ``claims.v1.selection.json``): 5-fold
cross-validation on the fit rows, folds by question (sha256(question_id) mod 5). Accuracy
candidates: each feature set (``FEATURE_SETS``) x target (correct, ordinal) x penalty C in
0.1, 1, 10, scored by the held-out ROC AUC of correct; completeness candidates: each feature
set x penalty, scored by the held-out AUC of excellent vs incomplete among the correct answers.
Each candidate's difference from the best gets a 95% interval from 200 bootstrap resamples of
the questions. The rule: of the candidates within ``MARGIN`` = 0.02 of the best (the interval's
lower end at or above -0.02), the fewest features, then (accuracy) the higher held-out Spearman
correlation with the grade, then the penalty closest to C = 1. A first rule, "not shown worse
(the interval includes 0)", was dropped after one run on these rows: the completeness AUC rests
on 204 correct answers of 50 questions, its intervals span 0.15, and that rule took the
4-feature coverage set at a held-out 0.724 against 0.780 for the best, a loss the data cannot
rule out; the margin asks the smaller set to be shown close. The chosen candidates' held-out figures, each with a
2,000-resample question-bootstrap interval, are stored in the weights file; the unfitted
baselines (IDF-weighted word recall of the gold claims, sentence-vector coverage) are recorded
beside them on the same folds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from evalsuite.errors import EvalsuiteError
from evalsuite.judge._agreement import roc_auc
from evalsuite.judge._claim_features import CLAIM_FEATURES, claim_matrix
from evalsuite.judge._claims import CLAIM_BUCKETS
from evalsuite.judge._features import FEATURES, Similarity, feature_matrix
from evalsuite.judge._graded import FIT_SPLIT, GRADED_FILE, _spearman, bootstrap_figures, load_graded
from evalsuite.judge._learned import CLAIM_WEIGHTS, WEIGHTS_DIR
from evalsuite.judge._vectors import VectorStore
from evalsuite.judge.fit_learned import CV_FOLDS, fit_command, fit_logistic, fold_of

VERSION = "claims.v1"
SELECTION_FILE = "claims.v1.selection.json"
PENALTIES = (0.1, 1.0, 10.0)
ALL_FEATURES = CLAIM_FEATURES + FEATURES  # claim features, then the short-answer judge's features
FEATURE_SETS = {
    "coverage": ("cov_sim", "cov_lex", "cov_share", "cov_top"),
    "claims": CLAIM_FEATURES,
    "claims+answer": CLAIM_FEATURES + FEATURES,
}
TARGETS = {"correct": (3,), "ordinal": (2, 3, 4)}  # grade thresholds, one regression each
MARGIN = 0.02  # a candidate whose AUC is shown no more than this below the best's is as good
RESAMPLES = 200  # question resamples for a candidate's difference from the best
INTERVAL_RESAMPLES = 2000  # question resamples for the chosen candidates' intervals
DECIMALS = 6
BASELINES = {"idf_recall_of_gold_claims": "cov_lex", "sentence_coverage_of_gold_claims": "cov_sim"}


def fit_rows(graded) -> list:
    """The fit split's rows: nothing else of the file is featurized."""
    return list(graded.split(FIT_SPLIT))


def features(items, similarity: Similarity, claim_similarity: Similarity, progress: bool = False) -> np.ndarray:
    """One row of ``ALL_FEATURES`` per graded answer (judged against its references, no context)."""
    claims = claim_matrix(
        [(x.question, x.references, (), x.answer) for x in items], claim_similarity, progress=progress
    )
    answer = feature_matrix([(x.question, x.references, x.answer) for x in items], similarity, progress=progress)
    return np.hstack([claims, answer])


def _fit(x: np.ndarray, grades: np.ndarray, thresholds: tuple[int, ...], c: float) -> list[tuple[float, np.ndarray]]:
    out = []
    for t in thresholds:
        y = (grades >= t).astype(float)
        if y.min() == y.max():
            raise EvalsuiteError(f"the fit rows hold no answer on one side of grade {t}; fitting needs both")
        out.append(fit_logistic(x, y, c))
    return out


def _score(x: np.ndarray, models: list[tuple[float, np.ndarray]]) -> np.ndarray:
    return np.mean([1.0 / (1.0 + np.exp(-(x @ coef + b))) for b, coef in models], axis=0)


def held_out(x: np.ndarray, grades: np.ndarray, groups: list[str], thresholds: tuple[int, ...], c: float) -> np.ndarray:
    folds = np.asarray([fold_of(g) for g in groups])
    scores = np.zeros(len(grades))
    for f in range(CV_FOLDS):
        train = folds != f
        scores[~train] = _score(x[~train], _fit(x[train], grades[train], thresholds, c))
    return scores


def _diffs(candidates: list[dict], auc_of, groups: np.ndarray, seed: int, resamples: int) -> None:
    best = max(candidates, key=lambda cand: cand["cv_auc"])
    questions = sorted(set(groups.tolist()))
    rows_of = {q: np.flatnonzero(groups == q) for q in questions}
    rng = np.random.default_rng(seed)
    draws = [
        np.concatenate([rows_of[questions[i]] for i in rng.integers(0, len(questions), len(questions))])
        for _ in range(resamples)
    ]
    best_aucs = [auc_of(best["scores"], idx) for idx in draws]
    for cand in candidates:
        diffs = [auc_of(cand["scores"], idx) - b for idx, b in zip(draws, best_aucs)]
        low, high = np.nanquantile(diffs, [0.025, 0.975])
        cand["diff_from_best"] = round(cand["cv_auc"] - best["cv_auc"], 4)
        cand["diff_ci95"] = [round(float(low), 4), round(float(high), 4)]
        cand["within_margin"] = bool(low >= -MARGIN)


def _columns(names) -> list[int]:
    return [ALL_FEATURES.index(n) for n in names]


def _figures(scores: np.ndarray, grades: np.ndarray, groups: list[str], auc_of: str, seed: int, n_boot: int) -> dict:
    f = bootstrap_figures(scores, grades, groups, auc_of=auc_of, seed=seed, n_boot=n_boot)
    return {
        "auc": round(f["auc"], 4),
        "auc_ci95": [round(f["auc_low"], 4), round(f["auc_high"], 4)],
        "spearman": round(f["spearman"], 4),
        "spearman_ci95": [round(f["spearman_low"], 4), round(f["spearman_high"], 4)],
        "answers": f["auc_answers"],
        "questions": f["auc_questions"],
    }


def select(
    matrix: np.ndarray,
    grades: np.ndarray,
    groups: list[str],
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    interval_resamples: int = INTERVAL_RESAMPLES,
) -> dict:
    """Choose the accuracy and completeness models by question-grouped cross-validation (see the module doc)."""
    g = np.asarray(groups)
    correct = (grades >= 3).astype(int)
    accuracy = []
    for set_name, names in FEATURE_SETS.items():
        for target, thresholds in TARGETS.items():
            for c in PENALTIES:
                scores = held_out(matrix[:, _columns(names)], grades, groups, thresholds, c)
                accuracy.append(
                    {
                        "features": set_name,
                        "target": target,
                        "C": c,
                        "n_features": len(names),
                        "scores": scores,
                        "cv_auc": roc_auc(scores, correct),
                        "cv_spearman": _spearman(scores, grades.astype(float)),
                    }
                )
    _diffs(accuracy, lambda s, idx: roc_auc(s[idx], correct[idx]), g, seed, resamples)
    chosen_acc = min(
        (c for c in accuracy if c["within_margin"]),
        key=lambda c: (c["n_features"], -c["cv_spearman"], abs(np.log10(c["C"]))),
    )

    among = grades >= 3
    sub_grades, sub_groups = grades[among], [q for q, keep in zip(groups, among) if keep]
    excellent = (sub_grades >= 4).astype(int)
    completeness = []
    for set_name, names in FEATURE_SETS.items():
        for c in PENALTIES:
            x = matrix[among][:, _columns(names)]
            scores = held_out(x, sub_grades, sub_groups, (4,), c)
            completeness.append(
                {
                    "features": set_name,
                    "C": c,
                    "n_features": len(names),
                    "scores": scores,
                    "cv_auc": roc_auc(scores, excellent),
                }
            )
    _diffs(completeness, lambda s, idx: roc_auc(s[idx], excellent[idx]), np.asarray(sub_groups), seed, resamples)
    chosen_comp = min(
        (c for c in completeness if c["within_margin"]), key=lambda c: (c["n_features"], abs(np.log10(c["C"])))
    )
    baselines = {}
    for name, feature in BASELINES.items():
        column = matrix[:, ALL_FEATURES.index(feature)]
        baselines[name] = {
            "feature": feature,
            "completeness": _figures(column, grades, groups, "excellent", seed, interval_resamples),
            "accuracy": _figures(column, grades, groups, "correct", seed, interval_resamples),
        }

    def public(cands):
        return [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in cand.items() if k != "scores"}
            for cand in cands
        ]

    return {
        "file": GRADED_FILE,
        "split": FIT_SPLIT,
        "purpose": "fitting and choosing; the qualify rows are not read",
        "folds": {"n": CV_FOLDS, "by": "sha256(question_id) mod 5"},
        "accuracy": {
            "metric": "held-out ROC AUC of correct (grade >= 3), every fit answer",
            "rule": f"of the candidates within {MARGIN} of the best (the lower end of the 95% "
            "question-bootstrap interval of the difference from the best is >= -margin), the fewest "
            "features, then the higher held-out Spearman with the grade, then the penalty closest "
            "to C = 1",
            "candidates": public(accuracy),
            "chosen": {k: chosen_acc[k] for k in ("features", "target", "C")},
            "held_out": _figures(chosen_acc["scores"], grades, groups, "correct", seed, interval_resamples),
        },
        "completeness": {
            "metric": "held-out ROC AUC of excellent (4) vs incomplete (3) among the correct fit answers",
            "rule": f"of the candidates within {MARGIN} of the best (as for accuracy), the fewest "
            "features, then the penalty closest to C = 1",
            "candidates": public(completeness),
            "chosen": {k: chosen_comp[k] for k in ("features", "C")},
            "held_out": _figures(
                _place(chosen_comp["scores"], among), grades, groups, "excellent", seed, interval_resamples
            ),
        },
        "baselines_unfitted": baselines,
        "resamples": resamples,
        "interval_resamples": interval_resamples,
        "seed": seed,
    }


def _place(scores: np.ndarray, among: np.ndarray) -> np.ndarray:
    out = np.full(among.shape, np.nan)
    out[among] = scores
    return out


def _head(names, models, target_rule: str) -> dict:
    return {
        "features": list(names),
        "target": target_rule,
        "models": [
            {"intercept": round(b, DECIMALS), "weights": {n: round(float(w), DECIMALS) for n, w in zip(names, coef)}}
            for b, coef in models
        ],
    }


def build(
    path: str | Path | None = None,
    *,
    progress: bool = False,
    vector_cache: bool = True,
    seed: int = 0,
    resamples: int = RESAMPLES,
    interval_resamples: int = INTERVAL_RESAMPLES,
) -> tuple[dict, dict]:
    """``(weights, selection)`` from the fit rows of the graded file (default: the data root's)."""
    graded = load_graded(path)
    items = fit_rows(graded)
    store = None
    if vector_cache:
        store = VectorStore()
    similarity = Similarity(store=store)
    claim_similarity = Similarity(store=store, buckets=CLAIM_BUCKETS)
    matrix = features(items, similarity, claim_similarity, progress=progress)
    grades = np.asarray([x.grade for x in items])
    groups = [x.question_id for x in items]
    selection = select(matrix, grades, groups, seed=seed, resamples=resamples, interval_resamples=interval_resamples)
    acc, comp = selection["accuracy"]["chosen"], selection["completeness"]["chosen"]
    acc_names, comp_names = FEATURE_SETS[acc["features"]], FEATURE_SETS[comp["features"]]
    thresholds = TARGETS[acc["target"]]
    acc_models = _fit(matrix[:, _columns(acc_names)], grades, thresholds, acc["C"])
    among = grades >= 3
    comp_models = _fit(matrix[among][:, _columns(comp_names)], grades[among], (4,), comp["C"])
    weights = {
        "version": VERSION,
        "accuracy": {
            **_head(acc_names, acc_models, " / ".join(f"grade >= {t}" for t in thresholds)),
            "model": "mean over the models of 1 / (1 + exp(-(intercept + sum(weight * feature))))",
            "fit": {"penalty": "l2", "C": acc["C"], "class_weight": "balanced", "solver": "newton"},
        },
        "completeness": {
            **_head(comp_names, comp_models, "grade 4 vs grade 3, correct answers only"),
            "model": "1 / (1 + exp(-(intercept + sum(weight * feature))))",
            "fit": {"penalty": "l2", "C": comp["C"], "class_weight": "balanced", "solver": "newton"},
        },
        "embedder": claim_similarity.identity,
        "embedder_short_features": similarity.identity,
        "training": {
            "file": graded.file,
            "sha256": graded.sha256,
            "split": FIT_SPLIT,
            "answers": len(items),
            "questions": len(set(groups)),
            "ids_sha256": hashlib.sha256("\n".join(x.id for x in items).encode("utf-8")).hexdigest(),
        },
        "cross_validation": {
            "accuracy": selection["accuracy"]["held_out"],
            "completeness": selection["completeness"]["held_out"],
            **selection["folds"],
        },
        "short_answers": "learned-correctness weights (correctness.v1.json, fitted on judge_human/evouna_tq.jsonl)",
        "command": "python -m evalsuite.judge.fit_claims",
    }
    return weights, selection


def main(argv: list[str] | None = None) -> int:
    return fit_command(
        "evalsuite.judge.fit_claims",
        __doc__,
        build,
        WEIGHTS_DIR / CLAIM_WEIGHTS,
        SELECTION_FILE,
        "graded file (default: the data root's liveqa_med.jsonl)",
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
