"""The decision of a cell: non-inferiority by qualified judges, auto margin, baseline validity, provenance scrub."""

import math

from evalsuite.matrix._gate import auto_margin, baseline_validity, compare, failure_message
from evalsuite.matrix._provenance import REDACTED, scrub


def cell(scores, judge="token-overlap", std=0.0, runs=1, answers=None):
    return {
        "items": [
            {
                "id": f"q{i}",
                "answer": (answers or ["a"] * len(scores))[i],
                "verdicts": {
                    judge: {
                        "accuracy": s,
                        "completeness": s,
                        "accuracy_std": std,
                        "completeness_std": std,
                        "runs": runs,
                    }
                },
            }
            for i, s in enumerate(scores)
        ]
    }


BASE = [4.0, 3.0, 5.0, 2.0, 4.0, 3.0, 5.0, 4.0, 3.0, 4.0, 2.0, 5.0, 4.0, 3.0, 4.0, 5.0, 3.0, 4.0, 2.0, 4.0]


def test_regression_beyond_margin_fails_with_table_row():
    worse = [s - 1.0 for s in BASE]
    gate = compare(cell(worse), cell(BASE), judges=["token-overlap"], gating=["token-overlap"], margin=0.25)
    assert gate["passed"] is False
    assert {c for _, c in gate["failures"]} == {"accuracy", "completeness"}
    s = gate["judges"]["token-overlap"]["accuracy"]
    assert s["diff"] == -1.0 and s["n"] == 20 and s["ci_high"] < -0.25
    msg = failure_message("nq-smollm2-ft20", gate, "reports/runs/x/summary.md")
    assert "nq-smollm2-ft20 accuracy [token-overlap]: baseline 3.65, cell 2.65, diff -1.000" in msg
    assert "Wilcoxon p=" in msg and "n=20" in msg and "report: reports/runs/x/summary.md" in msg


def test_small_noise_is_non_inferior_and_pairs_by_question_id():
    noisy = [s + (0.1 if i % 2 else -0.1) for i, s in enumerate(BASE)]
    base = cell(BASE)
    base["items"].reverse()  # pairing is by question id, not position
    gate = compare(cell(noisy), base, judges=["token-overlap"], gating=["token-overlap"], margin=0.25)
    assert gate["passed"] is True and gate["judges"]["token-overlap"]["accuracy"]["n"] == 20


def test_only_qualified_judges_gate():
    worse = [s - 1.0 for s in BASE]
    gate = compare(cell(worse), cell(BASE), judges=["token-overlap"], gating=[], margin=0.25)
    assert gate["passed"] is None and gate["failures"] == []
    assert gate["judges"]["token-overlap"]["accuracy"]["gating"] is False


def test_unscored_pairs_are_dropped():
    c = [float("nan")] + BASE[1:]
    gate = compare(cell(c), cell(BASE), judges=["token-overlap"], gating=["token-overlap"], margin=0.25)
    s = gate["judges"]["token-overlap"]["accuracy"]
    assert s["n"] == 19 and s["dropped"] == 1


def test_auto_margin_is_twice_the_repeat_std():
    m, note = auto_margin([cell(BASE, std=0.3, runs=10), cell(BASE, std=0.1, runs=10)], "token-overlap", "accuracy")
    assert math.isclose(m, 0.4) and "2 x mean repeat std" in note
    m, note = auto_margin([cell(BASE)], "token-overlap", "accuracy")  # one run each: nothing measured
    assert m == 0.25 and "no repeated runs" in note
    gate = compare(
        cell([s - 0.3 for s in BASE], std=0.05, runs=10),
        cell(BASE, std=0.05, runs=10),
        judges=["token-overlap"],
        gating=["token-overlap"],
        margin="auto",
    )
    assert gate["passed"] is False and math.isclose(gate["judges"]["token-overlap"]["accuracy"]["margin"], 0.1)


def test_baseline_validity():
    assert baseline_validity(cell(BASE), gating=["token-overlap"], max_unscored=0.2) == []
    empty = cell(BASE, answers=[""] * 10 + ["a"] * 10)
    assert "10 of 20 answers are empty" in baseline_validity(empty, gating=[], max_unscored=0.2)[0]
    unscored = cell([float("nan")] * 5 + BASE[5:])
    assert "left 5 of 20 answers unscored" in baseline_validity(unscored, gating=["token-overlap"], max_unscored=0.2)[0]
    assert baseline_validity(unscored, gating=["token-overlap"], max_unscored=0.3) == []
    assert baseline_validity({"items": []}, gating=[], max_unscored=0.2) == ["no eval questions were answered"]


def test_scrub_removes_secrets():
    data = {
        "api_key": "abc",
        "OPENAI_API_KEY": "x",
        "prompt_tokens": 12,
        "note": "used sk-abcdefghijklmnopqrstu here",
        "nested": [{"Authorization": "Bearer abcdefghijklmnop"}, "hf_abcdefghijklmnopqrstuvwx"],
    }
    out = scrub(data)
    assert out["api_key"] == REDACTED and out["OPENAI_API_KEY"] == REDACTED and out["prompt_tokens"] == 12
    assert "sk-" not in out["note"] and out["nested"][0]["Authorization"] == REDACTED and out["nested"][1] == REDACTED


