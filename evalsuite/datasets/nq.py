"""Natural Questions (NQ-Open with the gold NQ passage), one JSON object per line.

Each line: ``question``, ``answers`` (short answers), ``ctxs`` (passages with ``title``,
``text``, ``hasanswer``, ``isgold``) and ``nq_annotated_gold``. The corpus is the union
of all passages, de-duplicated; the evidence is the gold passage(s); the source document
of a passage is its Wikipedia page. The format has no id: one is derived from the
normalized question text, so it is stable across files and orderings. A JSON array of such
objects, or a hub dataset with these columns, reads the same.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..records import Dataset, Example, Passage, normalize_question
from ._common import HUB_PREFIX, Checker, hub_rows, hub_source, read_json_or_lines, resolve, short_hash, unique

NAME = "nq"
DEFAULT_FILE = "dev.jsonl"  # in the data root's nq/ folder


def question_id(question: str) -> str:
    """Stable id from the question text (lower-cased, punctuation and extra spaces removed)."""
    return f"nq-{short_hash(normalize_question(question))}"


def load(path=None, *, split=None, skip_invalid=False, hub_kwargs=None) -> Dataset:
    if isinstance(path, str) and path.startswith(HUB_PREFIX):
        source = hub_source(path, split, hub_kwargs)
        checker = Checker(source, skip_invalid)
        rows: Iterable[tuple[str, Any]] = (
            (f"row {i}", obj) for i, obj in enumerate(hub_rows(path[len(HUB_PREFIX) :], split, hub_kwargs), 1)
        )
    else:
        file = resolve(path, NAME, DEFAULT_FILE)
        checker = Checker(str(file), skip_invalid)
        source = str(file)
        kind, data = read_json_or_lines(file, checker)
        if kind == "lines":
            rows = ((f"line {n}", obj) for n, obj in data)
        elif isinstance(data, list):
            rows = ((f"item {i}", obj) for i, obj in enumerate(data))
        else:
            rows = [("line 1", data)]

    passages: dict[tuple[str, str], Passage] = {}
    examples: list[Example] = []
    seen_ids: set[str] = set()
    for label, obj in rows:
        ex = checker.guard(label, lambda: _record(label, obj, checker, passages))
        if ex is not None and ex.id not in seen_ids:
            seen_ids.add(ex.id)
            examples.append(ex)
    return Dataset(NAME, source, tuple(examples), tuple(passages.values()), invalid=tuple(checker.invalid))


def _record(label: str, obj: Any, ck: Checker, passages: dict[tuple[str, str], Passage]) -> Example:
    rec = label
    question = ck.text(obj, "question", rec)
    rec = f"{label} ({question_id(question)})"
    answers = ck.str_list(obj, "answers", rec, empty_ok=False)
    ctxs = ck.field(obj, "ctxs", list, rec)
    gold = ck.field(obj, "nq_annotated_gold", dict, rec, optional=True)
    evidence, docs, found = [], [], []
    for c, ctx in enumerate(ctxs):
        crec = f"{rec} ctxs[{c}]"
        title = ck.field(ctx, "title", str, crec)
        text = ck.text(ctx, "text", crec)
        isgold = ck.field(ctx, "isgold", bool, crec, optional=True)
        ck.field(ctx, "hasanswer", bool, crec, optional=True)
        found.append((title, text, isgold))
    if gold is not None:
        gold_title = ck.field(gold, "title", str, f"{rec} nq_annotated_gold")
        docs.append(gold_title)
    for title, text, isgold in found:
        key = (title.strip(), text.strip())
        if key not in passages:
            passages[key] = Passage("nq:" + short_hash(key[0] + "\n" + key[1]), NAME, key[0], key[0], key[1])
        if isgold:
            evidence.append(passages[key].id)
            docs.append(key[0])
    return Example(
        id=question_id(question),
        dataset=NAME,
        question=question.strip(),
        references=unique(answers),
        answer_type="short",
        evidence=unique(evidence),
        doc_ids=unique(docs),
        exact=unique(answers),
    )
