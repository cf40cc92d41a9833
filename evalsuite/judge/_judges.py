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
import itertools
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from evalsuite.errors import ConfigError, SpecError
from evalsuite.judge._cache import JudgeCache, run_key
from evalsuite.judge._criteria import CRITERIA, Steps, load_steps
from evalsuite.judge._forms import FORMS, JudgeItem, render
from evalsuite.judge._parse import mean_std, parse_score, score_distribution, weighted_score
from evalsuite.metrics import token_precision, token_recall
from evalsuite.models import BackendCapabilities, GenerationSettings, capabilities, load_model
from evalsuite.records import Prompt, stable_hash

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

    @classmethod
    def deterministic(
        cls, item_id: str, judge: str, steps_version: str, accuracy: float, completeness: float, raw: tuple = ()
    ) -> "Verdict":
        """The verdict of a judge that scores once, with no repeats and no model (a nan score is unscored)."""
        unscored = int(math.isnan(accuracy)) + int(math.isnan(completeness))
        return cls(
            item_id, judge, steps_version, accuracy, completeness, 0.0, 0.0, unscored, 1, raw, False, "deterministic"
        )

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
            verdicts.append(Verdict.deterministic(item.id, self.name, self.steps_version, accuracy, completeness))
        self.stats["items"] += len(items)
        return verdicts


@judge_factory("token-overlap")
def token_overlap_judge() -> Judge:
    """The deterministic token-overlap judge (no language model): 1 + 4 * precision / recall of the answer's
    tokens against the reference answers'."""
    return _TokenOverlapJudge()


# --------------------------------------------------------------------------- G-Eval

# run r of attempt a is seeded r + SEED_STRIDE * a
SEED_STRIDE = 100_000


@dataclass(frozen=True)
class GEvalJob:
    """One (item, criterion) pair a G-Eval judge scores; ``prompt``: its rendered prompt, if the judge renders one."""

    item: JudgeItem
    criterion: str
    prompt: Prompt | None = None


@dataclass(frozen=True)
class GEvalRun:
    """One run of a job: its mode ("logprobs" | "sample"), repeat index and retry attempt."""

    job: GEvalJob
    mode: str
    repeat: int
    attempt: int

    @property
    def seed(self) -> int:
        return self.repeat + SEED_STRIDE * self.attempt


class GEvalLoop(Judge):
    """The run loop of G-Eval judges: items x criteria x repeats, the judge cache, seeds, retries, verdicts.

    Each run's key (:meth:`_run_key`) is looked up in the judge cache first (a hit counts in
    ``stats``); the runs it does not hold are scored by :meth:`_score`, the one part a judge
    supplies, and each row is stored as soon as it is made. A sampled run whose score is nan
    (unscored) is tried again in the next attempt while ``retries`` are left and the temperature
    is above 0; run ``r`` of attempt ``a`` is seeded ``r + 100000 * a`` (:attr:`GEvalRun.seed`).
    The runs of an item become its :class:`Verdict` (:meth:`_verdicts`).

    Subclasses set ``repeats``, ``retries``, ``temperature``, ``steps`` and ``_cache`` (a
    :class:`JudgeCache` or None) and define ``model_identity`` (stored with each cached row). With
    ``runs_together`` (the default) the open runs of all jobs are scored attempt by attempt, so a
    judge can batch them; without it each run goes through its attempts before the next starts.
    """

    repeats: int
    retries: int
    temperature: float
    steps: dict[str, Steps]
    _cache: JudgeCache | None
    runs_together = True

    @property
    def model_identity(self) -> str:
        raise NotImplementedError

    def _run_key(self, run: GEvalRun) -> str:
        """The judge-cache key of ``run``."""
        raise NotImplementedError

    def _score(self, runs: list[GEvalRun], progress: bool) -> Iterator[dict]:
        """One row per run, in their order: ``text`` and ``score`` (nan: unscored), optionally
        ``distribution`` and ``logprobs_missing``."""
        raise NotImplementedError

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
                judge=self.model_identity,
                criterion=criterion,
                text=row["text"],
                score=row["score"],
                distribution=row.get("distribution"),
                logprobs_missing=row.get("logprobs_missing", False),
            )

    def _runs(self, jobs: Sequence[GEvalJob], mode: str, repeats: int, progress: bool) -> list[list[dict]]:
        """The rows of ``repeats`` runs of each job (one list per job, by repeat), from the cache or scored;
        of a run tried again, the last attempt's row."""
        retries = self.retries if mode == "sample" and self.temperature > 0 else 0  # greedy output would repeat
        units = [(j, r) for j in range(len(jobs)) for r in range(repeats)]
        results: dict[tuple[int, int], dict] = {}
        for group in [units] if self.runs_together else [[unit] for unit in units]:
            for attempt in range(retries + 1):
                pending = []
                for j, r in group:
                    run = GEvalRun(jobs[j], mode, r, attempt)
                    key = self._run_key(run)
                    row = self._lookup(key)
                    if row is None:
                        pending.append((j, run, key))
                    else:
                        results[(j, r)] = row
                if pending:
                    # the rows first: zip then runs the scorer to its end (a progress bar closes)
                    for row, (j, run, key) in zip(self._score([p[1] for p in pending], progress), pending):
                        self._store(key, run.job.criterion, row)
                        results[(j, run.repeat)] = row
                group = [unit for unit in group if math.isnan(results[unit]["score"])]
                if not group:
                    break
        return [[results[(j, r)] for r in range(repeats)] for j in range(len(jobs))]

    def _verdicts(
        self, items: Sequence[JudgeItem], rows: Sequence[list[dict]], modes: Sequence[str], missing: Sequence[bool]
    ) -> list[Verdict]:
        """One verdict per item from the rows of its jobs (``rows`` in the order items x CRITERIA)."""
        verdicts = []
        for i, item in enumerate(items):
            runs = dict(zip(CRITERIA, rows[i * len(CRITERIA) : (i + 1) * len(CRITERIA)]))
            acc, acc_std, acc_missing = mean_std([row["score"] for row in runs["accuracy"]])
            comp, comp_std, comp_missing = mean_std([row["score"] for row in runs["completeness"]])
            raw = tuple(
                f"{criterion}#{r}: {row['text']}"
                for criterion in ("accuracy", "completeness")
                for r, row in enumerate(runs[criterion])
            )
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
                    len(runs["accuracy"]),
                    raw,
                    missing[i],
                    modes[i],
                )
            )
        self.stats["items"] += len(items)
        return verdicts


