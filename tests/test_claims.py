"""Claim-level judging: claims of a text, their coverage by an answer, the fitted claim judge."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalsuite.judge import ClaimCoverage, ClaimMatch, claim_coverage, split_claims
from evalsuite.judge import _claims

GOLD = ("Iron deficiency anemia is treated with iron tablets taken for three months. "
        "Vitamin C helps the body absorb the iron. "
        "Tea and coffee should not be drunk with the tablets.")


def test_split_claims_cuts_sentences_lines_and_bullets():
    text = ("Wash the cut with water. Cover it, e.g. with a plaster!\n- Change the dressing daily\n"
            "2. See a doctor if it swells.\n\n* Keep it dry")
    assert split_claims(text) == ("Wash the cut with water.", "Cover it, e.g. with a plaster!",
                                  "Change the dressing daily", "See a doctor if it swells.", "Keep it dry")
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
    full = ("Take iron tablets for three months to treat the anemia. Vitamin C helps you absorb the iron. "
            "Do not drink tea or coffee with the tablets.")
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
    ("shingles", "a rash of painful blisters", "an antiviral drug within three days", "a vaccine for adults over fifty"),
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
        reference = (f"The main sign of {topic} is {sign}. It is treated with {treatment}. "
                     f"The risk is lowered by {prevention}.")
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
            lines.append({"id": f"q{k}-a{grade}", "question_id": f"q{k}", "question": f"What is {topic} and how is it treated?",
                          "references": [reference], "answer": answer, "label": grade, "split": split})
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
    assert selection_a["accuracy"]["chosen"]["features"] in fit_claims.FEATURE_SETS
