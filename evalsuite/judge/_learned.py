"""``learned-correctness``: an offline judge fitted on human correctness labels.

- accuracy = 1 + 4 * p(correct), p from a logistic regression over the features of
  :mod:`evalsuite.judge._features` (lexical overlap with the gold answers and similarity from
  the bundled sentence embedder). Its weights are a small JSON file in the package
  (``learned/correctness.v1.json``), written by ``python -m evalsuite.judge.fit_learned`` from
  ``judge_human/evouna_tq.jsonl`` alone (TriviaQA answers of five QA systems, people's 0/1
  labels); the qualification set is never used to fit anything.
- completeness = 1 + 4 * soft recall: the share of the closest gold answer's content words that
  the answer contains (same word, same first five letters, or the same number written
  otherwise). It is not fitted: no data labels completeness, so it measures coverage of the
  reference directly.

Each verdict's ``raw`` holds p(correct), every feature value and the judge's provenance (the
weights file and its sha256, the training file and its sha256), so a report can show why.
It needs no language model, runs on a CPU, and gives the same numbers serially and under
pytest-xdist.

``learned-claims`` judges items whose gold answers are long (the longest of ``LONG_GOLD_WORDS``+
words) claim by claim: the features of :mod:`evalsuite.judge._claim_features` (coverage of the
gold claims, support of the answer's claims by the gold answers or the item's passages, clashes)
and the features above, with weights ``learned/claims.v1.json`` written by
``python -m evalsuite.judge.fit_claims`` from the fit rows of ``judge_longform/liveqa_med.jsonl``
alone; accuracy = 1 + 4 p(correct) (mean of the ordinal models), completeness = 1 + 4
p(excellent | correct). Items with short gold answers get ``learned-correctness``'s verdict.
Each long verdict's ``raw`` counts the gold claims covered and names the first ones missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from evalsuite.errors import ConfigError
from evalsuite.judge._claim_features import CLAIM_FEATURES, claim_matrix
from evalsuite.judge._claims import CLAIM_BUCKETS, align, coverage_from
from evalsuite.judge._features import FEATURES, SIM_REFERENCES, Similarity, feature_matrix
from evalsuite.judge._forms import JudgeItem
from evalsuite.judge._judges import Judge, Verdict, judge_factory
from evalsuite.judge._vectors import VectorStore

WEIGHTS_DIR = Path(__file__).parent / "learned"
DEFAULT_WEIGHTS = "correctness.v1.json"
COMPLETENESS = "soft_recall"


def weights_path(name: str | None = None, refit: str = "fit_learned") -> Path:
    path = (
        Path(name)
        if name and (Path(name).is_absolute() or Path(name).exists())
        else WEIGHTS_DIR / (name or DEFAULT_WEIGHTS)
    )
    if not path.is_file():
        available = sorted(p.name for p in WEIGHTS_DIR.glob("*.json") if "selection" not in p.name)
        raise ConfigError(
            f"no learned-judge weights {path}; pass weights= one of {available} or write them with "
            f"`python -m evalsuite.judge.{refit}`"
        )
    return path


def load_weights(path: Path) -> dict:
    """The weights file, checked: its features must be the ones this version computes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        head = data["accuracy"]
        names = list(head["features"])
        coef = [float(head["weights"][n]) for n in names]
        float(head["intercept"])
        data["training"]["file"], data["training"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"{path}: not a learned-judge weights file ({type(err).__name__}: {err}); "
            f"rewrite it with `python -m evalsuite.judge.fit_learned`"
        ) from None
    unknown = [n for n in names if n not in FEATURES]
    if unknown or len(coef) != len(names):
        raise ConfigError(
            f"{path}: features {unknown} are not computed by this version; "
            f"rewrite the file with `python -m evalsuite.judge.fit_learned`"
        )
    return data


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _LearnedJudge(Judge):
    name = "learned-correctness"

    def __init__(self, path: Path, store) -> None:
        super().__init__()
        self.path = path
        text = path.read_bytes()
        self.weights_sha256 = hashlib.sha256(text).hexdigest()
        self.weights = load_weights(path)
        head = self.weights["accuracy"]
        self.features = tuple(head["features"])
        self.columns = [FEATURES.index(n) for n in self.features]
        self.coef = [float(head["weights"][n]) for n in self.features]
        self.intercept = float(head["intercept"])
        self.steps_version = f"{self.weights['version']}+{self.weights_sha256[:12]}"
        training = self.weights["training"]
        self.config = {
            "weights_file": path.name,
            "weights_sha256": self.weights_sha256,
            "training_file": training["file"],
            "training_sha256": training["sha256"],
        }
        self.provenance = (
            f"judge: learned-correctness, weights {path.name} sha256 {self.weights_sha256}, "
            f"fitted on {training['file']} sha256 {training['sha256']}"
        )
        self.similarity = Similarity(store=store)
        self.texts_embedded_per_item = 2 + SIM_REFERENCES  # the answer, the question, question + each gold answer

    def probabilities(self, items: Sequence[JudgeItem], progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(p(correct) per item, the feature matrix) for ``items``."""
        rows = [(item.question, item.references, item.answer) for item in items]
        matrix = feature_matrix(rows, self.similarity, progress=progress)
        # summed in a fixed order, row by row: a matrix product's rounding moves with the batch's shape
        logits = np.asarray(
            [
                math.fsum([self.intercept, *(float(x) * w for x, w in zip(row[self.columns], self.coef))])
                for row in matrix
            ]
        )
        return _sigmoid(logits), matrix

    def judge(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        if not items:
            return []
        p, matrix = self.probabilities(items, progress)
        soft = FEATURES.index(COMPLETENESS)
        verdicts = []
        for item, prob, row in zip(items, p, matrix):
            accuracy = 1.0 + 4.0 * float(prob)
            completeness = 1.0 + 4.0 * float(row[soft])
            values = " ".join(f"{name}={row[i]:.4g}" for i, name in enumerate(FEATURES))
            raw = (
                f"p_correct={float(prob):.6f}",
                f"features: {values}",
                f"completeness = 1 + 4 * {COMPLETENESS} ({row[soft]:.4g})",
                self.provenance,
            )
            verdicts.append(Verdict.deterministic(item.id, self.name, self.steps_version, accuracy, completeness, raw))
        self.stats["items"] += len(items)
        return verdicts


@judge_factory("learned-correctness")
def learned_correctness_judge(weights: str = DEFAULT_WEIGHTS, *, cache: bool = True) -> Judge:
    """The offline judge fitted on human correctness labels (see :mod:`evalsuite.judge._learned`).

    ``weights``: a file in ``evalsuite/judge/learned/`` or a path; ``cache``: keep the
    embedder's vectors on disk (``$EVALSUITE_CACHE/judge/vectors.sqlite``) for reruns.
    """
    store = None
    if cache:
        store = VectorStore()
    return _LearnedJudge(weights_path(weights), store)


# --------------------------------------------------------------------------- learned-claims

CLAIM_WEIGHTS = "claims.v1.json"
LONG_GOLD_WORDS = 12  # gold answers whose longest one has at least this many words are judged claim by claim


def long_gold(references: Sequence[str]) -> bool:
    """Whether an item's gold answers are long answers (judged by their claims) rather than short ones."""
    return max((len(r.split()) for r in references), default=0) >= LONG_GOLD_WORDS


def load_claim_weights(path: Path) -> dict:
    """The claim judge's weights file, checked: its features must be the ones this version computes."""

    known = CLAIM_FEATURES + FEATURES
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        heads = {}
        for criterion in ("accuracy", "completeness"):
            head = data[criterion]
            names = list(head["features"])
            models = [(float(m["intercept"]), [float(m["weights"][n]) for n in names]) for m in head["models"]]
            if not models:
                raise ValueError(f"{criterion}: no model")
            heads[criterion] = (tuple(names), models)
        data["training"]["file"], data["training"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"{path}: not a claim-judge weights file ({type(err).__name__}: {err}); "
            f"rewrite it with `python -m evalsuite.judge.fit_claims`"
        ) from None
    unknown = [n for names, _ in heads.values() for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"{path}: features {unknown} are not computed by this version; "
            f"rewrite the file with `python -m evalsuite.judge.fit_claims`"
        )
    data["_heads"] = heads
    return data


def _mean_probability(row: dict[str, float], models: list[tuple[float, list[float]]], names: Sequence[str]) -> float:
    # summed in a fixed order: the same row gives the same probability whatever batch it came in
    return math.fsum(
        1.0 / (1.0 + math.exp(-math.fsum([b, *(row[n] * w for n, w in zip(names, coef))]))) for b, coef in models
    ) / len(models)


class _ClaimsJudge(Judge):
    """Long gold answers: claim coverage and support (``claims.v1.json``); short ones: ``learned-correctness``."""

    name = "learned-claims"

    def __init__(self, path: Path, short: _LearnedJudge) -> None:
        super().__init__()
        self.path = path
        self.short = short
        self.weights_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.weights = load_claim_weights(path)
        self.heads = self.weights.pop("_heads")
        self.steps_version = f"{self.weights['version']}+{self.weights_sha256[:12]}+{short.steps_version}"
        training = self.weights["training"]
        self.config = {
            "weights_file": path.name,
            "weights_sha256": self.weights_sha256,
            "training_file": training["file"],
            "training_sha256": training["sha256"],
            "short_weights_file": short.path.name,
            "short_weights_sha256": short.weights_sha256,
        }
        self.provenance = (
            f"judge: learned-claims, weights {path.name} sha256 {self.weights_sha256}, fitted on "
            f"{training['file']} ({training['split']} rows) sha256 {training['sha256']}"
        )

        self.similarity = Similarity(store=short.similarity.store, buckets=CLAIM_BUCKETS)
        # the short-answer judge's features enter only when a fitted head names them
        cv = self.weights.get("cross_validation", {})
        # held-out figures of the fit, by question (folds, by, and per criterion AUC and Spearman with intervals)
        self.fit_split_cross_validation = {
            "folds": cv.get("n"),
            "by": cv.get("by"),
            "file": training["file"],
            **{c: cv[c] for c in ("accuracy", "completeness") if c in cv},
        }
        self.needs_answer_features = any(n in FEATURES for names, _ in self.heads.values() for n in names)
        self.stats["long_items"] = 0

    def _long(self, items: Sequence[JudgeItem], progress: bool) -> list[Verdict]:

        claims = claim_matrix(
            [(x.question, x.references, x.context, x.answer) for x in items], self.similarity, progress=progress
        )
        names = CLAIM_FEATURES + FEATURES
        if self.needs_answer_features:
            answer = feature_matrix(
                [(x.question, x.references, x.answer) for x in items], self.short.similarity, progress=progress
            )
        else:
            answer = np.full((len(items), len(FEATURES)), np.nan)
        verdicts = []
        for item, row_c, row_a in zip(items, claims, answer):
            row = dict(zip(names, (float(v) for v in (*row_c, *row_a))))
            p_correct = _mean_probability(row, self.heads["accuracy"][1], self.heads["accuracy"][0])
            p_excellent = _mean_probability(row, self.heads["completeness"][1], self.heads["completeness"][0])
            coverage = coverage_from(align(item.answer, item.references, self.similarity))
            missing = "; ".join(m[:80] for m in coverage.missing[:3])
            values = " ".join(f"{n}={row[n]:.4g}" for n in CLAIM_FEATURES)
            raw = (
                f"p_correct={p_correct:.6f} p_complete={p_excellent:.6f}",
                f"claim features: {values}",
                f"gold claims covered {sum(c.covered for c in coverage.claims)}/{len(coverage.claims)}"
                + (f"; missing: {missing}" if missing else ""),
                self.provenance,
            )
            accuracy, completeness = 1.0 + 4.0 * p_correct, 1.0 + 4.0 * p_excellent
            verdicts.append(Verdict.deterministic(item.id, self.name, self.steps_version, accuracy, completeness, raw))
        return verdicts

    def judge(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        if not items:
            return []
        long_idx = [i for i, x in enumerate(items) if long_gold(x.references)]
        short_idx = [i for i, x in enumerate(items) if not long_gold(x.references)]
        out: list[Verdict | None] = [None] * len(items)
        if short_idx:
            for i, v in zip(short_idx, self.short.judge([items[i] for i in short_idx], progress=progress)):
                out[i] = dataclasses.replace(v, judge=self.name, steps_version=self.steps_version)
        if long_idx:
            for i, v in zip(long_idx, self._long([items[i] for i in long_idx], progress)):
                out[i] = v
        self.stats["items"] += len(items)
        self.stats["long_items"] += len(long_idx)
        return [v for v in out if v is not None]


@judge_factory("learned-claims")
def learned_claims_judge(
    weights: str = CLAIM_WEIGHTS, short_weights: str = DEFAULT_WEIGHTS, *, cache: bool = True
) -> Judge:
    """Claim-level judge of long answers (see :mod:`evalsuite.judge.fit_claims`); short ones as ``learned-correctness``.

    ``weights``: the long-answer weights, ``short_weights``: the short-answer ones (files in
    ``evalsuite/judge/learned/`` or paths); ``cache``: keep the embedder's vectors on disk.
    """
    store = None
    if cache:
        store = VectorStore()
    short = _LearnedJudge(weights_path(short_weights), store)
    return _ClaimsJudge(weights_path(weights, refit="fit_claims"), short)
