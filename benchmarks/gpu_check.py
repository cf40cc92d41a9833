"""One prepared check of the GPU paths on one CUDA GPU (H100/H200), sized to finish within 15 minutes.

    python -m benchmarks.gpu_check [--wheels DIR] [--out DIR]

A Llama-style model of about 1.1 billion parameters is built from a config with random weights
(nothing is downloaded; the tokenizer is the bundled SmolLM2's), then:

1. bf16 LoRA training (peft, r = 16 on the attention projections) for ``--steps`` steps: the loss
   of every step is printed and must be finite; training tokens/s.
2. batched greedy generation: ``--batch`` prompts, ``--new-tokens`` new tokens each; tokens/s.
3. four LoRA adapters (the trained one and three of random weights) loaded with peft's
   ``load_adapter`` on one resident base and switched with ``set_adapter``, twice round: the peak
   GPU memory (``torch.cuda.max_memory_allocated``) after each switch must stay flat (growth
   below ``--max-growth-mib``), an adapter gives the same tokens each time it is switched back
   on, and the adapters do not all answer alike.
4. QLoRA: the same training on the base loaded in 4-bit NF4 by bitsandbytes, when bitsandbytes
   imports (it is not installed with the project: ``--wheels DIR`` installs it from wheels
   there with ``pip install --no-index``); otherwise reported as skipped.
5. the same numbers serially and in two processes: greedy generation of the same prompts from
   the saved base, once in this process and at once in two worker processes on the same GPU,
   must give equal tokens.

It prints the loss of each step, then a JSON summary and a markdown table, and writes both
(``gpu_check.json``, ``gpu_check.md``) to ``--out`` (default ``$OUT`` when set). Exit status: 0
when every check holds, 1 when one fails, 2 without a CUDA GPU (a one-line message).

The prompts and training sentences are invented here.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from evalsuite.models import load_model, local_files

BUNDLED = "bundled:smollm2-135m-instruct"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
COLOURS = ("red", "green", "blue", "amber", "violet", "grey", "white", "black")
NO_CUDA = 2
DEVICE = "cuda"


def model_config(vocab_size: int, layers: int) -> dict[str, Any]:
    """A Llama-style decoder of about 1.1 billion parameters (at 22 layers and SmolLM2's vocabulary)."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": layers,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
    }


def prompts(n: int) -> list[str]:
    return [f"Question {i}: what colour is widget number {i} from workshop {i % 7}? Answer:" for i in range(n)]


def training_texts(n: int) -> list[str]:
    return [
        f"Widget number {i} is painted {COLOURS[i % len(COLOURS)]}. It was made in workshop {i % 7} "
        f"and weighs {3 + i % 5} kilograms."
        for i in range(n)
    ]


