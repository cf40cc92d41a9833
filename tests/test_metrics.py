import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalsuite.metrics import (
    exact_match,
    normalize_answer,
    paired_stats,
    recall_at_k,
    reference_metrics,
    rouge_l,
    spearman,
    token_f1,
    token_precision,
    token_recall,
    yes_no_correct,
)


def test_normalize_answer_squad_rule():
    assert normalize_answer("The  Cat, sat on a mat!") == "cat sat on mat"
    assert normalize_answer("“Röntgen” — 1901") == "röntgen 1901"
    assert normalize_answer("") == ""


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_normalize_answer_is_idempotent(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once


def test_exact_match_and_f1_take_the_best_gold():
    refs = ["Wilhelm Conrad Röntgen", "Röntgen"]
    assert exact_match("röntgen.", refs) == 1.0
    assert exact_match("Marie Curie", refs) == 0.0
    assert token_f1("Röntgen", refs) == 1.0
    # "Conrad Röntgen" vs "Wilhelm Conrad Röntgen": p=1, r=2/3 -> 0.8
    assert token_f1("Conrad Röntgen", ["Wilhelm Conrad Röntgen"]) == pytest.approx(0.8)
    assert token_f1("nothing shared", refs) == 0.0
    assert math.isnan(token_f1("x", []))


def test_precision_and_recall():
    assert token_precision("Conrad Röntgen in 1901", ["Wilhelm Conrad Röntgen"]) == pytest.approx(0.5)
    assert token_recall("Conrad Röntgen in 1901", ["Wilhelm Conrad Röntgen"]) == pytest.approx(2 / 3)
    assert token_recall("Wilhelm Conrad Röntgen of Germany", ["Wilhelm Conrad Röntgen"]) == 1.0


def test_rouge_l_uses_longest_common_subsequence():
    # LCS of "a b c d" and "a c b d" (no articles: use letters that survive normalization)
    assert rouge_l("x y z w", ["x z y w"]) == pytest.approx(0.75)  # LCS 3 of 4 both ways
    assert rouge_l("same words here", ["same words here"]) == 1.0
    assert rouge_l("q", ["r"]) == 0.0
    assert rouge_l("w v", ["x y", "v"]) == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_yes_no():
    assert yes_no_correct("Yes, it does.", True) is True
    assert yes_no_correct("No.", True) is False
    assert yes_no_correct("It depends.", False) is False
    assert yes_no_correct("anything", None) is None


def test_recall_at_k():
    assert recall_at_k(["p1#0", "p2#10", "p3#0"], ["p2"], k=2) == 1.0
    assert recall_at_k(["p1#0", "p2#10", "p3#0"], ["p3"], k=2) == 0.0
    assert recall_at_k(["p1"], ["p1"]) == 1.0
    assert math.isnan(recall_at_k(["p1"], []))


def test_reference_metrics_keys():
    m = reference_metrics("yes", ["yes"], yes_no=True)
    assert m == {"exact_match": 1.0, "f1": 1.0, "rouge_l": 1.0, "yes_no_correct": True}


def test_paired_stats_detects_a_drop_and_is_seeded():
    rng = np.random.default_rng(1)
    base = rng.uniform(3, 5, size=60)
    cell = base - 1.0 + rng.normal(0, 0.2, size=60)
    s = paired_stats(base, cell, margin=0.25, seed=3)
    assert s.n == 60 and s.dropped == 0
    assert s.diff == pytest.approx(float(np.mean(cell - base)))
    assert s.ci_low <= s.diff <= s.ci_high
    assert s.ci_high < 0 and s.wilcoxon_p < 1e-6
    assert s.non_inferior is False
    assert paired_stats(base, cell, margin=0.25, seed=3) == s


def test_paired_stats_identical_cells_and_nan_pairs():
    base = [4.0, 3.0, float("nan"), 5.0, 2.0]
    cell = [4.0, 3.0, 1.0, 5.0, float("nan")]
    s = paired_stats(base, cell, margin=0.1)
    assert s.n == 3 and s.dropped == 2
    assert s.diff == 0.0 and s.wilcoxon_p == 1.0 and s.non_inferior is True
    empty = paired_stats([float("nan")], [1.0], margin=0.1)
    assert empty.n == 0 and empty.non_inferior is False


def test_paired_stats_non_inferior_within_margin():
    base = [4.0] * 20
    cell = [4.0] * 18 + [3.9, 3.9]
    assert paired_stats(base, cell, margin=0.5).non_inferior is True
    with pytest.raises(ValueError):
        paired_stats([1.0], [1.0, 2.0], margin=0.1)


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert spearman([1, 2, float("nan"), 3], [1, 2, 0, 3]) == pytest.approx(1.0)


def test_decide_has_three_outcomes_and_power_figures():
    from evalsuite.metrics import decide, minimum_detectable_drop, questions_for_margin, questions_to_decide

    assert decide(-0.5, 0.5, 0.75) == "pass" and decide(-0.75, 0.1, 0.75) == "pass"  # on the margin: shown
    assert decide(-1.5, -0.8, 0.75) == "fail" and decide(-1.5, -0.75, 0.75) == "inconclusive"
    assert decide(-1.0, 0.4, 0.75) == "inconclusive" and decide(float("nan"), float("nan"), 0.75) == "inconclusive"
    assert math.isclose(minimum_detectable_drop(1.0, 100, 0.5), 0.5 + 2.801585 / 10, rel_tol=1e-6)
    assert math.isnan(minimum_detectable_drop(1.0, 0, 0.5))
    assert questions_to_decide(0.0, 1.0, 0.5) == math.ceil((1.959964 / 0.5) ** 2)
    assert questions_to_decide(-0.5, 1.0, 0.5) is None and questions_to_decide(0.2, 0.0, 0.5) == 1
    assert questions_for_margin(1.0, 0.5) == math.ceil((2.801585 / 0.5) ** 2)
    assert questions_for_margin(1.0, 0.0) is None
