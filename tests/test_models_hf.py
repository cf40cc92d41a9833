"""The bundled SmolLM2 through the transformers backend: batching, templates, logprobs, cache."""

from __future__ import annotations

import json
import math
import time

import pytest

from evalsuite.models import GenerationSettings, load_model
from evalsuite.models._hf import render
from evalsuite.records import Message, Prompt

QUESTIONS = ("What is the capital of France?", "Name a primary colour.", "What is two plus two? Explain at length.")


@pytest.fixture(scope="module")
def smol():
    return load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4)


def chat(text: str, prefill: str = "") -> Prompt:
    return Prompt((Message("system", "Answer briefly."), Message("user", text)), prefill=prefill)


def test_materialized_copy_loads_fast_and_identity_is_stable(smol):
    start = time.perf_counter()
    again = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=1)
    assert time.perf_counter() - start < 30  # no GGUF de-quantization on later loads
    assert again.identity == smol.identity  # batch size does not change what the model is
    assert again.backend.path == smol.backend.path
    assert "lora" not in smol.spec


def test_batched_greedy_keeps_order_and_matches_single():
    # fp32: an answer does not depend on its batch (bf16 is covered by the fixed batches below)
    model = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4, dtype="fp32")
    assert model.backend.batch_invariant
    prompts = [chat(q) for q in QUESTIONS]
    settings = GenerationSettings(max_new_tokens=8)
    batched = model.generate(prompts, settings)
    assert all(g.text.strip() for g in batched)
    single = model.generate([prompts[0]], settings)[0]
    assert single.text == batched[0].text
    assert all(0 < g.completion_tokens <= 8 and g.prompt_tokens > 10 for g in batched)


def test_bf16_answers_do_not_depend_on_what_was_cached_before(tmp_path):
    """In bf16 a batch's padding changes its answers, so a call is decoded in fixed batches
    keyed by their prompts: a call answers the same whatever part of it ran before."""
    prompts = [chat(q) for q in QUESTIONS + ("Why is the sea salty?", "Who wrote Hamlet?", "Define entropy.")]
    settings = GenerationSettings(max_new_tokens=6)

    def fresh(name):
        from evalsuite.models._cache import GenerationCache

        model = load_model("bundled:smollm2-135m-instruct", batch_size=4, dtype="bf16")
        model._cache = GenerationCache(tmp_path / f"{name}.sqlite")
        return model

    whole = fresh("whole")
    assert not whole.backend.batch_invariant
    reference = [g.text for g in whole.generate(prompts, settings)]
    assert whole.stats["model_calls"] == 6

    resumed = fresh("resumed")
    resumed.generate(prompts[:3], settings)  # an earlier, different call: different batches, other keys
    again = resumed.generate(prompts, settings)
    assert [g.text for g in again] == reference
    assert not any(g.cached for g in again)
    rerun = resumed.generate(prompts, settings)
    assert all(g.cached for g in rerun) and [g.text for g in rerun] == reference


def test_grouped_sampling_reads_the_prompt_once_and_is_reproducible(tmp_path):
    from evalsuite.models._cache import GenerationCache

    model = load_model("bundled:smollm2-135m-instruct")
    model._cache = GenerationCache(tmp_path / "g.sqlite")
    settings = GenerationSettings(max_new_tokens=8, temperature=1.0)
    prompt = chat(QUESTIONS[1])
    first = model.sample(prompt, settings, range(6))
    assert len(first) == 6 and len({g.text for g in first}) > 1  # each run draws its own answer
    assert model.stats["model_calls"] == 6
    again = model.sample(prompt, settings, range(6))
    assert [g.text for g in again] == [g.text for g in first] and all(g.cached for g in again)
    assert model.stats["model_calls"] == 6
    # without the cache the same seeds draw the same answers
    uncached = load_model("bundled:smollm2-135m-instruct", cache=False)
    assert [g.text for g in uncached.sample(prompt, settings, range(6))] == [g.text for g in first]
    with pytest.raises(Exception, match="temperature > 0"):
        model.sample(prompt, GenerationSettings(max_new_tokens=2), [0, 1])
    with pytest.raises(Exception, match="repeated seeds"):
        model.sample(prompt, settings, [1, 1])


