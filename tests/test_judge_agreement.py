"""Qualification against people: the human file, the agreement statistics, the rule and its cache.

The human-labelled answers are read from the data root (judge_human/kamalloo_nq301.jsonl);
the long-form check is built from the bundled datasets' fine-tune pools at run time.
"""

import json
import math

import numpy as np
import pytest

from evalsuite.errors import ConfigError, DataError
from evalsuite.judge import (
    RULE,
    Judge,
    Verdict,
    cohen_kappa,
    cross_fit,
    load_human,
    make_judge,
    qualify,
    roc_auc,
    within_question,
)
from evalsuite.judge._agreement import best_threshold, fold_of
from evalsuite.judge._qualify import QUALIFY_VERSION, criterion_agreement, select_items
from evalsuite.records import to_dict

# ---------------------------------------------------------------- statistics


def test_roc_auc_counts_ties_half_and_skips_nan():
    assert roc_auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert roc_auc([0.5, 0.5], [1, 0]) == 0.5
    assert roc_auc([0.9, float("nan"), 0.1], [1, 1, 0]) == 1.0
    assert math.isnan(roc_auc([0.3, 0.4], [1, 1]))
    rng = np.random.default_rng(0)
    scores, labels = rng.random(400), rng.integers(0, 2, 400)
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    assert roc_auc(scores, labels) == pytest.approx(u / ((labels == 1).sum() * (labels == 0).sum()))


def test_cohen_kappa_known_values():
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 1, 0]) == 0.0
    # 20 items: observed agreement .8, both raters 50% positive -> chance .5 -> kappa .6
    rater = [1] * 10 + [0] * 10
    other = [1] * 8 + [0] * 2 + [0] * 8 + [1] * 2
    assert cohen_kappa(rater, other) == pytest.approx(0.6)
    assert cohen_kappa([1, 1, 1], [1, 0, 1]) == 0.0  # a constant rater agrees no better than chance


def test_within_question_counts_ties_and_nan_as_losses():
    share, pairs = within_question([5, 1, 3, 3, float("nan"), 1], [1, 0, 1, 0, 1, 0], ["a", "a", "b", "b", "c", "c"])
    assert pairs == 3 and share == pytest.approx(1 / 3)


def _two_fold_ids():
    """Question ids falling in fold 0 and in fold 1 (the fold is a hash of the id)."""
    ids = [f"q{i}" for i in range(200)]
    return [q for q in ids if fold_of(q) == 0][:40], [q for q in ids if fold_of(q) == 1][:40]


def test_thresholds_are_never_fitted_on_the_scored_fold():
    # fold 0 separates at 0.7, fold 1 at 0.3: an answer scored 0.5 is wrong in fold 0 and right in fold 1.
    fold0, fold1 = _two_fold_ids()
    scores, labels, qids = [], [], []
    grid = np.linspace(0.02, 0.98, 40)
    for ids, cut in ((fold0, 0.7), (fold1, 0.3)):
        for qid, s in zip(ids, grid):
            scores.append(float(s))
            labels.append(int(s >= cut))
            qids.append(qid)
    fit = cross_fit(scores, labels, qids)
    assert fit.thresholds[0] == pytest.approx(best_threshold(scores[40:], labels[40:]))  # fitted on fold 1
    assert fit.thresholds[1] == pytest.approx(best_threshold(scores[:40], labels[:40]))  # fitted on fold 0
    assert fit.thresholds[0] < 0.35 and fit.thresholds[1] > 0.65
    # fitted in-sample each fold would be decided perfectly; cross-fitted, the middle band is decided wrongly
    in_sample = [int(s >= (0.7 if i < 40 else 0.3)) for i, s in enumerate(scores)]
    assert in_sample == labels
    wrong = sum(d != y for d, y in zip(fit.decisions, labels))
    middle = sum(0.3 <= s < 0.7 for s in scores)
    assert wrong == middle > 0
    agreement = criterion_agreement("accuracy", scores, [_fake_item(q, y, s) for q, y, s in zip(qids, labels, scores)])
    assert agreement.kappa < 0.6 and agreement.thresholds == fit.thresholds


def _fake_item(qid, label, score):
    from evalsuite.judge import HumanItem

    return HumanItem(f"{qid}-{score}", qid, "q", ("r",), "a b c d e f" if score > 0.5 else "a", label, "test")


# ---------------------------------------------------------------- the human file


def _line(**overrides):
    row = {
        "id": "x1",
        "question_id": "q1",
        "question": "who wrote frankenstein",
        "references": ["Mary Shelley"],
        "answer": "Mary Shelley",
        "human": 1,
        "source_model": "test",
        "auto": {"em": 1, "gpt4_eval": None},
    }
    row.update(overrides)
    return json.dumps(row)


