"""Judges of answer quality: accuracy and completeness on a 1-5 scale.

    judge = make_judge("reference")                       # deterministic token overlap
    judge = make_judge("bundled:smollm2-135m-instruct")   # G-Eval, probability-weighted
    verdicts = judge.judge([JudgeItem(id, question, references, context, answer)])
    qualify(judge)  # may this judge gate a cell?

Criteria and rubrics: ``CRITERIA``; frozen evaluation steps: ``load_steps``.
"""
from evalsuite.judge._cache import JudgeCache
from evalsuite.judge._criteria import CRITERIA, Criterion, Steps, available_versions, load_steps
from evalsuite.judge._forms import FORMS, PREFILL, JudgeItem, render
from evalsuite.judge._judges import (
    BEST_BUNDLED_JUDGE,
    BUNDLED_FORMS,
    MODES,
    Judge,
    Verdict,
    geval_judge,
    judge_factory,
    make_judge,
    reference_judge,
    registered_judges,
)
from evalsuite.judge._parse import parse_score, score_distribution, weighted_score
from evalsuite.judge._qualify import (
    QUALIFY_BAR,
    CalibrationItem,
    Qualification,
    load_calibration,
    load_items,
    qualification_from,
    qualify,
)
from evalsuite.judge._steps_writer import generate_steps

__all__ = [
    "BEST_BUNDLED_JUDGE",
    "BUNDLED_FORMS",
    "CRITERIA",
    "CalibrationItem",
    "Criterion",
    "FORMS",
    "Judge",
    "JudgeCache",
    "JudgeItem",
    "MODES",
    "PREFILL",
    "QUALIFY_BAR",
    "Qualification",
    "Steps",
    "Verdict",
    "available_versions",
    "generate_steps",
    "geval_judge",
    "judge_factory",
    "load_calibration",
    "load_items",
    "load_steps",
    "make_judge",
    "parse_score",
    "qualification_from",
    "qualify",
    "reference_judge",
    "registered_judges",
    "render",
    "score_distribution",
    "weighted_score",
]
