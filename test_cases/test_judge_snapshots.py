"""Snapshots of what the judges see and say on the calibration set.

A changed prompt template, criterion text, frozen steps or judge output shows up here as a
snapshot diff; ``pytest test_cases --snapshot-update`` accepts a reviewed change.
Scores are rounded to 3 decimals so float noise does not count as a change. The bundled
judge's verdicts come from the judge cache after the first run, and depend on the model
identity (weights, dtype: fp32 on the CPU, and how a prompt is read); each item is scored
alone, so no batch padding moves them. The snapshot was made by this test on a fresh cache.
"""
import math

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from evalsuite.judge import CRITERIA, FORMS, load_calibration, load_steps, make_judge, render

BUNDLED = "bundled:smollm2-135m-instruct"


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture(scope="module")
def calibration():
    return load_calibration()


def _sample(calibration, per_dataset=1):
    """The good, partial and wrong answers of the first ``per_dataset`` questions of each dataset."""
    questions: dict[str, list[str]] = {}
    for c in calibration:
        ids = questions.setdefault(c.dataset, [])
        if c.question_id not in ids and len(ids) < per_dataset:
            ids.append(c.question_id)
    keep = {q for ids in questions.values() for q in ids}
    return [c for c in calibration if c.question_id in keep]


def _round(x):
    return None if x is None or math.isnan(x) else round(x, 3)


def _verdict_rows(verdicts):
    return [
        {"id": v.item_id, "judge": v.judge, "steps_version": v.steps_version, "mode": v.mode,
         "accuracy": _round(v.accuracy), "completeness": _round(v.completeness),
         "accuracy_std": _round(v.accuracy_std), "completeness_std": _round(v.completeness_std),
         "unscored": v.unscored, "runs": v.runs, "raw": list(v.raw), "logprobs_missing": v.logprobs_missing}
        for v in verdicts
    ]


def test_rendered_judge_prompts(calibration, snapshot_json):
    rendered = {}
    for c in _sample(calibration):
        if c.label != "good":
            continue
        for form in FORMS:
            for name, criterion in CRITERIA.items():
                prompt = render(form, criterion, load_steps(name), c.item)
                rendered[f"{c.item.id}|{form}|{name}"] = {
                    "chat": prompt.chat, "prefill": prompt.prefill,
                    "messages": [[m.role, m.content] for m in prompt.messages],
                }
    assert rendered == snapshot_json


def test_reference_judge_verdicts(calibration, snapshot_json):
    verdicts = make_judge("reference").judge([c.item for c in calibration])
    assert _verdict_rows(verdicts) == snapshot_json


def test_bundled_judge_logprobs_verdicts(calibration, snapshot_json):
    items = [c.item for c in _sample(calibration)]
    judge = make_judge(BUNDLED, mode="logprobs")
    verdicts = judge.judge(items)
    for v in verdicts:
        assert v.mode == "logprobs" and not v.logprobs_missing
        for score in (v.accuracy, v.completeness):
            assert math.isnan(score) or 1.0 <= score <= 5.0
    assert _verdict_rows(verdicts) == snapshot_json
