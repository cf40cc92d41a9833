"""What the model under test writes is untrusted: any text reaches the judges and the metrics,
and each answer gets a score in range or an unscored verdict, never an exception."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evalsuite.judge import JudgeItem, make_judge
from evalsuite.metrics import reference_metrics

HOSTILE = [
    "2011⁶",  # a superscript citation: str.isdigit is true, int() cannot read it
    "It was ²³ and ٣٤ and ߅ years",
    "e\u0301\u0301\u0301 combining marks",
    "\u202eevil\u202c \u2066isolated\u2069",
    "🧪🧬 emoji answer 👍🏽",
    "NUL \x00 and bell \x07 and escape \x1b[31m",
    "",
    "   \n\t  ",
    "<script>alert(1)</script>",
    "| a | b |\n|---|---|\n``` <!-- ]]>",
    "9" * 6000,  # digits past int()'s string limit
]


@pytest.fixture(scope="module")
def judges():
    return [make_judge("learned-correctness"), make_judge("token-overlap")]


def _check(verdict) -> None:
    for criterion in ("accuracy", "completeness"):
        value = getattr(verdict, criterion)
        assert math.isnan(value) or 1.0 <= value <= 5.0, (criterion, value)


@pytest.mark.parametrize("answer", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_every_judge_scores_hostile_answers(judges, answer):
    item = JudgeItem(
        id="q1",
        question="In which year was the bridge opened?",
        references=("2011",),
        context=("The bridge opened in 2011.",),
        answer=answer,
    )
    for judge in judges:
        (verdict,) = judge.judge([item])
        _check(verdict)


def test_a_one_megabyte_answer_is_scored(judges):
    answer = ("The bridge opened in 2011⁶ after <b>long</b> delays. " * 20000)[:1_000_000]
    item = JudgeItem(id="q1", question="When did the bridge open?", references=("2011",), context=(), answer=answer)
    for judge in judges:
        (verdict,) = judge.judge([item])
        _check(verdict)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.text(max_size=300), reference=st.text(min_size=1, max_size=40))
@example(answer="2011⁶", reference="2011")
@example(answer="\x00", reference="\u202e")
def test_any_text_gets_a_verdict_in_range(judges, answer, reference):
    item = JudgeItem(id="q", question="What is it?", references=(reference,), context=(answer[:50],), answer=answer)
    for judge in judges:
        (verdict,) = judge.judge([item])
        _check(verdict)


@settings(max_examples=200, deadline=None)
@given(answer=st.text(max_size=300), reference=st.text(max_size=40))
@example(answer="2011⁶", reference="2011")
def test_reference_metrics_take_any_text(answer, reference):
    metrics = reference_metrics(answer, (reference,), yes_no=None)
    for name, value in metrics.items():
        assert value is None or (isinstance(value, float) and (math.isnan(value) or 0.0 <= value <= 1.0)), (name, value)
