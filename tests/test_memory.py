"""The resident-memory figures of a run: the sampler sees a stage's peak, nested stages each get theirs."""

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from evalsuite import memory as _memory

pytestmark = pytest.mark.skipif(_memory.rss_mb() is None, reason="no /proc on this system")


def test_a_stage_sees_memory_that_was_freed_before_it_ended():
    with _memory.stage() as outer:
        with _memory.stage() as inner:
            block = np.ones(200 * 1024 * 1024 // 8)  # 200 MiB, every page written
            _memory.threading.Event().wait(5 * _memory.INTERVAL_S)
            del block
        after_inner = _memory.rss_mb()
    assert inner.peak_mb - inner.start_mb > 150
    assert outer.peak_mb >= inner.peak_mb - 1
    assert inner.end_mb < inner.peak_mb - 150  # the block was given back before the stage ended
    assert after_inner < inner.peak_mb
    assert set(inner.to_dict()) == {"start_mb", "peak_mb", "end_mb"}


def test_the_process_peak_is_at_least_any_stage_peak():
    with _memory.stage() as m:
        block = np.ones(50 * 1024 * 1024 // 8)
        del block
    assert _memory.peak_rss_mb() >= m.peak_mb - 1


BASE = "bundled:smollm2-135m-instruct"


def _config(seed: int):
    from evalsuite.finetune import FinetuneConfig

    return FinetuneConfig(
        epochs=1,
        per_device_batch_size=4,
        learning_rate=2e-3,
        max_seq_length=128,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=("q_proj", "v_proj"),
        seed=seed,
    )


def test_gradient_checkpointing_trains_the_same_adapter_with_less_memory(monkeypatch):
    """Recomputing activations (with dropout on, its masks replayed) gives byte-identical adapter
    weights, and training's resident set grows less."""
    from evalsuite.finetune import train_adapter

    seed = random.randrange(10**6, 10**9)  # a fresh store key: both runs really train
    weights, grew = {}, {}
    for flag in ("0", "1"):
        monkeypatch.setenv("EVALSUITE_GRADIENT_CHECKPOINTING", flag)
        _memory.release()
        with _memory.stage() as m:
            result = train_adapter(BASE, "nq", 8, _config(seed), progress=False)
        assert not result.cached
        assert result.manifest["gradient_checkpointing"] is (flag == "1")
        weights[flag] = (Path(result.path) / "adapter_model.safetensors").read_bytes()
        shutil.rmtree(result.path)  # the second run trains again instead of reading the store
        grew[flag] = m.peak_mb - m.start_mb
    assert weights["0"] == weights["1"]
    assert grew["1"] < grew["0"]


def test_resident_memory_stays_flat_over_several_adapter_cells():
    """With the base model resident (as for a run's baseline cell), train an adapter, load it,
    generate and release it, four times: each such cell leaves the resident set where it found it
    (a kept training copy or rebuilt int8 model would add some 300-500 MB a cell)."""
    from evalsuite import models
    from evalsuite.finetune import train_adapter, training_pairs
    from evalsuite.models import GenerationSettings, load_model
    from evalsuite.records import Message, Prompt

    prompt = [Prompt(messages=(Message("user", "Name a colour."),))]
    settings = GenerationSettings(max_new_tokens=4)
    base = load_model(BASE)
    base.generate(prompt, settings)
    training_pairs("nq", 4)  # the retrieval index the pairs come from, built once
    _memory.release()
    start = _memory.rss_mb()
    after = []
    for _ in range(4):
        result = train_adapter(BASE, "nq", 4, _config(random.randrange(10**6, 10**9)), progress=False)
        spec = f"{BASE}+lora:{result.path}"
        load_model(spec).generate(prompt, settings)
        models.release(spec)
        shutil.rmtree(result.path)
        _memory.release()
        after.append(_memory.rss_mb() - start)
    assert max(after) < 250, after
    base.generate(prompt, settings)