# -- three outcomes, enough scored answers -----------------------------------------------------------
def test_an_improvement_on_few_questions_is_inconclusive_not_a_regression():
    # eight questions, the cell better by 0.5 on average: the interval is wide and spans -margin
    base = [1.0, 5.0, 5.0, 1.0, 5.0, 5.0, 5.0, 1.0]
    tuned = [5.0, 5.0, 5.0, 5.0, 1.0, 5.0, 5.0, 1.0]
    gate = compare(
        cell(tuned), cell(base), judges=["token-overlap"], gating=["token-overlap"], margin=0.75, min_paired=5
    )
    s = gate["judges"]["token-overlap"]["accuracy"]
    assert s["diff"] == 0.5 and s["ci_low"] < -0.75 <= s["ci_high"]
    assert s["outcome"] == "inconclusive" and gate["outcome"] == "inconclusive" and gate["failures"] == []
    assert gate["passed"] is None
    msg = failure_message("faq-smollm2-ft4", gate, "summary.md")
    assert "INCONCLUSIVE" in msg and f"about {s['needed_n']} questions would decide it" in msg
    # the paired spread predicts the questions: (1.96 sd / (diff + margin))^2
    assert s["needed_n"] == math.ceil((1.959964 * s["sd"] / (0.5 + 0.75)) ** 2)


def test_fail_needs_the_whole_interval_beyond_the_margin():
    # a drop of 0.5 on average against a margin of 0.25: the interval reaches above -0.25, so not shown
    mixed = [s - (1.5 if i % 2 else -0.5) for i, s in enumerate(BASE)]
    gate = compare(cell(mixed), cell(BASE), judges=["token-overlap"], gating=["token-overlap"], margin=0.25)
    s = gate["judges"]["token-overlap"]["accuracy"]
    assert s["ci_low"] < -0.25 <= s["ci_high"] and gate["outcome"] == "inconclusive"
    worse = [s - 1.0 for s in BASE]
    assert (
        compare(cell(worse), cell(BASE), judges=["token-overlap"], gating=["token-overlap"], margin=0.25)["outcome"]
        == "failed"
    )


def test_a_pass_reports_its_headroom_and_minimum_detectable_drop():
    noisy = [s + (0.5 if i % 2 else -0.5) for i, s in enumerate(BASE)]
    s = compare(cell(noisy), cell(BASE), judges=["token-overlap"], gating=["token-overlap"], margin=0.75)["judges"][
        "token-overlap"
    ]["accuracy"]
    assert s["outcome"] == "pass" and math.isclose(s["headroom"], s["ci_low"] + 0.75)
    assert math.isclose(s["mdd"], 0.75 + (1.959964 + 0.841621) * s["sd"] / math.sqrt(20))
    assert s["needed_n"] is None


def test_a_candidate_with_one_scored_answer_is_not_gated():
    base = BASE * 2  # 40 questions
    tuned = [float("nan")] * 39 + [5.0]
    gate = compare(cell(tuned), cell(base), judges=["token-overlap"], gating=["token-overlap"], margin=0.75)
    assert gate["outcome"] == "ungated" and gate["passed"] is None
    assert "too few scored answers (1 of 40" in gate["too_few"][0]
    s = gate["judges"]["token-overlap"]["accuracy"]
    assert (s["n"], s["unscored_cell"], s["unscored_baseline"]) == (1, 39, 0)


def test_unscored_share_is_bounded_in_either_arm():
    base = BASE * 2  # 40 questions: 2 unscored = 5% is allowed, 3 is not
    two = [float("nan")] * 2 + base[2:]
    three = [float("nan")] * 3 + base[3:]
    ok = compare(cell(base), cell(two), judges=["token-overlap"], gating=["token-overlap"], margin=0.75)
    assert ok["outcome"] == "passed" and ok["judges"]["token-overlap"]["accuracy"]["unscored_baseline"] == 2
    bad = compare(cell(base), cell(three), judges=["token-overlap"], gating=["token-overlap"], margin=0.75)
    assert bad["outcome"] == "ungated" and "3 in the baseline" in bad["too_few"][0]
    few = compare(cell(BASE[:8]), cell(BASE[:8]), judges=["token-overlap"], gating=["token-overlap"], margin=0.75)
    assert few["outcome"] == "ungated" and "too few scored answers (8 of 8" in few["too_few"][0]


def test_a_judge_that_does_not_gate_never_decides():
    worse = [s - 1.0 for s in BASE]
    gate = compare(
        cell(worse), cell(BASE), judges=["token-overlap"], gating={"token-overlap": ["completeness"]}, margin=0.25
    )
    assert gate["failures"] == [("token-overlap", "completeness")]
    assert gate["judges"]["token-overlap"]["accuracy"]["outcome"] == "fail"  # measured, shown, not gating