@pytest.mark.parametrize(
    "bad,match",
    [
        ('{"id": "x2", "question_id": "q1"', r"line 2: field '\(JSON syntax\)'"),
        (_line(id="x2", human=2), r"line 2: field 'human': expected 0 or 1"),
        (_line(id="x2", references=[]), r"line 2: field 'references'"),
        (_line(id="x2", references="Mary Shelley"), r"line 2: field 'references': expected a list"),
        (_line(id="x2", question=""), r"line 2: field 'question': empty"),
        (_line(id="x2", auto={"bem": "yes"}), r"line 2: field 'auto.bem'"),
        (_line(id="x2", answer=3), r"line 2: field 'answer': expected a string"),
        (_line(), r"field 'id': 'x1' repeats"),
    ],
)
def test_a_bad_human_line_names_file_line_and_field(tmp_path, bad, match):
    path = tmp_path / "human.jsonl"
    path.write_text(_line() + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=match) as err:
        load_human(path=path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_missing_human_file_names_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_DATA", str(tmp_path))
    with pytest.raises(DataError, match="evalsuite datasets download judge_human"):
        load_human()


def test_the_human_file_has_the_published_shape():
    human = load_human()
    assert human.file == "kamalloo_nq301.jsonl" and len(human.items) == 1490
    assert human.sha256 == "9c8bf54ab4db339974ab0246f67eac9c5cde8f4b1e08175eec3ac18e3bd687a6"
    assert sum(i.long for i in human.items) == 294
    assert sum(i.human for i in human.items) == 816
    assert len({i.question_id for i in human.items}) == 301


def test_limit_takes_whole_questions_deterministically():
    items = load_human().items
    subset = select_items(items, 300)
    assert 250 < len(subset) <= 300 and subset == select_items(items, 300)
    chosen = {i.question_id for i in subset}
    assert all(i in subset for i in items if i.question_id in chosen)  # whole questions
    assert select_items(items, None) == list(items)
    with pytest.raises(ConfigError, match="--limit"):
        select_items(items, 0)


# ---------------------------------------------------------------- qualification


@pytest.fixture(scope="module")
def reference_qualification(tmp_path_factory):
    return qualify(make_judge("token-overlap"), cache=False)


def test_token_overlap_judge_matches_the_published_token_overlap_figures(reference_qualification):
    q = reference_qualification
    accuracy, completeness = q.criterion("accuracy"), q.criterion("completeness")
    assert accuracy.auc == pytest.approx(0.811, abs=0.001) and accuracy.auc_long == pytest.approx(0.740, abs=0.001)
    assert completeness.auc == pytest.approx(0.829, abs=0.001) and completeness.auc_long == pytest.approx(
        0.762, abs=0.001
    )
    assert q.data.items_scored == 1490 and q.data.items_long == 294 and not q.data.subset
    assert 0.5 < accuracy.kappa < 0.8 and 0.0 < accuracy.within_question <= 1.0 and accuracy.within_question_pairs > 500
    assert "2-fold cross-fit by question_id" in q.data.threshold_method


def test_anchors_are_computed_from_the_file(reference_qualification):
    anchors = {a.name: a for a in reference_qualification.anchors}
    gpt4 = anchors["gpt4_eval"]
    assert gpt4.n == 1487 and gpt4.accuracy == pytest.approx(0.848, abs=0.001)
    assert gpt4.kappa == pytest.approx(0.695, abs=0.001)
    assert gpt4.accuracy_long == pytest.approx(0.870, abs=0.002) and "balanced accuracy" in gpt4.source
    # the published binary decisions' balanced accuracy is computed from the file, all and 5+ words
    assert 0.75 < gpt4.balanced_accuracy < 0.95 and 0.5 < gpt4.balanced_accuracy_long < 1
    assert anchors["instructgpt_eval"].accuracy == pytest.approx(0.838, abs=0.001)
    assert anchors["instructgpt_eval"].kappa == pytest.approx(0.675, abs=0.001)
    assert anchors["bem"].n == 1488 and anchors["bem"].accuracy == pytest.approx(0.806, abs=0.001)
    assert anchors["em"].accuracy == pytest.approx(0.657, abs=0.001) and 0 < anchors["em"].balanced_accuracy < 1


def test_token_overlap_judge_does_not_gate_and_the_reasons_name_the_failed_bar(reference_qualification):
    q = reference_qualification
    assert q.qualified is False and q.gating_criteria == ()
    assert "answers of 5+ words" in q.reasons[0] and "0.740" in q.reasons[0] and "below the bar 0.75" in q.reasons[0]
    assert q.rule == RULE and q.longform.pairs_good_wrong >= 50
    json.dumps(to_dict(q).get("reasons"))  # the record is JSON-able


class _ConstantJudge(Judge):
    """Scores every answer 3: it cannot tell good from wrong."""

    name = "constant"

    def judge(self, items, progress=False):
        return [Verdict(i.id, self.name, "v1", 3.0, 3.0, 0.0, 0.0, 0, 1, (), False, "deterministic") for i in items]


def test_a_judge_that_cannot_tell_good_from_wrong_does_not_qualify_and_says_why():
    q = qualify(_ConstantJudge(), cache=False)
    assert q.qualified is False and q.gating_criteria == ()
    accuracy = q.criterion("accuracy")
    assert accuracy.auc == 0.5 and accuracy.within_question == 0.0
    assert q.longform.share().good_over_wrong == 0.0
    reason = q.reasons[0]
    assert reason.startswith("does not qualify")
    assert "0.500 on 1490 answers (below the bar 0.80)" in reason and "in 0% of" in reason


class _LongLovingJudge(Judge):
    """Knows the human label (it cheats), but only for short answers: long ones get 3."""

    name = "cheat-short"

    def __init__(self, labels):
        super().__init__()
        self.labels = labels

    def judge(self, items, progress=False):
        out = []
        for i in items:
            if i.id in self.labels and len(i.answer.strip().split()) < 5:
                score = 5.0 if self.labels[i.id] else 1.0
            else:
                score = 3.0 if i.id in self.labels else (5.0 if i.id.endswith(":good") else 1.0)
            out.append(Verdict(i.id, self.name, "v1", score, score, 0.0, 0.0, 0, 1, (), False, "deterministic"))
        return out


def test_the_long_answer_bar_alone_can_fail_a_judge():
    labels = {i.id: i.human for i in load_human().items}
    q = qualify(_LongLovingJudge(labels), cache=False)
    accuracy = q.criterion("accuracy")
    assert accuracy.auc > 0.8 and accuracy.auc_long == 0.5 and q.longform.share().good_over_wrong == 1.0
    assert not q.qualified and "answers of 5+ words" in q.reasons[0] and "0.500" in q.reasons[0]


def test_qualification_is_cached_by_what_changes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    calls = []

    class Counting(_ConstantJudge):
        def judge(self, items, progress=False):
            calls.append(len(items))
            return super().judge(items, progress)

    first = qualify(Counting(), limit=100)
    assert calls and first.data.subset and first.data.items_scored <= 100 and first.data.limit == 100
    calls.clear()
    again = qualify(Counting(), limit=100)
    assert calls == [] and json.dumps(to_dict(again)) == json.dumps(to_dict(first))  # read back, field by field
    qualify(Counting(), limit=120)
    assert calls  # another limit is another entry
    files = list((tmp_path / "qualification").glob("*.json"))
    assert len(files) == 2 and json.loads(files[0].read_text())["rule"] == to_dict(RULE)
    assert QUALIFY_VERSION >= 1


def test_the_measured_bundled_g_eval_qualifications_are_shipped_and_readable():
    from evalsuite.judge import measured_qualifications
    from evalsuite.judge._qualify import _from_dict

    measured = measured_qualifications()
    assert set(measured) == {"bundled:smollm2-135m-instruct", "bundled:gemma3-270m"}
    for spec, entry in measured.items():
        assert "--limit 300" in entry["command"] and spec in entry["command"] and entry["date"] and entry["machine"]
        q = _from_dict(entry["qualification"])  # the stored record reads back as a Qualification
        assert q.data.subset and q.data.limit == 300 and q.data.human_file == "kamalloo_nq301.jsonl"
        assert q.qualified is False and q.reasons[0].startswith("does not qualify")
        assert 0.3 < q.criterion("accuracy").auc < 0.7  # tiny G-Eval judges are near chance against people


def test_balanced_accuracy_of_binary_decisions():
    from evalsuite.judge._agreement import balanced_accuracy, roc_auc

    decisions, labels = [1, 1, 0, 0, 1, None], [1, 0, 0, 1, 1, 0]
    # true-positive rate 2/3, true-negative rate 1/2 (the undecided item is left out)
    assert balanced_accuracy(decisions, labels) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert balanced_accuracy(decisions[:5], labels[:5]) == pytest.approx(roc_auc(decisions[:5], labels[:5]))
    assert math.isnan(balanced_accuracy([1, 0], [1, 1]))  # one class only
