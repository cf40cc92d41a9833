"""BioASQ Task B: biomedical questions with gold PubMed snippets.

Reads the task B JSON (``{"questions": [...]}``), or one question per line (JSON lines, as
``datasets.Dataset.to_json`` writes a hub export; also a JSON array of questions or a hub
dataset): the layout is told from the content. Each question has ``body``, ``type``
(factoid, list, yesno, summary), ``ideal_answer``, ``exact_answer`` (not for summary),
``documents`` and ``snippets``. The corpus is the snippets grouped by their PubMed
document: one passage per document holding its distinct snippets in text order. The
references are the ideal answers followed by the exact answer written out.
"""

from __future__ import annotations

from typing import Any

from ..records import Dataset, Example, Passage
from ._common import HUB_PREFIX, Checker, hub_rows, hub_source, read_json_or_lines, resolve, unique

NAME = "bioasq"
DEFAULT_FILE = "training.json"  # in the data root's bioasq/ folder
TYPES = ("factoid", "list", "yesno", "summary")


def load(path=None, *, split=None, skip_invalid=False, hub_kwargs=None) -> Dataset:
    if isinstance(path, str) and path.startswith(HUB_PREFIX):
        source = hub_source(path, split, hub_kwargs)
        checker = Checker(source, skip_invalid)
        questions = [(f"row {i}", q) for i, q in enumerate(hub_rows(path[len(HUB_PREFIX) :], split, hub_kwargs), 1)]
    else:
        file = resolve(path, NAME, DEFAULT_FILE)
        checker = Checker(str(file), skip_invalid)
        source = str(file)
        questions = _questions(*read_json_or_lines(file, checker), checker)

    snippets: dict[str, dict[str, tuple[int, str, int]]] = {}  # doc -> text -> (offset, section order, seen order)
    examples: list[Example] = []
    for label, q in questions:
        ex = checker.guard(label, lambda: _question(label, q, checker, snippets))
        if ex is not None:
            examples.append(ex)
    passages = []
    for doc, texts in snippets.items():
        ordered = sorted(texts, key=lambda t: texts[t])
        passages.append(Passage(_passage_id(doc), NAME, doc, "", " ".join(ordered)))
    return Dataset(NAME, source, tuple(examples), tuple(passages), invalid=tuple(checker.invalid))


def _questions(kind: str, data: Any, ck: Checker) -> list[tuple[str, Any]]:
    """(record label, question) of every question of a file, whatever its layout."""
    if kind == "lines":
        return [(f"line {n}", q) for n, q in data]
    if isinstance(data, list):
        return [(str(i), q) for i, q in enumerate(data)]
    if isinstance(data, dict) and "body" in data and "questions" not in data:
        return [("line 1", data)]  # a JSON-lines file of a single question
    questions = ck.guard("(top level)", lambda: ck.field(data, "questions", list, "(top level)")) or []
    return [(str(i), q) for i, q in enumerate(questions)]


def _passage_id(doc: str) -> str:
    return f"bioasq:{doc.rstrip('/').rsplit('/', 1)[-1]}"


def _exact(kind: str, value: Any, ck: Checker, rec: str) -> tuple[str, ...]:
    if kind == "yesno":
        if not isinstance(value, str) or value.strip().lower() not in ("yes", "no"):
            ck.fail(rec, "exact_answer", "expected 'yes' or 'no' for a yesno question")
        return (value.strip().lower(),)
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        ck.fail(rec, "exact_answer", f"expected a list for a {kind} question, got {type(value).__name__}")
    out = []
    for item in value:  # a list of synonyms per entity, or a bare string
        if isinstance(item, list) and item and all(isinstance(s, str) for s in item):
            out.append(item[0])
        elif isinstance(item, str):
            out.append(item)
        else:
            ck.fail(rec, "exact_answer", "expected strings or lists of synonym strings")
    return unique(out)


def _question(label: str, q: Any, ck: Checker, snippets: dict) -> Example:
    rec = label
    qid = ck.text(q, "id", rec)
    rec = f"{label} ({qid})"
    body = ck.text(q, "body", rec)
    kind = ck.text(q, "type", rec)
    if kind not in TYPES:
        ck.fail(rec, "type", f"expected one of {', '.join(TYPES)}, got {kind!r}")
    ideal = ck.field(q, "ideal_answer", (list, str), rec)
    ideal = [ideal] if isinstance(ideal, str) else ideal
    if not all(isinstance(x, str) for x in ideal) or not any(x.strip() for x in ideal):
        ck.fail(rec, "ideal_answer", "expected a non-empty list of strings")
    exact: tuple[str, ...] = ()
    if kind != "summary":
        if "exact_answer" not in q:
            ck.fail(rec, "exact_answer", f"missing (required for a {kind} question)")
        exact = _exact(kind, q["exact_answer"], ck, rec)
    documents = ck.str_list(q, "documents", rec)
    snips = ck.field(q, "snippets", list, rec)
    evidence, docs = [], list(documents)
    found = []
    for s, snip in enumerate(snips):
        srec = f"{rec} snippets[{s}]"
        text = ck.text(snip, "text", srec)
        doc = ck.text(snip, "document", srec)
        offset = ck.field(snip, "offsetInBeginSection", int, srec, optional=True) or 0
        section = ck.field(snip, "beginSection", str, srec, optional=True) or ""
        found.append((doc, text.strip(), (0 if section == "title" else 1, offset)))
    for doc, text, order in found:
        snippets.setdefault(doc, {}).setdefault(text, order)
        evidence.append(_passage_id(doc))
        docs.append(doc)
    refs = list(ideal)
    if kind == "yesno":
        refs.append(exact[0].capitalize())
    elif exact:
        refs.append("; ".join(exact))
    return Example(
        id=qid,
        dataset=NAME,
        question=body.strip(),
        references=unique(refs),
        answer_type=kind,
        evidence=unique(evidence),
        doc_ids=unique(_passage_id(d) for d in docs),
        exact=exact,
        yes_no=(exact[0] == "yes") if kind == "yesno" else None,
    )
