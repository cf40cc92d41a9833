"""Claim-level judging: claims of a text, their coverage by an answer, the fitted claim judge."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalsuite.judge import ClaimCoverage, ClaimMatch, _claims, claim_coverage, split_claims

GOLD = (
    "Iron deficiency anemia is treated with iron tablets taken for three months. "
    "Vitamin C helps the body absorb the iron. "
    "Tea and coffee should not be drunk with the tablets."
)


def test_split_claims_cuts_sentences_lines_and_bullets():
    text = (
        "Wash the cut with water. Cover it, e.g. with a plaster!\n- Change the dressing daily\n"
        "2. See a doctor if it swells.\n\n* Keep it dry"
    )
    assert split_claims(text) == (
        "Wash the cut with water.",
        "Cover it, e.g. with a plaster!",
        "Change the dressing daily",
        "See a doctor if it swells.",
        "Keep it dry",
    )
    assert split_claims("") == () and split_claims(" \n\t ") == () and split_claims("... -- !!") == ()
    long = " ".join(f"w{i}" for i in range(_claims.MAX_CLAIM_WORDS * 2 + 5))
    assert [len(c.split()) for c in split_claims(long)] == [_claims.MAX_CLAIM_WORDS, _claims.MAX_CLAIM_WORDS, 5]
    assert len(split_claims("Claim. " * 10_000)) == _claims.MAX_CLAIMS


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=3000))
def test_split_claims_takes_any_text(text):
    claims = split_claims(text)
    assert claims == split_claims(text)
    assert len(claims) <= _claims.MAX_CLAIMS
    for claim in claims:
        assert claim == claim.strip() and claim and any(ch.isalnum() for ch in claim)
        assert len(claim.split()) <= _claims.MAX_CLAIM_WORDS
        assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in claim)


@pytest.fixture(scope="module")
def similarity():
    from evalsuite.judge._features import Similarity

    return Similarity()


def test_a_dropped_claim_is_not_covered(similarity):
    full = (
        "Take iron tablets for three months to treat the anemia. Vitamin C helps you absorb the iron. "
        "Do not drink tea or coffee with the tablets."
    )
    dropped = "Take iron tablets for three months to treat the anemia. Vitamin C helps you absorb the iron."
    all_three = claim_coverage(full, [GOLD], similarity=similarity)
    two = claim_coverage(dropped, [GOLD], similarity=similarity)
    assert isinstance(all_three, ClaimCoverage) and all(isinstance(c, ClaimMatch) for c in all_three.claims)
    assert [c.text for c in all_three.claims] == list(split_claims(GOLD))
    assert [c.covered for c in all_three.claims] == [True, True, True]
    assert [c.covered for c in two.claims] == [True, True, False]
    assert two.claims[2].score < all_three.claims[2].score
    assert two.missing == (split_claims(GOLD)[2],) and two.share == pytest.approx(2 / 3)
    off_topic = claim_coverage("The Eiffel Tower is in Paris.", [GOLD], similarity=similarity)
    assert not any(c.covered for c in off_topic.claims)
    assert claim_coverage("", [GOLD], similarity=similarity).share == 0.0
    assert claim_coverage("anything", ["", "  "], similarity=similarity).claims == ()


def test_coverage_is_deterministic_whatever_is_scored_with_it(similarity):
    from evalsuite.judge._features import Similarity

    first = claim_coverage("Iron tablets for three months. Avoid tea.", [GOLD], similarity=similarity)
    fresh = Similarity()
    fresh.vectors(["padding sentence number %d" % i for i in range(40)] + ["Avoid tea."])
    again = claim_coverage("Iron tablets for three months. Avoid tea.", [GOLD], similarity=fresh)
    assert first == again


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.text(max_size=400), reference=st.text(max_size=400))
def test_claim_coverage_takes_any_text(similarity, answer, reference):
    coverage = claim_coverage(answer, [reference, GOLD], similarity=similarity)
    assert [c.text for c in coverage.claims] == list(_claims.gold_claims([reference, GOLD]))
    for claim in coverage.claims:
        assert 0.0 <= claim.score <= 1.0 and claim.covered == (claim.score >= _claims.COVERED_AT)
    assert coverage == claim_coverage(answer, [reference, GOLD], similarity=similarity)


# ---------------------------------------------------------------- the claim judge's fit and verdicts

# Hand-written graded answers: per question, a reference of three claims and one answer per grade
# (4 every claim, 3 the main claim only, 2 about the topic but wrong, 1 off topic).
TOPICS = (
    (
        "shingles",
        "a rash of painful blisters",
        "an antiviral drug within three days",
        "a vaccine for adults over fifty",
    ),
    ("gout", "sudden pain in the big toe", "anti-inflammatory tablets", "less red meat and alcohol"),
    ("asthma", "wheezing and a tight chest", "an inhaler that opens the airways", "avoiding smoke and dust"),
    ("migraine", "a throbbing headache on one side", "pain relief taken early", "regular sleep and meals"),
    ("eczema", "dry itchy skin", "moisturising cream twice a day", "mild soap instead of perfume"),
    ("anemia", "tiredness and pale skin", "iron tablets for three months", "vitamin C with meals"),
    ("tinnitus", "ringing in the ears", "sound therapy at night", "protecting the ears from loud noise"),
    ("sciatica", "pain down the back of one leg", "gentle stretching exercises", "not sitting for long hours"),
    ("cystitis", "burning when passing urine", "a short course of antibiotics", "drinking plenty of water"),
    ("vertigo", "a spinning feeling", "head movements that move the crystals", "getting up slowly"),
)


def _graded_lines(qualify_variant: int = 0) -> list[dict]:
    lines = []
    for k, (topic, sign, treatment, prevention) in enumerate(TOPICS):
        split = "fit" if k < 7 else "qualify"
        reference = (
            f"The main sign of {topic} is {sign}. It is treated with {treatment}. The risk is lowered by {prevention}."
        )
        answers = {
            4: f"People with {topic} have {sign}. Doctors treat it with {treatment}. It helps to use {prevention}.",
            3: f"The usual sign of {topic} is {sign}.",
            2: f"{topic.capitalize()} is common in older people. It is not treated with {treatment}.",
            1: "The weather in the mountains changes quickly in spring.",
        }
        if split == "qualify" and qualify_variant:
            answers = {grade: f"{text} Variant {qualify_variant}." for grade, text in answers.items()}
            answers[4], answers[1] = answers[1], answers[4]  # the qualify grades say the opposite
        for grade, answer in answers.items():
            lines.append(
                {
                    "id": f"q{k}-a{grade}",
                    "question_id": f"q{k}",
                    "question": f"What is {topic} and how is it treated?",
                    "references": [reference],
                    "answer": answer,
                    "label": grade,
                    "split": split,
                }
            )
    return lines


def _write(path, lines):
    import json

    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_the_fit_reads_the_fit_rows_only(tmp_path):
    from evalsuite.judge import fit_claims

    first = _write(tmp_path / "a.jsonl", _graded_lines(0))
    second = _write(tmp_path / "b.jsonl", _graded_lines(1))
    kwargs = {"vector_cache": False, "resamples": 20, "interval_resamples": 20}
    weights_a, selection_a = fit_claims.build(first, **kwargs)
    weights_b, selection_b = fit_claims.build(second, **kwargs)
    for data in (weights_a, weights_b):
        data.pop("training")  # names the file and its sha256, which differ
    assert weights_a == weights_b and selection_a == selection_b
    assert fit_claims.build(first, **kwargs)[0]["training"]["answers"] == 28  # 7 fit questions x 4 answers
    model = weights_a["accuracy"]["models"][0]["weights"]
    assert set(model) == set(weights_a["accuracy"]["features"])
    assert selection_a["accuracy"]["chosen"]["features"] in fit_claims.FEATURE_SETS and selection_a["split"] == "fit"


@pytest.fixture(scope="module")
def claims_judge():
    from evalsuite.judge import make_judge

    return make_judge("learned-claims", cache=False)


def _long_items():
    from evalsuite.judge import JudgeItem

    out = []
    for k, (topic, sign, treatment, prevention) in enumerate(TOPICS[:4]):
        reference = (
            f"The main sign of {topic} is {sign}. It is treated with {treatment}. The risk is lowered by {prevention}."
        )
        q = f"What is {topic} and how is it treated?"
        out += [
            JudgeItem(
                f"{k}-full",
                q,
                (reference,),
                (),
                f"{topic.capitalize()} shows as {sign}. It is treated with "
                f"{treatment}. You can lower the risk by {prevention}.",
            ),
            JudgeItem(f"{k}-part", q, (reference,), (), f"{topic.capitalize()} shows as {sign}."),
            JudgeItem(f"{k}-off", q, (reference,), (), "The train leaves the station at noon every day."),
        ]
    return out


def test_the_claim_judge_scores_long_answers_by_their_claims(claims_judge):
    items = _long_items()
    verdicts = {v.item_id: v for v in claims_judge.judge(items)}
    for k in range(4):
        full, part, off = verdicts[f"{k}-full"], verdicts[f"{k}-part"], verdicts[f"{k}-off"]
        assert full.judge == "learned-claims" and full.mode == "deterministic"
        assert full.accuracy > off.accuracy and part.accuracy > off.accuracy
        assert full.completeness > part.completeness > off.completeness  # a dropped claim costs completeness
        assert "gold claims covered 3/3" in full.raw[2] and "missing" in part.raw[2]
        assert 1.0 <= min(full.accuracy, off.accuracy) and max(full.accuracy, full.completeness) <= 5.0
    assert claims_judge.stats["long_items"] >= len(items)


def test_claim_judge_verdicts_do_not_depend_on_batch_or_order(claims_judge):
    from evalsuite.judge import make_judge

    items = _long_items()
    forward = claims_judge.judge(items)
    backward = claims_judge.judge(items[::-1])[::-1]
    alone = [make_judge("learned-claims", cache=False).judge([item])[0] for item in items[:3]]
    key = [(v.item_id, v.accuracy, v.completeness, v.raw) for v in forward]
    assert key == [(v.item_id, v.accuracy, v.completeness, v.raw) for v in backward]
    assert key[:3] == [(v.item_id, v.accuracy, v.completeness, v.raw) for v in alone]


def test_short_gold_answers_are_judged_as_learned_correctness(claims_judge):
    from evalsuite.judge import JudgeItem, make_judge

    items = [
        JudgeItem("a", "Who wrote Frankenstein?", ("Mary Shelley",), (), "It was Mary Shelley."),
        JudgeItem("b", "Who wrote Frankenstein?", ("Mary Shelley",), (), "Charles Dickens wrote it."),
    ]
    mixed = claims_judge.judge([items[0], _long_items()[0], items[1]])
    short = make_judge("learned-correctness", cache=False).judge(items)
    assert [(v.accuracy, v.completeness) for v in (mixed[0], mixed[2])] == [(v.accuracy, v.completeness) for v in short]
    assert [v.item_id for v in mixed] == ["a", "0-full", "b"] and all(v.judge == "learned-claims" for v in mixed)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.text(max_size=600))
def test_the_claim_judge_takes_any_answer(claims_judge, answer):
    import math

    from evalsuite.judge import JudgeItem

    item = JudgeItem(
        "x",
        "What is gout and how is it treated?",
        ("The main sign of gout is sudden pain in the big toe. It is treated with tablets.",),
        ("Gout is treated with anti-inflammatory tablets.",),
        answer,
    )
    verdict = claims_judge.judge([item])[0]
    assert math.isfinite(verdict.accuracy) and 1.0 <= verdict.accuracy <= 5.0
    assert math.isfinite(verdict.completeness) and 1.0 <= verdict.completeness <= 5.0


def test_the_weights_name_their_data_and_the_selection_its_rule():
    import json

    from evalsuite.judge._learned import CLAIM_WEIGHTS, WEIGHTS_DIR

    weights = json.loads((WEIGHTS_DIR / CLAIM_WEIGHTS).read_text(encoding="utf-8"))
    selection = json.loads((WEIGHTS_DIR / "claims.v1.selection.json").read_text(encoding="utf-8"))
    assert weights["training"]["file"] == "liveqa_med.jsonl" and weights["training"]["split"] == "fit"
    assert selection["split"] == "fit" and "rule" in selection["accuracy"] and "rule" in selection["completeness"]
    chosen = selection["accuracy"]["chosen"]
    assert any(
        c["features"] == chosen["features"]
        and c["C"] == chosen["C"]
        and c["target"] == chosen["target"]
        and c["within_margin"]
        for c in selection["accuracy"]["candidates"]
    )
    assert weights["cross_validation"]["completeness"]["auc"] == selection["completeness"]["held_out"]["auc"]


def test_support_reads_the_passages_and_flags_clashing_claims(similarity):
    from evalsuite.judge._claim_features import claim_features

    question = "How is gout treated?"
    gold = ("Gout is treated with anti-inflammatory tablets for 5 days.",)
    answer = "Gout is treated with anti-inflammatory tablets for 5 days. Cherries may lower uric acid levels."
    passage = ("Some studies found that cherries may lower uric acid levels.",)
    without = claim_features(question, gold, (), answer, similarity)
    with_passage = claim_features(question, gold, passage, answer, similarity)
    assert with_passage["sup_sim"] > without["sup_sim"] and with_passage["sup_share"] > without["sup_share"]
    assert without["contradict"] == 0.0 and without["cov_share"] == 1.0
    clash = claim_features(
        question, gold, (), "Gout is treated with anti-inflammatory tablets for 12 days.", similarity
    )
    negation = claim_features(question, gold, (), "Gout is not treated with anti-inflammatory tablets.", similarity)
    assert clash["contradict"] == 1.0 and negation["contradict"] == 1.0


def test_huge_answers_are_read_in_bounded_work(similarity):
    import time

    start = time.perf_counter()
    coverage = claim_coverage("Iron tablets help. " * 200_000 + "\x00\u202e\ud800", [GOLD * 50], similarity=similarity)
    assert time.perf_counter() - start < 20
    assert 0 < len(coverage.claims) <= _claims.MAX_CLAIMS
    assert len(split_claims("x" * 5_000_000)) == 1 and len(split_claims("x" * 5_000_000)[0]) <= _claims.MAX_CHARS


def test_the_benchmark_shows_the_fit_split_cross_validation(claims_judge):
    from benchmarks.judge_agreement import cv_row

    row = cv_row(claims_judge.fit_split_cross_validation)
    assert row["split"] == "fit" and row["label"] == "fit split, 5-fold cross-validated by question"
    for criterion in ("accuracy", "completeness"):
        c = row[criterion]
        assert (
            c["auc_ci"][0] <= c["auc"] <= c["auc_ci"][1] and c["spearman_ci"][0] <= c["spearman"] <= c["spearman_ci"][1]
        )
        assert c["auc_answers"] > 0
