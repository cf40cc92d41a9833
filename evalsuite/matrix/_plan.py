"""What a run of the matrix will do and cost, worked out without running anything (``--dry-run``).

:func:`build_plan` lists the cells a run would name (and which the run folder already holds),
counts per stage (index build, fine-tuning, generation, judging, qualification) the model
calls and the prompt and answer tokens, and estimates the wall time on this machine from the
throughputs earlier runs and benchmarks measured here (``evalsuite.throughput``). Nothing is
loaded but files: dataset JSON, tokenizers of models whose files are local, config.json.

Estimates, and where they come from:

- prompt tokens: the rendered prompt (chat template included) counted with the model's own
  tokenizer when its files are here, else characters / 4; the retrieved chunks, unknown
  before retrieval, are the dataset's mean chunk.
- answer tokens: ``max_new_tokens`` per call, an upper bound (a judge: its output length).
- seconds: a measured entry of this machine (named, with its date); else the fp32 matmul
  peak of this CPU times a stage's efficiency (``EFFICIENCY``) over the model's FLOPs from its
  config.json; else "not estimated" (an API model without a measurement, weights not here).
- cost: the ``[prices]`` table of the matrix file, per million tokens.

Stored work is not counted: finished cells of the run folder, stored indexes and adapters,
judges already qualified in the run folder. Answers or verdicts cached by earlier runs of
other configurations are counted as new (finding them needs the model loaded).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from evalsuite import datasets, splits
from evalsuite import throughput as _throughput
from evalsuite.device import cpu_has_bf16
from evalsuite.errors import ConfigError, EvalsuiteError, SpecError
from evalsuite.finetune import FinetuneConfig, pairs_from_file, stored_adapter
from evalsuite.judge import (
    CRITERIA,
    JudgeItem,
    make_judge,
    measured_spread,
    qualification_items,
    qualification_parts,
    render,
)
from evalsuite.matrix._availability import unavailable_reason
from evalsuite.matrix._cells import FINETUNED, Cell, expand_cells
from evalsuite.matrix._config import MatrixConfig, Price
from evalsuite.matrix._pipeline import generation_entry
from evalsuite.matrix._serve import needs_local_weights, served_base_spec
from evalsuite.matrix._store import RunStore, is_reusable
from evalsuite.metrics import minimum_detectable_drop, questions_for_margin
from evalsuite.models import capabilities, local_files, model_config, parse_spec
from evalsuite.prompts import rag_prompt
from evalsuite.records import stable_hash
from evalsuite.retrieval import Embedder, chunk_corpus, stored_index

STAGES = ("index build", "fine-tuning", "generation", "judging", "qualification", "start-up and report")

# Share of this CPU's fp32 matmul peak a stage reaches, for a stage with no measurement yet
# (FLOPs of the linear maps and attention, from the model's config). Fitted on a cold smoke run of
# the bundled 135M model on two cores of an AMD EPYC with AVX-512, taking the AVX2 path (int8
# inference and embedder, fp32 LoRA training): embedding reached 0.40, generation 0.49 and
# training 0.69 (of 3 x forward FLOPs: LoRA computes no gradients of the frozen weights).
# ``benchmarks.profile`` prints the shares a run reaches; a run records its own throughputs,
# which replace these from then on.
EFFICIENCY = {"embed": 0.40, "train": 0.69, "generate": 0.49}
OVERHEAD_SECONDS = 30.0  # start-up, imports, model loads and the report, before any run measured it here
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class PlanCell:
    """A cell of the run: its pytest node id, and whether the run would compute it."""

    id: str
    node_id: str
    kind: str
    dataset: str
    model: str
    size: int
    selected: bool  # chosen by the selection (-k, --shard); False: computed only as a selected cell's baseline
    stored: bool  # a finished result is in the run folder: reused, costs nothing
    note: str = ""  # why it would be skipped (pool too small, weights or key missing here)


@dataclass(frozen=True)
class StageCost:
    """One stage of one model (or judge): calls, tokens, estimated seconds and cost."""

    stage: str
    model: str  # model spec, judge name, or dataset (index build)
    calls: int  # model calls (requests); 0 for fine-tuning and index builds
    prompt_tokens: int  # fine-tuning: tokens trained on (all epochs); index build: chunks embedded
    completion_tokens: int
    seconds: float | None  # None: not estimated
    source: str  # where the seconds come from
    cost: float | None = None  # from [prices]; None when the model has no price
    token_method: str = ""


@dataclass(frozen=True)
class Plan:
    profile: str
    run_id: str
    run_dir: str
    cells: tuple[PlanCell, ...]
    stages: tuple[StageCost, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    power: tuple["GatePower", ...] = field(default_factory=tuple)

    @property
    def seconds(self) -> float:
        """Estimated wall time of the stages that have an estimate."""
        return sum(s.seconds for s in self.stages if s.seconds is not None)

    @property
    def unestimated(self) -> tuple[StageCost, ...]:
        return tuple(s for s in self.stages if s.seconds is None and (s.calls or s.prompt_tokens))

    @property
    def cost(self) -> float | None:
        costs = [s.cost for s in self.stages if s.cost is not None]
        return sum(costs) if costs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "cells": [asdict(c) for c in self.cells],
            "stages": [asdict(s) for s in self.stages],
            "estimate_seconds": round(self.seconds, 1),
            "not_estimated": [f"{s.stage}: {s.model}" for s in self.unestimated],
            "cost": self.cost,
            "notes": list(self.notes),
            "power": [asdict(p) for p in self.power],
        }


@dataclass(frozen=True)
class GatePower:
    """What the requested margin asks of the eval questions, from a judge's measured paired spread."""

    judge: str
    criterion: str
    margin: float
    paired_sd: float  # SD of (cell - baseline) per question between two answer sets of one model
    eval_questions: int  # this run's questions per dataset
    needed: int | None  # questions per dataset to show non-inferiority of an unchanged model with 80% power
    minimum_detectable_drop: float  # at this run's questions, 80% power
    source: str


