"""Judges: factories whose arguments are their whole configuration.

``@judge_factory(name)`` records ``(name, arguments)`` on every judge a factory makes, so
each :class:`Verdict` names the judge (``Verdict.judge``) and ``Judge.config`` holds every
argument. Specs resolve to factories in the registry (``evalsuite.judge._registry``), where
built-in judges register the same way a third party would.

- ``token-overlap``: deterministic, no model: accuracy = 1 + 4 * token precision and
  completeness = 1 + 4 * token recall against the reference answers (best over them). It
  measures word overlap, and is named as what it is (``reference`` is its former name).
- ``geval``: G-Eval with a language model: criterion + frozen evaluation steps + form
  filling, scored by sampling (``sample``) or by the probability-weighted score of the
  first score token (``logprobs``). Results are cached per run in sqlite.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from evalsuite.errors import ConfigError, SpecError
from evalsuite.judge._cache import JudgeCache, run_key
from evalsuite.judge._criteria import CRITERIA, Steps, load_steps
from evalsuite.judge._forms import FORMS, JudgeItem, render
from evalsuite.judge._parse import mean_std, parse_score, score_distribution, weighted_score
from evalsuite.metrics import token_precision, token_recall
from evalsuite.models import BackendCapabilities, capabilities
from evalsuite.records import stable_hash

log = logging.getLogger(__name__)

MODES = ("logprobs", "sample")
DEFAULT_FORM = "geval-chat"
# Prompt form per bundled judge (other models get the chat G-Eval form): compact, the form that
# ranked good above wrong answers most often in earlier measurements (SmolLM2-135M compact 44%
# vs fewshot 8%; Gemma-3-270M compact 33% vs fewshot 31%). Their qualification against people
# (evalsuite judge --qualify --limit 300) is kept in measured/bundled_geval.json.
BUNDLED_FORMS = {"bundled:smollm2-135m-instruct": "compact", "bundled:gemma3-270m": "compact"}
# The bundled G-Eval judge shown when no API judge is available.
BEST_BUNDLED_JUDGE = "bundled:smollm2-135m-instruct"


@dataclass(frozen=True)
class Verdict:
    """A judge's scores for one item. nan = unscored (every run failed to parse)."""

    item_id: str
    judge: str
    steps_version: str
    accuracy: float
    completeness: float
    accuracy_std: float  # std over repeats (0 for a single deterministic run)
    completeness_std: float
    unscored: int  # runs that could not be parsed, over both criteria
    runs: int  # runs per criterion
    raw: tuple[str, ...]  # "<criterion>#<repeat>: <text>" per run
    logprobs_missing: bool
    mode: str  # "logprobs" | "sample" | "deterministic"

    @property
    def overall(self) -> float:
        """Mean of accuracy and completeness (nan if either is nan)."""
        return (self.accuracy + self.completeness) / 2


