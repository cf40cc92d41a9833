"""One cell of the matrix, end to end: retrieve, (fine-tune), generate, judge, measure.

Every function here is a plain call into the other layers; the pytest plugin and the
command line only decide *which* cells run. The result of a cell is a
:class:`~evalsuite.records.CellResult` whose measurements hold one entry per eval question (retrieved passage ids,
answer, every judge's verdict
with its raw output, reference metrics) and per-judge means.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from evalsuite import datasets, splits
from evalsuite import memory as _memory
from evalsuite import throughput as _throughput
from evalsuite.finetune import FinetuneConfig, PoolTooSmall, pairs_from_file, train_adapter
from evalsuite.judge import RULE, JudgeItem, median_gold_words
from evalsuite.matrix._cells import FINETUNED, Cell
from evalsuite.matrix._config import MatrixConfig
from evalsuite.matrix._gate import CRITERIA
from evalsuite.matrix._serve import served_cell
from evalsuite.metrics import reference_metrics
from evalsuite.models import GenerationSettings, capabilities, inference_precision, load_model, parse_spec, with_adapter
from evalsuite.prompts import rag_prompt
from evalsuite.records import CellResult, CellStatus, Chunk, Dataset, Example, Prompt, stable_hash, to_dict
from evalsuite.redaction import scrub_text
from evalsuite.retrieval import get_retriever
from evalsuite.retrieval.evaluate import score_retrieval

Progress = Callable[[str], None]


class CellSkipped(Exception):
    """The cell cannot run here (size above the pool, missing weights or key); the reason is the message."""


@dataclass(frozen=True)
class DatasetContext:
    """What every cell of one dataset shares: eval questions, their retrieved chunks and prompts."""

    dataset: Dataset
    pool_size: int  # fine-tuning pairs available: the pool, or the pairs of [finetune] train_file
    eval_items: tuple[Example, ...]
    chunks: tuple[tuple[Chunk, ...], ...]
    prompts: tuple[Prompt, ...]
    split_rule: str
    fingerprint: str  # hash of the eval questions and their retrieved chunks
    seconds: float
    index_seconds: float = 0.0  # of ``seconds``: building or loading the index
    index_cached: bool | None = None
    # recall@top_k and MRR of the retrieved chunks against the evidence of the eval questions that
    # have some, and the size of the index they were retrieved from (whole corpus or a subset)
    retrieval: dict[str, Any] | None = None
    # median length in words of the eval questions' gold answers (nan: none); see ``long_answers``
    median_gold_words: float = float("nan")

    @property
    def long_answers(self) -> bool:
        """Whether the gold answers are long (the judges' rule then asks for their long-answer figures)."""
        return math.isfinite(self.median_gold_words) and self.median_gold_words >= RULE.long_gold_words


def prepare_dataset(
    name: str, config: MatrixConfig, retriever_for: Callable[[Dataset], Any] | None = None
) -> DatasetContext:
    """Load the matrix's dataset ``name``, split it, retrieve ``top_k`` chunks for the first
    ``eval_limit`` eval questions."""

    start = time.perf_counter()
    ds = datasets.require_passages(datasets.load_spec(config.dataset(name)))
    sp = splits.split(ds, seed=config.seed)
    items = tuple(sp.eval[: config.eval_limit])
    if retriever_for is None:
        retriever_for = get_retriever
    index_start = time.perf_counter()
    retriever = retriever_for(ds)
    index_seconds = time.perf_counter() - index_start
    chunks = tuple(tuple(retriever.retrieve(ex, k=config.top_k)) for ex in items)
    scored = score_retrieval(items, chunks, config.top_k)
    n = scored["questions"]  # recall and MRR are NaN without a question to score: None in the results
    indexed = getattr(retriever, "chunks", None)
    retrieval = {
        "k": config.top_k,
        "recall": scored[f"recall@{config.top_k}"] if n else None,
        "mrr": scored["mrr"] if n else None,
        "questions": n,
        "chunks": len(indexed) if indexed else None,
    }
    prompts = tuple(rag_prompt(ex.question, cs) for ex, cs in zip(items, chunks))
    # content, not paths: the same questions and prompts read from another folder compare equal
    fingerprint = stable_hash({"items": [ex.id for ex in items], "prompts": [p.key() for p in prompts]})
    pairs = len(sp.pool)
    if config.train_file:
        pairs = len(pairs_from_file(config.train_file, ds, seed=config.seed))
    return DatasetContext(
        ds,
        pairs,
        items,
        chunks,
        prompts,
        sp.rule,
        fingerprint,
        time.perf_counter() - start,
        index_seconds=index_seconds,
        index_cached=getattr(retriever, "cached", None),
        retrieval=retrieval,
        median_gold_words=median_gold_words(items),
    )


def recipe_record(config: MatrixConfig, recipe: str) -> dict[str, Any]:
    """A recipe as a result records it: its own options and the effective batch it trains with."""

    ft = FinetuneConfig.from_dict(config.recipe_options(recipe))
    own = dict(next(r.options for r in config.recipes if r.name == recipe))
    return {
        "name": recipe,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in own.items()},
        "effective_batch_size": ft.effective_batch_size,
        "per_device_batch_size": ft.per_device_batch_size,
        "gradient_accumulation": ft.gradient_accumulation,
        "quantization": ft.quantization,
    }


