"""The exit status of a matrix run: the gate's verdict, for a CI to act on.

This module is the one place that states every status and their precedence; the README, the
pytest plugin's ``--help`` and ``evalsuite run --help`` print :data:`EXIT_STATUSES` and
:data:`PRECEDENCE` from here.

A gated criterion has three outcomes (see :func:`evalsuite.metrics.decide`): pass
(non-inferiority shown), fail (a regression beyond the margin shown) and inconclusive (the
questions cannot tell). A cell that is inconclusive blocks, like one that fails, unless the
team accepts it with ``--allow-inconclusive``; its status is its own, so a CI can tell "worse"
from "not shown to be no worse".
"""

from __future__ import annotations

from typing import Iterable, Mapping

PASSED, REGRESSION, INPUT_ERROR, NOT_GATED, INCONCLUSIVE, TEST_FAILED = 0, 1, 2, 3, 4, 6
EXIT_STATUSES = {
    PASSED: "passed: every selected cell ran, a qualified judge gated it on enough scored answers, and every "
    "fine-tune is shown to be no worse than its baseline beyond the margin",
    REGRESSION: "regression: a fine-tuned or candidate cell is shown to be worse than its baseline beyond the margin "
    "(the upper end of its 95% interval is below -margin), or a baseline run is invalid",
    INPUT_ERROR: "input or configuration error: a matrix, data, model or baseline problem stopped a cell "
    "(the message names the file, record or option)",
    NOT_GATED: "not gated: a cell was skipped (missing key, weights, adapter, or a size above the pool), no "
    "qualified judge gated it, or too few of its answers were scored; --allow-ungated accepts that",
    INCONCLUSIVE: "inconclusive: a cell's 95% interval neither clears the margin nor lies beyond it, so these "
    "questions cannot tell whether it is worse; the message says about how many questions would "
    "decide it; --allow-inconclusive accepts that",
    TEST_FAILED: "a test that is not a matrix cell failed or errored (a unit test of the suite beside the cells)",
}
# the status of a run whose cells and tests disagree: the first of these that occurs
PRECEDENCE = (INPUT_ERROR, REGRESSION, TEST_FAILED, INCONCLUSIVE, NOT_GATED, PASSED)
PRECEDENCE_TEXT = (
    "an error (2) outranks a regression (1), which outranks a failed test that is not a cell (6), "
    "then an inconclusive cell (4), then a cell not gated (3); 0 only when none of these occurred. "
    "When no matrix cell ran, pytest's own exit statuses apply; 130: interrupted (Ctrl-C)"
)

_CELL_STATUS = {
    "error": INPUT_ERROR,
    "failed": REGRESSION,
    "inconclusive": INCONCLUSIVE,
    "skipped": NOT_GATED,
    "ungated": NOT_GATED,
}


def exit_status(
    outcomes: Mapping[str, str],
    *,
    allow_ungated: bool,
    allow_inconclusive: bool = False,
    other_failures: Iterable[str] = (),
) -> int:
    """The run's exit status from its cells' outcomes (``{cell id: status}``) and the tests that are
    not cells and failed or errored (``other_failures``, their node ids), by :data:`PRECEDENCE`."""
    found = {_CELL_STATUS[s] for s in outcomes.values() if s in _CELL_STATUS}
    if any(True for _ in other_failures):
        found.add(TEST_FAILED)
    if allow_ungated:
        found.discard(NOT_GATED)
    if allow_inconclusive:
        found.discard(INCONCLUSIVE)
    return next((status for status in PRECEDENCE if status in found), PASSED)


def help_text() -> str:
    """Every exit status and their precedence, as ``--help`` prints them."""
    lines = [f"  {code}  {EXIT_STATUSES[code]}" for code in sorted(EXIT_STATUSES)]
    return "exit status:\n" + "\n".join(lines) + "\nprecedence: " + PRECEDENCE_TEXT
