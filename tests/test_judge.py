"""Judge layer tests that need no language model (the model-backed ones are in test_judge_model.py)."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalsuite.errors import ConfigError, DataError
from evalsuite.judge import (
    BUNDLED_FORMS,
    CRITERIA,
    FORMS,
    PREFILL,
    JudgeCache,
    JudgeItem,
    load_items,
    load_steps,
    make_judge,
    mean_std,
    parse_score,
    registered_judges,
    render,
    score_distribution,
    weighted_score,
)
from evalsuite.judge._cache import run_key

# ---------------------------------------------------------------- parsing


@given(st.text())
@settings(max_examples=500, deadline=None)
def test_parse_score_any_text_gives_a_score_in_range_or_none(text):
    score = parse_score(text)
    assert score is None or 1.0 <= score <= 5.0


@given(st.integers(min_value=1, max_value=5), st.text(alphabet=" \n\t/.abc", max_size=10))
def test_parse_score_reads_the_digit_after_the_prefill(score, tail):
    assert parse_score(f"{score}{tail}") == score


@pytest.mark.parametrize(
    "text,expected",
    [
        ("4", 4.0),
        (" 3/5", 3.0),
        ("4.5 out of 5", 4.5),
        ("five", 5.0),
        ("0", None),
        ("10", None),
        ("", None),
        ("The answer is good", None),
        ("x4", None),
        ("-2", 2.0),
    ],
)
def test_parse_score_examples(text, expected):
    assert parse_score(text) == expected


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", " 2", "3", "4 ", "5", "x", "Score", " ", "10"]), st.floats(min_value=-30, max_value=0)
        ),
        max_size=30,
    )
)
def test_score_distribution_is_normalized_and_weighted_score_is_its_expectation(pairs):
    dist = score_distribution(pairs)
    if dist is None:
        assert not any(t.strip() in {"1", "2", "3", "4", "5"} for t, _ in pairs)
        return
    assert set(dist) == {1, 2, 3, 4, 5}
    assert sum(dist.values()) == pytest.approx(1.0)
    expected = sum(s * p for s, p in dist.items())
    assert weighted_score(dist) == pytest.approx(expected)
    assert 1.0 <= weighted_score(dist) <= 5.0


def test_weighted_score_matches_a_known_distribution():
    pairs = [("4", math.log(0.5)), (" 5", math.log(0.25)), ("the", math.log(0.2)), ("2", math.log(0.05))]
    dist = score_distribution(pairs)
    # renormalized over digits: 0.5, 0.25, 0.05 -> / 0.8
    assert dist[4] == pytest.approx(0.625) and dist[5] == pytest.approx(0.3125) and dist[2] == pytest.approx(0.0625)
    assert weighted_score(dist) == pytest.approx(4 * 0.625 + 5 * 0.3125 + 2 * 0.0625)


def test_mean_std_skips_nan_and_counts_it():
    mean, std, missing = mean_std([4.0, float("nan"), 2.0])
    assert (mean, std, missing) == (3.0, 1.0, 1)
    mean, std, missing = mean_std([float("nan")])
    assert math.isnan(mean) and missing == 1


# ---------------------------------------------------------------- criteria, steps, forms

ITEM = JudgeItem(
    "q1",
    "who got the first nobel prize in physics",
    ("Wilhelm Conrad Röntgen",),
    ("The first Nobel Prize in Physics was awarded in 1901 to Wilhelm Conrad Röntgen.",),
    "Wilhelm Röntgen",
)


def test_criteria_have_a_full_rubric_and_frozen_steps():
    assert set(CRITERIA) == {"accuracy", "completeness"}
    for name, criterion in CRITERIA.items():
        assert [s for s, _ in criterion.rubric] == [1, 2, 3, 4, 5]
        steps = load_steps(name, "v1")
        assert steps.version == "v1" and len(steps.steps) >= 3 and steps.text_hash
    with pytest.raises(ConfigError, match="steps_version"):
        load_steps("accuracy", "v999")


def test_every_form_ends_with_the_score_prefill():
    for form in FORMS:
        prompt = render(form, CRITERIA["accuracy"], load_steps("accuracy"), ITEM)
        assert prompt.prefill == PREFILL == "Score: "
        text = prompt.messages[-1].content
        assert "Answer: Wilhelm Röntgen" in text and "Reference answer: Wilhelm Conrad Röntgen" in text
        assert load_steps("accuracy").steps[1] in text and CRITERIA["accuracy"].description in text
    assert render("fewshot", CRITERIA["accuracy"], load_steps("accuracy"), ITEM).chat is False


# ---------------------------------------------------------------- reference judge


def test_token_overlap_judge_scores_precision_and_recall_on_1_to_5():
    judge = make_judge("token-overlap")
    assert judge.name == "token-overlap"
    assert judge.config == {"factory": "token-overlap"}
    assert make_judge("reference").config == judge.config  # the former name makes the same judge
    (v,) = judge.judge([ITEM])
    # "Wilhelm Röntgen": precision 1 -> 5; recall 2/3 -> 1 + 8/3
    assert v.accuracy == 5.0 and v.completeness == pytest.approx(1 + 4 * 2 / 3)
    assert v.judge == "token-overlap" and v.mode == "deterministic" and v.unscored == 0


def test_factory_records_its_arguments():
    judges = registered_judges()
    assert {"token-overlap", "learned-correctness", "bundled", "hf", "openai", "deepeval"} <= set(judges)
    judge = make_judge("bundled:smollm2-135m-instruct", mode="sample", repeats=3, temperature=0.5, cache=False)
    assert judge.config["factory"] == "geval"
    assert judge.config["model"] == "bundled:smollm2-135m-instruct"
    assert judge.config["repeats"] == 3 and judge.config["mode"] == "sample" and judge.config["temperature"] == 0.5
    assert judge.name == f"bundled:smollm2-135m-instruct/{BUNDLED_FORMS['bundled:smollm2-135m-instruct']}/sample"
    with pytest.raises(ConfigError):
        make_judge("bundled:smollm2-135m-instruct", mode="vibes")
    with pytest.raises(ConfigError):
        make_judge("bundled:smollm2-135m-instruct", engine="other")


# ---------------------------------------------------------------- cache


def test_cache_rows_survive_reopening_and_keys_separate_judges(tmp_path):
    path = tmp_path / "judge.sqlite"
    cache = JudgeCache(path)
    key_a = run_key(judge="model-a", criterion="accuracy", answer="x", repeat=0)
    key_b = run_key(judge="model-b", criterion="accuracy", answer="x", repeat=0)
    assert key_a != key_b
    cache.put(key_a, judge="model-a", criterion="accuracy", text="4", score=4.0, distribution={4: 0.9, 5: 0.1})
    cache.put(key_b, judge="model-b", criterion="accuracy", text="??", score=float("nan"))
    cache.close()
    again = JudgeCache(path)
    row_a, row_b = again.get(key_a), again.get(key_b)
    assert row_a["score"] == 4.0 and row_a["distribution"] == {4: 0.9, 5: 0.1}
    assert math.isnan(row_b["score"]) and row_b["text"] == "??"
    assert again.get(run_key(judge="model-c", criterion="accuracy", answer="x", repeat=0)) is None
    assert again.count() == 2 and again.count("model-a") == 1
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---------------------------------------------------------------- input files


def test_load_items_names_line_and_field(tmp_path):
    good = {"question": "q", "references": ["a"], "context": ["c"], "answer": "a", "id": "x"}
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "y", "references": "a b"}) + "\n")
    items = load_items(path)
    assert [i.id for i, _, _ in items] == ["x", "y"] and items[1][0].references == ("a b",)
    assert items[0][2] == "q"  # the question id defaults to the question
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "z", "references": [1]}) + "\n")
    with pytest.raises(DataError, match=r"line 2: field 'references'"):
        load_items(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(DataError, match=r"line 2: not valid JSON"):
        load_items(path)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "answer"}) + "\n")
    with pytest.raises(DataError, match=r"line 1: missing field 'answer'"):
        load_items(path)


# ---------------------------------------------------------------- auto chain of thought steps


def test_parse_steps_reads_a_numbered_list():
    from evalsuite.judge._steps_writer import parse_steps

    # the prompt pre-fills "1." so the text starts with the first step's words
    assert parse_steps(" Read the reference.\n2. Compare claims.\n3) Score it.\nThanks!") == [
        "Read the reference.",
        "Compare claims.",
        "Score it.",
    ]
    assert parse_steps("") == []


def test_written_steps_are_frozen(tmp_path):
    from evalsuite.judge import generate_steps
    from evalsuite.judge._criteria import model_slug

    assert model_slug("bundled:smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert model_slug("openai:http://127.0.0.1:8000/v1#my-model") == "my-model"
    existing = tmp_path / "accuracy.smollm2-135m-instruct.v1.json"
    existing.write_text("{}")
    with pytest.raises(ConfigError, match="frozen"):
        generate_steps("accuracy", "bundled:smollm2-135m-instruct", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown criterion"):
        generate_steps("fluency", "bundled:smollm2-135m-instruct", out_dir=tmp_path)


def _write_rows(path, worker, n):
    cache = JudgeCache(path)
    for i in range(n):
        cache.put(run_key(worker=worker, i=i), judge=f"w{worker}", criterion="accuracy", text=str(i), score=3.0)
    cache.close()


def test_cache_is_shared_by_concurrent_processes(tmp_path):
    import multiprocessing

    path = str(tmp_path / "judge.sqlite")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_rows, args=(path, w, 40)) for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert [p.exitcode for p in workers] == [0, 0, 0]
    assert JudgeCache(path).count() == 120
