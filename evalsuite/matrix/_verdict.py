"""The exit status of a matrix run: the gate's verdict, for a CI to act on.

Documented in the README and in ``evalsuite run --help``; the pytest plugin sets it.
"""
from __future__ import annotations

from typing import Mapping

PASSED, REGRESSION, INPUT_ERROR, NOT_GATED = 0, 1, 2, 3
EXIT_STATUSES = {
    PASSED: "passed: every selected cell ran, a qualified judge gated it, and no fine-tune is worse than its baseline",
    REGRESSION: "a gated regression: a fine-tuned or candidate cell is worse than its baseline beyond the margin "
                "(or a baseline run is invalid)",
    INPUT_ERROR: "input or configuration error: a matrix, data, model or baseline problem stopped a cell "
                 "(the message names the file, record or option)",
    NOT_GATED: "not gated: a cell was skipped (missing key, weights, adapter, or a size above the pool) or no "
               "qualified judge gated it; --allow-ungated accepts that",
}


def exit_status(outcomes: Mapping[str, str], *, allow_ungated: bool) -> int:
    """The run's exit status from its cells' outcomes (``{cell id: status}``): an error outranks a
    regression, which outranks an ungated or skipped cell."""
    statuses = set(outcomes.values())
    if "error" in statuses:
        return INPUT_ERROR
    if "failed" in statuses:
        return REGRESSION
    if statuses & {"skipped", "ungated"} and not allow_ungated:
        return NOT_GATED
    return PASSED
