"""The generic QA format (``qa``): a team's own questions, answers and passages.

Files
    A dataset file is JSON lines (one record per line) or CSV (a header line, then one record
    per row). Which one is told from the content, not the suffix: a file whose first character
    is ``{`` or ``[`` is JSON (JSON lines, or one JSON array of records), anything else is CSV.
    Text is UTF-8.

Record fields
    ``question``     (required) the question text, non-empty.
    ``answers``      (required) the gold answers: a list of strings, at least one non-empty.
                     In CSV the cell is either a JSON list (``["Paris", "City of Paris"]``) or
                     answers separated by ``|`` (``Paris|City of Paris``); a cell that starts
                     with ``[`` is read as JSON, so write an answer holding ``|`` or starting
                     with ``[`` as a JSON list.
    ``id``           (optional) a string or integer, unique in the file. Without it the id is
                     ``qa-`` plus a hash of the normalized question text (lower-cased,
                     punctuation and extra spaces removed), stable across files and orderings;
                     two records with the same question then collide, so give them ids.
    ``passages``     (optional) passages inline: a list of strings, or of objects
                     ``{"id": ..., "title": ..., "text": ..., "doc_id": ...}`` where only
                     ``text`` is required. In CSV a JSON list, or one passage's text (a text
                     that starts with ``[`` must be written as a JSON list). A passage without
                     an id gets ``qa:`` plus a hash of its title and text, so the same passage
                     inlined in several records is one passage of the corpus.
    ``evidence``     (optional) ids of the gold passages (inline or corpus ids): a list, in CSV
                     a JSON list or ids separated by ``|``. Without it, a record's own inline
                     passages are its evidence; a record with neither has no evidence (it is
                     still a fine-tuning pair and an eval question, and retrieval scores skip it).
    ``answer_type``  (optional) a label the reports group by, default ``free_form``.
                     ``yes_no`` makes the first answer the yes/no gold (it must be yes or no);
                     ``unanswerable`` marks the question unanswerable.
    Other fields are ignored.

Corpus file (optional, ``corpus = "kb.jsonl"`` or ``--corpus``)
    JSON lines or CSV, one passage per record: ``id`` (required, string or integer, unique),
    ``text`` (required), ``title`` (optional), ``doc_id`` (optional). Evidence ids name these
    passages or inline ones; an inline passage with a corpus id must have the same text.

Passages are optional: a file of only questions and answers loads and serves as fine-tuning
pairs, but a dataset without any passage cannot be retrieved from (retrieval says so).

Source documents (for the leakage-free split)
    A passage's document is its ``doc_id`` if given, else its id. A question's documents are its
    evidence passages' documents. Questions that share a document, or the same normalized
    question text, go to the same side of the fine-tune pool / eval split.

Retrieval scope (option ``scope``)
    ``corpus`` (default): search all passages. ``document``: search only the passages of the
    question's documents (its evidence documents; a question without evidence searches all).

Column mapping (``columns = {question = "q", answers = "a"}``)
    Reads a field from a differently named column, in files and hub datasets alike; a dotted
    name reaches into nested objects (``answers = "answers.text"`` for the SQuAD layout).
    Fields that may be mapped: id, question, answers, passages, evidence, answer_type.

Hub datasets (``path = "hub:<id>"``, with ``split`` and the options ``data_files``,
``revision``, ``config``) are read through ``datasets.load_dataset``; a string where a list
is expected (answers, passages, evidence) is taken as a list of that one item.

Examples. A JSON line::

    {"id": "faq-17", "question": "How to reset my password?", "answers": ["Forgot password"], "evidence": ["kb-204"]}

a corpus line::

    {"id": "kb-204", "title": "Signing in", "text": "Use 'Forgot password' ...", "doc_id": "help-center/signing-in"}

a CSV file::

    id,question,answers,evidence,answer_type
    faq-17,How do I reset my password?,Use the 'Forgot password' link on the sign-in page.,kb-204,how_to
    faq-18,Which browsers are supported?,Chrome|Firefox|Safari,kb-311,list

Matrix entries::

    datasets = ["qasper", {name = "support-faq", path = "data/faq.jsonl", corpus = "data/kb.jsonl"}]
    {name = "faq", path = "hub:org/faq", columns = {question = "q", answers = "a"}, split = "test"}
    {name = "manuals", path = "data/manuals.csv", options = {scope = "document"}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import ConfigError, DataError
from ..records import Dataset, Example, Passage, normalize_question
from ._common import HUB_PREFIX, Checker, hub_rows, hub_source, read_csv, read_json_or_lines, short_hash, unique

NAME = "qa"
FIELDS = ("id", "question", "answers", "passages", "evidence", "answer_type")
OPTIONS = ("scope",)
SCOPES = ("corpus", "document")
DEFAULT_ANSWER_TYPE = "free_form"
_MISSING = object()


def question_id(question: str) -> str:
    """The id of a record without one: a hash of its normalized question text."""
    return f"qa-{short_hash(normalize_question(question))}"


def load(
    path,
    *,
    corpus=None,
    columns: Iterable[tuple[str, str]] | dict = (),
    split: str | None = None,
    scope: str = "corpus",
    name: str = NAME,
    skip_invalid: bool = False,
    hub_kwargs: dict | None = None,
) -> Dataset:
    """Read a ``qa`` dataset from ``path`` (a file, or ``hub:<id>``) and an optional ``corpus`` file."""
    if path is None:
        raise ConfigError(
            "the qa format needs a file: pass --path FILE (JSON lines or CSV) or set path in the matrix entry"
        )
    if scope not in SCOPES:
        raise ConfigError(f"dataset {name!r}: option scope = {scope!r}: choose one of {', '.join(SCOPES)}")
    mapping = dict(columns)
    for field in mapping:
        if field not in FIELDS:
            raise ConfigError(
                f"dataset {name!r}: columns names an unknown field {field!r}: choose from {', '.join(FIELDS)}"
            )
    passages: dict[str, Passage] = {}
    where: dict[str, str] = {}
    checkers = []
    if corpus is not None:
        corpus_checker = Checker(str(corpus), skip_invalid)
        checkers.append(corpus_checker)
        _read_corpus(Path(corpus), corpus_checker, name, passages, where)
    if isinstance(path, str) and path.startswith(HUB_PREFIX):
        checker = Checker(hub_source(path, split, hub_kwargs), skip_invalid)
        records: Iterable[tuple[str, Any]] = (
            (f"row {i}", row) for i, row in enumerate(hub_rows(path[len(HUB_PREFIX) :], split, hub_kwargs), 1)
        )
        mode = "hub"
        source = checker.file
    else:
        file = Path(path)
        checker = Checker(str(file), skip_invalid)
        mode, records = _file_records(file, checker)
        source = str(file)
    checkers.append(checker)
    if corpus is not None:
        source += f" (corpus {corpus})"
    reader = _Reader(checker, mapping, mode, name)

    parsed: list[_Record] = []
    for label, row in records:
        rec = checker.guard(label, lambda: reader.record(label, row))
        if rec is None or checker.guard(rec.label, lambda: _add_inline(rec, checker, passages, where)) is None:
            continue
        parsed.append(rec)
    examples: list[Example] = []
    first_at: dict[str, str] = {}
    for rec in parsed:
        ex = checker.guard(rec.label, lambda: _example(rec, checker, passages, first_at, name))
        if ex is not None:
            first_at[ex.id] = rec.label.split(" (")[0]
            examples.append(ex)
    invalid = tuple(bad for c in checkers for bad in c.invalid)
    return Dataset(name, source, tuple(examples), tuple(passages.values()), retrieval_scope=scope, invalid=invalid)


# --- reading records -------------------------------------------------------------------------


def _file_records(file: Path, checker: Checker) -> tuple[str, Iterable[tuple[str, Any]]]:
    """("json" or "csv", (label, row) pairs), told apart by the first character of the file."""
    if _first_char(file) in "{[":
        kind, data = read_json_or_lines(file, checker)
        if kind == "lines":
            return "json", ((f"line {n}", obj) for n, obj in data)
        if isinstance(data, list):
            return "json", ((f"item {i}", obj) for i, obj in enumerate(data))
        return "json", [("line 1", data)]
    return "csv", ((f"line {n}", row) for n, row in read_csv(file, checker))


def _first_char(file: Path) -> str:
    try:
        with open(file, "rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    except FileNotFoundError:
        raise DataError(f"{file}: file not found (pass --path to an existing file)") from None
    except IsADirectoryError:
        raise DataError(f"{file}: is a folder, not a file (pass --path to a file)") from None
    return head[:1].decode("latin-1") or " "


@dataclass
class _Record:
    label: str  # "line 3 (faq-1)"
    id: str
    id_field: str  # the field a duplicate id is reported on: the id column, or the question's
    id_derived: bool
    question: str
    answers: tuple[str, ...]
    answer_type: str
    yes_no: bool | None
    passages: list[Passage]
    evidence: list[str] | None
    evidence_field: str


class _Reader:
    """Turns one row (a JSON object, a CSV row or a hub row) into a :class:`_Record`."""

    def __init__(self, checker: Checker, mapping: dict[str, str], mode: str, name: str) -> None:
        self.ck = checker
        self.mapping = mapping
        self.mode = (
            mode  # "json": typed values; "csv": every cell a string; "hub": typed, a scalar stands for a one-item list
        )
        self.name = name

    def column(self, field: str) -> str:
        return self.mapping.get(field, field)

    def get(self, row: Any, field: str, rec: str) -> Any:
        if not isinstance(row, dict):
            self.ck.fail(
                rec,
                "(record)",
                f"expected an object with the fields {', '.join(FIELDS[:3])}..., got {type(row).__name__}",
            )
        col = self.column(field)
        if col in row:
            value = row[col]
        else:
            value = row
            for part in col.split("."):
                if not isinstance(value, dict) or part not in value:
                    return _MISSING
                value = value[part]
        return _MISSING if value is None else value

    def required(self, row: Any, field: str, rec: str) -> Any:
        value = self.get(row, field, rec)
        if value is _MISSING:
            col = self.column(field)
            self.ck.fail(rec, col, "missing" + (f" (the column mapped to {field})" if col != field else ""))
        return value

    def text(self, value: Any, field: str, rec: str) -> str:
        if not isinstance(value, str):
            self.ck.fail(rec, field, f"expected str, got {type(value).__name__}")
        if not value.strip():
            self.ck.fail(rec, field, "empty")
        return value.strip()

    def ident(self, value: Any, field: str, rec: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.ck.fail(rec, field, f"expected a string or integer id, got {type(value).__name__}")
        text = str(value).strip()
        if not text:
            self.ck.fail(rec, field, "empty")
        return text

    def as_list(self, value: Any, field: str, rec: str, *, pipe: bool) -> list:
        """A list field: JSON and hub lists as they are; a CSV cell as a JSON list or ``|``-separated
        (``pipe``) or one item; a hub scalar as one item."""
        if isinstance(value, list):
            return value
        if self.mode == "csv" and isinstance(value, str):
            cell = value.strip()
            if cell.startswith("["):
                try:
                    parsed = json.loads(cell)
                except json.JSONDecodeError as err:
                    self.ck.fail(rec, field, f"a cell starting with '[' must be a JSON list ({err.msg})")
                if not isinstance(parsed, list):
                    self.ck.fail(rec, field, f"expected a JSON list, got {type(parsed).__name__}")
                return parsed
            return [part for part in cell.split("|") if part.strip()] if pipe else [cell]
        if self.mode == "hub" and isinstance(value, (str, int, dict)) and not isinstance(value, bool):
            return [value]
        hint = f" (map a list inside it with columns, e.g. {field}.text)" if isinstance(value, dict) else ""
        self.ck.fail(rec, field, f"expected a list, got {type(value).__name__}{hint}")

    def record(self, label: str, row: Any) -> _Record:
        ck = self.ck
        qcol = self.column("question")
        question = self.text(self.required(row, "question", label), qcol, label)
        raw_id = self.get(row, "id", label)
        if raw_id is _MISSING:
            rid, id_field = question_id(question), qcol
        else:
            rid, id_field = self.ident(raw_id, self.column("id"), label), self.column("id")
        rec = f"{label} ({rid})"
        acol = self.column("answers")
        answers = self.as_list(self.required(row, "answers", rec), acol, rec, pipe=True)
        for i, a in enumerate(answers):
            if not isinstance(a, str):
                hint = f" (map a list inside it with columns, e.g. {acol}.text)" if isinstance(a, dict) else ""
                ck.fail(rec, f"{acol}[{i}]", f"expected str, got {type(a).__name__}{hint}")
        answers = unique(answers)
        if not answers:
            ck.fail(rec, acol, "empty (give at least one answer)")
        answer_type = DEFAULT_ANSWER_TYPE
        tcol = self.column("answer_type")
        if (raw_type := self.get(row, "answer_type", rec)) is not _MISSING:
            answer_type = self.text(raw_type, tcol, rec)
        yes_no = None
        if answer_type in ("yes_no", "yesno"):
            first = answers[0].strip().lower().rstrip(".")
            if first not in ("yes", "no"):
                ck.fail(
                    rec, acol, f"the first answer of a {answer_type} question must be yes or no, got {answers[0]!r}"
                )
            yes_no = first == "yes"
        passages = []
        pcol = self.column("passages")
        if (raw := self.get(row, "passages", rec)) is not _MISSING:
            for i, item in enumerate(self.as_list(raw, pcol, rec, pipe=False)):
                passages.append(self.passage(item, f"{pcol}[{i}]", rec))
        evidence = None
        ecol = self.column("evidence")
        if (raw := self.get(row, "evidence", rec)) is not _MISSING:
            evidence = [
                self.ident(e, f"{ecol}[{i}]", rec) for i, e in enumerate(self.as_list(raw, ecol, rec, pipe=True))
            ]
        return _Record(
            rec, rid, id_field, raw_id is _MISSING, question, answers, answer_type, yes_no, passages, evidence, ecol
        )

    def passage(self, item: Any, field: str, rec: str) -> Passage:
        if isinstance(item, str):
            text = self.text(item, field, rec)
            pid = _passage_id("", text)
            return Passage(pid, self.name, pid, "", text)
        if not isinstance(item, dict):
            self.ck.fail(rec, field, f"expected a string or an object with 'text', got {type(item).__name__}")
        if item.get("text") is None:
            self.ck.fail(rec, f"{field}.text", "missing")
        text = self.text(item["text"], f"{field}.text", rec)
        title = item.get("title")
        if title is not None and not isinstance(title, str):
            self.ck.fail(rec, f"{field}.title", f"expected str, got {type(title).__name__}")
        title = (title or "").strip()
        pid = self.ident(item["id"], f"{field}.id", rec) if item.get("id") is not None else _passage_id(title, text)
        doc = self.ident(item["doc_id"], f"{field}.doc_id", rec) if item.get("doc_id") is not None else pid
        return Passage(pid, self.name, doc, title, text)


def _passage_id(title: str, text: str) -> str:
    return "qa:" + short_hash(title + "\n" + text)


def _read_corpus(file: Path, ck: Checker, name: str, passages: dict[str, Passage], where: dict[str, str]) -> None:
    if not file.is_file():
        raise DataError(f"{file}: corpus file not found (pass --corpus to an existing JSON-lines or CSV file)")
    _, rows = _file_records(file, ck)
    for label, row in rows:

        def build() -> None:
            if not isinstance(row, dict):
                ck.fail(label, "(record)", f"expected an object with id and text, got {type(row).__name__}")
            if row.get("id") is None:
                ck.fail(label, "id", "missing")
            pid = _ident(ck, row["id"], "id", label)
            rec = f"{label} ({pid})"
            if row.get("text") is None:
                ck.fail(rec, "text", "missing")
            text = row["text"]
            if not isinstance(text, str):
                ck.fail(rec, "text", f"expected str, got {type(text).__name__}")
            if not text.strip():
                ck.fail(rec, "text", "empty")
            title = row.get("title")
            if title is not None and not isinstance(title, str):
                ck.fail(rec, "title", f"expected str, got {type(title).__name__}")
            doc = _ident(ck, row["doc_id"], "doc_id", rec) if row.get("doc_id") is not None else pid
            if pid in passages:
                ck.fail(rec, "id", f"duplicate id {pid!r} (first at {where[pid]})")
            passages[pid] = Passage(pid, name, doc, (title or "").strip(), text.strip())
            where[pid] = f"{file} {label}"

        ck.guard(label, build)


def _ident(ck: Checker, value: Any, field: str, rec: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        ck.fail(rec, field, f"expected a string or integer id, got {type(value).__name__}")
    if not str(value).strip():
        ck.fail(rec, field, "empty")
    return str(value).strip()


def _add_inline(rec: _Record, ck: Checker, passages: dict[str, Passage], where: dict[str, str]) -> bool:
    """Add a record's inline passages to the corpus; an id naming a different passage fails the record."""
    new: dict[str, Passage] = {}
    for i, p in enumerate(rec.passages):
        old = new.get(p.id) or passages.get(p.id)
        if old is not None and (old.text, old.title, old.doc_id) != (p.text, p.title, p.doc_id):
            at = where.get(p.id, "this record")
            ck.fail(rec.label, f"passages[{i}]", f"id {p.id!r} already names a different passage ({at})")
        new.setdefault(p.id, p)
    for pid, p in new.items():
        if pid not in passages:
            passages[pid] = p
            where[pid] = rec.label
    return True


def _example(rec: _Record, ck: Checker, passages: dict[str, Passage], first_at: dict[str, str], name: str) -> Example:
    evidence = rec.evidence if rec.evidence is not None else [p.id for p in rec.passages]
    for i, pid in enumerate(evidence):
        if pid not in passages:
            known = (
                f"{len(passages)} passages" if passages else "no passages: add passages to the records or a corpus file"
            )
            ck.fail(rec.label, f"{rec.evidence_field}[{i}]", f"evidence id {pid!r} is not in the corpus ({known})")
    if rec.id in first_at:
        if rec.id_derived:
            ck.fail(
                rec.label,
                rec.id_field,
                f"same question as {first_at[rec.id]} (both get the id {rec.id!r}; give each record an id)",
            )
        ck.fail(rec.label, rec.id_field, f"duplicate id {rec.id!r} (first at {first_at[rec.id]})")
    evidence = unique(evidence)
    return Example(
        id=rec.id,
        dataset=name,
        question=rec.question,
        references=rec.answers,
        answer_type=rec.answer_type,
        evidence=evidence,
        doc_ids=unique(passages[pid].doc_id for pid in evidence),
        yes_no=rec.yes_no,
        unanswerable=rec.answer_type == "unanswerable",
    )
