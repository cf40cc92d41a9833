"""Qualification: may a judge pass or fail a cell? Measured against people, and on long answers.

A judge scores (1) the 1,490 human-labelled NQ answers of ``judge_human/kamalloo_nq301.jsonl``
(agreement per criterion: ROC AUC on all answers and on those of 5+ words, Cohen's kappa and
accuracy at a cross-fitted threshold, the within-question share; beside it the published
evaluators' agreement on the same items), and (2) the long-form set built from the fine-tune
pools (:mod:`evalsuite.judge._longform`): the share of questions where the good answer scores
above the wrong one, and (3) the ``qualify`` rows of the graded long answers of
``judge_longform/liveqa_med.jsonl`` (:mod:`evalsuite.judge._graded`: ROC AUC and Spearman with the
expert grade, with question-bootstrap intervals). ``RULE`` says when that is enough, on datasets of
short and of long gold answers (:func:`gating_decision`); it is stated once, here, and every
caller (matrix, CLI, benchmark) uses it. Results are cached on disk, keyed by what changes them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import Sequence

from evalsuite.errors import ConfigError
from evalsuite.judge._agreement import (
    THRESHOLD_METHOD,
    balanced_accuracy,
    cross_fit,
    decision_agreement,
    roc_auc,
    within_question,
)
from evalsuite.judge._criteria import CRITERIA
from evalsuite.judge._graded import (
    QUALIFY_SPLIT,
    GradedAgreement,
    GradedCriterion,
    GradedSet,
    graded_agreement,
    load_graded,
    median_gold_words,
    select_graded,
)
from evalsuite.judge._human import LONG_WORDS, QUALIFICATION_FILE, HumanItem, HumanSet, load_human
from evalsuite.judge._judges import Judge, Verdict
from evalsuite.judge._longform import PER_DATASET, LongFormSet, build_longform
from evalsuite.records import stable_hash, to_dict
from evalsuite.storage import atomic_write_json, cache_dir, file_lock

QUALIFY_VERSION = 2  # bump when the measurement itself changes: cached qualifications are then redone


@dataclass(frozen=True)
class Rule:
    """When a judge may gate. A judge qualifies when its accuracy meets the AUC bars on the human set
    and it ranks good above wrong long-form answers often enough; a criterion of a qualified judge
    gates when that criterion's own AUCs meet the bars. On a dataset whose gold answers are long
    (median of ``long_gold_words`` words or more), a criterion gates only when, besides, its figure on
    the graded long answers (qualify split, point estimate) meets its bar."""

    min_auc: float = 0.80  # ROC AUC against the human label, all answers
    min_auc_long: float = 0.75  # ROC AUC on answers of ``long_words`` words or more
    min_longform_share: float = 0.80  # long-form good > wrong share (mean of accuracy and completeness)
    max_unscored: float = 0.05  # share of answers a judge may leave unscored
    long_words: int = LONG_WORDS
    long_gold_words: int = 5  # a dataset whose gold answers have this median length in words or more is long-form
    min_graded_accuracy_auc: float = 0.80  # graded long answers: ROC AUC of correct (grade >= 3)
    min_graded_completeness_auc: float = 0.70  # graded long answers: ROC AUC of excellent vs incomplete

    def graded_bar(self, criterion: str) -> float:
        return {"accuracy": self.min_graded_accuracy_auc, "completeness": self.min_graded_completeness_auc}[criterion]

    def text(self) -> str:
        return (
            f"a judge gates only when its accuracy ROC AUC against people is >= {self.min_auc:.2f} on all answers "
            f"and >= {self.min_auc_long:.2f} on answers of {self.long_words}+ words, it ranks the good long-form "
            f"answer above the wrong one in >= {self.min_longform_share:.0%} of questions, and it leaves at most "
            f"{self.max_unscored:.0%} of answers unscored; a criterion of such a judge gates when its own AUCs "
            f"meet the same bars; on a dataset whose gold answers have a median of {self.long_gold_words}+ words, "
            f"a criterion gates only when, besides, its ROC AUC on the graded long answers (qualify split) is "
            f">= {self.min_graded_accuracy_auc:.2f} (accuracy: correct vs not) or "
            f">= {self.min_graded_completeness_auc:.2f} (completeness: excellent vs incomplete)"
        )


RULE = Rule()


@dataclass(frozen=True)
class CriterionAgreement:
    """One criterion's scores against the human 0/1 labels."""

    criterion: str
    auc: float
    auc_long: float
    kappa: float  # at the cross-fitted threshold (see ``QualificationData.threshold_method``)
    accuracy: float
    kappa_long: float
    accuracy_long: float
    thresholds: tuple[float, ...]  # per fold, each fitted on the other fold
    within_question: float  # share of same-question (correct, wrong) pairs scored correct > wrong
    within_question_pairs: int
    within_question_long: float  # the same over pairs of two answers of 5+ words
    within_question_long_pairs: int
    unscored: int


