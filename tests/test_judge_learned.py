"""The offline learned judge: its features, its weights (refit = shipped file), its agreement with people."""

import json
import math

import numpy as np
import pytest

from evalsuite.judge import JudgeItem, make_judge, qualify
from evalsuite.judge._features import FEATURES, Similarity, lexical_features
from evalsuite.judge._learned import DEFAULT_WEIGHTS, WEIGHTS_DIR

# Targets on the 1,490 human-labelled NQ answers (the judge never saw them): GPT-4 as a judge is
# quoted at AUC ~0.85, token overlap reaches 0.811 / 0.740 (all / 5+ words).
MIN_AUC = 0.85
MIN_AUC_LONG = 0.81


# ---------------------------------------------------------------- features


def test_lexical_features_read_aliases_numbers_stems_and_hedges():
    f = lexical_features(
        "Which national anthem was first called the War Song?", ["La Marseillaise (anthem)"], "It is La Marseillaise."
    )
    assert f["contains"] == 1.0 and f["recall"] == 1.0 and f["soft_recall"] == 1.0
    f = lexical_features("How many legs does a spider have?", ["8"], "A spider has eight legs.")
    assert f["soft_recall"] == 1.0 and f["numbers_match"] == 1.0 and f["numbers_clash"] == 0.0  # "eight" is 8
    f = lexical_features("How many legs does a spider have?", ["8"], "It has 6 legs.")
    assert f["numbers_clash"] == 1.0 and f["soft_recall"] == 0.0
    f = lexical_features("What are mosses classified as?", ["Bryophyta"], "Mosses are bryophytes.")
    assert f["soft_recall"] == 1.0 and f["recall"] == 0.0
    assert lexical_features("Who?", ["Ann"], "I'm sorry, I don't know.")["hedge"] == 1.0
    f = lexical_features("where is the university of wisconsin madison", ["Madison, Wisconsin"], "Madison")
    assert f["new_precision"] == 1.0  # an answer adding no word of its own is judged on the words it has
    assert set(f) == set(FEATURES) - {"sim_qref", "sim_q"}


