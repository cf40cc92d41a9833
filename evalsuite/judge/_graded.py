"""Graded long answers (``judge_longform/liveqa_med.jsonl``) and a judge's agreement with their grades.

The file (see its NOTICE) holds 2,985 answers, median 113 words, to 104 TREC 2017 LiveQA-Med
consumer health questions, each graded by experts against the question's reference answers:
1 incorrect, 2 related, 3 incomplete (correct but partial), 4 excellent. Rows carry a ``split``
by question: ``fit`` rows may fit and choose a judge's settings; ``qualify`` rows only measure.
:func:`graded_agreement` reads the rows of one split (the qualification reads ``qualify`` only)
and, per criterion, measures:

- accuracy: ROC AUC of ``correct`` (grade >= 3) over every answer, and the Spearman
  correlation of the accuracy score with the grade;
- completeness: ROC AUC of excellent (4) against incomplete (3) among the correct answers,
  and the Spearman correlation of the completeness score with the grade (every answer).

Each figure has a 95% percentile bootstrap interval that resamples questions (seeded), since
the answers of one question are not independent. The judge scores each answer against all of
the question's reference answers as gold answers, with no context; the question is the assessors'
paraphrase, or the consumer's own message where the file has no paraphrase.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from evalsuite.datasets import data_files
from evalsuite.errors import ConfigError, DataError
from evalsuite.judge._criteria import CRITERIA
from evalsuite.judge._forms import JudgeItem
from evalsuite.judge._human import file_sha256, read_json_lines
from evalsuite.records import stable_hash, to_dict

GRADED_DATASET = "judge_longform"
GRADED_FILE = "liveqa_med.jsonl"
FIT_SPLIT = "fit"  # for fitting and for choosing features and settings
QUALIFY_SPLIT = "qualify"  # for measuring agreement only
SPLITS = (FIT_SPLIT, QUALIFY_SPLIT)
GRADES = {1: "incorrect", 2: "related", 3: "incomplete", 4: "excellent"}
CORRECT_GRADE = 3  # correct = grade >= 3
EXCELLENT_GRADE = 4
BOOTSTRAP = 2000  # question resamples per interval
LEVEL = 0.95
GRADED_SUBSET_RULE = (
    "questions in the order of sha256('graded:' + question_id), each taken whole while the total "
    "stays within the limit, the last one cut to fill it (its answers in the order of "
    "sha256('graded:' + id))"
)


@dataclass(frozen=True)
class GradedAnswer:
    """One (question, long answer) pair with its expert grade against the references."""

    id: str
    question_id: str
    question: str
    consumer_question: str
    references: tuple[str, ...]
    answer: str
    grade: int  # 1 incorrect, 2 related, 3 incomplete, 4 excellent (the first grade given)
    grades: tuple[int, ...]  # every grade given
    source: str  # "nist" (graded by NIST assessors) or "medquad" (by the collection's authors)
    split: str  # "fit" or "qualify"

    @property
    def correct(self) -> int:
        return int(self.grade >= CORRECT_GRADE)

    @property
    def excellent(self) -> int:
        return int(self.grade >= EXCELLENT_GRADE)

    def judge_item(self) -> JudgeItem:
        return JudgeItem(self.id, self.question, self.references, (), self.answer)


@dataclass(frozen=True)
class GradedSet:
    file: str  # file name in the data root's judge_longform/ folder (or the path given)
    sha256: str
    items: tuple[GradedAnswer, ...]

    def split(self, name: str) -> tuple[GradedAnswer, ...]:
        if name not in SPLITS:
            raise ConfigError(f"split {name!r}: use one of {', '.join(SPLITS)}")
        return tuple(item for item in self.items if item.split == name)


def graded_path(name: str = GRADED_FILE) -> Path:
    """The file's path in the data root; the one-line "run evalsuite datasets download" error if absent."""

    return data_files(GRADED_DATASET, name)[0]


def _fail(path: Path, number: int, field: str, problem: str) -> None:
    raise DataError(
        f"{path}: line {number}: field {field!r}: {problem}; fix the line "
        f"(or restore the released file with `evalsuite datasets download {GRADED_DATASET}`)"
    )


def _text(data: dict, name: str, path: Path, number: int, *, empty_ok: bool = False) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        _fail(path, number, name, "missing" if name not in data else f"expected a string, got {type(value).__name__}")
    assert isinstance(value, str)
    if not empty_ok and not value.strip():
        _fail(path, number, name, "empty")
    return value


