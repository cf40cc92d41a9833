"""A real LoRA fine-tune of the bundled SmolLM2 on 16 NQ pool pairs, and its adapter store."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite import datasets, prompts, retrieval, splits
from evalsuite.errors import EvalsuiteError
from evalsuite.finetune import FinetuneConfig, PoolTooSmall, train_adapter
from evalsuite.finetune._train import encode_pair, render_pair, training_pairs
from evalsuite.models import GenerationSettings, load_model

BASE = "bundled:smollm2-135m-instruct"
ROOT = Path(__file__).resolve().parents[1]


def small_config(seed: int) -> FinetuneConfig:
    # a seed drawn per run gives a fresh store key, so the test really trains every time
    return FinetuneConfig(
        epochs=1,
        per_device_batch_size=4,
        learning_rate=2e-3,
        max_seq_length=128,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=("q_proj", "v_proj"),
        seed=seed,
    )


@pytest.fixture(scope="module")
def trained():
    config = small_config(random.randrange(10**6, 10**9))
    result = train_adapter(BASE, "nq", 16, config, progress=False)
    yield result, config
    shutil.rmtree(result.path, ignore_errors=True)


def mean_loss(model, tokenizer, pairs, max_len: int) -> float:
    import torch

    total = count = 0.0
    with torch.inference_mode():
        for ex, prompt in pairs:
            ids, labels, _ = encode_pair(tokenizer, *render_pair(tokenizer, prompt, ex.references[0]), max_len)
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
            n = sum(1 for x in labels if x != -100) - 1
            total += float(out.loss) * n
            count += n
    return total / count


def test_training_lowers_the_loss_on_its_pairs(trained):
    result, config = trained
    assert not result.cached
    base = load_model(BASE, cache=False)
    tuned = load_model(f"{BASE}+lora:{result.path}", cache=False)
    pairs = training_pairs("nq", 16)
    with base.backend.active() as model:  # the base and the adapter share one model object
        before = mean_loss(model, base.tokenizer, pairs, config.max_seq_length)
    with tuned.backend.active() as model:
        after = mean_loss(model, tuned.tokenizer, pairs, config.max_seq_length)
    assert after < before - 0.2, (before, after)  # the loss on the training pairs falls
    # one logged loss per optimizer step (step losses are of different batches, so they are not compared)
    assert [e["step"] for e in result.manifest["loss"]] == list(range(1, result.manifest["steps"] + 1))


def test_adapter_changes_answers_and_identity(trained):
    result, _ = trained
    base = load_model(BASE, cache=False)
    tuned = load_model(f"{BASE}+lora:{result.path}", cache=False)
    assert tuned.identity != base.identity
    dataset = datasets.load("nq")
    examples = list(splits.split(dataset).eval[:4])
    chunks = retrieval.get_retriever(dataset, progress=False).retrieve_many(examples)
    batch = [prompts.rag_prompt(ex.question, ch) for ex, ch in zip(examples, chunks)]
    settings = GenerationSettings(max_new_tokens=12)
    base_answers = [g.text for g in base.generate(batch, settings)]
    tuned_answers = [g.text for g in tuned.generate(batch, settings)]
    assert base_answers != tuned_answers


def test_manifest_is_complete(trained):
    result, config = trained
    path = Path(result.path)
    assert sorted(p.name for p in path.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "manifest.json",
    ]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["key"] == result.key == path.name
    parts = manifest["key_parts"]
    assert set(parts) == {"base", "examples", "pairs", "config", "versions", "loss"}
    assert parts["pairs"]["source"] == "pool"  # taken from the split's pool, not a pairs file
    assert parts["config"] == config.to_dict()
    assert set(parts["versions"]) == {"torch", "transformers", "peft"}
    assert manifest["size"] == 16 and len(manifest["example_ids"]) == 16
    assert manifest["example_ids"] == [ex.id for ex in splits.split(datasets.load("nq")).pool[:16]]
    assert manifest["steps"] == 4 and len(manifest["loss"]) == 4  # a loss for every step
    assert manifest["effective_batch_size"] == 4
    assert manifest["train_seconds"] > 0 and manifest["tokens_per_second"] > 0


def test_same_request_is_a_fast_store_hit(trained):
    result, config = trained
    again = train_adapter(BASE, "nq", 16, config, progress=False)
    assert again.cached and again.path == result.path and again.key == result.key
    assert again.seconds < result.manifest["train_seconds"] / 2


def test_cli_finetune_json_reports_the_stored_adapter(trained, capsys):
    from evalsuite.cli import main

    result, config = trained
    argv = [
        "finetune",
        "--model",
        BASE,
        "--dataset",
        "nq",
        "--size",
        "16",
        "--json",
        "--epochs",
        "1",
        "--per-device-batch-size",
        "4",
        "--learning-rate",
        "2e-3",
        "--max-seq-length",
        "128",
        "--lora-r",
        "8",
        "--lora-alpha",
        "16",
        "--lora-dropout",
        "0",
        "--target-modules",
        "q_proj,v_proj",
        "--seed",
        str(config.seed),
    ]
    assert main(argv) == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row) == {
        "adapter_path",
        "key",
        "cached",
        "train_loss_first",
        "train_loss_last",
        "seconds",
        "tokens_per_second",
    }
    assert row["cached"] is True and row["adapter_path"] == result.path


def test_size_beyond_the_pool_is_refused():
    pool = len(splits.split(datasets.load("qasper")).pool)
    with pytest.raises(PoolTooSmall, match=f"has {pool} pairs, fewer than the {pool + 1}"):
        train_adapter(BASE, "qasper", pool + 1, small_config(0), progress=False)


def test_qlora_without_gpu_asks_for_it():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EvalsuiteError, match="needs a CUDA GPU and bitsandbytes"):
        train_adapter(BASE, "nq", 4, FinetuneConfig(quantization="qlora"), progress=False)


TRAIN_ONE = """
import json, sys
from evalsuite.finetune import FinetuneConfig, train_adapter
config = FinetuneConfig(epochs=1, per_device_batch_size=2, max_seq_length=64, lora_r=4, lora_alpha=8,
                        target_modules=("q_proj",), seed=int(sys.argv[1]))
