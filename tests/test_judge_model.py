"""The G-Eval judge on the bundled SmolLM2 model: scoring modes, cache, no-logprobs servers.

Each test judges two items, so the whole file runs in a few minutes on two CPU cores.
"""

import math
from dataclasses import replace

from evalsuite.judge import JudgeItem, make_judge, parse_score
from evalsuite.models import BackendCapabilities, load_model, register_backend

MODEL = "bundled:smollm2-135m-instruct"
ITEMS = [
    JudgeItem(
        "good",
        "who wrote the novel frankenstein",
        ("Mary Shelley",),
        ("Frankenstein is an 1818 novel written by the English author Mary Shelley.",),
        "Mary Shelley",
    ),
    JudgeItem(
        "wrong",
        "who wrote the novel frankenstein",
        ("Mary Shelley",),
        ("Frankenstein is an 1818 novel written by the English author Mary Shelley.",),
        "Charles Dickens",
    ),
]


def _in_range(score):
    return math.isnan(score) or 1.0 <= score <= 5.0


def test_logprobs_mode_scores_from_the_first_token_and_a_rerun_makes_no_model_calls(tmp_path):
    path = str(tmp_path / "judge.sqlite")
    judge = make_judge(MODEL, mode="logprobs", cache_path=path)
    verdicts = judge.judge(ITEMS)
    assert judge.stats["model_calls"] + judge.stats["cache_hits"] == 4  # 2 items x 2 criteria, one step each
    for v in verdicts:
        assert v.mode == "logprobs" and v.runs == 1 and v.unscored == 0 and not v.logprobs_missing
        assert 1.0 <= v.accuracy <= 5.0 and 1.0 <= v.completeness <= 5.0
        assert v.steps_version == "v1" and v.judge == judge.name
    again = make_judge(MODEL, mode="logprobs", cache_path=path)
    assert again.judge(ITEMS) == verdicts
    assert again.stats["model_calls"] == 0 and again.stats["judge_cache_hits"] == 4


def test_sample_mode_repeats_and_reruns_from_the_cache(tmp_path):
    path = str(tmp_path / "judge.sqlite")
    judge = make_judge(MODEL, mode="sample", repeats=3, temperature=1.0, cache_path=path)
    verdicts = judge.judge(ITEMS)
    for v in verdicts:
        assert v.mode == "sample" and v.runs == 3 and len(v.raw) == 6
        assert _in_range(v.accuracy) and _in_range(v.completeness)
        assert v.accuracy_std >= 0 or math.isnan(v.accuracy_std)
    first = judge.stats["model_calls"] + judge.stats["cache_hits"]
    assert first >= 12  # 2 items x 2 criteria x 3 repeats, plus retries of unparseable runs
    again = make_judge(MODEL, mode="sample", repeats=3, temperature=1.0, cache_path=path)
    assert again.judge(ITEMS) == verdicts
    assert again.stats["model_calls"] == 0 and again.stats["judge_cache_hits"] >= 12
    # another temperature is another judge configuration: no shared rows
    other = make_judge(MODEL, mode="sample", repeats=1, temperature=0.5, cache_path=path)
    other.judge(ITEMS[:1])
    assert other.stats["judge_cache_hits"] == 0


class _NoLogprobsServer:
    """A backend like an OpenAI-compatible server that ignores the top_logprobs request."""

    def __init__(self, inner):
        self.inner = inner
        self.identity = "no-logprobs:" + inner.identity
        self.batch_size, self.concurrency, self.tokenizer = inner.batch_size, 1, inner.tokenizer

    def generate_batch(self, prompts, settings):
        out = self.inner.generate_batch(prompts, replace(settings, top_logprobs=0))
        return [replace(g, top_logprobs=None, logprobs_missing=settings.top_logprobs > 0) for g in out]


def test_missing_logprobs_are_reported_and_sampling_is_used(tmp_path):
    inner = load_model(MODEL).backend  # loaded first: a backend factory must not call load_model itself
    register_backend(
        "nologprobs",
        lambda target, adapter, options: _NoLogprobsServer(inner),
        capabilities=BackendCapabilities(tokenizer=True),
    )
    judge = make_judge(
        f"nologprobs:{MODEL}",
        mode="logprobs",
        repeats=2,
        temperature=1.0,
        form="compact",
        cache_path=str(tmp_path / "judge.sqlite"),
    )
    verdicts = judge.judge(ITEMS[:1])
    (v,) = verdicts
    assert v.logprobs_missing is True and v.mode == "sample" and v.runs == 2
    assert _in_range(v.accuracy)


def test_unparseable_runs_are_nan_never_zero(tmp_path):
    # one new token after "Score: " can only be parsed when it is a digit; with max_new_tokens=1 at a
    # high temperature some runs are not, and they must be counted as unscored, not scored 0
    judge = make_judge(
        MODEL,
        mode="sample",
        repeats=4,
        temperature=3.0,
        retries=0,
        max_new_tokens=1,
        cache_path=str(tmp_path / "judge.sqlite"),
    )
    (v,) = judge.judge(ITEMS[:1])
    scores = [r.split(": ", 1)[1] for r in v.raw]
    assert len(scores) == 8
    assert v.accuracy != 0 and v.completeness != 0
    assert _in_range(v.accuracy) and _in_range(v.completeness)
    assert v.unscored == sum(parse_score(text) is None for text in scores)