def growth_ok(peaks: list[int], max_growth: int) -> bool:
    """Whether the peak memory after the first switch grew by at most ``max_growth`` bytes later on."""
    return bool(peaks) and max(peaks) - peaks[0] <= max_growth


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a markdown table: one row per check, its figures and whether it held."""
    rows = ["| check | figures | result |", "|---|---|---|"]
    for name, check in summary["checks"].items():
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in check.items() if k not in ("ok", "status", "error"))
        status = check.get("status") or ("ok" if check.get("ok") else "FAILED")
        if check.get("error"):
            status += f": {check['error']}"
        rows.append(f"| {name} | {figures.replace('|', '/')} | {status.replace('|', '/')} |")
    return "\n".join(rows)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _mib(n: int) -> float:
    return round(n / 2**20, 1)


# -- pieces ----------------------------------------------------------------------------------------


def load_tokenizer(path: str | None):
    from transformers import AutoTokenizer

    if path is None:
        folder = local_files(BUNDLED)
        if folder is None:  # not materialized on this machine yet: loading it once does
            load_model(BUNDLED, device="cpu", dtype="fp32")
            folder = local_files(BUNDLED)
        path = str(folder)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def _from_config(config, torch):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    except TypeError:  # an older transformers names it torch_dtype
        return AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)


def _from_pretrained(path, torch, **kwargs):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, local_files_only=True, **kwargs)
    except TypeError:
        return AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.bfloat16, local_files_only=True, **kwargs)


def generate_tokens(model, tok, texts: list[str], new_tokens: int, torch) -> tuple[list[list[int]], float]:
    """Greedy continuations of ``texts`` decoded as one batch (exactly ``new_tokens`` each), and seconds."""
    batch = tok(texts, return_tensors="pt", padding=True).to(DEVICE)
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return out[:, batch["input_ids"].shape[1] :].tolist(), seconds


def train_steps(model, tok, steps: int, batch: int, torch, lr: float = 1e-3) -> dict[str, Any]:
    """``steps`` AdamW steps of causal-LM loss on invented sentences; losses and tokens/s (after step 1)."""
    texts = training_texts(max(batch * 4, 32))
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr)
    model.train()
    losses, tokens, seconds = [], 0, 0.0
    for step in range(steps):
        chosen = [texts[(step * batch + j) % len(texts)] for j in range(batch)]
        enc = tok(chosen, return_tensors="pt", padding=True).to(DEVICE)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = model(**enc, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step:  # the first step warms the kernels up
            seconds += time.perf_counter() - start
            tokens += int(enc["attention_mask"].sum())
        losses.append(float(loss.detach()))
        print(f"  step {step + 1:3d}/{steps}: loss {losses[-1]:.4f}", flush=True)
    model.eval()
    return {
        "steps": steps,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "loss_finite": all(math.isfinite(x) for x in losses),
        "tokens_per_s": tokens / seconds if seconds else None,
    }


def lora_config(*, random_init: bool = False):
    from peft import LoraConfig

    return LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
        init_lora_weights=not random_init,
    )


def ensure_bitsandbytes(wheels: str | None) -> str | None:
    """None when bitsandbytes imports (installed from ``wheels`` first when given and needed), else why not."""
    import importlib

    try:
        import bitsandbytes  # noqa: F401

        return None
    except ImportError:
        pass
    if not wheels:
        return "skipped: bitsandbytes not installed (pass --wheels DIR holding its wheel)"
    if not Path(wheels).is_dir():
        return f"skipped: --wheels {wheels} is not a folder"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", wheels, "bitsandbytes"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"skipped: bitsandbytes could not be installed from {wheels}: {last}"
    importlib.invalidate_caches()
    try:
        import bitsandbytes  # noqa: F401,F811
    except Exception as err:  # installed but unusable here (e.g. no matching CUDA build)
        return f"skipped: bitsandbytes installed from {wheels} but does not import: {type(err).__name__}: {err}"
    return None


def worker_generate(weights: str, out: str | None, batch: int, new_tokens: int) -> list[list[int]]:
    """Greedy tokens of the check's prompts from the saved base (in this process or a worker)."""
    import torch

    tok = load_tokenizer(weights)
    model = _from_pretrained(weights, torch).to(DEVICE).eval()
    tokens, _ = generate_tokens(model, tok, prompts(batch), new_tokens, torch)
    if out:
        Path(out).write_text(json.dumps(tokens), encoding="utf-8")
    return tokens