@dataclass(frozen=True)
class Anchor:
    """A published evaluator's agreement with people on the same items."""

    name: str
    label: str
    source: str  # where the figures come from: the file's published decisions
    accuracy: float
    kappa: float
    n: int
    accuracy_long: float
    kappa_long: float
    n_long: int
    # balanced accuracy of the binary decisions (the ROC AUC of a 0/1 score), all and 5+ words
    balanced_accuracy: float = float("nan")
    balanced_accuracy_long: float = float("nan")


@dataclass(frozen=True)
class LongFormShare:
    score: str  # "overall" (mean of accuracy and completeness), "accuracy" or "completeness"
    good_over_wrong: float
    good_over_partial: float


@dataclass(frozen=True)
class LongFormResult:
    shares: tuple[LongFormShare, ...]
    pairs_good_wrong: int
    pairs_good_partial: int
    items: int
    unscored: int

    def share(self, score: str = "overall") -> LongFormShare:
        return next(s for s in self.shares if s.score == score)


@dataclass(frozen=True)
class QualificationData:
    human_file: str
    human_sha256: str
    items_scored: int
    items_total: int
    items_long: int
    questions: int
    limit: int | None
    subset: bool  # True when --limit scored a question-grouped subset, not every answer
    subset_rule: str
    longform_items: int
    longform_pairs: int
    longform_questions: int
    longform_digest: str
    seed: int
    threshold_method: str


@dataclass(frozen=True)
class Qualification:
    judge: str
    judge_identity: str
    rule: Rule
    criteria: tuple[CriterionAgreement, ...]
    longform: LongFormResult
    anchors: tuple[Anchor, ...]
    items_per_second: float  # human-set answers scored per second, as measured (the machine may be shared)
    qualified: bool
    gating_criteria: tuple[str, ...]
    reasons: tuple[str, ...]
    data: QualificationData
    graded: GradedAgreement | None = None  # the graded long answers (qualify split); None: not measured
    graded_items_per_second: float = float("nan")  # graded long answers scored per second; nan: not measured

    def criterion(self, name: str) -> CriterionAgreement:
        return next(c for c in self.criteria if c.criterion == name)

    def as_json(self) -> dict:
        """Plain data for JSON (``to_dict``, with nan as null)."""
        return _json_ready(to_dict(self))

    @classmethod
    def from_json(cls, data: dict) -> "Qualification":
        """The qualification of :meth:`as_json` (a run's ``judges/*.json``); one stored before the
        graded long answers existed reads with ``graded = None``."""
        return _from_dict(data)


@dataclass(frozen=True)
class Gating:
    """Which criteria of a judge gate a dataset, and why each does or does not."""

    long_answers: bool
    criteria: tuple[str, ...]  # the gating criteria, in ``CRITERIA`` order
    reasons: tuple[tuple[str, str], ...]  # (criterion, why it gates or why not), every criterion

    def reason(self, criterion: str) -> str:
        return dict(self.reasons)[criterion]


