"""Bounded memory: adapters of one base are loaded onto one resident copy of it and switched, and
models no longer needed are released."""

from __future__ import annotations

import pytest

from evalsuite.models import GenerationSettings, clear_loaded, load_model, release, resident_bases
from evalsuite.records import Message, Prompt

BASE = "bundled:smollm2-135m-instruct"
PROMPTS = [Prompt((Message("user", q),)) for q in ("Name a primary colour.", "What is two plus two?")]
SETTINGS = GenerationSettings(max_new_tokens=6)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Four LoRA adapters with random (non-zero) weights on the bundled base, saved like trained ones."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = load_model(BASE, cache=False).backend.path
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    peft = get_peft_model(
        model,
        LoraConfig(
            r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
        ),
    )
    folders = []
    for seed in range(4):
        torch.manual_seed(seed)
        for name, param in peft.named_parameters():
            if "lora_" in name:
                torch.nn.init.normal_(param, std=0.05)
        folder = tmp_path_factory.mktemp(f"adapter{seed}")
        peft.save_pretrained(folder)
        folders.append(folder)
    del peft, model
    clear_loaded()
    return folders


def bases_of(path: str) -> list[tuple]:
    return [b for b in resident_bases() if b[0] == path]


def answers(spec: str) -> list[str]:
    return [g.text for g in load_model(spec, cache=False).generate(PROMPTS, SETTINGS)]


def test_four_adapter_cells_of_one_base_keep_one_base_resident(adapters):
    base = answers(BASE)
    path = load_model(BASE, cache=False).backend.path
    tuned = {}
    for folder in adapters:
        spec = f"{BASE}+lora:{folder}"
        tuned[spec] = answers(spec)
        assert len(bases_of(path)) == 1  # the adapter went onto the one resident base
    assert len(set(map(tuple, tuned.values()))) > 1 and any(t != base for t in tuned.values())
    assert answers(BASE) == base  # adapters switched off for the base's own calls
    first = next(iter(tuned))
    assert answers(first) == tuned[first]  # and switched back on
    last = list(tuned)[-1]
    for spec in list(tuned)[:-1]:
        release(spec)
    assert answers(last) == tuned[last] and len(bases_of(path)) == 1

    clear_loaded()  # the last adapter alone on a fresh base answers as it did beside three others
    assert answers(last) == tuned[last] and answers(BASE) == base
    release(last)
    assert len(bases_of(path)) == 1  # the base spec itself is still loaded
    release(BASE)
    assert bases_of(path) == []