class _GEvalJudge(GEvalLoop):
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
            self._model = load_model(self.model_spec, **self._model_options)
        return self._model

    @property
    def model_identity(self) -> str:
        return self.model.identity

    @property
    def identity(self) -> str:
        """Configuration plus the model's identity (weights, dtype, adapter): another model is another judge."""
        return stable_hash({"judge": super().identity, "model": self.model.identity}, 32)

    def _run_key(self, run: GEvalRun) -> str:
        item, criterion, mode = run.job.item, run.job.criterion, run.mode
        steps = self.steps[criterion]
        return run_key(
            judge=self.model.identity,
            steps=f"{steps.version}:{steps.text_hash}",
            criterion=criterion,
            form=self.form,
            prompt=run.job.prompt.key(),
            question=item.question,
            references=list(item.references),
            context=list(item.context),
            answer=item.answer,
            mode=mode,
            temperature=self.temperature if mode == "sample" else 0.0,
            repeat=run.repeat,
            attempt=run.attempt,
            max_new_tokens=self.max_new_tokens if mode == "sample" else 1,
            top_logprobs=self.top_logprobs if mode == "logprobs" else 0,
        )

    def _count(self, generations):
        for g in generations:
            self.stats["cache_hits" if g.cached else "model_calls"] += 1
        return generations

    def _score(self, runs: list[GEvalRun], progress: bool) -> Iterator[dict]:
        if runs[0].mode == "logprobs":
            return _logprob_rows(self, runs, progress)
        return _sample_rows(self, runs, progress)

    def judge(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise ConfigError("judge items need unique ids; give each item its own id")
        jobs = [
            GEvalJob(item, c, render(self.form, CRITERIA[c], self.steps[c], item)) for item in items for c in CRITERIA
        ]
        rows: list[list[dict]] = [[] for _ in jobs]
        to_sample = list(range(len(jobs)))
        logprobs_missing: set[str] = set()
        if self.mode == "logprobs":
            to_sample = []
            for j, (row,) in enumerate(self._runs(jobs, "logprobs", 1, progress)):
                if row["logprobs_missing"]:
                    logprobs_missing.add(jobs[j].item.id)
                    to_sample.append(j)
                else:
                    rows[j] = [row]
            if logprobs_missing:
                log.warning(
                    "%s: the server returned no log-probabilities for %d items; they are scored by "
                    "sampling (%d runs) and their verdicts say logprobs_missing=True",
                    self.name,
                    len(logprobs_missing),
                    self.repeats,
                )
        if to_sample:
            sampled = self._runs([jobs[j] for j in to_sample], "sample", self.repeats, progress)
            for j, job_rows in zip(to_sample, sampled):
                rows[j] = job_rows
        missing = [item.id in logprobs_missing for item in items]
        modes = ["sample" if (self.mode == "sample" or m) else "logprobs" for m in missing]
        return self._verdicts(items, rows, modes, missing)


# -- logprobs: one greedy step over all prompts, the distribution of the first score token
def _logprob_rows(self: "_GEvalJudge", runs: list[GEvalRun], progress: bool) -> Iterator[dict]:

    settings = GenerationSettings(max_new_tokens=1, temperature=0.0, top_logprobs=self.top_logprobs)
    generations = self._count(self.model.generate([run.job.prompt for run in runs], settings, progress=progress))
    for gen in generations:
        if gen.logprobs_missing or not gen.top_logprobs:
            yield {"text": gen.text, "score": float("nan"), "distribution": None, "logprobs_missing": True}
        else:
            dist = score_distribution(gen.top_logprobs[0])
            score = weighted_score(dist) if dist else float("nan")
            yield {"text": gen.text, "score": score, "distribution": dist, "logprobs_missing": False}


# -- sample: each run parsed. The open runs of one prompt are drawn together (Model.sample: one
# pass over the prompt, one generator per run, seeded by the run).
def _sample_rows(self: "_GEvalJudge", runs: list[GEvalRun], progress: bool) -> Iterator[dict]:

    settings = GenerationSettings(max_new_tokens=self.max_new_tokens, temperature=self.temperature)
    per_prompt = [list(group) for _, group in itertools.groupby(runs, key=lambda run: id(run.job))]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        attempt = runs[0].attempt
        bar = tqdm(
            total=len(per_prompt), desc=f"judge {self.name}" + (f" retry {attempt}" if attempt else ""), unit="prompt"
        )
    try:
        for group in per_prompt:
            generations = self._count(self.model.sample(group[0].job.prompt, settings, [run.seed for run in group]))
            for gen in generations:
                score = parse_score(gen.text)
                yield {"text": gen.text, "score": float("nan") if score is None else score, "distribution": None}
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


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
