"""deepeval interoperability, both ways. Registered as the judge scheme ``deepeval:`` through the
``evalsuite.judges`` entry point (the core never imports this module).

- :class:`AccuracyMetric` and :class:`CompletenessMetric` are deepeval metrics
  (``deepeval.metrics.BaseMetric``) backed by any evalsuite judge, so ``assert_test``
  users drop them in. Scores are on the study's 1-5 scale; ``threshold`` too.
- ``deepeval:<model spec>`` (or ``make_judge(spec, engine="deepeval")``,
  :func:`deepeval_geval_judge`) scores with deepeval's own ``GEval`` metric, given our
  criteria, rubrics and frozen evaluation steps, and backed by an evalsuite model through
  :class:`EvalsuiteLLM` (a ``DeepEvalBaseLLM``). Only a judge output with no score in it is
  unscored (nan, cached); a failed call (a rejected key, retries used up, a refused request)
  raises and leaves nothing in the cache, so a rerun after the fix asks the model again.

deepeval sends telemetry (PostHog, Sentry, New Relic) unless told not to, and does so at
import time; this module sets the opt-out variables deepeval's source reads before it
imports deepeval, unless the user set them: DEEPEVAL_TELEMETRY_OPT_OUT=YES,
TELEMETRY_OPT_OUT=YES, ERROR_REPORTING=NO, DEEPEVAL_UPDATE_WARNING_OPT_IN=NO.
deepeval also creates a ``.deepeval/`` folder in the working directory.
"""

from __future__ import annotations

import asyncio
import math
import os

for _name, _value in (
    ("DEEPEVAL_TELEMETRY_OPT_OUT", "YES"),
    ("TELEMETRY_OPT_OUT", "YES"),
    ("ERROR_REPORTING", "NO"),
    ("DEEPEVAL_UPDATE_WARNING_OPT_IN", "NO"),
):
    os.environ.setdefault(_name, _value)

from typing import Any, Iterator, Sequence  # noqa: E402

try:
    from deepeval.metrics import BaseMetric, GEval  # noqa: E402
    from deepeval.metrics.g_eval.utils import Rubric  # noqa: E402
    from deepeval.models import DeepEvalBaseLLM  # noqa: E402
    from deepeval.test_case import LLMTestCase, LLMTestCaseParams  # noqa: E402
except ImportError as err:  # an optional extra: its pytest plugin would load in every project otherwise
    raise ImportError(f"deepeval is not installed ({err}): pip install 'evalsuite[deepeval]'") from None

from evalsuite.errors import EvalsuiteError, SpecError  # noqa: E402
from evalsuite.judge import (  # noqa: E402
    CRITERIA,
    Judge,
    JudgeCache,
    JudgeItem,
    Steps,
    Verdict,
    judge_factory,
    load_steps,
    make_judge,
    parse_score,
)
from evalsuite.judge._cache import run_key  # noqa: E402
from evalsuite.judge._judges import GEvalJob, GEvalLoop, GEvalRun  # noqa: E402
from evalsuite.models import GenerationSettings, load_model  # noqa: E402
from evalsuite.records import Message, Prompt, stable_hash  # noqa: E402

JSON_PREFILL = '{"score": '
SCHEME = "deepeval"


class UnparseableOutput(EvalsuiteError):
    """The judge model answered, but wrote no score in 1-5: the run is unscored (nan), and that is cached."""


# --------------------------------------------------------------------------- our judges as deepeval metrics


def item_from_test_case(test_case: LLMTestCase) -> JudgeItem:
    """A JudgeItem from a deepeval test case: input, expected_output, retrieval_context (or context), actual_output."""
    if not test_case.expected_output:
        raise EvalsuiteError("the test case has no expected_output; set it to the reference answer")
    context = tuple(test_case.retrieval_context or test_case.context or ())
    fields = [test_case.input, test_case.expected_output, list(context), test_case.actual_output]
    return JudgeItem(
        stable_hash(fields), test_case.input, (test_case.expected_output,), context, test_case.actual_output or ""
    )


class _CriterionMetric(BaseMetric):
    criterion = ""

    def __init__(self, judge: Judge | str = "token-overlap", threshold: float = 3.5, **judge_options: Any) -> None:
        self.judge = make_judge(judge, **judge_options) if isinstance(judge, str) else judge
        self.threshold = threshold
        self.evaluation_model = self.judge.name
        self.async_mode = False
        self.include_reason = True
        self.verdict: Verdict | None = None

    def measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        self.error = None
        (self.verdict,) = self.judge.judge([item_from_test_case(test_case)])
        score = getattr(self.verdict, self.criterion)
        std = getattr(self.verdict, f"{self.criterion}_std")
        if math.isnan(score):
            self.score, self.success = score, False
            self.error = (
                f"{self.judge.name} could not score {self.criterion} ({self.verdict.unscored} unparseable runs)"
            )
            self.reason = self.error
            return score
        self.score = float(score)
        self.success = self.score >= self.threshold
        self.reason = (
            f"{self.judge.name}: {self.criterion} {self.score:.2f} / 5 (std {std:.2f} over "
            f"{self.verdict.runs} runs), threshold {self.threshold}"
        )
        return self.score

    async def a_measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        return await asyncio.to_thread(self.measure, test_case)

    def is_successful(self) -> bool:
        if self.error is not None or self.score is None or math.isnan(self.score):
            self.success = False
        else:
            self.success = self.score >= self.threshold
        return bool(self.success)

    @property
    def __name__(self) -> str:
        return f"{self.criterion.capitalize()} (evalsuite)"