def test_nucleus_keeps_the_smallest_set_reaching_top_p():
    import torch

    from evalsuite.models._hf import _sampling_probs

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = _sampling_probs(torch, logits, 1.0, 0.7)
    assert torch.allclose(kept, torch.tensor([[0.5, 0.3, 0.0, 0.0]]))
    assert torch.allclose(_sampling_probs(torch, logits, 1.0, 0.1), torch.tensor([[0.5, 0.0, 0.0, 0.0]]))
    assert torch.allclose(_sampling_probs(torch, logits, 1.0, 1.0), torch.tensor([[0.5, 0.3, 0.15, 0.05]]))


def test_templates_and_prefill(smol):
    tok = smol.tokenizer
    text, special = render(tok, chat("Hi", prefill="Score:"))
    assert text.endswith("<|im_start|>assistant\nScore:") and not special
    plain = Prompt((Message("user", "The sky is"),), prefill=" very", chat=False)
    assert render(tok, plain) == ("The sky is very", True)
    out = smol.generate([plain], GenerationSettings(max_new_tokens=4))[0]
    assert out.completion_tokens >= 1


def test_top_logprobs_are_exact_and_sorted(smol):
    out = smol.generate([chat(QUESTIONS[0])], GenerationSettings(max_new_tokens=3, top_logprobs=5))[0]
    assert out.top_logprobs is not None and len(out.top_logprobs) == out.completion_tokens
    for step in out.top_logprobs:
        values = [lp for _, lp in step]
        assert len(step) == 5 and values == sorted(values, reverse=True)
        assert all(v <= 0 for v in values) and sum(math.exp(v) for v in values) <= 1.0001
    # greedy: the chosen token is the most likely one
    assert out.text.startswith(out.top_logprobs[0][0][0].strip()[:1])


def test_seeded_sampling_is_reproducible(smol):
    settings = GenerationSettings(max_new_tokens=8, temperature=1.0, seed=3)
    a = smol.generate([chat(QUESTIONS[1])], settings)[0].text
    b = smol.generate([chat(QUESTIONS[1])], settings)[0].text
    assert a == b


def test_generation_cache_hits_across_model_objects():
    model = load_model("bundled:smollm2-135m-instruct", batch_size=4)
    settings = GenerationSettings(max_new_tokens=4, seed=int(time.time()))  # a fresh key every run
    first = model.generate([chat(QUESTIONS[0])], settings)[0]
    second = load_model("bundled:smollm2-135m-instruct", batch_size=4).generate([chat(QUESTIONS[0])], settings)[0]
    assert not first.cached and second.cached and second.text == first.text