r = train_adapter("bundled:smollm2-135m-instruct", "nq", 4, config, progress=False)
print(json.dumps({"cached": r.cached, "path": r.path}))
"""


def test_two_processes_train_one_adapter_once():
    seed = str(random.randrange(10**6, 10**9))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")  # two trainers share the cores without spinning
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TRAIN_ONE, seed],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    try:
        assert sorted(o["cached"] for o in outs) == [False, True]  # exactly one trained, the other waited and reused
        assert outs[0]["path"] == outs[1]["path"]
    finally:
        shutil.rmtree(outs[0]["path"], ignore_errors=True)


def test_answer_position_loss_equals_the_models_own_loss():
    """Training applies the output layer to the answer positions only; the loss is the model's own."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from evalsuite.finetune._train import answer_loss, pad_collator

    path = load_model("bundled:smollm2-135m-instruct", cache=False).backend.path
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    rows = [
        {"input_ids": list(range(100, 160)), "labels": [-100] * 50 + list(range(150, 160))},
        {"input_ids": list(range(200, 240)), "labels": [-100] * 35 + list(range(235, 240))},
    ]
    batch = pad_collator(0)(rows)
    with torch.no_grad():
        own = model(**batch).loss
        ours = answer_loss(model, batch)
    assert abs(float(own) - float(ours)) < 1e-4
    with torch.no_grad():  # normalised by the count the trainer passes for gradient accumulation
        assert abs(float(answer_loss(model, batch, num_items_in_batch=30)) - float(ours) * 15 / 30) < 1e-4


def test_training_pairs_come_from_the_pool_of_the_matrix_split_with_its_top_k():
    from evalsuite import datasets, splits

    ds = datasets.load("nq")
    pairs = training_pairs("nq", 6, seed=3, top_k=2)
    assert [ex.id for ex, _ in pairs] == [ex.id for ex in splits.split(ds, seed=3).pool[:6]]
    assert [ex.id for ex, _ in pairs] != [ex.id for ex in splits.split(ds, seed=0).pool[:6]]
    assert all(len(prompt.passage_ids) == 2 for _, prompt in pairs)
    evals = {ex.id for ex in splits.split(ds, seed=3).eval}
    assert not evals & {ex.id for ex, _ in pairs}


def test_unpadded_batch_has_the_padded_batchs_loss_and_gradients():
    """Rows are read without their padding (equal lengths together): the loss and the adapter's
    gradients are those of the padded batch with its padding mask."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from evalsuite.finetune._train import answer_loss, pad_collator

    path = load_model("bundled:smollm2-135m-instruct", cache=False).backend.path
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    model = get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    )  # random B: every adapter weight gets a gradient
    rows = [
        {"input_ids": list(range(300, 348)), "labels": [-100] * 40 + list(range(340, 348))},
        {"input_ids": list(range(500, 530)), "labels": [-100] * 24 + list(range(524, 530))},
        {"input_ids": list(range(700, 748)), "labels": [-100] * 38 + list(range(738, 748))},
    ]
    batch = pad_collator(0)(rows)
    trained = [p for p in model.parameters() if p.requires_grad]

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return float(loss), [p.grad.clone() for p in trained]

    padded_loss, padded = grads(model(**batch).loss)
    unpadded_loss, unpadded = grads(answer_loss(model, batch))
    assert abs(padded_loss - unpadded_loss) < 1e-4
    for a, b in zip(padded, unpadded):  # the same up to float rounding (summed in another order)
        assert float((a - b).norm()) <= 1e-4 * float(a.norm()), float((a - b).norm() / a.norm())