def gate_power(config: MatrixConfig) -> tuple[GatePower, ...]:
    """For each configured judge with a measured spread: the questions the margin needs at 80% power."""

    if config.margin == "auto":
        return ()
    margin = float(config.margin)
    out = []
    for judge in config.judges:
        spread = measured_spread(judge)
        if not spread:
            continue
        for criterion, sd in sorted(spread.get("paired_sd", {}).items()):
            out.append(
                GatePower(
                    judge,
                    criterion,
                    margin,
                    float(sd),
                    config.eval_limit,
                    questions_for_margin(float(sd), margin),
                    minimum_detectable_drop(float(sd), config.eval_limit, margin),
                    f"paired SD measured by {spread.get('source')} on {spread.get('machine')}",
                )
            )
    return tuple(out)


# -- counting ---------------------------------------------------------------------------------------
class _Tokens:
    """Token counts of rendered prompts: the model's tokenizer when its files are local, else chars / 4."""

    def __init__(self, spec: str):
        self.tokenizer = None
        base = parse_spec(spec).base if ":" in spec else spec
        folder = local_files(base) if ":" in spec else None
        if folder is not None:
            try:
                from transformers import AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except Exception:  # an unreadable tokenizer: fall back to characters
                self.tokenizer = None
        self.method = (
            f"{base} tokenizer on the rendered prompt"
            if self.tokenizer is not None
            else "characters / 4 (no local tokenizer)"
        )

    def text(self, text: str) -> int:
        if self.tokenizer is None:
            return max(1, round(len(text) / CHARS_PER_TOKEN))
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, prompt: Any) -> int:
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
        if self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None) and prompt.chat:
            ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return len(ids) + (self.text(prompt.prefill) if prompt.prefill else 0)
        return self.text("\n".join(m["content"] for m in messages) + prompt.prefill)


@dataclass
class _DatasetFacts:
    eval_items: list
    pool: list
    chunks: list  # every chunk of the corpus (whitespace windows: no tokenizer, no embedder)
    dataset: Any


def _dataset_facts(config: MatrixConfig, name: str) -> _DatasetFacts:

    ds = datasets.require_passages(datasets.load_spec(config.dataset(name)))
    sp = splits.split(ds, seed=config.seed)
    pool = list(sp.pool)
    if config.train_file:
        pool = list(pairs_from_file(config.train_file, ds, seed=config.seed))
    return _DatasetFacts(list(sp.eval[: config.eval_limit]), pool, chunk_corpus(ds.passages), ds)


