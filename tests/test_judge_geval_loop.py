"""The G-Eval run loop on a scripted judge: seeds, retries of unscored runs, the judge cache, verdicts."""

import math

import pytest

from evalsuite.judge import CRITERIA, JudgeCache, JudgeItem, load_steps
from evalsuite.judge._cache import run_key
from evalsuite.judge._judges import GEvalJob, GEvalLoop, GEvalRun

ITEMS = [JudgeItem("a", "q?", ("r",), (), "x"), JudgeItem("b", "q?", ("r",), (), "y")]


class _Scripted(GEvalLoop):
    """Scores a run from a table by (item, criterion, seed); a seed not in the table writes no score."""

    def __init__(self, scores, *, repeats=2, retries=2, temperature=1.0, cache_path=None, together=True):
        super().__init__()
        self.name, self.steps_version = "scripted", "v1"
        self.repeats, self.retries, self.temperature = repeats, retries, temperature
        self.steps = {c: load_steps(c) for c in CRITERIA}
        self._cache = JudgeCache(cache_path) if cache_path else None
        self.runs_together = together
        self.scores = scores
        self.scored: list[tuple[str, str, int]] = []
        self.batches: list[int] = []

    @property
    def model_identity(self):
        return "scripted-model"

    def _run_key(self, run: GEvalRun) -> str:
        return run_key(item=run.job.item.id, criterion=run.job.criterion, repeat=run.repeat, attempt=run.attempt)

    def _score(self, runs, progress):
        self.batches.append(len(runs))
        for run in runs:
            self.scored.append((run.job.item.id, run.job.criterion, run.seed))
            self.stats["model_calls"] += 1
            score = self.scores.get((run.job.item.id, run.job.criterion, run.seed))
            yield {"text": f"seed {run.seed}", "score": float("nan") if score is None else score}

    def judge(self, items, progress=False):
        jobs = [GEvalJob(item, c) for item in items for c in CRITERIA]
        rows = self._runs(jobs, "sample", self.repeats, progress)
        return self._verdicts(items, rows, ["sample"] * len(items), [False] * len(items))


def _all_scored(value=3.0):
    return {(i.id, c, seed): value for i in ITEMS for c in CRITERIA for seed in (0, 1)}


def test_runs_are_seeded_by_repeat_and_attempt_and_only_unscored_runs_are_tried_again():
    scores = _all_scored()
    del scores[("a", "accuracy", 1)]  # repeat 1 writes no score at attempt 0 ...
    scores[("a", "accuracy", 100_001)] = 5.0  # ... and a score at attempt 1
    judge = _Scripted(scores)
    a, b = judge.judge(ITEMS)
    assert ("a", "accuracy", 100_001) in judge.scored and len(judge.scored) == 9
    assert judge.batches == [8, 1]  # attempt by attempt, all open runs together
    assert a.accuracy == 4.0 and a.accuracy_std == pytest.approx(1.0) and a.unscored == 0
    assert a.raw == (
        "accuracy#0: seed 0",
        "accuracy#1: seed 100001",
        "completeness#0: seed 0",
        "completeness#1: seed 1",
    )
    assert (b.accuracy, b.completeness, b.runs, b.mode, b.logprobs_missing) == (3.0, 3.0, 2, "sample", False)
    assert judge.stats == {"model_calls": 9, "cache_hits": 0, "judge_cache_hits": 0, "items": 2}


def test_a_run_unscored_in_every_attempt_counts_as_unscored_with_its_last_text():
    scores = _all_scored()
    del scores[("b", "completeness", 0)]
    (v,) = _Scripted(scores, retries=2).judge(ITEMS[1:])
    assert v.completeness == 3.0 and v.unscored == 1
    assert v.raw[2] == "completeness#0: seed 200000"


def test_greedy_runs_are_not_tried_again():
    judge = _Scripted({}, repeats=1, temperature=0.0)
    (v,) = judge.judge(ITEMS[:1])
    assert math.isnan(v.accuracy) and math.isnan(v.overall) and v.unscored == 2 and len(judge.scored) == 2


def test_without_runs_together_each_run_finishes_its_attempts_first():
    scores = _all_scored()
    del scores[("a", "accuracy", 0)]
    judge = _Scripted(scores, together=False)
    judge.judge(ITEMS[:1])
    assert judge.scored[:3] == [("a", "accuracy", 0), ("a", "accuracy", 100_000), ("a", "accuracy", 200_000)]
    assert set(judge.batches) == {1}


def test_a_rerun_reads_every_run_from_the_judge_cache(tmp_path):
    path = str(tmp_path / "judge.sqlite")
    scores = _all_scored()
    del scores[("a", "completeness", 1)]
    first = _Scripted(scores, cache_path=path).judge(ITEMS)
    assert JudgeCache(path).count("scripted-model") == 8 + 2  # the unscored run's two retries are rows too
    again = _Scripted({}, cache_path=path)
    assert again.judge(ITEMS) == first and again.scored == []
    assert again.stats["judge_cache_hits"] == again.stats["cache_hits"] == 10