def _grade(value: object, path: Path, number: int, field: str) -> int:
    if isinstance(value, bool) or value not in GRADES:
        _fail(path, number, field, f"expected a grade 1-4, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def answer_from_line(data: object, path: Path, number: int) -> GradedAnswer:
    if not isinstance(data, dict):
        _fail(path, number, "(line)", "expected a JSON object")
    assert isinstance(data, dict)
    refs = data.get("references")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        _fail(path, number, "references", "expected a list of strings")
    references = tuple(r for r in refs if r.strip())
    if not references:
        _fail(path, number, "references", "no non-empty reference answer")
    grade = _grade(data.get("label"), path, number, "label")
    grades = data.get("labels", [grade])
    if not isinstance(grades, list) or not grades:
        _fail(path, number, "labels", "expected a non-empty list of grades")
    all_grades = tuple(_grade(g, path, number, "labels") for g in grades)
    for field, expected in (("correct", int(grade >= CORRECT_GRADE)), ("complete", int(grade >= EXCELLENT_GRADE))):
        if field in data and data[field] != expected:
            _fail(path, number, field, f"{data[field]!r} disagrees with label {grade} (expected {expected})")
    split = data.get("split")
    if split not in SPLITS:
        _fail(path, number, "split", f"expected one of {', '.join(SPLITS)}, got {split!r}")
    consumer = _text(data, "consumer_question", path, number, empty_ok=True) if "consumer_question" in data else ""
    question = _text(data, "question", path, number, empty_ok=True)
    if not question.strip():  # no paraphrase: the consumer's own message is the question
        question = consumer
    if not question.strip():
        _fail(path, number, "question", "empty, and no consumer_question")
    return GradedAnswer(
        id=_text(data, "id", path, number),
        question_id=_text(data, "question_id", path, number),
        question=question,
        consumer_question=consumer,
        references=references,
        answer=_text(data, "answer", path, number, empty_ok=True),
        grade=grade,
        grades=all_grades,
        source=_text(data, "source", path, number, empty_ok=True) if "source" in data else "",
        split=str(split),
    )


_memo: dict[tuple, GradedSet] = {}


def load_graded(path: str | Path | None = None) -> GradedSet:
    """The graded long answers of the data root (or of ``path``), validated line by line.

    Ids are unique, and a question's answers are all in one split (the split is by question)."""
    path = Path(path) if path is not None else graded_path()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a {GRADED_DATASET} JSON-lines file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _memo:
        items = read_json_lines(path, answer_from_line, _fail)
        if not items:
            raise DataError(
                f"{path}: no lines; restore the released file with `evalsuite datasets download {GRADED_DATASET}`"
            )
        seen: set[str] = set()
        split_of: dict[str, str] = {}
        for item in items:
            if item.id in seen:
                raise DataError(f"{path}: field 'id': {item.id!r} repeats; give each line its own id")
            seen.add(item.id)
            if split_of.setdefault(item.question_id, item.split) != item.split:
                raise DataError(
                    f"{path}: field 'split': question {item.question_id!r} has answers in both "
                    f"{split_of[item.question_id]!r} and {item.split!r}; the split is by question"
                )
        _memo[key] = GradedSet(path.name, file_sha256(path), tuple(items))
    return _memo[key]


def select_graded(items: Sequence[GradedAnswer], limit: int | None) -> list[GradedAnswer]:
    """Every item, or ``limit`` of them chosen by question (see ``GRADED_SUBSET_RULE``), in file order."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    by_question: dict[str, list[GradedAnswer]] = {}
    for item in items:
        by_question.setdefault(item.question_id, []).append(item)
    chosen: set[str] = set()
    for qid in sorted(by_question, key=lambda q: stable_hash(f"graded:{q}", 64)):
        room = limit - len(chosen)
        if room <= 0:
            break
        answers = sorted(by_question[qid], key=lambda x: stable_hash(f"graded:{x.id}", 64))
        chosen.update(x.id for x in answers[:room])
    return [item for item in items if item.id in chosen]


# --------------------------------------------------------------------------- agreement


@dataclass(frozen=True)
class GradedCriterion:
    """One criterion's scores against the grades, each figure with its question-bootstrap 95% interval."""

    criterion: str
    auc: float  # accuracy: correct (grade >= 3) vs not; completeness: excellent vs incomplete among correct
    auc_low: float
    auc_high: float
    auc_answers: int  # answers the AUC is over (scored ones)
    auc_positives: int  # of those, correct (accuracy) or excellent (completeness)
    auc_questions: int
    spearman: float  # of the score with the grade, every scored answer
    spearman_low: float
    spearman_high: float
    unscored: int


@dataclass(frozen=True)
class GradedAgreement:
    file: str
    sha256: str
    split: str
    answers: int
    answers_total: int  # the split's answers (``answers`` is fewer with a limit)
    questions: int
    correct: int
    excellent: int
    limit: int | None
    subset: bool
    subset_rule: str
    bootstrap: int
    seed: int
    ids_digest: str  # hash of the ids scored, in order
    criteria: tuple[GradedCriterion, ...]

    def criterion(self, name: str) -> GradedCriterion:
        return next(c for c in self.criteria if c.criterion == name)

    def as_json(self) -> dict:
        """Plain data for JSON, nan as null."""
        data = to_dict(self)
        data["criteria"] = [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in c.items()}
            for c in data["criteria"]
        ]
        return data


def _ranks_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from scipy.stats import rankdata

    pos = int(labels.sum())
    neg = labels.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / math.sqrt((rx * rx).sum() * (ry * ry).sum()))


