"""Judges of answer quality: accuracy and completeness on a 1-5 scale, and whether they may gate.

    judge = make_judge("token-overlap")                   # no model
    judge = make_judge("learned-correctness")             # fitted on human labels, offline
    judge = make_judge("learned-claims")                  # long answers claim by claim, offline
    judge = make_judge("bundled:smollm2-135m-instruct")   # G-Eval, probability-weighted
    judge = make_judge("deepeval:openai:gpt-4o")          # deepeval's GEval (entry point)
    verdicts = judge.judge([JudgeItem(id, question, references, context, answer)])
    split_claims(answer); claim_coverage(answer, references)  # which gold claims an answer covers
    q = qualify(judge)   # agreement with people + long-form check + graded long answers -> q.qualified, q.reasons
    gating_criteria(q, long_answers=long_answers(eval_examples))  # the criteria that gate that dataset

Every spec resolves through one registry (``register_judge``; entry point group
``evalsuite.judges`` for third parties). The criteria (``CRITERIA``) are defined here once;
``RULE`` is the one qualification rule.
"""

from evalsuite.judge._agreement import THRESHOLD_METHOD, cohen_kappa, cross_fit, roc_auc, within_question
from evalsuite.judge._cache import JudgeCache
from evalsuite.judge._claims import ClaimCoverage, ClaimMatch, claim_coverage, split_claims
from evalsuite.judge._criteria import CRITERIA, Criterion, Steps, available_versions, load_steps
from evalsuite.judge._forms import FORMS, PREFILL, JudgeItem, render
from evalsuite.judge._graded import (
    FIT_SPLIT,
    GRADED_FILE,
    QUALIFY_SPLIT,
    GradedAgreement,
    GradedAnswer,
    GradedCriterion,
    GradedSet,
    load_graded,
    measure_graded,
    median_gold_words,
    select_graded,
)
from evalsuite.judge._human import (
    LONG_WORDS,
    QUALIFICATION_FILE,
    TRAINING_FILE,
    HumanItem,
    HumanSet,
    load_human,
)
from evalsuite.judge._items import item_from_json, load_items
from evalsuite.judge._judges import (
    BEST_BUNDLED_JUDGE,
    BUNDLED_FORMS,
    MODES,
    Judge,
    Verdict,
    geval_judge,
    judge_factory,
    token_overlap_judge,
)
from evalsuite.judge._learned import learned_claims_judge, learned_correctness_judge
from evalsuite.judge._longform import LongFormItem, LongFormSet, build_longform
from evalsuite.judge._measured import measured_qualifications, measured_spread, record_measured, record_measured_graded
from evalsuite.judge._parse import mean_std, parse_score, score_distribution, weighted_score
from evalsuite.judge._qualify import (
    RULE,
    Anchor,
    CriterionAgreement,
    Gating,
    LongFormResult,
    LongFormShare,
    Qualification,
    QualificationData,
    Rule,
    gating_criteria,
    gating_decision,
    long_answers,
    qualification_items,
    qualification_parts,
    qualify,
)
from evalsuite.judge._registry import (
    ENTRY_POINT_GROUP,
    make_judge,
    register_judge,
    register_model_judge,
    registered_judges,
)
from evalsuite.judge._steps_writer import generate_steps

# Built-in judges register the way a third party would (a package can also use the entry point group).
register_judge("token-overlap", token_overlap_judge)
register_judge("reference", token_overlap_judge)  # the former name of token-overlap
register_judge("learned-correctness", learned_correctness_judge)
register_judge("learned-claims", learned_claims_judge)
register_model_judge(geval_judge)  # a G-Eval judge on a spec of any model backend

__all__ = [
    "ClaimCoverage",
    "ClaimMatch",
    "claim_coverage",
    "split_claims",
    "measured_spread",
    "record_measured",
    "record_measured_graded",
    "FIT_SPLIT",
    "GRADED_FILE",
    "Gating",
    "GradedAgreement",
    "GradedAnswer",
    "GradedCriterion",
    "GradedSet",
    "QUALIFY_SPLIT",
    "gating_criteria",
    "gating_decision",
    "load_graded",
    "long_answers",
    "measure_graded",
    "median_gold_words",
    "qualification_parts",
    "select_graded",
    "qualification_items",
    "Anchor",
    "BEST_BUNDLED_JUDGE",
    "BUNDLED_FORMS",
    "CRITERIA",
    "Criterion",
    "CriterionAgreement",
    "ENTRY_POINT_GROUP",
    "FORMS",
    "HumanItem",
    "HumanSet",
    "Judge",
    "JudgeCache",
    "JudgeItem",
    "LONG_WORDS",
    "LongFormItem",
    "LongFormResult",
    "LongFormSet",
    "LongFormShare",
    "MODES",
    "PREFILL",
    "QUALIFICATION_FILE",
    "Qualification",
    "QualificationData",
    "RULE",
    "Rule",
    "Steps",
    "THRESHOLD_METHOD",
    "TRAINING_FILE",
    "Verdict",
    "available_versions",
    "build_longform",
    "cohen_kappa",
    "cross_fit",
    "generate_steps",
    "geval_judge",
    "item_from_json",
    "judge_factory",
    "learned_claims_judge",
    "learned_correctness_judge",
    "load_human",
    "load_items",
    "load_steps",
    "make_judge",
    "mean_std",
    "measured_qualifications",
    "parse_score",
    "qualify",
    "token_overlap_judge",
    "register_judge",
    "register_model_judge",
    "registered_judges",
    "render",
    "roc_auc",
    "score_distribution",
    "weighted_score",
    "within_question",
]
