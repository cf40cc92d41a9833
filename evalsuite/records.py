"""Small frozen records passed between the stages of an evaluation.

Every record is a frozen dataclass of plain values (str, int, float, bool, None and
tuples of those), so it can be hashed, cached, compared in a snapshot and written as
JSON with :func:`to_dict`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
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
    answer_type: (
        str  # qasper: extractive|abstractive|yes_no|unanswerable; bioasq: factoid|list|yesno|summary; nq: short
    )
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


class CellStatus(StrEnum):
    """The status of a cell of the matrix, as its file and ``results.json`` spell it."""

    SCORED = "scored"  # answered and judged, not decided (its baseline could not be compared)
    PASSED = "passed"  # not worse than its baseline beyond the margin (a baseline: valid)
    FAILED = "failed"  # worse beyond the margin (a baseline: invalid)
    INCONCLUSIVE = "inconclusive"  # the questions cannot tell
    UNGATED = "ungated"  # scored, but no qualified judge may decide it, or too few answers were scored
    SKIPPED = "skipped"  # it cannot run here (weights, key, pool size)
    ERROR = "error"  # a problem the user can fix
    NOT_RUN = "not run"  # no process ran it (deselected, or the run stopped early)

    @property
    def finished(self) -> bool:
        """A status of a cell whose answers were scored."""
        return self in _FINISHED


_FINISHED = frozenset(
    {CellStatus.SCORED, CellStatus.PASSED, CellStatus.FAILED, CellStatus.INCONCLUSIVE, CellStatus.UNGATED}
)
# The statuses of a cell file that holds a finished, scored result. Written by the matrix, read by the report.
FINISHED_CELL_STATUSES = tuple(s.value for s in CellStatus if s.finished)

# the fields a decision adds to a scored cell
_DECISION_FIELDS = ("gate", "problems", "gating", "source")
_HEADER_FIELDS = ("id", "dataset", "model", "spec", "size", "kind", "baseline_id")


@dataclass(frozen=True)
class CellResult:
    """What one cell of the matrix came to: which cell, its status, and what was measured.

    ``measured`` holds what answering and judging produced (``items``: one entry per question
    with its answer and every judge's verdict; ``summary``, ``timings``, ``adapter`` ...), as JSON-ready
    data; ``decision`` what deciding added (``gate``, or ``problems`` and ``gating`` of a baseline).
    A cell's file is :meth:`to_json`; :meth:`from_json` reads one back, whatever version wrote it.
    """

    id: str
    dataset: str
    model: str
    spec: str
    size: int
    kind: str
    baseline_id: str
    status: CellStatus
    recipe: Any = None  # the recipe record of a fine-tuned cell of a profile with recipes
    reason: str | None = None  # why a cell is skipped, failed to run or is not gated
    session: str | None = None  # the token of the process that computed it
    measured: Any = dataclasses.field(default_factory=dict)
    decision: Any = dataclasses.field(default_factory=dict)

    @classmethod
    def for_cell(cls, cell: Any, status: CellStatus, **fields: Any) -> "CellResult":
        """A result of ``cell`` (a matrix cell: any object with the header's attributes)."""
        return cls(**{name: getattr(cell, name) for name in _HEADER_FIELDS}, status=CellStatus(status), **fields)

    @property
    def finished(self) -> bool:
        """It holds scored answers (not a skip, an error, or a cell not run)."""
        return self.status.finished and isinstance(self.measured.get("items"), list)

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.measured.get("items") or [])

    @property
    def judges(self) -> list[str]:
        return list(self.measured.get("judges") or [])

    def decided(self, status: CellStatus, reason: str | None = None, **decision: Any) -> "CellResult":
        """The same result with its decision."""
        return dataclasses.replace(
            self, status=CellStatus(status), reason=reason, decision={**self.decision, **decision}
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _HEADER_FIELDS}
        if self.recipe is not None:
            out["recipe"] = self.recipe
        out.update(self.measured)
        out["status"] = self.status.value
        if self.reason is not None:
            out["reason"] = self.reason
        out.update(self.decision)
        if self.session is not None:
            out["session"] = self.session
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CellResult":
        """A cell file's content as a result; a field it lacks is empty, an unknown status is an error
        (ValueError) naming it."""
        rest = dict(data)
        header = {name: rest.pop(name, None) for name in _HEADER_FIELDS}
        header["id"] = str(header["id"])
        header["size"] = int(header["size"] or 0)
        status = rest.pop("status", None)
        try:
            status = CellStatus(status)
        except ValueError:
            raise ValueError(
                f"cell {header['id']}: unknown status {status!r} (one of "
                + ", ".join(s.value for s in CellStatus)
                + ")"
            ) from None
        decision = {name: rest.pop(name) for name in _DECISION_FIELDS if name in rest}
        return cls(
            **header,
            status=status,
            recipe=rest.pop("recipe", None),
            reason=rest.pop("reason", None),
            session=rest.pop("session", None),
            measured=rest,
            decision=decision,
        )


def normalize_question(text: str) -> str:
    """Lower-cased, punctuation and extra spaces removed: two spellings of one question compare equal."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


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