def test_embedder_vectors_do_not_depend_on_threads_or_batch_companions(monkeypatch):
    import contextlib

    import torch

    from evalsuite.judge import _features

    # the judge pins the embedder to one thread; lift the pin to show the vectors do not need it
    monkeypatch.setattr(_features, "one_torch_thread", contextlib.nullcontext)
    texts = [
        "Mary Shelley wrote Frankenstein in 1818.",
        "Jupiter",
        "The capital of Australia is Canberra.",
        "a much longer answer " * 9,
        "Roughly ninety minutes on a full charge of the battery.",
    ]
    similarity = Similarity()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = np.vstack([similarity._encode([t]) for t in texts])
        torch.set_num_threads(2)
        together = similarity._encode(texts)
        shuffled = similarity._encode(texts[::-1] + ["padding text"] * 20)[: len(texts)][::-1]
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(alone, together) and np.array_equal(together, shuffled)
    assert np.allclose(np.linalg.norm(alone, axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------- the judge

ITEMS = [
    JudgeItem(
        "good",
        "Who painted the ceiling of the Sistine Chapel?",
        ("Michelangelo",),
        (),
        "The ceiling was painted by Michelangelo between 1508 and 1512.",
    ),
    JudgeItem(
        "wrong",
        "Who painted the ceiling of the Sistine Chapel?",
        ("Michelangelo",),
        (),
        "The ceiling was painted by Raphael.",
    ),
    JudgeItem(
        "hedge",
        "Who painted the ceiling of the Sistine Chapel?",
        ("Michelangelo",),
        (),
        "I'm sorry, I don't know who painted it.",
    ),
]


def test_verdicts_say_why_and_name_the_training_data():
    judge = make_judge("learned-correctness")
    weights = json.loads((WEIGHTS_DIR / DEFAULT_WEIGHTS).read_text())
    assert judge.config["training_file"] == "evouna_tq.jsonl"
    assert judge.config["training_sha256"] == "b2c37a582de9a1e32224e460700d7d0bc8ee0f2733297271fe22e72ec5f6158b"
    assert len(judge.config["weights_sha256"]) == 64 and judge.config["weights_file"] == DEFAULT_WEIGHTS
    good, wrong, hedge = judge.judge(ITEMS)
    assert good.accuracy > 4.0 > 2.0 > wrong.accuracy and hedge.accuracy < good.accuracy
    for v in (good, wrong, hedge):
        p = float(v.raw[0].split("=", 1)[1])
        assert v.accuracy == pytest.approx(1 + 4 * p, abs=1e-5) and v.mode == "deterministic" and v.unscored == 0
        assert v.raw[1].startswith("features: contains=") and "sim_qref=" in v.raw[1]
        assert "evouna_tq.jsonl" in v.raw[-1] and judge.config["weights_sha256"] in v.raw[-1]
        assert v.steps_version == f"{weights['version']}+{judge.config['weights_sha256'][:12]}"
    assert good.completeness == 5.0 and wrong.completeness == 1.0  # 1 + 4 * soft recall of the gold answer


def test_one_batch_and_one_item_at_a_time_give_the_same_verdicts():
    judge = make_judge("learned-correctness", cache=False)
    together = judge.judge(ITEMS)
    alone = [make_judge("learned-correctness", cache=False).judge([item])[0] for item in ITEMS]
    assert together == alone


@pytest.fixture(scope="module")
def learned_qualification():
    return qualify(make_judge("learned-correctness"))


def test_the_learned_judge_reaches_its_targets_on_the_human_set(learned_qualification):
    q = learned_qualification
    accuracy = q.criterion("accuracy")
    assert accuracy.auc >= MIN_AUC and accuracy.auc_long >= MIN_AUC_LONG
    gpt4 = next(a for a in q.anchors if a.name == "gpt4_eval")
    assert accuracy.kappa > 0.5 and accuracy.accuracy > 0.75 and gpt4.kappa > accuracy.kappa - 0.2
    assert accuracy.within_question > 0.75
    assert q.longform.share().good_over_wrong >= 0.8
    assert q.qualified and "accuracy" in q.gating_criteria and q.reasons[0].startswith("qualifies")
    assert q.items_per_second > 0 and not q.data.subset


def test_the_fit_reproduces_the_shipped_weights():
    from evalsuite.judge.fit_learned import SELECTION_FILE, build

    shipped = json.loads((WEIGHTS_DIR / DEFAULT_WEIGHTS).read_text(encoding="utf-8"))
    refit, selection = build()
    # the features and penalty were chosen by cross-validation on the training file, as recorded
    assert selection == json.loads((WEIGHTS_DIR / SELECTION_FILE).read_text(encoding="utf-8"))
    assert selection["chosen"] == {"features": "lexical+similarity", "C": refit["accuracy"]["fit"]["C"]}
    assert refit["training"] == shipped["training"] and refit["embedder"] == shipped["embedder"]
    assert refit["accuracy"]["features"] == shipped["accuracy"]["features"] == list(FEATURES)
    for name, weight in shipped["accuracy"]["weights"].items():
        assert refit["accuracy"]["weights"][name] == pytest.approx(weight, abs=1e-4), name
    assert refit["accuracy"]["intercept"] == pytest.approx(shipped["accuracy"]["intercept"], abs=1e-4)
    assert refit["cross_validation"] == shipped["cross_validation"]
    assert not math.isnan(refit["cross_validation"]["views"]["gold1"]["auc"])


def test_model_selection_cross_validates_on_the_training_rows_only():
    """The rule of fit_learned.select_model on rows written for the test: the similarity features
    are taken when they carry the signal, left out when they add nothing."""
    from evalsuite.judge.fit_learned import FEATURES as ALL
    from evalsuite.judge.fit_learned import select_model

    rng = np.random.default_rng(0)
    n = 1200
    groups = [f"q{i // 4}" for i in range(n)]  # four views of each question, as the training rows have
    names = ["all", "gold1", "gold2", "gold3"] * (n // 4)
    x = rng.normal(size=(n, len(ALL)))
    sim = ALL.index("sim_qref")
    labels = (x[:, sim] + 0.3 * rng.normal(size=n) > 0).astype(float)
    chosen = select_model(x, labels, groups, names)
    assert chosen["chosen"] == {"features": "lexical+similarity", "C": 1.0}
    assert chosen["file"].endswith("evouna_tq.jsonl") and len(chosen["candidates"]) == 6
    lexical = [c for c in chosen["candidates"] if c["features"] == "lexical"]
    assert all(not c["not_worse"] and c["diff_ci95"][1] < 0 for c in lexical)
    labels = (x[:, ALL.index("recall")] + 0.3 * rng.normal(size=n) > 0).astype(float)
    assert select_model(x, labels, groups, names)["chosen"]["features"] == "lexical"  # fewer features, as good
