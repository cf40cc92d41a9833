"""Cell result files: one that is cut short or edited is quarantined in the run folder and the cell
is computed again with the same numbers."""

from __future__ import annotations

import json

import pytest

from evalsuite.matrix import MatrixSession, RunStore, build_config, expand_cells
from evalsuite.storage import CorruptionWarning


def config():
    return build_config(
        "cells",
        {
            "models": [{"spec": "bundled:smollm2-135m-instruct", "name": "smollm2"}],
            "datasets": ["nq"],
            "sizes": [0],
            "judges": ["token-overlap"],
            "eval_limit": 3,
            "max_new_tokens": 8,
        },
    )


def numbers(result) -> tuple:
    summary = result.measured["summary"]
    return ([it["answer"] for it in result.items], summary["judges"], summary["metrics"])


def cut_short(path):
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def edit_an_answer(path):
    data = json.loads(path.read_text())
    data["items"][0]["answer"] = "an answer nobody gave"
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "damage,reason",
    [(cut_short, "not valid JSON"), (edit_an_answer, "its content does not match its recorded checksum")],
)
def test_damaged_cell_file_is_quarantined_and_computed_again(tmp_path, damage, reason):
    cfg = config()
    [cell] = expand_cells(cfg)
    first, reused = MatrixSession(cfg, report_root=tmp_path, run_id="r1").result(cell)
    assert not reused
    store = RunStore(tmp_path / "runs" / "r1")
    damage(store.path(cell.id))

    session = MatrixSession(cfg, report_root=tmp_path, run_id="r1")
    with pytest.warns(CorruptionWarning) as caught:
        again, reused = session.result(cell)
    caught = [w for w in caught if issubclass(w.category, CorruptionWarning)]
    assert len(caught) == 1
    [moved] = sorted((store.cells_dir / ".quarantine").iterdir())
    message = str(caught[0].message)
    assert f"cell result {cell.id} {store.path(cell.id)} failed verification ({reason}" in message
    assert str(moved) in message
    assert not reused and numbers(again) == numbers(first)
    assert store.cell_ids() == [cell.id]  # the quarantine is not a cell
    assert session.store.read(cell.id)["items"] == again.items  # whole again, and reused from now on
    assert MatrixSession(cfg, report_root=tmp_path, run_id="r1").result(cell)[1]


def test_cell_file_without_a_checksum_is_read(tmp_path):
    store = RunStore(tmp_path)
    store.cells_dir.mkdir(parents=True)
    legacy = {"id": "c", "status": "scored", "items": [{"id": "q1", "answer": "Paris"}]}
    store.path("c").write_text(json.dumps(legacy))
    assert store.read("c") == legacy
    store.write("c", legacy)
    assert json.loads(store.path("c").read_text())["checksum"].startswith("sha256:") and store.read("c") == legacy