class AccuracyMetric(_CriterionMetric):
    """Accuracy on 1-5 from an evalsuite judge (default: token-overlap); passes at ``score >= threshold``."""

    criterion = "accuracy"


class CompletenessMetric(_CriterionMetric):
    """Completeness on 1-5 from an evalsuite judge (default: token-overlap); passes at ``score >= threshold``."""

    criterion = "completeness"


# --------------------------------------------------------------------------- deepeval's GEval on our model


class EvalsuiteLLM(DeepEvalBaseLLM):
    """An evalsuite model (any spec) as a deepeval model.

    With a schema that has ``score`` (deepeval's ReasonScore), the JSON form is filled by
    prefilling ``{"score": `` and reading the number the model writes next, so small
    local models that cannot write JSON still answer; the rest of the text is the reason.
    """

    def __init__(
        self,
        spec: str = "bundled:smollm2-135m-instruct",
        *,
        temperature: float = 0.0,
        seed: int = 0,
        max_new_tokens: int = 4,
        **model_options: Any,
    ) -> None:
        self.spec = spec
        self.temperature, self.seed, self.max_new_tokens = temperature, seed, max_new_tokens
        self.model_options = model_options
        self.calls = 0
        self.last_text = ""
        super().__init__(spec)

    def load_model(self, *args: Any, **kwargs: Any):

        return load_model(self.spec, **self.model_options)

    def _complete(self, prompt: str, prefill: str, max_new_tokens: int) -> str:

        settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=self.temperature, seed=self.seed)
        (generation,) = self.model.generate([Prompt(messages=(Message("user", prompt),), prefill=prefill)], settings)
        self.calls += 0 if generation.cached else 1
        self.last_text = generation.text
        return generation.text

    def generate(self, prompt: str, schema: Any = None) -> Any:
        fields = getattr(schema, "model_fields", {}) if schema is not None else {}
        if "score" in fields:
            text = self._complete(prompt, JSON_PREFILL, self.max_new_tokens)
            score = parse_score(text)
            if score is None:
                raise UnparseableOutput(f"{self.spec} wrote no score in 1-5 ({text[:40]!r})")
            return schema(score=score, reason=f"{self.spec} wrote {JSON_PREFILL}{text}")
        if schema is not None:
            raise TypeError("only score forms are filled by prefill; deepeval falls back to plain text")
        return self._complete(prompt, "", 256)

    async def a_generate(self, prompt: str, schema: Any = None) -> Any:
        return await asyncio.to_thread(self.generate, prompt, schema)

    def get_model_name(self, *args: Any, **kwargs: Any) -> str:
        return f"evalsuite:{self.spec}"


def geval_metric(
    criterion: str, llm: DeepEvalBaseLLM | str | None, steps: Steps | None = None, threshold: float = 0.35
) -> GEval:
    """deepeval's GEval for one of our criteria, with our rubric and frozen steps (no step generation).

    deepeval reports GEval scores divided by 10, so 1-5 becomes 0.1-0.5 (``threshold`` on that scale).
    """
    spec = CRITERIA[criterion]
    steps = steps or load_steps(criterion)
    return GEval(
        name=criterion.capitalize(),
        evaluation_params=[
            LLMTestCaseParams.INPUT,
            LLMTestCaseParams.EXPECTED_OUTPUT,
            LLMTestCaseParams.RETRIEVAL_CONTEXT,
            LLMTestCaseParams.ACTUAL_OUTPUT,
        ],
        evaluation_steps=list(steps.steps),
        rubric=[Rubric(score_range=(score, score), expected_outcome=text) for score, text in spec.rubric],
        model=llm,
        threshold=threshold,
        async_mode=False,
    )


