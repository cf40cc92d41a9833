"""Small frozen records passed between the stages of an evaluation.

Every record is a frozen dataclass of plain values (str, int, float, bool, None and
tuples of those), so it can be hashed, cached, compared in a snapshot and written as
JSON with :func:`to_dict`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of a dataset's corpus, with its provenance."""

    id: str  # stable within a dataset, e.g. "qasper:1909.00694:3"
    dataset: str
    doc_id: str  # source document: Qasper paper id, PubMed URL, Wikipedia title
    title: str  # section name (Qasper), Wikipedia title (NQ), "" otherwise
    text: str


@dataclass(frozen=True)
class Example:
    """One question with its gold answers and gold evidence."""

    id: str
    dataset: str
    question: str
    references: tuple[str, ...]  # every gold answer text (all annotators)
    answer_type: str  # qasper: extractive|abstractive|yes_no|unanswerable; bioasq: factoid|list|yesno|summary; nq: short
    evidence: tuple[str, ...] = ()  # ids of gold evidence passages
    doc_ids: tuple[str, ...] = ()  # source documents this question draws on
    exact: tuple[str, ...] = ()  # exact answers (BioASQ factoid/list/yesno), may be empty
    yes_no: bool | None = None  # gold yes/no answer where the dataset has one
    unanswerable: bool = False


@dataclass(frozen=True)
class InvalidRecord:
    """A record that failed validation: where it is and what is wrong."""

    file: str
    record: str  # index or id of the record
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: record {self.record}: field {self.field!r}: {self.problem}"


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: its questions and its retrieval corpus."""

    name: str
    source: str  # file path or hub id it was read from
    examples: tuple[Example, ...]
    passages: tuple[Passage, ...]
    retrieval_scope: str = "corpus"  # "corpus": search all passages; "document": only the question's documents
    invalid: tuple[InvalidRecord, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A window of a passage's text, as indexed and retrieved."""

    id: str  # f"{passage_id}#{start}"
    passage_id: str
    doc_id: str
    title: str
    start: int  # character offsets into the passage text
    end: int
    text: str


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Prompt:
    """What a model is asked. ``prefill`` starts the assistant's turn (e.g. "Score: ").

    ``chat=False`` means a plain completion prompt: the contents of ``messages`` are
    joined as text and no chat template is applied.
    """

    messages: tuple[Message, ...]
    prefill: str = ""
    chat: bool = True
    passage_ids: tuple[str, ...] = ()  # the retrieved chunks shown in the prompt, for reports

    def key(self) -> str:
        """Stable hash of exactly what the model sees."""
        body = {"messages": [[m.role, m.content] for m in self.messages], "prefill": self.prefill, "chat": self.chat}
        return stable_hash(body)


# The statuses of a cell file that holds a finished, scored result (the others: "skipped",
# "error", "not run"). Written by the matrix, read by the report.
FINISHED_CELL_STATUSES = ("scored", "passed", "failed", "inconclusive", "ungated")


def to_dict(record: Any) -> Any:
    """A record (or nested records/tuples) as JSON-ready plain data."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, (list, tuple)):
        return [to_dict(x) for x in record]
    if isinstance(record, dict):
        return {k: to_dict(v) for k, v in record.items()}
    return record


def stable_hash(obj: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of ``obj`` (records allowed), hex, truncated."""
    text = json.dumps(to_dict(obj), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