def long_answers(examples: Sequence, rule: Rule = RULE) -> bool:
    """Whether a dataset's gold answers are long: the median length of every gold answer of its eval
    records (``examples``, each with ``references``) is ``rule.long_gold_words`` words or more."""
    median = median_gold_words(examples)
    return math.isfinite(median) and median >= rule.long_gold_words


def _graded_reason(rule: Rule, name: str, c: GradedCriterion | None, split: str = QUALIFY_SPLIT) -> tuple[bool, str]:
    what = "correct vs not" if name == "accuracy" else "excellent vs incomplete"
    bar = rule.graded_bar(name)
    if c is None or not math.isfinite(c.auc):
        return False, f"not measured on the graded long answers ({split} split)"
    ok = c.auc >= bar
    return ok, (
        f"ROC AUC {_fmt(c.auc)} [{_fmt(c.auc_low)}, {_fmt(c.auc_high)}] on the graded long answers ({what}, "
        f"{c.auc_answers} answers) {'>=' if ok else 'below'} {bar:.2f}"
    )


def gating_decision(qualification: Qualification, *, long_answers: bool, rule: Rule | None = None) -> Gating:
    """The criteria ``qualification``'s judge gates on a dataset of long (or short) gold answers, with reasons.

    Short gold answers: the criteria the short-answer rule lets gate (``qualification.gating_criteria``).
    Long gold answers: of those, the ones whose graded long-answer ROC AUC meets its bar too."""
    rule = rule or qualification.rule
    q = qualification
    reasons: list[tuple[str, str]] = []
    gating: list[str] = []
    for name in CRITERIA:
        if not q.qualified:
            reasons.append((name, q.reasons[0] if q.reasons else "does not qualify"))
            continue
        if name not in q.gating_criteria:
            why = next((r for r in q.reasons if r.startswith(f"{name} does not gate")), f"{name} does not gate")
            reasons.append((name, why + " (short answers)"))
            continue
        if not long_answers:
            gating.append(name)
            reasons.append((name, f"{name} gates: it meets the short-answer bars"))
            continue
        ok, why = _graded_reason(rule, name, q.graded.criterion(name) if q.graded is not None else None)
        if ok:
            gating.append(name)
            reasons.append((name, f"{name} gates long answers: {why}"))
        else:
            reasons.append((name, f"{name} does not gate long answers: {why}"))
    return Gating(long_answers, tuple(gating), tuple(reasons))


def gating_criteria(qualification: Qualification, *, long_answers: bool, rule: Rule | None = None) -> tuple[str, ...]:
    """The criteria that gate a dataset of long (``long_answers``) or short gold answers (see
    :func:`gating_decision`)."""
    return gating_decision(qualification, long_answers=long_answers, rule=rule).criteria


# --------------------------------------------------------------------------- items

SUBSET_RULE = (
    "whole questions in the order of sha256('subset:' + question_id), each taken while the total "
    "stays within the limit; the long-form check takes its first limit // 5 questions per dataset"
)
ITEMS_PER_LONGFORM_QUESTION = 5  # --limit N keeps the long-form check to about N answers too
_ANCHOR_FIELDS = frozenset(f.name for f in dataclasses.fields(Anchor))  # a stored file's older keys are left out
ANCHORS = (
    ("gpt4_eval", "GPT-4 as judge (Kamalloo et al. 2023)"),
    ("instructgpt_eval", "InstructGPT as judge (Kamalloo et al. 2023)"),
    ("bem", "BEM (BERT answer equivalence; Kamalloo et al. 2023)"),
    ("em", "exact match (computed in the file)"),
)


