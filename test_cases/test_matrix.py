"""The evaluation matrix: one test per (dataset, model, fine-tuning size) cell.

Ids read ``qasper-smollm2-ft100`` (``ft0`` = the un-tuned baseline, ``nq-candidate`` for
``--candidate``), so ``-k qasper``, ``-k ft100`` or ``-k "nq and smollm2"`` select cells.
A fine-tuned cell passes when, for every qualified judge, the lower end of the 95% paired
bootstrap interval of (cell - baseline) on accuracy and completeness is >= -margin. A
baseline cell passes when its run is valid. Options: see ``pytest --help`` (evaluation matrix).
"""
from __future__ import annotations

import pytest

from fixtures.matrix_plugin import CELL_PROPERTY, get_session


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" in metafunc.fixturenames:
        cells = get_session(metafunc.config).cells  # an ordered list: the same on every xdist worker
        metafunc.parametrize("cell", cells, ids=[c.id for c in cells])


def test_cell(cell, matrix, matrix_progress, record_property):
    record_property(CELL_PROPERTY, cell.id)
    outcome = matrix.evaluate(cell, progress=matrix_progress)
    record_property("evalsuite_reused", outcome.reused)
    if outcome.status == "skipped":
        pytest.skip(outcome.message)
    if outcome.status == "failed":
        pytest.fail(outcome.message, pytrace=False)