def finetune_config(config: MatrixConfig, recipe: str | None = None) -> Any:
    """The profile's ``[finetune]`` table, with ``recipe``'s options over it, as
    :class:`evalsuite.finetune.FinetuneConfig` (None = its defaults)."""
    if not config.finetune and recipe is None:
        return None

    return FinetuneConfig.from_dict(config.recipe_options(recipe))


def train(cell: Cell, ctx: DatasetContext, config: MatrixConfig, progress: Progress) -> Any:
    """The cell's LoRA adapter (trained, or loaded from the content-addressed adapter store)."""

    if cell.size > ctx.pool_size:
        raise CellSkipped(
            f"size {cell.size} is above the {ctx.pool_size} fine-tuning pairs of "
            + (f"{config.train_file}" if config.train_file else f"the {cell.dataset} pool")
        )
    progress(
        f"fine-tuning {cell.model} on {cell.size} {cell.dataset} pairs"
        + (f", recipe {cell.recipe}" if cell.recipe else "")
    )
    try:
        return train_adapter(
            cell.spec,
            config.dataset(cell.dataset),
            cell.size,
            finetune_config(config, cell.recipe),
            seed=config.seed,
            top_k=config.top_k,
            pairs_file=config.train_file,
            progress=False,
        )
    except PoolTooSmall as err:
        raise CellSkipped(str(err)) from None


