"""A model backend from a package of its own, declared with its capabilities, goes through every stage
(fine-tuning or a clear refusal, the dry run, the availability check, judging) with no change to the core."""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from evalsuite import models
from evalsuite.errors import SpecError
from evalsuite.finetune import FinetuneConfig, train_adapter
from evalsuite.judge import JudgeItem, make_judge
from evalsuite.matrix import MatrixSession, build_config, build_plan, format_plan
from evalsuite.matrix._availability import unavailable_reason as matrix_unavailable_reason
from evalsuite.records import Message, Prompt

BUNDLED = "bundled:smollm2-135m-instruct"

TOY_PACKAGE = '''
"""Toy backends: a deterministic generator with its own word tokenizer, shipped outside evalsuite."""
import math
import os

from evalsuite.errors import SpecError
from evalsuite.models import BackendCapabilities, Generation, register_backend, resolve_weights

SEEN = []  # (scheme, options, settings) of every call, for the tests to read
SCORES = (("4", math.log(0.75)), ("3", math.log(0.25)))


class WordTokenizer:
    """Its own tokenizer: one token per word."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [len(word) for word in text.split()]}


def server_up(spec):
    if os.environ.get("TOY_SERVER_DOWN"):
        return f"the toy server of {spec.target} is down; unset TOY_SERVER_DOWN or start it"
    return None


class ToyBackend:
    batch_size = 4
    concurrency = 3

    def __init__(self, scheme, target, options):
        unknown = sorted(set(options) - {"echo_words"})
        if unknown:
            raise SpecError(f"unknown option(s) {', '.join(unknown)} for {scheme}: models: use echo_words")
        self.scheme, self.options = scheme, dict(options)
        self.identity = f"{scheme}-{target}-v1"
        self.tokenizer = WordTokenizer()

    def generate_batch(self, prompts, settings):
        SEEN.append((self.scheme, self.options, settings))
        if settings.top_logprobs > 2:
            raise SpecError(f"{self.scheme} returns at most 2 alternatives per token, {settings.top_logprobs} asked")
        out = []
        for p in prompts:
            words = p.messages[-1].content.split()[: self.options.get("echo_words", 3)]
            top = (SCORES[: settings.top_logprobs],) if settings.top_logprobs else None
            text = "4" if settings.top_logprobs else " ".join(words)
            out.append(Generation(text=text, prompt_tokens=len(words), completion_tokens=1, seconds=0.0,
            top_logprobs=top))
        return out


def toy_factory(target, adapter, options):
    return ToyBackend("toy", target, options)


def tune_factory(target, adapter, options):
    return ToyBackend("toytune", target, options)


def entry_factory(target, adapter, options):
    return ToyBackend("toyentry", target, options)


def bundled_weights(target, revision):
    """A fine-tunable toy: its weights are the bundled model's transformers files."""
    return resolve_weights("bundled:smollm2-135m-instruct")


# a served toy: nothing on disk, scores by log probabilities, at most 2 alternatives a step
TOY = BackendCapabilities(local=False, logprobs=True, top_logprobs=2, availability=server_up, tokenizer=True,
                          concurrent=True)
register_backend("toy", toy_factory, capabilities=TOY)
register_backend("toytune", tune_factory,
                 capabilities=BackendCapabilities(local=True, fine_tunable=True, weights=bundled_weights))
entry_factory.capabilities = BackendCapabilities(logprobs=True, top_logprobs=1)
'''