class _DeepEvalGEvalJudge(GEvalLoop):
    # each run goes through its attempts before the next run starts (deepeval scores one run at a time)
    runs_together = False

    def __init__(
        self,
        model: str,
        *,
        repeats: int,
        temperature: float,
        steps_version: str,
        retries: int,
        max_new_tokens: int,
        cache: bool,
        cache_path: str | None,
        model_options: dict | None,
    ) -> None:
        super().__init__()
        self.model_spec, self.repeats, self.temperature, self.retries = model, repeats, temperature, retries
        self.steps = {c: load_steps(c, steps_version) for c in CRITERIA}
        self.steps_version = steps_version
        self.name = f"{model}/deepeval-geval/sample"
        self.llm = EvalsuiteLLM(model, temperature=temperature, max_new_tokens=max_new_tokens, **(model_options or {}))
        self.metrics = {c: geval_metric(c, self.llm, self.steps[c]) for c in CRITERIA}
        self._cache = JudgeCache(cache_path) if cache else None

    @property
    def model_identity(self) -> str:
        return self.llm.model.identity

    @property
    def identity(self) -> str:
        return stable_hash({"judge": super().identity, "model": self.llm.model.identity}, 32)

    def _run_key(self, run: GEvalRun) -> str:
        item, criterion = run.job.item, run.job.criterion
        steps = self.steps[criterion]
        return run_key(
            judge=self.llm.model.identity,
            engine="deepeval",
            steps=f"{steps.version}:{steps.text_hash}",
            criterion=criterion,
            question=item.question,
            references=list(item.references),
            context=list(item.context),
            answer=item.answer,
            mode="sample",
            temperature=self.temperature,
            repeat=run.repeat,
            attempt=run.attempt,
        )

    def _score(self, runs: list[GEvalRun], progress: bool) -> Iterator[dict]:
        for run in runs:
            yield self._measure(run)

    def _measure(self, run: GEvalRun) -> dict:
        """One run of deepeval's GEval metric, seeded by the run."""
        item = run.job.item
        self.llm.seed = run.seed
        metric = self.metrics[run.job.criterion]
        case = LLMTestCase(
            input=item.question,
            actual_output=item.answer,
            expected_output=" | ".join(item.references),
            retrieval_context=list(item.context) or ["(none)"],
        )
        calls = self.llm.calls
        try:
            metric.measure(case, _show_indicator=False)
            score = round(float(metric.score) * 10, 6)  # deepeval divides by 10
        except UnparseableOutput:
            score = float("nan")  # a real answer without a score: unscored, and cached as such
        except EvalsuiteError:
            raise  # a rejected key, used-up retries, a refused request: names its fix; nothing cached
        except Exception as err:
            raise EvalsuiteError(
                f"{self.model_spec}: deepeval's GEval failed on item {item.id} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); nothing was cached: check the model spec, "
                f"its key or server, and rerun"
            ) from err
        self.stats["model_calls"] += self.llm.calls - calls
        self.stats["cache_hits"] += 1 - (self.llm.calls - calls)
        return {"text": self.llm.last_text, "score": score}

    def judge(self, items: Sequence[JudgeItem], progress: bool = False) -> list[Verdict]:
        jobs = [GEvalJob(item, criterion) for item in items for criterion in CRITERIA]
        rows = self._runs(jobs, "sample", self.repeats, progress)
        return self._verdicts(items, rows, ["sample"] * len(items), [False] * len(items))


@judge_factory("deepeval-geval")
def deepeval_geval_judge(
    model: str = "bundled:smollm2-135m-instruct",
    *,
    repeats: int = 1,
    temperature: float = 0.0,
    steps_version: str = "v1",
    retries: int = 2,
    max_new_tokens: int = 4,
    cache: bool = True,
    cache_path: str | None = None,
    model_options: dict | None = None,
) -> Judge:
    """Judge that scores with deepeval's GEval (our criteria, rubric and frozen steps) on an evalsuite model.

    deepeval's GEval samples one JSON answer per run (no log-probabilities for custom models),
    so this engine works in ``sample`` mode: ``repeats`` runs at ``temperature``.
    """
    if repeats > 1 and temperature <= 0:
        raise EvalsuiteError("deepeval engine with repeats > 1 needs temperature > 0; pass --temperature 0.7")
    return _DeepEvalGEvalJudge(
        model,
        repeats=repeats,
        temperature=temperature,
        steps_version=steps_version,
        retries=retries,
        max_new_tokens=max_new_tokens,
        cache=cache,
        cache_path=cache_path,
        model_options=model_options,
    )


def deepeval_judge(spec: str, **options: Any) -> Judge:
    """The ``deepeval:<model spec>`` judge scheme (entry point ``deepeval`` in ``evalsuite.judges``)."""
    model = spec[len(SCHEME) + 1 :] if spec.startswith(f"{SCHEME}:") else spec
    if not model.strip():
        raise SpecError(f"judge spec {spec!r} names no model: write deepeval:<model spec>, e.g. deepeval:openai:gpt-4o")
    for name in ("mode",):  # deepeval's GEval samples; it has no logprobs mode of ours
        options.pop(name, None)
    return deepeval_geval_judge(model, **options)
