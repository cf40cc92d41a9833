"""LoRA training throughput of the bundled model on 16 RAG pairs, fp32 vs bf16.

Trains directly (no adapter store) so both precisions do the same work every run.

    python -m benchmarks.finetune --json
"""
from __future__ import annotations

import argparse
import json
import time


def train_tokens_per_second(precision: str, texts, steps: int, max_len: int) -> float:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from evalsuite.finetune._train import _pad_collator, encode_pair
    from evalsuite.models._hf import load_tokenizer, resolve_weights

    weights = resolve_weights("bundled", "smollm2-135m-instruct")
    tok = load_tokenizer(weights.path)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(weights.path, dtype=dtype, local_files_only=True)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    rows = []
    for p, c in texts:
        ids, labels, _ = encode_pair(tok, p, c, max_len)
        rows.append({"input_ids": ids, "labels": labels})
    collate = _pad_collator(tok.pad_token_id)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    batches = [collate(rows[i : i + 4]) for i in range(0, len(rows), 4)]
    model.train()

    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps of 4 pairs per precision")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from evalsuite.finetune._train import render_pair
    from evalsuite.models._hf import load_tokenizer, resolve_weights

    from ._prompts import rag_prompts

    examples, prompts = rag_prompts(16)
    tok = load_tokenizer(resolve_weights("bundled", "smollm2-135m-instruct").path)
    texts = [render_pair(tok, p, ex.references[0]) for ex, p in zip(examples, prompts)]
    result = {"tokens_per_second_fp32": train_tokens_per_second("fp32", texts, args.steps, args.max_seq_length),
              "tokens_per_second_bf16": train_tokens_per_second("bf16", texts, args.steps, args.max_seq_length)}
    result["ratio"] = result["tokens_per_second_bf16"] / result["tokens_per_second_fp32"]
    result = {k: round(v, 2) for k, v in result.items()}
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
