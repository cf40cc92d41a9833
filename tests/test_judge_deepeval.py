"""The deepeval bridge, offline: our judges as deepeval metrics, and deepeval's GEval on our model."""

import json
import math
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from deepeval import assert_test  # noqa: E402  (the bridge set the telemetry opt-out first)
from deepeval.test_case import LLMTestCase  # noqa: E402

from evalsuite.judge.deepeval_bridge import AccuracyMetric, CompletenessMetric, EvalsuiteLLM, geval_metric

CASE = dict(
    input="who wrote the novel frankenstein",
    expected_output="Mary Shelley",
    retrieval_context=["Frankenstein is an 1818 novel written by the English author Mary Shelley."],
)


def test_bridge_turns_deepeval_telemetry_off():
    assert os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] == "YES"
    import deepeval.telemetry as telemetry

    assert telemetry.telemetry_opt_out() is True


def test_assert_test_passes_a_good_answer_with_a_local_judge():
    case = LLMTestCase(actual_output="Mary Shelley wrote it.", **CASE)
    metrics = [AccuracyMetric("token-overlap", threshold=3.0), CompletenessMetric("token-overlap", threshold=3.0)]
    assert_test(case, metrics, run_async=False)
    assert metrics[0].score is not None


def test_assert_test_fails_a_wrong_answer_with_a_local_judge():
    case = LLMTestCase(actual_output="Charles Dickens.", **CASE)
    with pytest.raises(AssertionError):
        assert_test(case, [AccuracyMetric("token-overlap", threshold=3.0)], run_async=False)


def test_metric_measures_on_the_1_to_5_scale():
    metric = CompletenessMetric("token-overlap", threshold=4.0)
    score = metric.measure(LLMTestCase(actual_output="Shelley", **CASE))
    assert score == pytest.approx(3.0) and metric.is_successful() is False
    assert "token-overlap" in metric.reason


def test_deepeval_geval_runs_on_the_bundled_model(tmp_path):
    from evalsuite.judge import JudgeItem, make_judge

    llm = EvalsuiteLLM("bundled:smollm2-135m-instruct")
    metric = geval_metric("accuracy", llm)
    assert metric.evaluation_steps and "Every claim" in metric.rubric[-1].expected_outcome
    judge = make_judge(
        "deepeval:bundled:smollm2-135m-instruct", repeats=1, temperature=0.0, cache_path=str(tmp_path / "j.sqlite")
    )
    assert judge.config["factory"] == "deepeval-geval"
    same = make_judge("bundled:smollm2-135m-instruct", engine="deepeval", cache_path=str(tmp_path / "j.sqlite"))
    assert same.config == judge.config  # engine="deepeval" goes through the same registry entry
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


class _Server(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint on loopback: rejects the key (401), or answers with ``text``."""

    mode = "reject"
    text = ""
    calls = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "reject":
            body, status = (
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                401,
            )
        else:
            body, status = (
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.text}}
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
                200,
            )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Server,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"openai:http://127.0.0.1:{httpd.server_address[1]}/v1#judge-model"
    httpd.shutdown()
    httpd.server_close()


def test_a_rejected_key_raises_naming_the_fix_and_caches_nothing(server, tmp_path):
    from evalsuite.errors import EvalsuiteError
    from evalsuite.judge import JudgeCache, JudgeItem, make_judge

    handler, spec = server
    path = tmp_path / "judge.sqlite"
    judge = make_judge(f"deepeval:{spec}", cache_path=str(path))
    item = JudgeItem("x", CASE["input"], (CASE["expected_output"],), tuple(CASE["retrieval_context"]), "Mary Shelley")
    with pytest.raises(EvalsuiteError, match="OPENAI_API_KEY") as err:
        judge.judge([item])
    assert "\n" not in str(err.value) and handler.calls >= 1
    assert JudgeCache(path).count() == 0  # no nan row that a rerun would read back as "unscored"
    handler.mode, handler.text = "answer", "4"  # the key is fixed: the rerun asks the model and scores
    (verdict,) = make_judge(f"deepeval:{spec}", cache_path=str(path)).judge([item])
    assert verdict.accuracy == 4.0 and verdict.completeness == 4.0 and verdict.unscored == 0


def test_only_an_answer_without_a_score_is_unscored(server, tmp_path):
    from evalsuite.judge import JudgeCache, JudgeItem, make_judge

    handler, spec = server
    handler.mode, handler.text = "answer", "I would rather not say."
    path = tmp_path / "judge.sqlite"
    item = JudgeItem("x", CASE["input"], (CASE["expected_output"],), (), "Mary Shelley")
    (verdict,) = make_judge(f"deepeval:{spec}", cache_path=str(path)).judge([item])
    assert math.isnan(verdict.accuracy) and verdict.unscored == 2
    assert JudgeCache(path).count() == 2  # a real answer without a score is cached as unscored
