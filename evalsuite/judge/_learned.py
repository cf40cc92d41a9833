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
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from evalsuite.errors import ConfigError
from evalsuite.judge._features import FEATURES, SIM_REFERENCES, Similarity, feature_matrix
from evalsuite.judge._forms import JudgeItem
from evalsuite.judge._judges import Judge, Verdict, judge_factory

WEIGHTS_DIR = Path(__file__).parent / "learned"
DEFAULT_WEIGHTS = "correctness.v1.json"
COMPLETENESS = "soft_recall"


def weights_path(name: str | None = None) -> Path:
    path = Path(name) if name and (Path(name).is_absolute() or Path(name).exists()) else WEIGHTS_DIR / (name or DEFAULT_WEIGHTS)
    if not path.is_file():
        available = sorted(p.name for p in WEIGHTS_DIR.glob("*.json"))
        raise ConfigError(f"no learned-judge weights {path}; pass weights= one of {available} or write them with "
                          f"`python -m evalsuite.judge.fit_learned`")
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
        raise ConfigError(f"{path}: not a learned-judge weights file ({type(err).__name__}: {err}); "
                          f"rewrite it with `python -m evalsuite.judge.fit_learned`") from None
    unknown = [n for n in names if n not in FEATURES]
    if unknown or len(coef) != len(names):
        raise ConfigError(f"{path}: features {unknown} are not computed by this version; "
                          f"rewrite the file with `python -m evalsuite.judge.fit_learned`")
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
        self.config = {"weights_file": path.name, "weights_sha256": self.weights_sha256,
                       "training_file": training["file"], "training_sha256": training["sha256"]}
        self.provenance = (f"judge: learned-correctness, weights {path.name} sha256 {self.weights_sha256}, "
                           f"fitted on {training['file']} sha256 {training['sha256']}")
        self.similarity = Similarity(store=store)
        self.texts_embedded_per_item = 2 + SIM_REFERENCES  # the answer, the question, question + each gold answer

    def probabilities(self, items: Sequence[JudgeItem], progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(p(correct) per item, the feature matrix) for ``items``."""
        rows = [(item.question, item.references, item.answer) for item in items]
        matrix = feature_matrix(rows, self.similarity, progress=progress)
        # summed in a fixed order, row by row: a matrix product's rounding moves with the batch's shape
        logits = np.asarray([math.fsum([self.intercept, *(float(x) * w for x, w in zip(row[self.columns], self.coef))])
                             for row in matrix])
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
            raw = (f"p_correct={float(prob):.6f}", f"features: {values}",
                   f"completeness = 1 + 4 * {COMPLETENESS} ({row[soft]:.4g})", self.provenance)
            unscored = int(math.isnan(accuracy)) + int(math.isnan(completeness))
            verdicts.append(Verdict(item.id, self.name, self.steps_version, accuracy, completeness, 0.0, 0.0,
                                    unscored, 1, raw, False, "deterministic"))
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
        from evalsuite.judge._vectors import VectorStore

        store = VectorStore()
    return _LearnedJudge(weights_path(weights), store)