def _interval(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 10:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    return float(low), float(high)


def bootstrap_figures(
    scores: Sequence[float],
    grades: Sequence[int],
    question_ids: Sequence[str],
    *,
    auc_of: str,
    seed: int = 0,
    n_boot: int = BOOTSTRAP,
) -> dict:
    """AUC (``auc_of`` = "correct" or "excellent") and Spearman with the grade, each with a question-bootstrap interval.

    Unscored (nan) answers are left out; the bootstrap draws questions with replacement and takes
    every answer of each drawn question."""
    s = np.asarray(scores, dtype=float)
    g = np.asarray(grades, dtype=int)
    q = np.asarray(question_ids, dtype=object)
    keep = np.isfinite(s)
    s, g, q = s[keep], g[keep], q[keep]
    if auc_of == "correct":
        in_auc = np.ones(s.size, dtype=bool)
        labels = (g >= CORRECT_GRADE).astype(int)
    elif auc_of == "excellent":
        in_auc = g >= CORRECT_GRADE
        labels = (g >= EXCELLENT_GRADE).astype(int)
    else:
        raise ValueError(f"auc_of {auc_of!r}: 'correct' or 'excellent'")
    questions = sorted(set(q.tolist()))
    members = [np.flatnonzero(q == qid) for qid in questions]
    auc = _ranks_auc(s[in_auc], labels[in_auc])
    rho = _spearman(s, g.astype(float))
    aucs, rhos = [], []
    if questions:
        rng = np.random.default_rng(seed)
        for _ in range(n_boot):
            idx = np.concatenate([members[i] for i in rng.integers(0, len(questions), len(questions))])
            m = in_auc[idx]
            aucs.append(_ranks_auc(s[idx][m], labels[idx][m]))
            rhos.append(_spearman(s[idx], g[idx].astype(float)))
    auc_low, auc_high = _interval(aucs)
    rho_low, rho_high = _interval(rhos)
    return {
        "auc": auc,
        "auc_low": auc_low,
        "auc_high": auc_high,
        "auc_answers": int(in_auc.sum()),
        "auc_positives": int(labels[in_auc].sum()),
        "auc_questions": len(set(q[in_auc].tolist())),
        "spearman": rho,
        "spearman_low": rho_low,
        "spearman_high": rho_high,
    }


AUC_OF = {"accuracy": "correct", "completeness": "excellent"}


def graded_criterion(
    criterion: str, scores: Sequence[float], items: Sequence[GradedAnswer], *, seed: int = 0, n_boot: int = BOOTSTRAP
) -> GradedCriterion:
    figures = bootstrap_figures(
        scores,
        [x.grade for x in items],
        [x.question_id for x in items],
        auc_of=AUC_OF[criterion],
        seed=seed,
        n_boot=n_boot,
    )
    return GradedCriterion(criterion=criterion, unscored=sum(not math.isfinite(v) for v in scores), **figures)


def graded_agreement(
    verdicts: Sequence,
    items: Sequence[GradedAnswer],
    graded: GradedSet,
    split: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    n_boot: int = BOOTSTRAP,
) -> GradedAgreement:
    """The agreement of ``verdicts`` (one per item of ``items``, rows of ``split``) with the grades."""

    if any(x.split != split for x in items):
        raise ConfigError(f"graded agreement on the {split!r} split was given rows of another split")
    total = len(graded.split(split))
    criteria = tuple(
        graded_criterion(c, [float(getattr(v, c)) for v in verdicts], items, seed=seed, n_boot=n_boot) for c in CRITERIA
    )
    return GradedAgreement(
        file=graded.file,
        sha256=graded.sha256,
        split=split,
        answers=len(items),
        answers_total=total,
        questions=len({x.question_id for x in items}),
        correct=sum(x.correct for x in items),
        excellent=sum(x.excellent for x in items),
        limit=limit,
        subset=len(items) < total,
        subset_rule=GRADED_SUBSET_RULE if len(items) < total else "",
        bootstrap=n_boot,
        seed=seed,
        ids_digest=stable_hash([x.id for x in items], 32),
        criteria=criteria,
    )


def measure_graded(
    judge,
    *,
    split: str = QUALIFY_SPLIT,
    limit: int | None = None,
    seed: int = 0,
    graded: GradedSet | None = None,
    progress: bool = False,
) -> GradedAgreement:
    """Score the ``split`` rows of the graded file (or a ``limit`` subset by question) with ``judge``."""
    graded = graded or load_graded()
    items = select_graded(graded.split(split), limit)
    verdicts = judge.judge([x.judge_item() for x in items], progress=progress) if items else []
    return graded_agreement(verdicts, items, graded, split, limit=limit, seed=seed)


# --------------------------------------------------------------------------- dataset length


def median_gold_words(examples: Sequence) -> float:
    """The median length in words (``text.split()``) of every gold answer of ``examples`` (eval records,
    each with ``references``); nan when they have none."""
    lengths = [len(ref.split()) for ex in examples for ref in ex.references if ref.strip()]
    return float(statistics.median(lengths)) if lengths else float("nan")
