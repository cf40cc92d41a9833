"""Snapshots of what the judges see and say, on items written for this test.

A changed prompt template, criterion text, frozen steps, learned weights or judge output shows
up here as a snapshot diff; ``pytest test_cases --snapshot-update`` accepts a reviewed change.
The items below are invented for the test (no dataset text). Scores are rounded to 3 decimals
so float noise does not count as a change. The bundled judge's verdicts come from the judge
cache after the first run and depend on the model identity (weights, dtype: fp32 on the CPU,
and how a prompt is read); each item is scored alone, so no batch padding moves them.
"""

import math

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from evalsuite.judge import CRITERIA, FORMS, JudgeItem, load_steps, make_judge, render

BUNDLED = "bundled:smollm2-135m-instruct"

_QUESTIONS = (
    (
        "lighthouse",
        "Why did the harbour town build a second lighthouse in 1890?",
        ("Fog hid the first lighthouse from ships approaching from the north.",),
        (
            "The town council's minutes say that ships coming from the north could not see the old light in fog, "
            "so a second tower was raised on the northern cliff in 1890.",
        ),
        "Because ships arriving from the north could not see the first light when there was fog.",
        "Because ships arriving from the north could not see it.",
        "Because the first lighthouse was sold to a private owner.",
    ),
    (
        "bakery",
        "Which two flours does the bakery blend for its rye loaf?",
        ("whole rye flour and white wheat flour",),
        ("Our rye loaf is made from a blend of whole rye flour and white wheat flour, proofed overnight.",),
        "It blends whole rye flour with white wheat flour.",
        "Whole rye flour.",
        "Spelt flour and oat flour.",
    ),
    (
        "robot",
        "How long does the cleaning robot's battery last on a full charge?",
        ("about 90 minutes",),
        ("On a full charge the battery runs the robot for about 90 minutes on hard floors.",),
        "Roughly 90 minutes on a full charge.",
        "More than an hour.",
        "About 12 hours.",
    ),
)
ITEMS = [
    JudgeItem(f"{key}:{label}", question, references, context, answer)
    for key, question, references, context, good, partial, wrong in _QUESTIONS
    for label, answer in (("good", good), ("partial", partial), ("wrong", wrong))
]


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def _round(x):
    return None if x is None or math.isnan(x) else round(x, 3)


def _verdict_rows(verdicts, raw=True):
    return [
        {
            "id": v.item_id,
            "judge": v.judge,
            "steps_version": v.steps_version,
            "mode": v.mode,
            "accuracy": _round(v.accuracy),
            "completeness": _round(v.completeness),
            "accuracy_std": _round(v.accuracy_std),
            "completeness_std": _round(v.completeness_std),
            "unscored": v.unscored,
            "runs": v.runs,
            "raw": list(v.raw) if raw else len(v.raw),
            "logprobs_missing": v.logprobs_missing,
        }
        for v in verdicts
    ]


def test_rendered_judge_prompts(snapshot_json):
    rendered = {}
    for item in ITEMS:
        if not item.id.endswith(":good"):
            continue
        for form in FORMS:
            for name, criterion in CRITERIA.items():
                prompt = render(form, criterion, load_steps(name), item)
                rendered[f"{item.id}|{form}|{name}"] = {
                    "chat": prompt.chat,
                    "prefill": prompt.prefill,
                    "messages": [[m.role, m.content] for m in prompt.messages],
                }
    assert rendered == snapshot_json


def test_token_overlap_judge_verdicts(snapshot_json):
    verdicts = make_judge("token-overlap").judge(ITEMS)
    assert _verdict_rows(verdicts) == snapshot_json


def test_learned_judge_verdicts(snapshot_json):
    verdicts = make_judge("learned-correctness").judge(ITEMS)
    for v in verdicts:
        assert v.mode == "deterministic" and v.raw[0].startswith("p_correct=")
    by_id = {v.item_id: v for v in verdicts}
    for key, *_ in _QUESTIONS:
        assert by_id[f"{key}:good"].accuracy > by_id[f"{key}:wrong"].accuracy
    # raw holds p(correct) and feature values at full precision: the snapshot keeps the rounded scores only
    assert _verdict_rows(verdicts, raw=False) == snapshot_json


def test_bundled_judge_logprobs_verdicts(snapshot_json):
    items = [item for item in ITEMS if not item.id.endswith(":partial")]
    judge = make_judge(BUNDLED, mode="logprobs")
    verdicts = judge.judge(items)
    for v in verdicts:
        assert v.mode == "logprobs" and not v.logprobs_missing
        for score in (v.accuracy, v.completeness):
            assert math.isnan(score) or 1.0 <= score <= 5.0
    # the numbers of a model follow its arithmetic: one snapshot per path a CPU takes (fp32 where bf16
    # is native, int8 where it is not; int8 sums are integers, so every CPU of that path agrees)
    from evalsuite.models import inference_precision

    path = inference_precision()
    assert _verdict_rows(verdicts) == (snapshot_json if path == "fp32" else snapshot_json(name=path))
