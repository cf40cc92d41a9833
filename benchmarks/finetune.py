"""LoRA training throughput of the bundled model on 16 RAG pairs: the path a run takes here, and fp32.

Trains directly (no adapter store), with the training loop's own pieces (pairs encoded and
batched as in ``evalsuite.finetune``, loss on the answer positions, rows read unpadded), so
every run does the same work. The path is what ``FinetuneConfig(precision="auto")`` picks:
bf16 on a CPU with native bf16, fp32 elsewhere (never emulated bf16).

    python -m benchmarks.finetune --json

Reports tokens/s of the path and of fp32, their ratio, and the floor of the 6 * N * tokens
rule at the measured fp32 peak (N: the parameters of the linear layers a token passes).
"""

from __future__ import annotations

import argparse
import json
import time

from evalsuite import throughput as _throughput
from evalsuite.device import auto_dtype
from evalsuite.finetune import answer_loss, encode_pair, pad_collator, render_pair
from evalsuite.models import load_tokenizer, resolve_weights

from ._prompts import rag_prompts


def train_tokens_per_second(precision: str, texts, steps: int, max_len: int) -> float:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    weights = resolve_weights("bundled:smollm2-135m-instruct")
    tok = load_tokenizer(weights.path)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(weights.path, dtype=dtype, local_files_only=True)
    model = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM"),
    )
    rows = []
    for p, c in texts:
        ids, labels, _ = encode_pair(tok, p, c, max_len)
        rows.append({"input_ids": ids, "labels": labels})
    collate = pad_collator(tok.pad_token_id)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    batches = [collate(rows[i : i + 4]) for i in range(0, len(rows), 4)]
    model.train()

    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = answer_loss(model, batch)
        loss.backward()
        optim.step()
        optim.zero_grad()

    step(batches[0])  # warm-up
    tokens = 0
    start = time.perf_counter()
    for i in range(steps):
        batch = batches[i % len(batches)]
        step(batch)
        tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps of 4 pairs per precision")
    parser.add_argument("--max-seq-length", type=int, default=384, help="as the smoke profile (default %(default)s)")
    parser.add_argument("--precision", default="auto", help="auto (the path a run takes here), bf16 or fp32")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import torch

    path = {torch.bfloat16: "bf16", torch.float32: "fp32"}[auto_dtype("cpu", args.precision)]
    examples, prompts = rag_prompts(16)
    weights = resolve_weights("bundled:smollm2-135m-instruct")
    tok = load_tokenizer(weights.path)
    texts = [render_pair(tok, p, ex.references[0]) for ex, p in zip(examples, prompts)]
    fp32 = train_tokens_per_second("fp32", texts, args.steps, args.max_seq_length)
    chosen = fp32 if path == "fp32" else train_tokens_per_second(path, texts, args.steps, args.max_seq_length)
    config = json.loads(open(f"{weights.path}/config.json", encoding="utf-8").read())
    peak = _throughput.peak_fp32_flops()
    six_n = 3 * _throughput.transformer_flops(config)["body"]  # body = 2N
    result = {
        "path": path,
        "tokens_per_second": round(chosen, 2),
        "tokens_per_second_fp32": round(fp32, 2),
        "ratio_to_fp32": round(chosen / fp32, 2),
        "peak_fp32_gflops": round(peak / 1e9, 1),
        "floor_6n_tokens_per_second": round(peak / six_n, 1),
        "share_of_6n_floor": round(chosen / (peak / six_n), 3),
        "max_seq_length": args.max_seq_length,
    }
    _throughput.save(f"train/{path}", {"tokens_per_s": chosen, "max_seq_length": args.max_seq_length})
    if path != "fp32":
        _throughput.save("train/fp32", {"tokens_per_s": fp32, "max_seq_length": args.max_seq_length})
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