def test_cli_generate_prints_json_rows(capsys):
    from evalsuite.cli import main

    assert (
        main(["generate", "--dataset", "nq", "--limit", "2", "--max-new-tokens", "4", "--batch-size", "2", "--json"])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2
    for row in rows:
        assert set(row) == {"id", "question", "answer", "prompt_tokens", "completion_tokens", "seconds"}
        assert row["prompt_tokens"] > 50  # the retrieved passages are in the prompt
        assert 0 <= row["completion_tokens"] <= 4


def test_cli_reports_spec_errors_in_one_line(capsys):
    from evalsuite.cli import main

    assert main(["generate", "--model", "smollm2", "--dataset", "nq", "--limit", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evalsuite: error: malformed model spec") and "\n" not in err


def test_single_prompts_are_read_in_blocks_that_later_prompts_reuse():
    header = " ".join(f"Rule {i}: read the question, the reference and the answer with care." for i in range(20))
    first, second = (
        Prompt((Message("user", f"{header}\n\nQuestion: {q}\nAnswer: Paris"),), prefill="Score: ", chat=False)
        for q in QUESTIONS[:2]
    )
    settings = GenerationSettings(max_new_tokens=1, top_logprobs=5)
    warm = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=1)
    assert warm.backend.prefix_block == 64
    warm.generate([first], settings)
    stored = set(warm.backend._blocks)
    after_first = warm.generate([second], settings)[0]
    shared = stored & set(warm.backend._blocks)
    assert len(shared) >= 3 and len(warm.backend._blocks) < 2 * len(stored)  # the header's blocks were reused

    cold = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=1)
    cold.backend._blocks.clear()  # load_model shares the backend: empty its store
    cold.backend._stored_bytes = 0
    alone = cold.generate([second], settings)[0]
    assert len(cold.backend._blocks) > 0
    assert alone.top_logprobs == after_first.top_logprobs  # the same numbers whatever was read before

    one_pass = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=1, prefix_block=0)
    assert one_pass.identity != cold.identity
    reference = dict(one_pass.generate([second], settings)[0].top_logprobs[0])
    blocks = dict(alone.top_logprobs[0])
    # one pass rounds otherwise than blocks: near-ties may swap places, the numbers stay close
    assert max(reference, key=reference.get) == max(blocks, key=blocks.get)
    shared = set(reference) & set(blocks)
    assert len(shared) >= 4
    if one_pass.backend.precision != "int8":  # int8 scales each token's input by its own range: a small
        # rounding of the attention moves a log-probability by up to ~0.3 there (measured), hence the
        # separate identities; in fp32 and bf16 one pass and blocks agree closely
        assert max(abs(reference[t] - blocks[t]) for t in shared) < 1e-4


def test_stored_blocks_stay_within_their_byte_budget(monkeypatch):
    prompt = Prompt((Message("user", " ".join(["A long line of text to read in blocks."] * 60)),), chat=False)
    settings = GenerationSettings(max_new_tokens=1, top_logprobs=3)
    model = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=1)
    backend = model.backend  # load_model shares backends: restore what the test changes
    monkeypatch.setattr(backend, "_blocks", type(backend._blocks)())
    monkeypatch.setattr(backend, "_stored_bytes", 0)
    roomy = model.generate([prompt], settings)[0]
    blocks = len(backend._blocks)
    assert blocks > 3 and backend._stored_bytes == sum(b for _, b in backend._blocks.values())
    monkeypatch.setattr(backend, "_blocks", type(backend._blocks)())
    monkeypatch.setattr(backend, "_stored_bytes", 0)
    monkeypatch.setattr(backend, "MAX_STORED_BYTES", 1)  # keeps only the latest block
    assert model.generate([prompt], settings)[0].top_logprobs == roomy.top_logprobs
    assert len(backend._blocks) == 1


# -- precision and the shared prefix --------------------------------------------------------------

RAG_SYSTEM = (
    "You answer questions from the numbered passages. Answer briefly, only from the passages, "
    "and say so when they do not hold the answer."
)


def rag(question: str, system: str = RAG_SYSTEM) -> Prompt:
    return Prompt(
        (
            Message("system", system),
            Message("user", f"Passages:\n[1] A short passage about {question}\n\nQuestion: {question}\nAnswer:"),
        )
    )


