"""Qualification: may a judge gate a cell? Measured on the shipped calibration set.

The calibration set holds, per question, a good, a partial and a wrong answer. A judge
qualifies when it ranks the good answer strictly above the wrong one (on the mean of
accuracy and completeness) in at least ``bar`` of the pairs. A judge below the bar still
reports its scores, but they must never pass or fail a cell.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from evalsuite.errors import ConfigError, DataError
from evalsuite.judge._forms import JudgeItem
from evalsuite.judge._judges import Judge, Verdict
from evalsuite.metrics import spearman, token_f1

QUALIFY_BAR = 0.8
LABELS = ("good", "partial", "wrong")
CALIBRATION_FILE = Path(__file__).resolve().parents[2] / "fixtures" / "calibration.jsonl"


@dataclass(frozen=True)
class CalibrationItem:
    item: JudgeItem
    label: str  # good | partial | wrong
    question_id: str
    dataset: str


@dataclass(frozen=True)
class Qualification:
    judge: str
    share_good_over_wrong: float  # share of (good, wrong) pairs of one question where good scores higher
    spearman_vs_f1: float  # rank agreement of the judge's overall score with token F1 over all items
    pairs: int
    qualified: bool  # share_good_over_wrong >= bar
    bar: float
    share_good_over_partial: float = float("nan")
    mean_repeat_std: float = float("nan")
    unscored: int = 0  # items whose overall score is nan
    items: int = 0


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


def item_from_json(data: dict, path: Path, number: int) -> tuple[JudgeItem, str | None]:
    """A JudgeItem (and optional label) from one input line; DataError naming line and field."""
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
    if not isinstance(item_id, (str, int)):
        raise DataError(f"{path}: line {number}: field 'id' must be a string; fix the line")
    label = data.get("label")
    if label is not None and label not in LABELS:
        raise DataError(f"{path}: line {number}: field 'label' must be one of {', '.join(LABELS)}; fix the line")
    return JudgeItem(str(item_id), data["question"], references, context, data["answer"]), label


def load_items(path: str | Path) -> list[tuple[JudgeItem, str | None]]:
    """Judge input lines (question, references, context, answer, optional id and label)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; pass --input with a JSON-lines file")
    items = [item_from_json(data, path, number) for number, data in _read_jsonl(path)]
    ids = [item.id for item, _ in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{path}: field 'id' repeats {dup!r}; give each line its own id")
    return items


def load_calibration(path: str | Path | None = None) -> list[CalibrationItem]:
    """The calibration set (default: the shipped fixtures/calibration.jsonl)."""
    path = Path(path) if path is not None else CALIBRATION_FILE
    if not path.exists():
        raise ConfigError(f"calibration set {path} not found; pass calibration=PATH (a JSON-lines file with labels)")
    out = []
    for number, data in _read_jsonl(path):
        item, label = item_from_json(data, path, number)
        if label is None:
            raise DataError(f"{path}: line {number}: missing field 'label' (good, partial or wrong); add it")
        out.append(CalibrationItem(item, label, str(data.get("question_id", item.id)), str(data.get("dataset", ""))))
    return out


def pair_shares(verdicts: Sequence[Verdict], labelled: Sequence[tuple[str, str]]) -> dict[str, tuple[float, int]]:
    """Share (and count) of same-question pairs where the better label scores strictly higher.

    ``labelled`` gives (question_id, label) per verdict, in the same order. A nan score
    never wins a pair.
    """
    groups: dict[str, dict[str, float]] = {}
    for verdict, (question_id, label) in zip(verdicts, labelled):
        groups.setdefault(question_id, {})[label] = verdict.overall
    shares = {}
    for better, worse in (("good", "wrong"), ("good", "partial")):
        wins = [
            (not math.isnan(g[better]) and not math.isnan(g[worse]) and g[better] > g[worse])
            for g in groups.values()
            if better in g and worse in g
        ]
        shares[f"{better}_over_{worse}"] = (sum(wins) / len(wins) if wins else float("nan"), len(wins))
    return shares


def qualification_from(judge_name: str, verdicts: Sequence[Verdict], calibration: Sequence[CalibrationItem],
                       bar: float = QUALIFY_BAR) -> Qualification:
    shares = pair_shares(verdicts, [(c.question_id, c.label) for c in calibration])
    share, pairs = shares["good_over_wrong"]
    f1 = [token_f1(c.item.answer, c.item.references) for c in calibration]
    overall = [v.overall for v in verdicts]
    stds = [s for v in verdicts for s in (v.accuracy_std, v.completeness_std) if not math.isnan(s)]
    return Qualification(
        judge=judge_name,
        share_good_over_wrong=share,
        spearman_vs_f1=spearman(overall, f1),
        pairs=pairs,
        qualified=bool(pairs > 0 and share >= bar),
        bar=bar,
        share_good_over_partial=shares["good_over_partial"][0],
        mean_repeat_std=sum(stds) / len(stds) if stds else float("nan"),
        unscored=sum(math.isnan(o) for o in overall),
        items=len(verdicts),
    )


def qualify(judge: Judge, calibration: Sequence[CalibrationItem] | str | Path | None = None, *,
            bar: float = QUALIFY_BAR, progress: bool = False) -> Qualification:
    """Score the calibration set with ``judge`` and decide whether it may gate (share >= ``bar``)."""
    if calibration is None or isinstance(calibration, (str, Path)):
        calibration = load_calibration(calibration)
    verdicts = judge.judge([c.item for c in calibration], progress=progress)
    return qualification_from(judge.name, verdicts, calibration, bar)