ITEMS = [
    JudgeItem("a", "what colour is the widget", ("It is blue.",), ("The widget is blue.",), "Blue."),
    JudgeItem("b", "what colour is the widget", ("It is blue.",), ("The widget is blue.",), "Red."),
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy package importable, with an entry point for the scheme ``toyentry``; imported once."""
    root = tmp_path_factory.mktemp("thirdparty")
    (root / "toy_backends").mkdir()
    (root / "toy_backends" / "__init__.py").write_text(textwrap.dedent(TOY_PACKAGE), encoding="utf-8")
    dist = root / "toy_backends-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-backends\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[evalsuite.backends]\ntoyentry = toy_backends:entry_factory\n", encoding="utf-8"
    )
    sys.path.insert(0, str(root))
    try:
        import toy_backends

        yield toy_backends
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("toy_backends", None)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TOY_SERVER_DOWN", raising=False)


def prompt(text: str) -> Prompt:
    return Prompt((Message("user", text),))


def write_dataset(folder: Path, n: int = 30) -> Path:
    """``n`` invented questions, each about its own widget."""
    rows = [
        {
            "id": f"q{i}",
            "question": f"What colour is widget {i}?",
            "answers": ["It is blue."],
            "passages": [{"id": f"p{i}", "doc_id": f"d{i}", "text": f"Widget {i} is painted blue."}],
        }
        for i in range(n)
    ]
    path = folder / "widgets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_declared_capabilities_are_looked_up_by_spec_scheme_or_entry_point(toy):
    caps = models.capabilities("toy:alpha")
    assert caps is models.capabilities("toy") is models.capabilities(models.parse_spec("toy:alpha"))
    assert caps.top_logprobs == 2 and caps.logprobs and not caps.local and not caps.fine_tunable
    assert models.capabilities("toytune:x").fine_tunable and models.capabilities("toytune:x").local
    # an entry point's factory declares them as its ``capabilities`` attribute
    assert models.capabilities("toyentry:x").top_logprobs == 1
    assert models.load_model("toyentry:x").backend.scheme == "toyentry"
    # the built-ins declare theirs the same way
    assert models.capabilities(BUNDLED).fine_tunable and models.capabilities("hf:gpt2").adapters
    assert not models.capabilities("openai:gpt-4o").local and models.capabilities("openai").top_logprobs == 20
    with pytest.raises(SpecError, match="unknown model backend 'nosuch'"):
        models.capabilities("nosuch:model")
    with pytest.raises(SpecError, match="declares where its weights are"):
        models.BackendCapabilities(fine_tunable=True)


def test_the_wrapper_uses_what_the_backend_declares_and_nothing_else(toy):
    model = models.load_model("toy:alpha", cache=False)
    assert model.tokenizer is model.backend.tokenizer  # declared: the tokenizer it counts with
    answers = model.generate([prompt(f"question number {i} here") for i in range(9)])
    assert [a.text for a in answers] == [f"question number {i}" for i in range(9)]
    # the same object registered without capabilities: no tokenizer, no concurrency taken from it
    models.register_backend("toybare", toy.toy_factory)
    bare = models.load_model("toybare:alpha", cache=False)
    assert bare.tokenizer is None and bare.capabilities == models.BackendCapabilities()
    assert models.register_backend("toyadapt", toy.toy_factory, adapters=True) is None
    assert models.capabilities("toyadapt").adapters and not models.capabilities("toyadapt").logprobs
    with pytest.raises(SpecError, match="cannot load LoRA adapters"):
        models.load_model("toy:alpha+lora:/tmp/none")


def test_a_spec_is_parsed_once_into_its_base_and_adapter(tmp_path):
    parsed = models.parse_spec(f"toy:alpha+lora:{tmp_path}")
    assert (parsed.base, parsed.adapter, parsed.spec) == ("toy:alpha", str(tmp_path), f"toy:alpha+lora:{tmp_path}")
    assert models.parse_spec(parsed) is parsed
    assert models.with_adapter("hf:org/model", tmp_path / "a") == f"hf:org/model+lora:{tmp_path / 'a'}"
    assert models.parse_spec(models.with_adapter("hf:org/model+lora:/old", "/new")).adapter == "/new"


def test_a_backend_that_cannot_be_fine_tuned_is_refused_naming_the_fix(toy):
    with pytest.raises(SpecError) as info:
        train_adapter("toy:alpha", "nq", 4, FinetuneConfig(epochs=1), progress=False)
    message = str(info.value)
    assert "toy:alpha" in message and "cannot be fine-tuned" in message and "fine_tunable" in message
    assert "\n" not in message
    with pytest.raises(SpecError, match="has no local weights"):
        models.resolve_weights("toy:alpha")


def test_availability_is_the_backends_own_check(toy, tmp_path, monkeypatch):
    assert models.unavailable_reason("toy:alpha") is None
    assert matrix_unavailable_reason("deepeval:toy:alpha") is None
    monkeypatch.setenv("TOY_SERVER_DOWN", "1")
    reason = "the toy server of alpha is down; unset TOY_SERVER_DOWN or start it"
    assert models.unavailable_reason("toy:alpha") == reason
    assert matrix_unavailable_reason("toy:alpha") == reason
    assert matrix_unavailable_reason("deepeval:toy:alpha") == reason  # deepeval's GEval on that model
    assert "adapter folder" in models.unavailable_reason(f"toy:alpha+lora:{tmp_path / 'missing'}")
    config = build_config(
        "p",
        {
            "models": [{"spec": "toy:alpha", "name": "toy"}],
            "datasets": [{"name": "widgets", "path": str(write_dataset(tmp_path))}],
            "sizes": [0],
            "eval_limit": 3,
            "judges": ["token-overlap"],
        },
    )
    session = MatrixSession(config, report_root=tmp_path / "reports")
    (cell,) = session.cells
    assert session.skip_reason(cell) == reason
    monkeypatch.delenv("TOY_SERVER_DOWN")
    assert session.skip_reason(cell) is None


def test_the_dry_run_plans_the_backend_from_its_capabilities(toy, tmp_path, monkeypatch):
    toy.SEEN.clear()
    values = {
        "models": [{"spec": "toy:alpha", "name": "toy"}, {"spec": "toytune:beta", "name": "tune"}],
        "datasets": [{"name": "widgets", "path": str(write_dataset(tmp_path))}],
        "sizes": [0],
        "eval_limit": 3,
        "judges": ["token-overlap", "toy:judge"],
        "judge_mode": "sample",
        "judge_repeats": 2,
    }
    plan = build_plan(build_config("p", values), report_root=tmp_path / "reports")
    assert {c.id: c.note for c in plan.cells} == {"widgets-toy-ft0": "", "widgets-tune-ft0": ""}
    generation = {s.model: s for s in plan.stages if s.stage == "generation"}
    assert generation["widgets-toy-ft0"].calls == 3
    # not local: estimated as an API model; local: from its weights' config (none readable here)
    assert generation["widgets-toy-ft0"].source == "not estimated: an API model with no measurement here"
    assert generation["widgets-tune-ft0"].source == "not estimated: weights/config not present"
    judging = {s.model: s for s in plan.stages if s.stage == "judging"}
    assert judging["widgets-toy-ft0 / toy:judge/geval-chat/sample"].calls == 3 * 2 * 2  # items x criteria x repeats
    assert "widgets-toy-ft0" in format_plan(plan) and "calls" in format_plan(plan)
    assert toy.SEEN == []  # a dry run generates nothing
    monkeypatch.setenv("TOY_SERVER_DOWN", "1")
    down = build_plan(build_config("p", values), report_root=tmp_path / "reports")
    assert {c.id: c.note for c in down.cells}["widgets-toy-ft0"].startswith("skipped here (the toy server of alpha")


def test_the_backend_judges_with_the_logprobs_it_declares(toy, tmp_path):
    toy.SEEN.clear()
    judge = make_judge("toy:judge", mode="logprobs", cache_path=str(tmp_path / "judge.sqlite"))
    verdicts = judge.judge(ITEMS)
    assert [v.mode for v in verdicts] == ["logprobs", "logprobs"] and not any(v.logprobs_missing for v in verdicts)
    for v in verdicts:  # p(4) = 0.75, p(3) = 0.25 on every criterion
        assert math.isclose(v.accuracy, 3.75) and math.isclose(v.completeness, 3.75)
    # asked for no more alternatives than it returns, and given no option it does not take (batch_size)
    assert {s.top_logprobs for _, _, s in toy.SEEN} == {2}
    assert {json.dumps(o) for _, o, _ in toy.SEEN} == {"{}"}
    sampled = make_judge("toy:judge", mode="sample", repeats=2, temperature=0.5, cache=False)
    assert [v.mode for v in sampled.judge(ITEMS[:1])] == ["sample"]


@pytest.mark.slow
def test_a_fine_tunable_backend_trains_on_its_declared_weights(toy):
    config = FinetuneConfig(
        epochs=1,
        per_device_batch_size=4,
        learning_rate=2e-3,
        max_seq_length=96,
        lora_r=2,
        lora_alpha=4,
        lora_dropout=0.0,
        target_modules=("q_proj",),
        seed=random.randrange(10**9),
    )
    result = train_adapter("toytune:beta", "nq", 4, config, progress=False)
    try:
        assert not result.cached and (Path(result.path) / "adapter_config.json").is_file()
        # the adapter is keyed by the weights' content: the bundled model's own request finds it
        again = train_adapter(BUNDLED, "nq", 4, config, progress=False)
        assert again.cached and Path(again.path) == Path(result.path)
    finally:
        shutil.rmtree(result.path, ignore_errors=True)