def _mean_std(values: Sequence[float]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return {
        "mean": statistics.fmean(finite) if finite else float("nan"),
        "std": statistics.pstdev(finite) if len(finite) > 1 else (0.0 if finite else float("nan")),
        "n": len(finite),
        "unscored": len(values) - len(finite),
    }


def summarize(items: Sequence[dict[str, Any]], judges: Sequence[str]) -> dict[str, Any]:
    """Per-judge mean/std of accuracy and completeness, and means of the reference metrics."""
    out: dict[str, Any] = {"judges": {}, "metrics": {}}
    for judge in judges:
        out["judges"][judge] = {
            c: _mean_std(
                [float("nan") if (v := (it["verdicts"].get(judge) or {}).get(c)) is None else float(v) for it in items]
            )
            for c in CRITERIA
        }
    names = sorted({k for it in items for k in (it.get("metrics") or {})})
    for name in names:
        values = [it["metrics"].get(name) for it in items]
        values = [float(v) for v in values if v is not None]
        out["metrics"][name] = (
            _mean_std(values) if values else {"mean": None, "std": None, "n": 0, "unscored": len(items)}
        )
    return out


def run_cell(
    cell: Cell,
    ctx: DatasetContext,
    config: MatrixConfig,
    judges: Sequence[Any],
    *,
    model_spec: str | None = None,
    adapter: Any = None,
    progress: Progress = lambda s: None,
) -> CellResult:
    """Answer and score the eval questions of ``ctx`` with the cell's model; the cell's scored result.

    ``adapter`` is the :class:`evalsuite.finetune.AdapterResult` of a fine-tuned cell (the model
    spec then becomes ``<base>+lora:<dir>``); ``judges`` are made :class:`evalsuite.judge.Judge` objects.
    """

    timings: dict[str, Any] = {"retrieve": ctx.seconds, "index": ctx.index_seconds, "index_cached": ctx.index_cached}
    spec = model_spec or cell.spec
    if adapter is not None:
        spec = with_adapter(cell.spec, adapter.path)
        timings["finetune"] = adapter.seconds
    memory: dict[str, Any] = {}
    timings["memory"] = memory
    start = time.perf_counter()
    served = None if model_spec else served_cell(cell, config, adapter)
    with _memory.stage() as m:
        if served is not None:
            model = served.model
            spec = model.spec
            progress(f"generating through {served.url} ({served.adapter_name or served.base})")
        else:
            progress(f"loading {spec}")
            model = load_model(spec)
    timings["load"] = time.perf_counter() - start
    memory["load"] = m.to_dict()
    model_before = dict(model.stats)
    judges_before = {j.name: dict(getattr(j, "stats", {}) or {}) for j in judges}
    settings = GenerationSettings(max_new_tokens=config.max_new_tokens, seed=config.seed)
    progress(f"generating {len(ctx.prompts)} answers")
    start = time.perf_counter()
    with _memory.stage() as m:
        try:
            gens = model.generate(list(ctx.prompts), settings)
        finally:
            if served is not None:
                served.close()
    timings["generate"] = time.perf_counter() - start
    memory["generate"] = m.to_dict()
    if gens and not any(g.cached for g in gens):
        record_generation_speed(served.base_spec if served else spec, gens, timings["generate"])
    judge_items = [
        JudgeItem(
            id=ex.id,
            question=ex.question,
            references=tuple(ex.references),
            context=tuple(c.text for c in cs),
            answer=g.text,
        )
        for ex, cs, g in zip(ctx.eval_items, ctx.chunks, gens)
    ]
    verdicts: dict[str, list[Any]] = {}
    timings["judge"] = {}
    for judge in judges:
        progress(f"judging {len(judge_items)} answers with {judge.name}")
        start = time.perf_counter()
        before = dict(getattr(judge, "stats", {}) or {})
        with _memory.stage() as m:
            verdicts[judge.name] = judge.judge(judge_items)
        timings["judge"][judge.name] = time.perf_counter() - start
        memory[f"judge {judge.name}"] = m.to_dict()
        record_judge_speed(judge, len(judge_items), timings["judge"][judge.name], before)
    items = []
    for i, (ex, cs, g) in enumerate(zip(ctx.eval_items, ctx.chunks, gens)):
        items.append(
            {
                "id": ex.id,
                "question": ex.question,
                "references": list(ex.references),
                "answer_type": ex.answer_type,
                "passage_ids": [c.passage_id for c in cs],
                "chunk_ids": [c.id for c in cs],
                "passages": [c.text for c in cs],  # what the model was shown, for the report's failure examples
                "answer": g.text,
                "prompt_tokens": g.prompt_tokens,
                "completion_tokens": g.completion_tokens,
                "cached": g.cached,
                "verdicts": {name: to_dict(vs[i]) for name, vs in verdicts.items()},
                "metrics": dict(reference_metrics(g.text, tuple(ex.references), yes_no=ex.yes_no)),
            }
        )
    judge_names = [j.name for j in judges]
    measured = {
        "model_spec": spec,
        "model_identity": model.identity,
        "dataset_source": ctx.dataset.source,
        "dataset_spec": config.dataset(cell.dataset).to_dict(),
        "finetune_pairs": (
            f"the first {cell.size} pairs of {config.train_file}"
            if config.train_file
            else f"the first {cell.size} pairs of the {cell.dataset} fine-tune pool (split seed {config.seed})"
        )
        if cell.kind == FINETUNED
        else None,
        "dataset_fingerprint": ctx.fingerprint,
        "split_rule": ctx.split_rule,
        "retrieval": ctx.retrieval,
        "pool_size": ctx.pool_size,
        "adapter": _adapter_info(adapter) if cell.kind == FINETUNED or adapter is not None else None,
        **({"served": served.record()} if served is not None else {}),
        "generation": to_dict(settings),
        "judges": judge_names,
        "judge_configs": {j.name: dict(getattr(j, "config", {}) or {}) for j in judges},
        "items": items,
        "summary": summarize(items, judge_names),
        "timings": timings,
        "tokens": {"prompt": sum(g.prompt_tokens for g in gens), "completion": sum(g.completion_tokens for g in gens)},
        "model_stats": _delta(model_before, model.stats),
        "judge_stats": {j.name: _delta(judges_before[j.name], getattr(j, "stats", {}) or {}) for j in judges},
    }
    recipe = recipe_record(config, cell.recipe) if cell.recipe else None
    return CellResult.for_cell(cell, CellStatus.SCORED, recipe=recipe, measured=measured)


def generation_entry(spec: str) -> str:
    """The throughput entry (``evalsuite.throughput``) of generation with ``spec``: ``run-generate/<arithmetic>``
    for a local model (the path taken here: fp32, bf16, int8), ``run-generate/api/<base spec>`` for an API one."""
    parsed = parse_spec(spec)
    if capabilities(parsed).local:
        return f"run-generate/{inference_precision()}"

    return f"run-generate/api/{scrub_text(parsed.base)}"  # no credentials in a recorded name


def record_generation_speed(spec: str, gens: Sequence[Any], seconds: float) -> None:
    """Keep the speed of a generation that computed every answer, for later estimates (``--dry-run``)."""

    if seconds <= 0:
        return
    prompt = sum(g.prompt_tokens for g in gens)
    completion = sum(g.completion_tokens for g in gens)
    _throughput.save(
        generation_entry(spec),
        {
            "tokens_per_s": (prompt + completion) / seconds,
            "calls_per_s": len(gens) / seconds,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "calls": len(gens),
            "seconds": seconds,
            "model": scrub_text(parse_spec(spec).base),
        },
    )


def record_judge_speed(judge: Any, items: int, seconds: float, before: dict[str, Any]) -> None:
    """Keep a judge's items/s (and model calls/s) when it scored without its caches."""

    after = dict(getattr(judge, "stats", {}) or {})
    hits = after.get("cache_hits", 0) - before.get("cache_hits", 0)
    calls = after.get("model_calls", 0) - before.get("model_calls", 0)
    if seconds <= 0 or items < 1 or hits:
        return
    _throughput.save(
        f"judge/{scrub_text(judge.name)}",
        {
            "items_per_s": items / seconds,
            "items": items,
            "seconds": seconds,
            "calls_per_s": calls / seconds,
            "calls": calls,
        },
    )


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Counters spent by this cell (a loaded model or judge may be shared by several cells)."""
    return {k: (v - before.get(k, 0)) if isinstance(v, (int, float)) else v for k, v in dict(after).items()}


def _adapter_info(adapter: Any) -> dict[str, Any] | None:
    if adapter is None:
        return None
    fields = (
        "path",
        "key",
        "cached",
        "train_loss_first",
        "train_loss_last",
        "seconds",
        "tokens_per_second",
        "manifest",
    )
    return {f: (str(v) if f == "path" else v) for f in fields if (v := getattr(adapter, f, None)) is not None}