def test_precision_follows_the_cpu_and_names_itself(monkeypatch):
    from evalsuite.models._hf import pick_precision

    monkeypatch.setenv("EVALSUITE_CPU_BF16", "0")
    assert pick_precision("auto", "cpu") == "int8"
    monkeypatch.setenv("EVALSUITE_CPU_BF16", "1")
    assert pick_precision("auto", "cpu") == "fp32"
    assert pick_precision("bfloat16", "cpu") == "bf16" and pick_precision("int8", "cpu") == "int8"
    with pytest.raises(Exception, match="unknown dtype 'int4'"):
        pick_precision("int4", "cpu")
    with pytest.raises(Exception, match="int8 runs on the CPU only"):
        pick_precision("int8", "cuda")
    int8 = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4, dtype="int8")
    fp32 = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4, dtype="fp32")
    assert int8.backend.precision == "int8" and int8.backend.batch_invariant
    assert int8.identity != fp32.identity  # caches never mix precisions
    with int8.backend.active() as model:  # the shared base (adapters of other tests may be attached to it)
        assert any(type(m).__name__ == "Int8Linear" for name, m in model.named_modules() if "q_proj" in name)


@pytest.mark.parametrize("dtype", ["int8", "fp32"])
def test_answers_do_not_depend_on_the_thread_count_or_the_order(dtype):
    """A serial run (two threads) and a run under two pytest-xdist workers (one thread each)
    give the same answers and log-probabilities, and so does a rerun with the prompts in
    another order: int8 sums are integers, and attention on the CPU takes the math kernel,
    whose sums do not depend on the thread count (the fused kernel's do)."""
    import torch

    prompts = [rag(q) for q in ("the Nile", "insulin", "Mount Everest", "the printing press", "honey bees")]
    settings = GenerationSettings(max_new_tokens=12, top_logprobs=2)
    model = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4, dtype=dtype)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        whole = model.generate(prompts, settings)
        torch.set_num_threads(1)
        other = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4, dtype=dtype)
        reordered = other.generate(prompts[::-1], settings)
    finally:
        torch.set_num_threads(threads)
    by_prompt = {p.key(): g for p, g in zip(prompts[::-1], reordered)}
    assert [g.text for g in whole] == [by_prompt[p.key()].text for p in prompts]
    assert [g.top_logprobs for g in whole] == [by_prompt[p.key()].top_logprobs for p in prompts]
    again = model.generate(prompts, settings)
    assert [g.top_logprobs for g in again] == [g.top_logprobs for g in whole]


def test_a_batch_reads_the_shared_instructions_once_and_answers_as_without():
    prompts = [rag(q) for q in ("the Nile", "insulin", "Mount Everest")]
    prompts.append(rag("honey bees", system="Answer in one word taken from the passages, and never explain it."))
    settings = GenerationSettings(max_new_tokens=10, top_logprobs=3)
    shared = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4, dtype="fp32")
    backend = shared.backend
    lengths = [backend.shared_prefix_length(p) for p in prompts]
    assert lengths[0] == lengths[1] == lengths[2] > lengths[3] >= backend.MIN_SHARED_PREFIX
    text, _ = render(backend.tokenizer, prompts[0])
    assert backend.tokenizer.decode(backend.encode(prompts[0])[: lengths[0]]) + prompts[0].messages[-1].content in text
    backend._blocks.clear()
    backend._stored_bytes = 0
    out = shared.generate(prompts, settings)
    assert len(backend._blocks) == 2  # one cache per distinct prefix, read once
    whole = load_model("bundled:smollm2-135m-instruct", cache=False, batch_size=4, dtype="fp32", shared_prefix=False)
    assert whole.identity != shared.identity
    reference = whole.generate(prompts, settings)
    for a, b in zip(out, reference):
        assert [t for t, _ in a.top_logprobs[0]] == [t for t, _ in b.top_logprobs[0]]
        assert all(abs(x - y) < 1e-3 for (_, x), (_, y) in zip(a.top_logprobs[0], b.top_logprobs[0]))
    # a prompt's answer does not depend on the other prompts of its batch (or their prefixes)
    other = shared.generate([prompts[1], prompts[0]], settings)[1]
    assert other.text == out[0].text
    for s1, s2 in zip(other.top_logprobs, out[0].top_logprobs):
        assert [t for t, _ in s1] == [t for t, _ in s2] and all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(s1, s2))
