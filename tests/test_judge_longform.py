"""The long-form check: built at run time from the fine-tune pools, never from eval questions."""

import pytest

from evalsuite.datasets import load
from evalsuite.judge import build_longform
from evalsuite.judge._longform import CONTEXT_CHARS, NEAR_COPY_F1, WRONG_MAX_F1
from evalsuite.metrics import token_f1
from evalsuite.splits import split


@pytest.fixture(scope="module", params=[0, 1])
def longform(request):
    return build_longform(request.param)


def test_no_question_it_uses_is_in_the_eval_split(longform):
    used = {}
    for dataset, qid in longform.questions:
        used.setdefault(dataset, set()).add(qid)
    assert set(used) == {"qasper", "bioasq"}
    for dataset, ids in used.items():
        parts = split(load(dataset), longform.seed)
        assert not ids & {e.id for e in parts.eval}
        assert ids <= {e.id for e in parts.pool}
    assert {(x.dataset, x.question_id) for x in longform.items} <= set(longform.questions)
    assert {(x.dataset, x.source_question_id) for x in longform.items} <= set(longform.questions)


def test_every_question_has_a_good_and_a_wrong_answer_and_some_a_partial(longform):
    labels = {}
    for x in longform.items:
        labels.setdefault((x.dataset, x.question_id), []).append(x.label)
    assert all(sorted(v) in (["good", "wrong"], ["good", "partial", "wrong"]) for v in labels.values())
    assert longform.pairs("good", "wrong") == len(labels) >= 50
    assert longform.pairs("good", "partial") >= 20
    assert sum(d == "qasper" for d, _ in labels) >= 10


def test_answers_are_what_their_labels_say(longform):
    for x in longform.items:
        refs = list(x.item.references)
        if x.label == "good":
            assert x.source_question_id == x.question_id
            assert x.item.answer not in refs and all(token_f1(x.item.answer, [r]) <= NEAR_COPY_F1 for r in refs)
        elif x.label == "wrong":
            assert x.source_question_id != x.question_id
            assert token_f1(x.item.answer, refs + [x.item.question]) <= WRONG_MAX_F1
        assert all(len(c) <= CONTEXT_CHARS for c in x.item.context)
        assert x.item.references and x.item.answer.strip()


def test_it_is_deterministic_given_the_data_and_the_seed():
    first, again, other = build_longform(0), build_longform(0), build_longform(1)
    assert first == again and first.digest == again.digest
    assert first.digest != other.digest


def test_fewer_questions_per_dataset_take_a_prefix():
    small, full = build_longform(0, per_dataset=3), build_longform(0)
    assert small.pairs("good", "wrong") == 6
    ids = [x.item.id for x in full.items]
    assert all(x.item.id in ids for x in small.items)
