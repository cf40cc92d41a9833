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