def _sample(seq: Sequence[Any], n: int = 200) -> list[Any]:
    step = max(1, len(seq) // n)
    return list(seq[::step])[:n]


def _rag_tokens(tok: _Tokens, facts: _DatasetFacts, examples: Sequence[Any], top_k: int) -> list[int]:
    """Prompt tokens of each example's RAG prompt, with ``top_k`` chunks of the corpus's mean length."""

    sample = _sample(facts.chunks, 100)
    empty_q = tok.prompt(rag_prompt("?", []))
    per_chunk = statistics.fmean(tok.prompt(rag_prompt("?", [c])) - empty_q for c in sample) if sample else 0.0
    return [tok.prompt(rag_prompt(ex.question, [])) + round(top_k * per_chunk) for ex in examples]


# -- throughputs --------------------------------------------------------------------------------------
def _entry_source(name: str, entry: dict[str, Any]) -> str:
    return f"measured: {name}, {entry.get('measured', '?')[:10]}"


@lru_cache(maxsize=None)  # a bundled model's config is read from its GGUF header: once per spec, not per stage
def _model_flops(spec: str) -> dict[str, float] | None:

    config = model_config(parse_spec(spec).base)
    if config is None:
        return None
    try:
        return _throughput.transformer_flops(config)
    except (ValueError, KeyError, TypeError):
        return None


class _Speeds:
    def __init__(self) -> None:

        self.entries = _throughput.load()
        self._peak: float | None = None

    def peak(self) -> float:
        if self._peak is None:
            self._peak = _throughput.peak_fp32_flops()
        return self._peak

    def peak_source(self, stage: str) -> str:
        return f"from the fp32 peak ({self.peak() / 1e9:.0f} GFLOP/s) x {EFFICIENCY[stage]}, no measurement yet"

    def entry(self, name: str) -> dict[str, Any]:
        return self.entries.get(name) or {}


def _base(spec: str) -> str:
    return parse_spec(spec).base


def _is_local(spec: str) -> bool:
    try:
        return capabilities(spec).local
    except SpecError:  # no backend registered for it: not a model estimated from its weights
        return False


def _generation_seconds(
    speeds: _Speeds, spec: str, calls: int, prompt: int, completion: int
) -> tuple[float | None, str]:

    name = generation_entry(spec)
    entry = speeds.entry(name)
    if entry.get("tokens_per_s") and entry.get("model") == _base(spec):
        return (prompt + completion) / entry["tokens_per_s"], _entry_source(name, entry)
    if not _is_local(spec):
        if entry.get("calls_per_s"):
            return calls / entry["calls_per_s"], _entry_source(name, entry)
        return None, "not estimated: an API model with no measurement here"
    flops = _model_flops(spec)
    if flops is None:
        return None, "not estimated: weights/config not present"
    per_call_p, per_call_n = prompt / max(calls, 1), completion / max(calls, 1)
    work = calls * (
        flops["body"] * (per_call_p + per_call_n)
        + flops["head"] * (1 + per_call_n)
        + flops["attention_per_context"] * (per_call_p**2 / 2 + per_call_n * (per_call_p + per_call_n / 2))
    )
    return work / (speeds.peak() * EFFICIENCY["generate"]), speeds.peak_source("generate")


def _train_seconds(speeds: _Speeds, spec: str, tokens: int) -> tuple[float | None, str]:

    name = f"train/{'bf16' if cpu_has_bf16() else 'fp32'}"
    entry = speeds.entry(name)
    if entry.get("tokens_per_s") and entry.get("model") == _base(spec):
        return tokens / entry["tokens_per_s"], _entry_source(name, entry)
    flops = _model_flops(spec)
    if flops is None:
        return None, "not estimated: weights/config not present"
    return 3 * flops["body"] * tokens / (speeds.peak() * EFFICIENCY["train"]), speeds.peak_source("train")


EMBED_TEXT_TOKENS = 12  # word pieces of a short text a judge embeds (an answer, a question, a gold answer)


def _embed_work(tokens: int) -> float:
    """FLOPs of embedding one text of ``tokens`` word pieces with the default sentence embedder."""

    config_json = json.loads((Path(Embedder().path) / "config.json").read_text(encoding="utf-8"))
    fl = _throughput.transformer_flops(config_json)
    return fl["body"] * tokens + fl["attention_per_context"] * tokens * tokens


def _judge_seconds(
    speeds: _Speeds, judge: Any, spec: str, items: int, calls: int, prompt: int, completion: int, qualification: bool
) -> tuple[float | None, str]:
    names = ([f"qualify/{judge.name}"] if qualification else []) + [f"judge/{judge.name}"]
    for name in names:
        entry = speeds.entry(name)
        if calls and entry.get("calls_per_s"):
            return calls / entry["calls_per_s"], _entry_source(name, entry)
        if entry.get("items_per_s"):
            return items / entry["items_per_s"], _entry_source(name, entry)
    if not calls:
        texts = items * getattr(judge, "texts_embedded_per_item", 0)
        if not texts:
            return 0.0, "no model: word arithmetic, negligible"
        return texts * _embed_work(EMBED_TEXT_TOKENS) / (speeds.peak() * EFFICIENCY["embed"]), speeds.peak_source(
            "embed"
        )
    if not _is_local(spec):
        return None, "not estimated: an API model with no measurement here"
    return _generation_seconds(speeds, spec, calls, prompt, completion)


def _judge_calls(judge: Any) -> tuple[str | None, int, int]:
    """(model spec or None, model calls per item, answer tokens per call) of a judge."""

    model_spec = getattr(judge, "model_spec", None)
    if model_spec is None:
        return None, 0, 0
    repeats = judge.repeats if judge.mode == "sample" else 1
    return model_spec, len(CRITERIA) * repeats, (judge.max_new_tokens if judge.mode == "sample" else 1)


def _judge_prompt_tokens(judge: Any, t: _Tokens | None, per_item_calls: int, items: Sequence[Any]) -> int:
    """Prompt tokens of every judge call on ``items`` (each criterion's rendered form, times the repeats)."""

    if t is None or not per_item_calls:
        return 0
    repeats = per_item_calls // len(CRITERIA)
    return repeats * sum(
        t.prompt(render(judge.form, CRITERIA[cr], judge.steps[cr], item)) for item in items for cr in CRITERIA
    )


def qualification_costs(
    judge: Any, *, seed: int = 0, limit: int | None = None, prices: dict[str, Price] | None = None
) -> list[StageCost]:
    """What qualifying ``judge`` costs (``evalsuite judge --qualify --dry-run``), one row per set it
    scores (short human-labelled answers, long-form check, graded long answers): model calls, prompt
    and answer tokens, estimated seconds on this machine and cost from ``prices``. Nothing is scored."""

    prices = prices or {}
    model_spec, per_item_calls, completion_per_call = _judge_calls(judge)
    t = _Tokens(model_spec) if model_spec else None
    speeds = _Speeds()
    price = (prices.get(model_spec) or prices.get(_base(model_spec))) if model_spec else None
    out = []
    for what, items in qualification_parts(seed, limit):
        calls = per_item_calls * len(items)
        prompt = _judge_prompt_tokens(judge, t, per_item_calls, items)
        completion = calls * completion_per_call
        seconds, source = _judge_seconds(
            speeds, judge, model_spec or judge.name, len(items), calls, prompt, completion, True
        )
        out.append(
            StageCost(
                "qualification",
                f"{judge.name}: {what}",
                calls,
                prompt,
                completion,
                seconds,
                source,
                price.cost(prompt, completion) if price else None,
                (t.method if t else "no model") + f"; {len(items)} answers",
            )
        )
    return out


# -- the plan -----------------------------------------------------------------------------------------
def _peek(store: RunStore, cell_id: str) -> bool:
    """Whether the run folder holds the cell's finished result (read only: nothing is quarantined)."""
    try:
        data = json.loads(store.path(cell_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return is_reusable(data if isinstance(data, dict) else None)


def build_plan(
    config: MatrixConfig,
    *,
    report_root: str | Path,
    run_id: str | None = None,
    selected: Sequence[Cell] | None = None,
    node_ids: dict[str, str] | None = None,
    prices: dict[str, Price] | None = None,
) -> Plan:
    """The plan of running ``selected`` cells (default: every cell) of ``config`` into the run folder
    ``report_root/runs/<run_id>``: cells, per-stage calls, tokens, estimated seconds and cost."""

    all_cells = expand_cells(config)
    by_id = {c.id: c for c in all_cells}
    selected = list(all_cells if selected is None else selected)
    run_id = run_id or config.run_id()
    run_dir = Path(report_root) / "runs" / run_id
    store = RunStore(run_dir)
    node_ids = node_ids or {}
    prices = prices or {}
    notes: list[str] = []

    wanted = {c.id for c in selected}
    needed = list(selected)
    if config.baseline_from is None:  # a fine-tuned cell computes its baseline when that is not stored
        for c in selected:
            if c.baseline_id not in wanted and c.baseline_id in by_id:
                wanted.add(c.baseline_id)
                needed.append(by_id[c.baseline_id])
    needed.sort(key=all_cells.index)

    facts: dict[str, _DatasetFacts] = {}

    def facts_of(name: str) -> _DatasetFacts:
        if name not in facts:
            facts[name] = _dataset_facts(config, name)
        return facts[name]

    cells: list[PlanCell] = []
    pending: list[Cell] = []
    for c in needed:
        stored = _peek(store, c.id)
        note = ""
        if c.kind == FINETUNED and c.size > len(facts_of(c.dataset).pool):
            note = f"skipped: size {c.size} is above the {len(facts_of(c.dataset).pool)} fine-tuning pairs"
        elif (reason := unavailable_reason(c.spec)) and needs_local_weights(c, config):
            note = f"skipped here ({reason}); counted as if it ran"
        cells.append(
            PlanCell(
                c.id,
                node_ids.get(c.id, c.id),
                c.kind,
                c.dataset,
                c.model,
                c.size,
                c.id in {s.id for s in selected},
                stored,
                note,
            )
        )
        if not stored and not note.startswith("skipped: size"):
            pending.append(c)

    speeds = _Speeds()
    stages: list[StageCost] = []
    tokens: dict[str, _Tokens] = {}

    def tok(spec: str) -> _Tokens:
        key = _base(spec)
        if key not in tokens:
            tokens[key] = _Tokens(key)
        return tokens[key]

    def price_of(spec: str, prompt: int, completion: int) -> float | None:
        price = prices.get(spec) or prices.get(_base(spec))
        return price.cost(prompt, completion) if price else None

    # index build: each dataset with a pending cell whose index is not stored

    for name in dict.fromkeys(c.dataset for c in pending):
        f = facts_of(name)
        embedder = Embedder()
        if stored_index(f.dataset, embedder=embedder) is not None:
            continue
        entry_name = f"embed/{embedder.precision}"
        entry = speeds.entry(entry_name)
        if entry.get("chunks_per_s"):
            seconds, source = len(f.chunks) / entry["chunks_per_s"], _entry_source(entry_name, entry)
        else:
            config_json = json.loads((Path(embedder.path) / "config.json").read_text(encoding="utf-8"))
            fl = _throughput.transformer_flops(config_json)
            lengths = [max(1, round(len(c.text) / CHARS_PER_TOKEN)) for c in _sample(f.chunks, 500)]
            mean_work = statistics.fmean(fl["body"] * n + fl["attention_per_context"] * n * n for n in lengths)
            seconds = len(f.chunks) * mean_work / (speeds.peak() * EFFICIENCY["embed"])
            source = speeds.peak_source("embed")
        stages.append(
            StageCost(
                "index build",
                name,
                0,
                len(f.chunks),
                0,
                seconds,
                source,
                token_method="chunks embedded (in the prompt-tokens column)",
            )
        )

    # fine-tuning: each pending fine-tuned cell whose adapter is not stored

    for c in pending:
        if c.kind != FINETUNED:
            continue
        ft = FinetuneConfig.from_dict(config.recipe_options(c.recipe))
        if stored_adapter(
            c.spec,
            config.dataset(c.dataset),
            c.size,
            ft,
            seed=config.seed,
            top_k=config.top_k,
            pairs_file=config.train_file,
        ):
            continue
        f, t = facts_of(c.dataset), tok(c.spec)
        pairs = f.pool[: c.size]
        lengths = [
            p + t.text(ex.references[0] if ex.references else "")
            for p, ex in zip(_rag_tokens(t, f, pairs, config.top_k), pairs)
        ]
        trained = round(sum(min(ft.max_seq_length, n) for n in lengths) * ft.epochs)
        seconds, source = _train_seconds(speeds, c.spec, trained)
        stages.append(
            StageCost(
                "fine-tuning",
                c.id,
                0,
                trained,
                0,
                seconds,
                source,
                token_method=(
                    f"{t.method}; tokens trained on, {ft.epochs:g} epoch(s), at most {ft.max_seq_length} a pair"
                ),
            )
        )

    # generation: one call per eval question of each pending cell
    rag_cache: dict[tuple[str, str], list[int]] = {}
    for c in pending:
        f, t = facts_of(c.dataset), tok(c.spec)
        key = (c.dataset, _base(c.spec))
        if key not in rag_cache:
            rag_cache[key] = _rag_tokens(t, f, f.eval_items, config.top_k)
        calls = len(f.eval_items)
        prompt, completion = sum(rag_cache[key]), calls * config.max_new_tokens
        served = served_base_spec(c, config)  # generated by the serve server: its measured speed, if any
        seconds, source = _generation_seconds(speeds, served or c.spec, calls, prompt, completion)
        stages.append(
            StageCost(
                "generation",
                c.id,
                calls,
                prompt,
                completion,
                seconds,
                source,
                None if served else price_of(c.spec, prompt, completion),
                f"{t.method}; answers at most max_new_tokens = {config.max_new_tokens}",
            )
        )

    # judging and the judges' qualification (once per run folder)

    judge_specs = [s for s in config.judges]
    sample_chunks = [c.text for c in _sample([c for f in facts.values() for c in f.chunks], config.top_k)]
    for spec in judge_specs:
        try:
            judge = make_judge(spec, mode=config.judge_mode, repeats=config.judge_repeats)
        except EvalsuiteError as err:
            raise ConfigError(f"judge {spec!r}: {err}") from None
        model_spec = getattr(judge, "model_spec", None)
        per_item_calls = 0
        completion_per_call = 0
        if model_spec is not None:
            repeats = judge.repeats if judge.mode == "sample" else 1
            per_item_calls = len(CRITERIA) * repeats
            completion_per_call = judge.max_new_tokens if judge.mode == "sample" else 1
        t = tok(model_spec) if model_spec else None

        def judge_prompt_tokens(items: Sequence[JudgeItem]) -> int:
            if t is None:
                return 0
            repeats = per_item_calls // len(CRITERIA)
            return repeats * sum(
                t.prompt(render(judge.form, CRITERIA[cr], judge.steps[cr], item)) for item in items for cr in CRITERIA
            )

        for c in pending:
            f = facts_of(c.dataset)
            answer = "x" * (config.max_new_tokens * CHARS_PER_TOKEN)  # the answer at its upper bound
            items = [
                JudgeItem(ex.id, ex.question, tuple(ex.references), tuple(sample_chunks), answer) for ex in f.eval_items
            ]
            calls = per_item_calls * len(items)
            prompt = judge_prompt_tokens(items)
            completion = calls * completion_per_call
            seconds, source = _judge_seconds(
                speeds, judge, model_spec or spec, len(items), calls, prompt, completion, False
            )
            stages.append(
                StageCost(
                    "judging",
                    f"{c.id} / {judge.name}",
                    calls,
                    prompt,
                    completion,
                    seconds,
                    source,
                    price_of(model_spec, prompt, completion) if model_spec else None,
                    (t.method if t else "no model") + "; the answer at max_new_tokens",
                )
            )
        qualified_here = (run_dir / "judges" / f"{stable_hash(judge.config)}.json").is_file()
        if pending and not qualified_here:
            items = qualification_items(config.seed, config.qualify_limit)
            calls = per_item_calls * len(items)
            prompt = judge_prompt_tokens(items)
            completion = calls * completion_per_call
            seconds, source = _judge_seconds(
                speeds, judge, model_spec or spec, len(items), calls, prompt, completion, True
            )
            stages.append(
                StageCost(
                    "qualification",
                    judge.name,
                    calls,
                    prompt,
                    completion,
                    seconds,
                    source,
                    price_of(model_spec, prompt, completion) if model_spec else None,
                    f"{len(items)} answers of the human, long-form and graded long-answer sets",
                )
            )

    if pending:
        entry = speeds.entry("run/overhead")
        if entry.get("seconds"):
            stages.append(
                StageCost("start-up and report", "run", 0, 0, 0, entry["seconds"], _entry_source("run/overhead", entry))
            )
        else:
            stages.append(
                StageCost(
                    "start-up and report",
                    "run",
                    0,
                    0,
                    0,
                    OVERHEAD_SECONDS,
                    f"assumed {OVERHEAD_SECONDS:.0f} s, no measurement yet",
                )
            )
    notes.append("answers and verdicts cached by earlier runs with other settings are counted as new")
    if any(c.note.startswith("skipped here") for c in cells):
        notes.append("cells that cannot run here (weights, key) are counted as if they ran")
    return Plan(config.profile, run_id, str(run_dir), tuple(cells), tuple(stages), tuple(notes), gate_power(config))


# -- output ------------------------------------------------------------------------------------------
def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(plan: Plan) -> str:
    """The plan as text tables: cells, then per stage, then totals."""
    out = [f"dry run: profile {plan.profile}, run folder {plan.run_dir}", "", "cells:"]
    width = max([len(c.node_id) for c in plan.cells] + [4])
    for c in plan.cells:
        state = "stored (reused)" if c.stored else "to compute"
        extra = "" if c.selected else "  (baseline of a selected cell)"
        out.append(f"  {c.node_id:<{width}}  {state}{extra}" + (f"  {c.note}" if c.note else ""))
    out += ["", "per stage (estimates; prompt tokens of fine-tuning = tokens trained on, of index build = chunks):"]
    header = (
        f"  {'stage':<20} {'model calls':>11} {'prompt tok':>12} {'answer tok':>11} "
        f"{'time (est.)':>11} {'cost':>10}  source"
    )
    out.append(header)
    for stage in STAGES:
        rows = [s for s in plan.stages if s.stage == stage]
        if not rows:
            continue
        secs = [s.seconds for s in rows if s.seconds is not None]
        costs = [s.cost for s in rows if s.cost is not None]
        sources = sorted({s.source for s in rows})
        missing = sum(1 for s in rows if s.seconds is None)
        seconds = sum(secs) if secs else None
        time = _fmt_seconds(seconds) + ("+?" if missing and secs else "")
        out.append(
            f"  {stage:<20} {sum(s.calls for s in rows):>11,} {sum(s.prompt_tokens for s in rows):>12,} "
            f"{sum(s.completion_tokens for s in rows):>11,} {time:>11} "
            f"{(f'{sum(costs):.2f}' if costs else '-'):>10}  {'; '.join(sources)}"
        )
    methods = sorted({s.token_method for s in plan.stages if s.token_method})
    if methods:
        out += ["", "tokens counted by: " + "; ".join(methods)]
    total = _fmt_seconds(plan.seconds) if plan.stages else "0 s"
    out += [
        "",
        f"estimated wall time on this machine: {total} (an estimate"
        + (f"; not estimated: {len(plan.unestimated)} stage rows, see above)" if plan.unestimated else ")"),
    ]
    if plan.cost is not None:
        out.append(f"API cost (from [prices]): {plan.cost:.2f}")
    else:
        out.append("API cost: no [prices] entry for the models of this plan")
    for p in plan.power:
        need = f"about {p.needed} eval questions per dataset" if p.needed else "no number of questions"
        out.append(
            f"gate power ({p.judge} {p.criterion}): margin {p.margin:g} needs {need} to pass an unchanged "
            f"model with 80% power (this run has {p.eval_questions}; paired SD {p.paired_sd:.2f}); at "
            f"{p.eval_questions} questions the smallest drop it fails with 80% power is "
            f"{p.minimum_detectable_drop:.2f}"
        )
    out += [f"note: {n}" for n in plan.notes]
    return "\n".join(out) + "\n"
