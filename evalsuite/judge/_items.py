"""Judge input files: JSON lines of question, references, context, answer (optional id, label, question_id)."""

from __future__ import annotations

import json
from pathlib import Path

from evalsuite.errors import DataError
from evalsuite.judge._forms import JudgeItem

LABELS = ("good", "partial", "wrong")


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {number}: not valid JSON ({err.msg}); fix the line") from None
            if not isinstance(data, dict):
                raise DataError(f"{path}: line {number}: expected a JSON object; fix the line")
            rows.append((number, data))
    return rows


def _strings(value, path: Path, number: int, name: str, *, allow_empty: bool) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{path}: line {number}: field {name!r} must be a list of strings; fix the line")
    if not allow_empty and not value:
        raise DataError(f"{path}: line {number}: field {name!r} is empty; give at least one string")
    return tuple(value)


def item_from_json(data: dict, path: Path, number: int) -> tuple[JudgeItem, str | None, str]:
    """(JudgeItem, optional label, question id) from one input line; DataError naming line and field."""
    for name in ("question", "answer"):
        if name not in data:
            raise DataError(f"{path}: line {number}: missing field {name!r}; add it")
        if not isinstance(data[name], str):
            raise DataError(f"{path}: line {number}: field {name!r} must be a string; fix the line")
    if "references" not in data:
        raise DataError(f"{path}: line {number}: missing field 'references'; add a list of gold answers")
    references = _strings(data["references"], path, number, "references", allow_empty=False)
    context = _strings(data.get("context", []), path, number, "context", allow_empty=True)
    item_id = data.get("id", f"line{number}")
    if not isinstance(item_id, (str, int)) or isinstance(item_id, bool):
        raise DataError(f"{path}: line {number}: field 'id' must be a string; fix the line")
    label = data.get("label")
    if label is not None and label not in LABELS:
        raise DataError(f"{path}: line {number}: field 'label' must be one of {', '.join(LABELS)}; fix the line")
    question_id = data.get("question_id", data["question"])
    if not isinstance(question_id, (str, int)) or isinstance(question_id, bool):
        raise DataError(f"{path}: line {number}: field 'question_id' must be a string; fix the line")
    return JudgeItem(str(item_id), data["question"], references, context, data["answer"]), label, str(question_id)


def load_items(path: str | Path) -> list[tuple[JudgeItem, str | None, str]]:
    """Judge input lines as (item, label or None, question id); ids must be unique."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; pass --input with a JSON-lines file")
    items = [item_from_json(data, path, number) for number, data in _read_jsonl(path)]
    ids = [item.id for item, _, _ in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{path}: field 'id' repeats {dup!r}; give each line its own id")
    return items