def longform_per_dataset(limit: int | None) -> int:
    """Long-form questions per dataset: all of them (up to ``PER_DATASET``), or about ``limit`` answers in all."""
    return PER_DATASET if limit is None else max(1, min(PER_DATASET, limit // ITEMS_PER_LONGFORM_QUESTION))


def select_items(items: Sequence[HumanItem], limit: int | None) -> list[HumanItem]:
    """Every item, or a deterministic subset of at most ``limit`` items made of whole questions."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    by_question: dict[str, list[HumanItem]] = {}
    for item in items:
        by_question.setdefault(item.question_id, []).append(item)
    chosen: set[str] = set()
    total = 0
    for qid in sorted(by_question, key=lambda q: stable_hash(f"subset:{q}", 64)):
        size = len(by_question[qid])
        if total + size <= limit:
            chosen.add(qid)
            total += size
    return [item for item in items if item.question_id in chosen]


def _score(verdict: Verdict, criterion: str) -> float:
    return float(getattr(verdict, criterion))


def criterion_agreement(criterion: str, scores: Sequence[float], items: Sequence[HumanItem]) -> CriterionAgreement:
    labels = [item.human for item in items]
    qids = [item.question_id for item in items]
    long = [item.long for item in items]
    fit = cross_fit(scores, labels, qids)
    acc, kappa, _ = decision_agreement(fit.decisions, labels)
    long_decisions = [d for d, is_long in zip(fit.decisions, long) if is_long]
    long_labels = [y for y, is_long in zip(labels, long) if is_long]
    acc_long, kappa_long, _ = decision_agreement(long_decisions, long_labels)
    long_scores = [s for s, is_long in zip(scores, long) if is_long]
    within, pairs = within_question(scores, labels, qids)
    long_qids = [q for q, is_long in zip(qids, long) if is_long]
    within_long, pairs_long = within_question(long_scores, long_labels, long_qids)
    return CriterionAgreement(
        criterion=criterion,
        auc=roc_auc(scores, labels),
        auc_long=roc_auc(long_scores, long_labels),
        kappa=kappa,
        accuracy=acc,
        kappa_long=kappa_long,
        accuracy_long=acc_long,
        thresholds=fit.thresholds,
        within_question=within,
        within_question_pairs=pairs,
        within_question_long=within_long,
        within_question_long_pairs=pairs_long,
        unscored=sum(not math.isfinite(s) for s in scores),
    )


def anchors(items: Sequence[HumanItem]) -> tuple[Anchor, ...]:
    """The published evaluators' decisions on exactly ``items`` (nulls skipped), against the human labels."""
    out = []
    for name, label in ANCHORS:
        decided = [(dict(item.auto).get(name), item.human, item.long) for item in items]
        decided = [(d, y, is_long) for d, y, is_long in decided if d is not None]
        if not decided:
            continue
        acc, kappa, n = decision_agreement([d for d, _, _ in decided], [y for _, y, _ in decided])
        acc_long, kappa_long, n_long = decision_agreement(
            [d for d, _, long in decided if long], [y for _, y, long in decided if long]
        )
        bal = balanced_accuracy([d for d, _, _ in decided], [y for _, y, _ in decided])
        bal_long = balanced_accuracy([d for d, _, long in decided if long], [y for _, y, long in decided if long])
        source = (
            f"computed from the file's auto.{name} decisions; balanced accuracy = the ROC AUC of these binary decisions"
        )
        out.append(Anchor(name, label, source, acc, kappa, n, acc_long, kappa_long, n_long, bal, bal_long))
    return tuple(out)


def longform_result(verdicts: Sequence[Verdict], longform: LongFormSet) -> LongFormResult:
    by_question: dict[tuple[str, str], dict[str, Verdict]] = {}
    for verdict, x in zip(verdicts, longform.items):
        by_question.setdefault((x.dataset, x.question_id), {})[x.label] = verdict

    def value(v: Verdict, score: str) -> float:
        return v.overall if score == "overall" else _score(v, score)

    def share(better: str, worse: str, score: str) -> float:
        wins = [
            value(g[better], score) > value(g[worse], score)  # nan never wins
            for g in by_question.values()
            if better in g and worse in g
        ]
        return sum(wins) / len(wins) if wins else float("nan")

    shares = tuple(
        LongFormShare(score, share("good", "wrong", score), share("good", "partial", score))
        for score in ("overall", *CRITERIA)
    )
    unscored = sum(not math.isfinite(v.overall) for v in verdicts)
    return LongFormResult(
        shares, longform.pairs("good", "wrong"), longform.pairs("good", "partial"), len(longform.items), unscored
    )


def _fmt(x: float, digits: int = 3) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.{digits}f}"


def decide(
    rule: Rule, criteria: Sequence[CriterionAgreement], longform: LongFormResult, items_scored: int, items_long: int
) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """(qualified, gating criteria, reasons in words) under ``rule``."""
    by_name = {c.criterion: c for c in criteria}
    accuracy = by_name["accuracy"]
    overall = longform.share("overall").good_over_wrong
    failed, passed = [], []

    def bar(ok: bool, words: str) -> None:
        (passed if ok else failed).append(words)

    bar(
        accuracy.auc >= rule.min_auc,
        f"accuracy ROC AUC against people {_fmt(accuracy.auc)} on {items_scored} answers "
        f"({'>=' if accuracy.auc >= rule.min_auc else 'below the bar'} {rule.min_auc:.2f})",
    )
    bar(
        accuracy.auc_long >= rule.min_auc_long,
        f"accuracy ROC AUC {_fmt(accuracy.auc_long)} on the {items_long} answers of {rule.long_words}+ words "
        f"({'>=' if accuracy.auc_long >= rule.min_auc_long else 'below the bar'} {rule.min_auc_long:.2f})",
    )
    bar(
        overall >= rule.min_longform_share,
        f"good long-form answer above the wrong one in {_fmt(overall * 100, 0)}% of {longform.pairs_good_wrong} "
        f"questions ({'>=' if overall >= rule.min_longform_share else 'below the bar'} "
        f"{rule.min_longform_share:.0%})",
    )
    scored = items_scored + longform.items
    unscored = (max(c.unscored for c in criteria) if criteria else 0) + longform.unscored
    share_unscored = unscored / scored if scored else 1.0
    bar(
        share_unscored <= rule.max_unscored,
        f"{unscored} of {scored} answers unscored ({share_unscored:.1%}; "
        f"{'within' if share_unscored <= rule.max_unscored else 'above'} the {rule.max_unscored:.0%} allowed)",
    )
    qualified = not failed
    reasons: list[str] = []
    if qualified:
        reasons.append("qualifies to gate: " + "; ".join(passed))
    else:
        reasons.append(
            "does not qualify, so it reports but never gates: "
            + "; ".join(failed)
            + (f" (met: {'; '.join(passed)})" if passed else "")
        )
    gating: list[str] = []
    for name in CRITERIA:
        c = by_name[name]
        ok = c.auc >= rule.min_auc and c.auc_long >= rule.min_auc_long
        if qualified and ok:
            gating.append(name)
            reasons.append(
                f"{name} gates: its ROC AUC {_fmt(c.auc)} >= {rule.min_auc:.2f} and "
                f"{_fmt(c.auc_long)} >= {rule.min_auc_long:.2f} on answers of {rule.long_words}+ words"
            )
        elif qualified:
            low = [f"ROC AUC {_fmt(c.auc)} below {rule.min_auc:.2f}"] if not c.auc >= rule.min_auc else []
            low += (
                [f"ROC AUC {_fmt(c.auc_long)} on answers of {rule.long_words}+ words below {rule.min_auc_long:.2f}"]
                if not c.auc_long >= rule.min_auc_long
                else []
            )
            reasons.append(f"{name} does not gate: its " + " and ".join(low))
    return qualified, tuple(gating), tuple(reasons)


# --------------------------------------------------------------------------- qualify


def measure(
    judge: Judge,
    human: HumanSet,
    longform: LongFormSet,
    *,
    limit: int | None = None,
    rule: Rule = RULE,
    progress: bool = False,
    graded: GradedSet | None = None,
) -> Qualification:
    """Score the human set (or its ``limit`` subset), the long-form set and the ``qualify`` rows of the
    graded long answers (or a ``limit`` subset by question) with ``judge``; no cache."""
    items = select_items(human.items, limit)
    start = time.perf_counter()
    verdicts = judge.judge([item.judge_item() for item in items], progress=progress)
    seconds = time.perf_counter() - start
    criteria = tuple(criterion_agreement(c, [_score(v, c) for v in verdicts], items) for c in CRITERIA)
    lf_verdicts = judge.judge([x.item for x in longform.items], progress=progress) if longform.items else []
    lf = longform_result(lf_verdicts, longform)
    items_long = sum(item.long for item in items)
    qualified, gating, reasons = decide(rule, criteria, lf, len(items), items_long)
    graded_result = None
    graded_speed = float("nan")
    if graded is not None:
        graded_items = select_graded(graded.split(QUALIFY_SPLIT), limit)  # qualify rows only: never the fit rows
        start = time.perf_counter()
        graded_verdicts = judge.judge([x.judge_item() for x in graded_items], progress=progress) if graded_items else []
        graded_seconds = time.perf_counter() - start
        if graded_items and graded_seconds > 0:
            graded_speed = len(graded_items) / graded_seconds
        graded_result = graded_agreement(graded_verdicts, graded_items, graded, QUALIFY_SPLIT, limit=limit)
    data = QualificationData(
        human_file=human.file,
        human_sha256=human.sha256,
        items_scored=len(items),
        items_total=len(human.items),
        items_long=items_long,
        questions=len({i.question_id for i in items}),
        limit=limit,
        subset=len(items) < len(human.items),
        subset_rule=SUBSET_RULE if len(items) < len(human.items) else "",
        longform_items=len(longform.items),
        longform_pairs=lf.pairs_good_wrong,
        longform_questions=len(longform.questions),
        longform_digest=longform.digest,
        seed=longform.seed,
        threshold_method=THRESHOLD_METHOD,
    )
    q = Qualification(
        judge=judge.name,
        judge_identity=judge.identity,
        rule=rule,
        criteria=criteria,
        longform=lf,
        anchors=anchors(items),
        items_per_second=len(items) / seconds if seconds > 0 else float("inf"),
        qualified=qualified,
        gating_criteria=gating,
        reasons=reasons,
        data=data,
        graded=graded_result,
        graded_items_per_second=graded_speed,
    )
    if graded_result is not None:  # the long-answer verdict, in words, beside the short-answer one
        long = gating_decision(q, long_answers=True, rule=rule)
        q = dataclasses.replace(
            q,
            reasons=reasons
            + tuple(
                f"on datasets of long gold answers (median {rule.long_gold_words}+ words): {why}"
                for name, why in long.reasons
                if name in gating
            ),
        )
    return q


def cache_key(
    judge: Judge, human: HumanSet, longform: LongFormSet, limit: int | None, rule: Rule, graded: GradedSet | None = None
) -> str:
    return stable_hash(
        {
            "version": QUALIFY_VERSION,
            "judge": judge.identity,
            "human": human.sha256,
            "longform": longform.digest,
            "limit": limit,
            "rule": to_dict(rule),
            "graded": graded.sha256 if graded is not None else None,
        },
        32,
    )


def _from_dict(data: dict) -> Qualification:
    def tup(x):
        return tuple(x) if isinstance(x, list) else x

    nan = float("nan")

    def num(x):
        return nan if x is None else x

    criteria = tuple(
        CriterionAgreement(**{k: (tup(v) if k == "thresholds" else num(v)) for k, v in c.items()})
        for c in data["criteria"]
    )
    longform = data["longform"]
    lf = LongFormResult(
        tuple(LongFormShare(**{k: num(v) for k, v in s.items()}) for s in longform["shares"]),
        longform["pairs_good_wrong"],
        longform["pairs_good_partial"],
        longform["items"],
        longform["unscored"],
    )
    return Qualification(
        judge=data["judge"],
        judge_identity=data["judge_identity"],
        rule=Rule(**data["rule"]),
        criteria=criteria,
        longform=lf,
        anchors=tuple(Anchor(**{k: num(v) for k, v in a.items() if k in _ANCHOR_FIELDS}) for a in data["anchors"]),
        items_per_second=num(data["items_per_second"]),
        qualified=data["qualified"],
        gating_criteria=tuple(data["gating_criteria"]),
        reasons=tuple(data["reasons"]),
        data=QualificationData(**data["data"]),
        graded=_graded_from_dict(data.get("graded")),
        graded_items_per_second=num(data.get("graded_items_per_second")),
    )


def _graded_from_dict(data: dict | None) -> GradedAgreement | None:
    if not data:
        return None
    nan = float("nan")
    criteria = tuple(GradedCriterion(**{k: (nan if v is None else v) for k, v in c.items()}) for c in data["criteria"])
    return GradedAgreement(**{**data, "criteria": criteria})


def _json_ready(obj):
    """nan and inf as null: the cache file is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_ready(v) for v in obj]
    return obj


def qualification_items(seed: int = 0, limit: int | None = None) -> list:
    """The :class:`JudgeItem` s :func:`qualify` has a judge score (human set, long-form set, then the
    graded long answers of the qualify split), without scoring them: what a qualification costs."""
    return [item for part in qualification_parts(seed, limit) for item in part[1]]


def qualification_parts(seed: int = 0, limit: int | None = None) -> list[tuple[str, list]]:
    """(what, :class:`JudgeItem` s) of each set :func:`qualify` scores, in order, without scoring them."""
    human = load_human(QUALIFICATION_FILE)
    longform = build_longform(seed, per_dataset=longform_per_dataset(limit))
    graded = load_graded()
    return [
        (
            f"human-labelled short answers ({human.file})",
            [item.judge_item() for item in select_items(human.items, limit)],
        ),
        ("long-form check (fine-tune pools)", [x.item for x in longform.items]),
        (
            f"graded long answers ({graded.file}, {QUALIFY_SPLIT} split)",
            [x.judge_item() for x in select_graded(graded.split(QUALIFY_SPLIT), limit)],
        ),
    ]


def qualify(
    judge: Judge,
    *,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = False,
    rule: Rule = RULE,
    cache: bool = True,
) -> Qualification:
    """May ``judge`` gate? Scores the human set (all answers, or a ``limit`` subset of whole questions)
    and the long-form set of the ``seed`` pools (with ``limit``, ``limit // 5`` questions per dataset
    at most) and the ``qualify`` rows of the graded long answers (with ``limit``, about ``limit`` of
    them, by question), and applies ``rule``. A result is cached on disk
    (``$EVALSUITE_CACHE/qualification``) under the judge's identity and configuration, the human and
    graded files' sha256, the long-form set's hash, the limit and the rule, so a rerun is instant."""
    human = load_human(QUALIFICATION_FILE)
    longform = build_longform(seed, per_dataset=longform_per_dataset(limit))
    graded = load_graded()
    key = cache_key(judge, human, longform, limit, rule, graded)
    path = cache_dir("qualification") / f"{key}.json"
    if cache:
        with file_lock(path):
            if path.is_file():
                try:
                    return _from_dict(json.loads(path.read_text(encoding="utf-8")))
                except (ValueError, KeyError, TypeError):
                    pass  # a stale or damaged entry: measure again
            result = measure(judge, human, longform, limit=limit, rule=rule, progress=progress, graded=graded)
            atomic_write_json(path, result.as_json())
            return result
    return measure(judge, human, longform, limit=limit, rule=rule, progress=progress, graded=graded)