class Judge:
    """Scores items on accuracy and completeness. ``name`` and ``config`` identify it."""

    name: str = "judge"
    config: dict
    steps_version: str = ""
    # texts its sentence embedder encodes per item, at most (what a cost estimate counts); 0: none
    texts_embedded_per_item: int = 0

    def __init__(self) -> None:
        self.config = {}
        # cache_hits: answers not computed now (judge cache or model cache); judge_cache_hits: judge cache only
        self.stats = {"model_calls": 0, "cache_hits": 0, "judge_cache_hits": 0, "items": 0}

    def judge(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        raise NotImplementedError

    def __call__(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        return self.judge(items, progress=progress)

    @property
    def identity(self) -> str:
        """What changes this judge's verdicts: its name, steps version and configuration (hashed)."""
        return stable_hash(
            {
                "name": self.name,
                "steps": self.steps_version,
                "config": {k: v for k, v in self.config.items() if k not in ("cache", "cache_path")},
            },
            32,
        )

    def __repr__(self) -> str:
        return f"<Judge {self.name}>"


def judge_factory(name: str) -> Callable[[Callable[..., Judge]], Callable[..., Judge]]:
    """Mark ``fn`` as the factory ``name``: every judge it makes records ``name`` and its arguments in ``config``
    (followed by whatever the judge put in its own ``config``, such as the hash of a weights file).

    Specs resolve to factories in the judge registry (``register_judge``); this decorator only
    makes the judge say how it was made.
    """

    def decorate(fn: Callable[..., Judge]) -> Callable[..., Judge]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def factory(*args: Any, **kwargs: Any) -> Judge:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            judge = fn(*bound.args, **bound.kwargs)
            # what the judge itself adds (e.g. the hash of a weights file) follows the arguments
            judge.config = {"factory": name, **bound.arguments, **judge.config}
            return judge

        return factory

    return decorate


# --------------------------------------------------------------------------- token overlap


class _TokenOverlapJudge(Judge):
    name = "token-overlap"
    steps_version = "token-overlap.v1"

    def judge(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        verdicts = []
        for item in items:
            precision = token_precision(item.answer, item.references)
            recall = token_recall(item.answer, item.references)
            accuracy, completeness = 1.0 + 4.0 * precision, 1.0 + 4.0 * recall
            unscored = int(math.isnan(accuracy)) + int(math.isnan(completeness))
            verdicts.append(
                Verdict(
                    item.id,
                    self.name,
                    self.steps_version,
                    accuracy,
                    completeness,
                    0.0,
                    0.0,
                    unscored,
                    1,
                    (),
                    False,
                    "deterministic",
                )
            )
        self.stats["items"] += len(items)
        return verdicts


@judge_factory("token-overlap")
def token_overlap_judge() -> Judge:
    """The deterministic token-overlap judge (no language model): 1 + 4 * precision / recall of the answer's
    tokens against the reference answers'."""
    return _TokenOverlapJudge()


# --------------------------------------------------------------------------- G-Eval


class _GEvalJudge(Judge):
    def __init__(
        self,
        model: str,
        *,
        mode: str,
        repeats: int,
        temperature: float,
        form: str,
        steps_version: str,
        retries: int,
        max_new_tokens: int,
        top_logprobs: int,
        cache: bool,
        cache_path: str | None,
        model_options: dict | None,
    ) -> None:
        super().__init__()
        self.model_spec = model
        self.mode, self.repeats, self.temperature, self.form = mode, repeats, temperature, form
        self.retries, self.max_new_tokens, self.top_logprobs = retries, max_new_tokens, top_logprobs
        self.steps: dict[str, Steps] = {c: load_steps(c, steps_version) for c in CRITERIA}
        self.steps_version = steps_version
        self.name = f"{model}/{form}/{mode}"
        self._cache = JudgeCache(cache_path) if cache else None
        self._model_options = dict(model_options or {})
        self._model = None

    # The model is loaded on first use, so a fully cached rerun still needs its identity
    # but nothing else; load_model is expected to be cheap until generate is called.
    @property
    def model(self):
        if self._model is None:
            from evalsuite.models import load_model

            self._model = load_model(self.model_spec, **self._model_options)
        return self._model

    @property
    def identity(self) -> str:
        """Configuration plus the model's identity (weights, dtype, adapter): another model is another judge."""
        return stable_hash({"judge": super().identity, "model": self.model.identity}, 32)

    def _key(self, item: JudgeItem, criterion: str, prompt, mode: str, repeat: int, attempt: int) -> str:
        steps = self.steps[criterion]
        return run_key(
            judge=self.model.identity,
            steps=f"{steps.version}:{steps.text_hash}",
            criterion=criterion,
            form=self.form,
            prompt=prompt.key(),
            question=item.question,
            references=list(item.references),
            context=list(item.context),
            answer=item.answer,
            mode=mode,
            temperature=self.temperature if mode == "sample" else 0.0,
            repeat=repeat,
            attempt=attempt,
            max_new_tokens=self.max_new_tokens if mode == "sample" else 1,
            top_logprobs=self.top_logprobs if mode == "logprobs" else 0,
        )

    def _generate(self, prompts, settings, progress):
        return self._count(self.model.generate(prompts, settings, progress=progress))

    def _count(self, generations):
        for g in generations:
            self.stats["cache_hits" if g.cached else "model_calls"] += 1
        return generations

    def _lookup(self, key: str) -> dict | None:
        if self._cache is None:
            return None
        row = self._cache.get(key)
        if row is not None:
            self.stats["cache_hits"] += 1
            self.stats["judge_cache_hits"] += 1
        return row

    def _store(self, key: str, criterion: str, row: dict) -> None:
        if self._cache is not None:
            self._cache.put(
                key,
                judge=self.model.identity,
                criterion=criterion,
                text=row["text"],
                score=row["score"],
                distribution=row.get("distribution"),
                logprobs_missing=row.get("logprobs_missing", False),
            )

    # -- logprobs: one greedy step, distribution of the first score token
    def _logprob_runs(self, jobs, progress) -> dict:
        from evalsuite.models import GenerationSettings

        results, pending = {}, []
        for job in jobs:
            item, criterion, prompt = job
            key = self._key(item, criterion, prompt, "logprobs", 0, 0)
            row = self._lookup(key)
            if row is None:
                pending.append((job, key))
            else:
                results[(item.id, criterion)] = row
        if pending:
            settings = GenerationSettings(max_new_tokens=1, temperature=0.0, top_logprobs=self.top_logprobs)
            generations = self._generate([job[2] for job, _ in pending], settings, progress)
            for (job, key), gen in zip(pending, generations):
                item, criterion, _ = job
                if gen.logprobs_missing or not gen.top_logprobs:
                    row = {"text": gen.text, "score": float("nan"), "distribution": None, "logprobs_missing": True}
                else:
                    dist = score_distribution(gen.top_logprobs[0])
                    score = weighted_score(dist) if dist else float("nan")
                    row = {"text": gen.text, "score": score, "distribution": dist, "logprobs_missing": False}
                self._store(key, criterion, row)
                results[(item.id, criterion)] = row
        return results

    # -- sample: n seeded runs, each parsed, unparseable runs retried up to `retries` times.
    # The open runs of one prompt are drawn together (Model.sample: one pass over the prompt,
    # one generator per run); run r of attempt a uses seed r + 100000 * a.
    def judge(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise ConfigError("judge items need unique ids; give each item its own id")
        jobs = [(item, c, render(self.form, CRITERIA[c], self.steps[c], item)) for item in items for c in CRITERIA]
        per_item: dict[str, dict] = {item.id: {} for item in items}  # criterion -> (scores, raws, missing)
        sample_jobs = jobs
        logprobs_missing: set[str] = set()
        if self.mode == "logprobs":
            rows = self._logprob_runs(jobs, progress)
            sample_jobs = []
            for job in jobs:
                item, criterion, _ = job
                row = rows[(item.id, criterion)]
                if row["logprobs_missing"]:
                    logprobs_missing.add(item.id)
                    sample_jobs.append(job)
                else:
                    per_item[item.id][criterion] = ([row["score"]], [f"{criterion}#0: {row['text']}"])
            if logprobs_missing:
                log.warning(
                    "%s: the server returned no log-probabilities for %d items; they are scored by "
                    "sampling (%d runs) and their verdicts say logprobs_missing=True",
                    self.name,
                    len(logprobs_missing),
                    self.repeats,
                )
        if sample_jobs:
            rows = _sample_runs(self, sample_jobs, progress)
            for item, criterion, _ in sample_jobs:
                runs = [rows[(item.id, criterion, r)] for r in range(self.repeats)]
                per_item[item.id][criterion] = (
                    [row["score"] for row in runs],
                    [f"{criterion}#{r}: {row['text']}" for r, row in enumerate(runs)],
                )
        verdicts = []
        for item in items:
            acc_scores, acc_raw = per_item[item.id]["accuracy"]
            comp_scores, comp_raw = per_item[item.id]["completeness"]
            acc, acc_std, acc_missing = mean_std(acc_scores)
            comp, comp_std, comp_missing = mean_std(comp_scores)
            missing = item.id in logprobs_missing
            mode = "sample" if (self.mode == "sample" or missing) else "logprobs"
            verdicts.append(
                Verdict(
                    item.id,
                    self.name,
                    self.steps_version,
                    acc,
                    comp,
                    acc_std,
                    comp_std,
                    acc_missing + comp_missing,
                    len(acc_scores),
                    tuple(acc_raw + comp_raw),
                    missing,
                    mode,
                )
            )
        self.stats["items"] += len(items)
        return verdicts


def _sample_runs(self: "_GEvalJudge", jobs, progress) -> dict:
    from evalsuite.models import GenerationSettings

    results: dict[tuple[str, str, int], dict] = {}
    open_runs = {id(job): list(range(self.repeats)) for job in jobs}
    retries = self.retries if self.temperature > 0 else 0  # greedy output would repeat itself
    settings = GenerationSettings(max_new_tokens=self.max_new_tokens, temperature=self.temperature)
    bar = None
    for attempt in range(retries + 1):
        pending = []
        for job in jobs:
            item, criterion, prompt = job
            todo = []
            for r in open_runs[id(job)]:
                key = self._key(item, criterion, prompt, "sample", r, attempt)
                row = self._lookup(key)
                if row is None:
                    todo.append((r, key))
                else:
                    results[(item.id, criterion, r)] = row
            if todo:
                pending.append((job, todo))
        if progress and pending:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=len(pending),
                desc=f"judge {self.name}" + (f" retry {attempt}" if attempt else ""),
                unit="prompt",
            )
        try:
            for job, todo in pending:
                item, criterion, prompt = job
                seeds = [r + 100_000 * attempt for r, _ in todo]
                generations = self._count(self.model.sample(prompt, settings, seeds))
                for (r, key), gen in zip(todo, generations):
                    score = parse_score(gen.text)
                    row = {
                        "text": gen.text,
                        "score": float("nan") if score is None else score,
                        "distribution": None,
                    }
                    self._store(key, criterion, row)
                    results[(item.id, criterion, r)] = row
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
                bar = None
        for job in jobs:
            item, criterion, _ = job
            open_runs[id(job)] = [
                r for r in open_runs[id(job)] if math.isnan(results[(item.id, criterion, r)]["score"])
            ]
        if not any(open_runs.values()):
            break
    return results


def _model_capabilities(model: str) -> BackendCapabilities:
    """What the judge's model backend declares; the defaults for a spec no backend registered
    (loading it later names the fix)."""
    try:
        return capabilities(model)
    except SpecError:
        return BackendCapabilities()


def _default_top_logprobs(caps: BackendCapabilities) -> int:
    # 200 makes sure every score digit is present (anything beyond is negligible mass) where the
    # backend reads the logits; a server returns at most what it declares (OpenAI-compatible: 20).
    return min(200, caps.top_logprobs or 200)


@judge_factory("geval")
def geval_judge(
    model: str = "bundled:smollm2-135m-instruct",
    *,
    mode: str = "logprobs",
    repeats: int = 10,
    temperature: float = 0.7,
    form: str | None = None,
    steps_version: str = "v1",
    retries: int = 2,
    max_new_tokens: int = 4,
    top_logprobs: int | None = None,
    cache: bool = True,
    cache_path: str | None = None,
    model_options: dict | None = None,
) -> Judge:
    """G-Eval judge backed by model spec ``model`` (see evalsuite.models.load_model)."""
    if mode not in MODES:
        raise ConfigError(f"unknown judge mode {mode!r}: choose one of {', '.join(MODES)}")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if mode == "sample" and temperature <= 0 and repeats > 1:
        raise ConfigError("sample mode with temperature 0 repeats one answer; set --temperature > 0 or --repeats 1")
    form = form or BUNDLED_FORMS.get(model, DEFAULT_FORM)
    caps = _model_capabilities(model)
    if mode == "logprobs" and caps.batch_dependent:
        # One prompt per forward pass: no batch padding moves a score (in bf16 by up to ~0.07),
        # and a single prompt is read in blocks that reuse the form's shared start.
        model_options = {"batch_size": 1, **(model_options or {})}
    if form not in FORMS:
        raise ConfigError(f"unknown judge form {form!r}: choose one of {', '.join(FORMS)}")
    return _GEvalJudge(
        model,
        mode=mode,
        repeats=repeats,
        temperature=temperature,
        form=form,
        steps_version=steps_version,
        retries=retries,
        max_new_tokens=max_new_tokens,
        top_logprobs=top_logprobs or _default_top_logprobs(caps),
        cache=cache,
        cache_path=cache_path,
        model_options=model_options,
    )
