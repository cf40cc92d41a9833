"""Human judgments of answer correctness, read from the data root (``judge_human/``).

Two files of one schema (see their NOTICE): ``kamalloo_nq301.jsonl`` (1,490 NQ answers with
human labels and the published evaluators' decisions: the qualification set) and
``evouna_tq.jsonl`` (9,690 TriviaQA answers: the only data a learned judge may be fitted on).
Each line is validated; a bad line is a :class:`DataError` naming file, line and field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from evalsuite.datasets import data_files
from evalsuite.errors import DataError
from evalsuite.judge._forms import JudgeItem

HUMAN_DATASET = "judge_human"
QUALIFICATION_FILE = "kamalloo_nq301.jsonl"
TRAINING_FILE = "evouna_tq.jsonl"
LONG_WORDS = 5  # an answer of at least this many words (``answer.strip().split()``) is "long"


@dataclass(frozen=True)
class HumanItem:
    """One (question, model answer) pair with the people's 0/1 correctness label."""

    id: str
    question_id: str
    question: str
    references: tuple[str, ...]
    answer: str
    human: int  # 1 correct, 0 incorrect (the annotators' majority)
    source_model: str
    auto: tuple[tuple[str, int | None], ...] = ()  # (evaluator, 0/1 or None where it did not line up)

    @property
    def words(self) -> int:
        return len(self.answer.strip().split())

    @property
    def long(self) -> bool:
        return self.words >= LONG_WORDS

    def judge_item(self) -> JudgeItem:
        return JudgeItem(self.id, self.question, self.references, (), self.answer)


@dataclass(frozen=True)
class HumanSet:
    file: str  # file name in the data root's judge_human/ folder (or the path given)
    sha256: str
    items: tuple[HumanItem, ...]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def human_path(name: str = QUALIFICATION_FILE) -> Path:
    """The file's path in the data root; the one-line "run evalsuite datasets download" error if absent."""

    return data_files(HUMAN_DATASET, name)[0]


def _fail(path: Path, number: int, field: str, problem: str) -> None:
    raise DataError(
        f"{path}: line {number}: field {field!r}: {problem}; fix the line "
        f"(or restore the released file with `evalsuite datasets download {HUMAN_DATASET}`)"
    )


def _text(data: dict, name: str, path: Path, number: int, *, empty_ok: bool = False) -> str:
    if name not in data:
        _fail(path, number, name, "missing")
    value = data[name]
    if not isinstance(value, str):
        _fail(path, number, name, f"expected a string, got {type(value).__name__}")
    if not empty_ok and not value.strip():
        _fail(path, number, name, "empty")
    return value


def item_from_line(data: object, path: Path, number: int) -> HumanItem:
    if not isinstance(data, dict):
        _fail(path, number, "(line)", "expected a JSON object")
    assert isinstance(data, dict)
    item_id = _text(data, "id", path, number)
    question_id = _text(data, "question_id", path, number)
    question = _text(data, "question", path, number)
    answer = _text(data, "answer", path, number, empty_ok=True)
    refs = data.get("references")
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        _fail(path, number, "references", "expected a list of strings")
    references = tuple(r for r in refs if r.strip())
    if not references:
        _fail(path, number, "references", "no non-empty gold answer")
    human = data.get("human")
    if isinstance(human, bool) or human not in (0, 1):
        _fail(path, number, "human", f"expected 0 or 1, got {human!r}")
    auto = data.get("auto", {})
    if not isinstance(auto, dict):
        _fail(path, number, "auto", "expected an object of evaluator decisions")
    for name, value in auto.items():
        if value is not None and (isinstance(value, bool) or value not in (0, 1)):
            _fail(path, number, f"auto.{name}", f"expected 0, 1 or null, got {value!r}")
    source = data.get("source_model", "")
    if not isinstance(source, str):
        _fail(path, number, "source_model", "expected a string")
    return HumanItem(
        item_id, question_id, question, references, answer, int(human), source, tuple(sorted(auto.items()))
    )


_memo: dict[tuple, HumanSet] = {}


def read_json_lines(path: Path, parse, fail=None) -> list:
    """``parse(data, path, line number)`` of every non-blank line of a JSON-lines file; a line that is
    not JSON stops with ``fail``'s error naming the file and the line."""
    fail = fail or _fail
    items = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                fail(path, number, "(JSON syntax)", err.msg)
            items.append(parse(data, path, number))
    return items


def load_human(name: str = QUALIFICATION_FILE, path: str | Path | None = None) -> HumanSet:
    """The human-labelled answers of ``name`` in the data root (or of ``path``), validated line by line."""
    path = Path(path) if path is not None else human_path(name)
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a judge_human JSON-lines file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _memo:
        items = read_json_lines(path, item_from_line)
        if not items:
            raise DataError(
                f"{path}: no lines; restore the released file with `evalsuite datasets download {HUMAN_DATASET}`"
            )
        seen: set[str] = set()
        for number, item in enumerate(items, start=1):
            if item.id in seen:
                raise DataError(f"{path}: field 'id': {item.id!r} repeats; give each line its own id")
            seen.add(item.id)
        _memo[key] = HumanSet(path.name, file_sha256(path), tuple(items))
    return _memo[key]
