"""The deepeval bridge, offline: our judges as deepeval metrics, and deepeval's GEval on our model."""
import os

import pytest

from evalsuite.judge.deepeval_bridge import AccuracyMetric, CompletenessMetric, EvalsuiteLLM, geval_metric

from deepeval import assert_test  # noqa: E402  (the bridge set the telemetry opt-out first)
from deepeval.test_case import LLMTestCase  # noqa: E402

CASE = dict(input="who wrote the novel frankenstein", expected_output="Mary Shelley",
            retrieval_context=["Frankenstein is an 1818 novel written by the English author Mary Shelley."])


def test_bridge_turns_deepeval_telemetry_off():
    assert os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] == "YES"
    import deepeval.telemetry as telemetry

    assert telemetry.telemetry_opt_out() is True


def test_assert_test_passes_a_good_answer_with_a_local_judge():
    case = LLMTestCase(actual_output="Mary Shelley wrote it.", **CASE)
    metrics = [AccuracyMetric("reference", threshold=3.0), CompletenessMetric("reference", threshold=3.0)]
    assert_test(case, metrics, run_async=False)
    assert metrics[0].score is not None


def test_assert_test_fails_a_wrong_answer_with_a_local_judge():
    case = LLMTestCase(actual_output="Charles Dickens.", **CASE)
    with pytest.raises(AssertionError):
        assert_test(case, [AccuracyMetric("reference", threshold=3.0)], run_async=False)


def test_metric_measures_on_the_1_to_5_scale():
    metric = CompletenessMetric("reference", threshold=4.0)
    score = metric.measure(LLMTestCase(actual_output="Shelley", **CASE))
    assert score == pytest.approx(3.0) and metric.is_successful() is False
    assert "reference (token overlap)" in metric.reason


def test_deepeval_geval_runs_on_the_bundled_model(tmp_path):
    from evalsuite.judge import JudgeItem, make_judge

    llm = EvalsuiteLLM("bundled:smollm2-135m-instruct")
    metric = geval_metric("accuracy", llm)
    assert metric.evaluation_steps and "Every claim" in metric.rubric[-1].expected_outcome
    judge = make_judge("bundled:smollm2-135m-instruct", engine="deepeval", repeats=1, temperature=0.0,
                       cache_path=str(tmp_path / "j.sqlite"))
    item = JudgeItem("x", CASE["input"], (CASE["expected_output"],), tuple(CASE["retrieval_context"]), "Mary Shelley")
    (verdict,) = judge.judge([item])
    assert verdict.judge == "bundled:smollm2-135m-instruct/deepeval-geval/sample"
    for score in (verdict.accuracy, verdict.completeness):
        assert score != score or 1.0 <= score <= 5.0  # a score in 1..5 or nan (unscored), never 0
    assert verdict.runs == 1 and verdict.mode == "sample"
    first_calls = judge.stats["model_calls"]
    assert first_calls + judge.stats["cache_hits"] == 2  # one greedy run per criterion (model or model cache)
    assert judge.stats["judge_cache_hits"] == 0
    judge.judge([item])
    assert judge.stats["model_calls"] == first_calls and judge.stats["judge_cache_hits"] == 2  # rerun: judge cache
