"""G-Eval's auto chain of thought: a judge model writes its evaluation steps once.

The steps are written to ``steps/<criterion>.<model slug>.<version>.json`` and from then
on read from that file (``steps_version="<model slug>.<version>"``). An existing file is
never overwritten: a new set of steps needs a new version, so old verdicts keep
pointing at the steps that produced them.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalsuite.errors import ConfigError
from evalsuite.judge._criteria import CRITERIA, STEPS_DIR, model_slug
from evalsuite.models import GenerationSettings, load_model
from evalsuite.records import Message, Prompt
from evalsuite.storage import atomic_write_json

_NUMBERED = re.compile(r"^\s*(?:step\s*)?\d+[.):]\s*(.+?)\s*$", re.IGNORECASE)


def _steps_prompt(criterion_name: str) -> Prompt:
    criterion = CRITERIA[criterion_name]
    user = (
        "You will grade an answer to a question, given a reference answer and retrieved context.\n\n"
        f"Criterion: {criterion.description}\n\nRubric:\n{criterion.rubric_text()}\n\n"
        "Write the evaluation steps a grader follows to score this criterion, as a numbered list of 3 to 6 short steps."
    )
    return Prompt(messages=(Message("user", user),), prefill="Evaluation steps:\n1.", chat=True)


def parse_steps(text: str) -> list[str]:
    """Numbered lines of ``text`` ("1. ...", "2) ...") as a list of step sentences."""
    steps = []
    for line in ("1." + text).splitlines():
        match = _NUMBERED.match(line)
        if match and match.group(1):
            steps.append(match.group(1))
    return steps[:8]


def generate_steps(
    criterion: str, model: str, *, version: str = "v1", out_dir: str | Path | None = None, max_new_tokens: int = 200
) -> Path:
    """Have ``model`` write the evaluation steps of ``criterion`` once; returns the file written."""
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown criterion {criterion!r}: choose one of {', '.join(CRITERIA)}")
    full_version = f"{model_slug(model)}.{version}"
    path = Path(out_dir or STEPS_DIR) / f"{criterion}.{full_version}.json"
    if path.exists():
        raise ConfigError(f"{path} exists and is frozen; pass a new version (e.g. v2) to write new steps")

    judge_model = load_model(model)
    generation = judge_model.generate([_steps_prompt(criterion)], GenerationSettings(max_new_tokens=max_new_tokens))[0]
    steps = parse_steps(generation.text)
    if len(steps) < 2:
        raise ConfigError(
            f"{model} wrote no usable numbered steps for {criterion} ({generation.text[:80]!r}); "
            "use the hand-written steps (steps_version='v1') with this model"
        )
    atomic_write_json(
        path,
        {
            "criterion": criterion,
            "version": full_version,
            "source": model,
            "model_identity": judge_model.identity,
            "steps": steps,
        },
    )
    return path
