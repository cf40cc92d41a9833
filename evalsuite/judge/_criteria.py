"""The two criteria of the study, each with a 1-5 rubric, and their frozen evaluation steps.

Evaluation steps are either the hand-written defaults (``steps/<criterion>.v1.json``) or
steps a judge model wrote once for itself (G-Eval's auto chain of thought,
``steps/<criterion>.<model slug>.v<N>.json``, made by :func:`generate_steps`). Either way
they are files shipped with the package; nothing regenerates them silently. The file's
version (and a hash of its text) is part of every verdict and every cache key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from evalsuite.errors import ConfigError
from evalsuite.records import stable_hash

STEPS_DIR = Path(__file__).parent / "steps"


@dataclass(frozen=True)
class Criterion:
    name: str
    description: str
    rubric: tuple[tuple[int, str], ...]  # (score, what earns it), 1..5

    def rubric_text(self) -> str:
        return "\n".join(f"{score}: {text}" for score, text in self.rubric)


ACCURACY = Criterion(
    name="accuracy",
    description=(
        "Accuracy: is every claim in the answer correct with respect to the reference answer and the "
        "retrieved context? Claims that contradict the reference or the context, and facts that appear "
        "in neither, lower the score. Missing information does not lower accuracy."
    ),
    rubric=(
        (1, "The answer is wrong: its main claim contradicts the reference answer or is invented."),
        (2, "The answer is mostly wrong: a minor part is correct, the main claim is not supported."),
        (3, "The answer is partly correct: the main claim is supported but other claims are wrong or invented."),
        (4, "The answer is correct, with a minor inaccuracy or an unsupported detail."),
        (5, "Every claim in the answer is correct and supported by the reference answer or the context."),
    ),
)

COMPLETENESS = Criterion(
    name="completeness",
    description=(
        "Completeness: does the answer contain all key information of the reference answer? "
        "Each key fact of the reference that is missing from the answer lowers the score. "
        "Extra information does not raise or lower completeness."
    ),
    rubric=(
        (1, "The answer contains none of the key information of the reference answer."),
        (2, "The answer contains a small part of the key information."),
        (3, "The answer contains about half of the key information."),
        (4, "The answer contains most of the key information; a minor point is missing."),
        (5, "The answer contains all key information of the reference answer."),
    ),
)

CRITERIA: dict[str, Criterion] = {c.name: c for c in (ACCURACY, COMPLETENESS)}


@dataclass(frozen=True)
class Steps:
    criterion: str
    version: str  # e.g. "v1" (hand-written) or "smollm2-135m-instruct.v1" (written by that judge)
    source: str  # "hand-written" or the judge model spec that wrote them
    steps: tuple[str, ...]
    text_hash: str  # hash of the steps' text: an edited file gives a new cache key

    def text(self) -> str:
        return "\n".join(f"{i}. {s}" for i, s in enumerate(self.steps, start=1))


def model_slug(spec: str) -> str:
    """A file-name-safe short name of a model spec: "bundled:smollm2-135m-instruct" -> "smollm2-135m-instruct"."""
    name = spec.split(":", 1)[1] if spec.startswith(("bundled:", "hf:", "openai:")) else spec
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name.split("#")[-1]).strip("-").lower() or "model"


def steps_path(criterion: str, version: str) -> Path:
    return STEPS_DIR / f"{criterion}.{version}.json"


def load_steps(criterion: str, version: str = "v1") -> Steps:
    """The frozen steps of ``criterion`` in ``version``; ConfigError naming the fix if absent."""
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown criterion {criterion!r}: choose one of {', '.join(CRITERIA)}")
    path = steps_path(criterion, version)
    if not path.exists():
        available = sorted(p.name for p in STEPS_DIR.glob(f"{criterion}.*.json"))
        raise ConfigError(
            f"no evaluation steps {path.name}; pass steps_version= one of {available} "
            f"or write them once with `evalsuite judge --judge SPEC --write-steps`"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    steps = tuple(str(s) for s in data["steps"])
    if data.get("criterion") != criterion or data.get("version") != version or not steps:
        raise ConfigError(
            f"{path}: criterion/version fields do not match the file name or steps are empty; fix the file"
        )
    return Steps(criterion, version, str(data.get("source", "")), steps, stable_hash(list(steps), 12))


def available_versions(criterion: str) -> list[str]:
    return sorted(p.name[len(criterion) + 1 : -len(".json")] for p in STEPS_DIR.glob(f"{criterion}.*.json"))