# -- the check -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from peft import PeftModel, get_peft_model
    from transformers import AutoConfig

    checks: dict[str, dict[str, Any]] = {}
    summary: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "checks": checks}
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    weights = work / "base"

    def stage(name: str):
        checks[name] = {}
        print(f"== {name}", flush=True)
        return checks[name]

    tok = load_tokenizer(args.tokenizer)
    config = AutoConfig.for_model("llama", **model_config(len(tok), args.layers))
    torch.manual_seed(0)
    with torch.device(DEVICE):
        base = _from_config(config, torch)
    summary["parameters"] = sum(p.numel() for p in base.parameters())
    base.save_pretrained(weights)
    tok.save_pretrained(weights)
    print(f"model: {summary['parameters'] / 1e9:.2f} B parameters, bf16, on {summary['device']}", flush=True)

    check = stage("generation")
    try:
        generate_tokens(base, tok, prompts(2), 4, torch)  # warm-up
        tokens, seconds = generate_tokens(base, tok, prompts(args.batch), args.new_tokens, torch)
        check.update(
            batch=args.batch,
            new_tokens=args.new_tokens,
            seconds=seconds,
            tokens_per_s=args.batch * args.new_tokens / seconds,
            ok=all(len(t) == args.new_tokens for t in tokens),
        )
    except Exception as err:
        check.update(ok=False, error=f"{type(err).__name__}: {err}")
        traceback.print_exc()

    check = stage("lora_bf16_training")
    adapters = work / "adapters"
    try:
        torch.manual_seed(1)
        tuned = get_peft_model(base, lora_config())
        result = train_steps(tuned, tok, args.steps, args.train_batch, torch)
        check.update(result, ok=result["loss_finite"])
        tuned.save_pretrained(adapters / "a0")
        base = tuned.unload()  # the LoRA layers come off; the base weights are untouched
        for i in range(1, 4):  # three more adapters of random weights (B not zero: each changes the answers)
            torch.manual_seed(100 + i)
            other = get_peft_model(base, lora_config(random_init=True))
            other.save_pretrained(adapters / f"a{i}")
            base = other.unload()
    except Exception as err:
        check.update(ok=False, error=f"{type(err).__name__}: {err}")
        traceback.print_exc()

    check = stage("adapter_switching")
    try:
        resident = PeftModel.from_pretrained(base, str(adapters / "a0"), adapter_name="a0")
        for i in range(1, 4):
            resident.load_adapter(str(adapters / f"a{i}"), adapter_name=f"a{i}")
        resident.eval()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        peaks, answers = [], {}
        for turn in range(2):
            for i in range(4):
                resident.set_adapter(f"a{i}")
                tokens, _ = generate_tokens(resident, tok, prompts(args.batch // 2), 16, torch)
                answers.setdefault(f"a{i}", []).append(tokens)
                peaks.append(torch.cuda.max_memory_allocated())
        stable = all(a[0] == a[1] for a in answers.values())
        distinct = len({json.dumps(a[0]) for a in answers.values()})
        growth = max(peaks) - peaks[0]
        check.update(
            switches=len(peaks),
            peak_mib=[_mib(p) for p in peaks],
            growth_mib=_mib(growth),
            same_tokens_when_switched_back=stable,
            distinct_adapter_answers=distinct,
            ok=growth_ok(peaks, int(args.max_growth_mib * 2**20)) and stable and distinct > 1,
        )
        del resident
    except Exception as err:
        check.update(ok=False, error=f"{type(err).__name__}: {err}")
        traceback.print_exc()
    del base
    gc.collect()
    torch.cuda.empty_cache()

    check = stage("qlora_4bit_training")
    reason = ensure_bitsandbytes(args.wheels)
    if reason:
        check.update(status=reason)
        print(f"  {reason}", flush=True)
    else:
        try:
            from peft import prepare_model_for_kbit_training
            from transformers import BitsAndBytesConfig

            torch.cuda.reset_peak_memory_stats()
            quant = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            )
            model = _from_pretrained(
                str(weights), torch, quantization_config=quant, device_map={"": 0 if DEVICE == "cuda" else DEVICE}
            )
            model = prepare_model_for_kbit_training(model)
            torch.manual_seed(1)
            model = get_peft_model(model, lora_config())
            result = train_steps(model, tok, max(args.steps // 2, 2), args.train_batch, torch)
            check.update(result, peak_mib=_mib(torch.cuda.max_memory_allocated()), ok=result["loss_finite"])
            del model
        except Exception as err:
            check.update(ok=False, error=f"{type(err).__name__}: {err}")
            traceback.print_exc()
        gc.collect()
        torch.cuda.empty_cache()

    check = stage("serial_vs_two_processes")
    try:
        serial = worker_generate(str(weights), None, args.batch, args.new_tokens)
        gc.collect()
        torch.cuda.empty_cache()
        outs = [work / f"worker{i}.json" for i in range(2)]
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])
            ),
        )
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.gpu_check",
                    "--worker",
                    str(weights),
                    str(out),
                    "--batch",
                    str(args.batch),
                    "--new-tokens",
                    str(args.new_tokens),
                ],
                env=env,
            )
            for out in outs
        ]
        codes = [p.wait(timeout=600) for p in procs]
        parallel = [json.loads(out.read_text()) if out.is_file() else None for out in outs]
        check.update(
            workers=2,
            exit_codes=codes,
            seconds=time.perf_counter() - start,
            equal_tokens=[p == serial for p in parallel],
            ok=codes == [0, 0] and all(p == serial for p in parallel),
        )
    except Exception as err:
        check.update(ok=False, error=f"{type(err).__name__}: {err}")
        traceback.print_exc()

    summary["ok"] = all(c.get("ok", True) for c in checks.values())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", help="folder of wheels to install bitsandbytes from (pip --no-index)")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the bundled SmolLM2's)")
    parser.add_argument("--layers", type=int, default=22, help="decoder layers (22: about 1.1 B parameters)")
    parser.add_argument("--steps", type=int, default=40, help="LoRA training steps (QLoRA: half)")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16, help="prompts generated as one batch")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument(
        "--max-growth-mib", type=float, default=64.0, help="largest rise of the peak GPU memory across adapter switches"
    )
    parser.add_argument("--worker", nargs=2, metavar=("WEIGHTS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        import torch
    except Exception:  # not installed, or its libraries do not load here
        print(
            "gpu_check: torch is not installed; install the project (make setup) on a machine with a CUDA GPU",
            file=sys.stderr,
        )
        return NO_CUDA
    if not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); run it on a machine with one "
            "(H100/H200)",
            file=sys.stderr,
        )
        return NO_CUDA
    if args.worker:
        worker_generate(args.worker[0], args.worker[1], args.batch, args.new_tokens)
        return 0
    start = time.perf_counter()
    summary = run(args)
    summary["seconds"] = time.perf_counter() - start
    table = markdown(summary)
    print(json.dumps(summary, indent=2))
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        (out / "gpu_check.md").write_text(table + "\n", encoding="utf-8")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
