"""Judge prompts ("forms"): criterion, steps, the item, and the field the judge fills.

Every form ends with the prefill ``"Score: "`` (trailing space included): the small
tokenizers used here emit that space as a token of its own, so the next token the judge
writes is the score digit, and ``logprobs`` mode reads its distribution there.

Forms (``FORMS``):

- ``geval-chat``: the G-Eval form as a chat turn: criterion, rubric, evaluation steps,
  the item, then "Score:".
- ``fewshot``: a plain completion prompt (``Prompt(chat=False)``): criterion, rubric and
  steps, four worked examples with their scores, then the item. Small instruction-tuned
  models follow the pattern of the examples better than the instruction.
- ``fewshot-chat``: the same text as ``fewshot`` sent as one chat turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from evalsuite.judge._criteria import Criterion, Steps
from evalsuite.records import Message, Prompt

PREFILL = "Score: "
MAX_CONTEXT_CHARS = 600  # per item, over all passages: keeps judge prompts short on CPUs


@dataclass(frozen=True)
class JudgeItem:
    """One answer to judge, with what the judge may compare it against."""

    id: str
    question: str
    references: tuple[str, ...]
    context: tuple[str, ...]
    answer: str


def _context_text(context: tuple[str, ...], limit: int = MAX_CONTEXT_CHARS) -> str:
    parts, used = [], 0
    for passage in context:
        passage = " ".join(passage.split())
        room = limit - used
        if room <= 40:
            break
        if len(passage) > room:
            passage = passage[: room - 3].rsplit(" ", 1)[0] + "..."
        parts.append(f"- {passage}")
        used += len(passage)
    return "\n".join(parts) if parts else "- (none)"


def _item_block(item: JudgeItem) -> str:
    refs = " | ".join(" ".join(r.split()) for r in item.references) or "(none)"
    return (
        f"Question: {' '.join(item.question.split())}\n"
        f"Reference answer: {refs}\n"
        f"Retrieved context:\n{_context_text(item.context)}\n"
        f"Answer: {' '.join(item.answer.split()) or '(empty)'}"
    )


# Worked examples for the few-shot forms: general knowledge, none from the bundled datasets or
# the human-labelled judge data, so what a judge is measured on stays unseen. Scores per criterion.
_EXAMPLES = (
    (
        JudgeItem(
            "ex1",
            "What is the capital of Australia?",
            ("Canberra",),
            (
                "Canberra is the capital city of Australia, chosen in 1908 as a compromise between Sydney and "
                "Melbourne.",
            ),
            "The capital of Australia is Canberra.",
        ),
        {"accuracy": 5, "completeness": 5},
    ),
    (
        JudgeItem(
            "ex2",
            "Who wrote the novel Frankenstein?",
            ("Mary Shelley",),
            ("Frankenstein; or, The Modern Prometheus is an 1818 novel written by the English author Mary Shelley.",),
            "Frankenstein was written by Charles Dickens.",
        ),
        {"accuracy": 1, "completeness": 1},
    ),
    (
        JudgeItem(
            "ex3",
            "What are the three primary colours of light?",
            ("red, green and blue",),
            ("The additive primary colours of light are red, green and blue.",),
            "Red and green.",
        ),
        {"accuracy": 4, "completeness": 2},
    ),
    (
        JudgeItem(
            "ex4",
            "When did the Berlin Wall fall?",
            ("9 November 1989",),
            ("The Berlin Wall fell on 9 November 1989, when the East German government opened the border crossings.",),
            "The Berlin Wall fell in 1975.",
        ),
        {"accuracy": 1, "completeness": 1},
    ),
)


def _header(criterion: Criterion, steps: Steps) -> str:
    return (
        f"You will be given a question, a reference answer, retrieved context and an answer to evaluate.\n"
        f"Rate the answer on one criterion with a score from 1 to 5.\n\n"
        f"Criterion: {criterion.description}\n\n"
        f"Rubric:\n{criterion.rubric_text()}\n\n"
        f"Evaluation steps:\n{steps.text()}"
    )


def geval_chat(criterion: Criterion, steps: Steps, item: JudgeItem) -> Prompt:
    user = (
        f"{_header(criterion, steps)}\n\n{_item_block(item)}\n\n"
        f"Evaluation form (write only the score, a number from 1 to 5):\n"
        f"- {criterion.name.capitalize()}:"
    )
    return Prompt(messages=(Message("user", user),), prefill=PREFILL, chat=True)


def _fewshot_text(criterion: Criterion, steps: Steps, item: JudgeItem) -> str:
    shots = "\n\n".join(f"{_item_block(ex)}\nScore: {scores[criterion.name]}" for ex, scores in _EXAMPLES)
    return f"{_header(criterion, steps)}\n\n{shots}\n\n{_item_block(item)}"


def fewshot(criterion: Criterion, steps: Steps, item: JudgeItem) -> Prompt:
    return Prompt(
        messages=(Message("user", _fewshot_text(criterion, steps, item) + "\n"),), prefill=PREFILL, chat=False
    )


def fewshot_chat(criterion: Criterion, steps: Steps, item: JudgeItem) -> Prompt:
    return Prompt(messages=(Message("user", _fewshot_text(criterion, steps, item)),), prefill=PREFILL, chat=True)


# Short worked examples for the compact form: the answer either restates the reference
# (high), names something else (low) or gives part of it (middle), in an order without a run.
_SHORT_EXAMPLES = (
    ("What is the capital of Australia?", "Canberra", "Canberra", {"accuracy": 5, "completeness": 5}),
    ("Who wrote the novel Frankenstein?", "Mary Shelley", "Charles Dickens", {"accuracy": 1, "completeness": 1}),
    (
        "What are the three primary colours of light?",
        "red, green and blue",
        "red and green",
        {"accuracy": 4, "completeness": 3},
    ),
    ("When did the Berlin Wall fall?", "9 November 1989", "in 1975", {"accuracy": 1, "completeness": 1}),
    (
        "Which gas do plants absorb from the air?",
        "carbon dioxide",
        "carbon dioxide",
        {"accuracy": 5, "completeness": 5},
    ),
    (
        "Which ocean lies between Europe and America?",
        "the Atlantic Ocean",
        "the Pacific Ocean",
        {"accuracy": 1, "completeness": 1},
    ),
)


# A small judge reads a short item: each reference answer is clipped like the context
# (BioASQ's ideal answers run to 8,000 characters, 750 on average over its first 40 eval
# questions, and made the judge read several times as many tokens as the form itself).
MAX_REFERENCE_CHARS = 300


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


def compact(criterion: Criterion, steps: Steps, item: JudgeItem) -> Prompt:
    """Completion form for small models: criterion and steps, six short graded examples, then the item."""
    shots = "\n\n".join(
        f"Question: {q}\nReference answer: {ref}\nAnswer: {ans}\nScore: {scores[criterion.name]}"
        for q, ref, ans, scores in _SHORT_EXAMPLES
    )
    refs = " | ".join(_clip(" ".join(r.split()), MAX_REFERENCE_CHARS) for r in item.references) or "(none)"
    context = " ".join(" ".join(item.context).split())[:300]
    text = (
        f"{criterion.description}\nScore from 1 (worst) to 5 (best).\n\nEvaluation "
        f"steps:\n{steps.text()}\n\n{shots}\n\n"
        f"Question: {' '.join(item.question.split())}\nContext: {context}\nReference answer: {refs}\n"
        f"Answer: {' '.join(item.answer.split()) or '(empty)'}\n"
    )
    return Prompt(messages=(Message("user", text),), prefill=PREFILL, chat=False)


FORMS = {"geval-chat": geval_chat, "fewshot": fewshot, "fewshot-chat": fewshot_chat, "compact": compact}


def render(form: str, criterion: Criterion, steps: Steps, item: JudgeItem) -> Prompt:
    return FORMS[form](criterion, steps, item)
