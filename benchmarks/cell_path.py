"""How far one cell travels through the code: the calls between evalsuite's modules while one cell runs.

    python -m benchmarks.cell_path [--json]

Runs one baseline cell and one fine-tuned cell of a tiny matrix (bundled model, 3 NQ questions, 4
fine-tuning pairs, the token-overlap judge) under ``sys.setprofile`` and lists every distinct call from
one evalsuite module into another (caller module, callee module, callee function). A call *climbs
back up* when the callee sits in a higher layer than its caller (a lower stage calling into a later
one, for instance through a callback, or the store calling back into what runs the cell); ``store``
counts every call into the run's result store, ``cell_writes`` the cell files it wrote.
Layers, lowest first: shared records and helpers; datasets and splits; retrieval; models; finetune;
judge; matrix (inside it: its records and checks, the store, one cell's pipeline, what runs cells);
report; the front doors.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from evalsuite.matrix import MatrixSession, build_config

LAYERS = (
    (
        "records",
        "errors",
        "storage",
        "device",
        "memory",
        "redaction",
        "artifacts",
        "throughput",
        "_telemetry",
        "prompts",
        "metrics",
        "_io",
        "_device",
        "_memory",
        "_secrets",
        "_artifacts",
        "_throughput",
    ),
    ("datasets", "splits"),
    ("retrieval",),
    ("models",),
    ("finetune",),
    ("judge",),
    ("matrix",),
    ("report",),
    ("pytest_plugin", "cli", "_cachecli"),
)
# inside the matrix, lowest first: its records and checks, the store, one cell's pipeline, then what runs a cell
MATRIX_LAYERS = (
    ("_config", "_cells", "_options", "_provenance", "_availability", "_serve", "_verdict", "_gate", "_baselines"),
    ("_store",),
    ("_pipeline",),
    ("_resources", "_decide", "_writer"),
    ("_session", "_plan", "cli"),
)
STORE_MODULE = "evalsuite.matrix._store"


def layer(module: str) -> float:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else module
    for i, names in enumerate(LAYERS):
        if top in names:
            if top == "matrix" and len(parts) > 2:
                inner = next((j for j, group in enumerate(MATRIX_LAYERS) if parts[2] in group), None)
                if inner is None:
                    raise KeyError(f"{module}: no layer; add it to MATRIX_LAYERS")
                return i + inner / len(MATRIX_LAYERS)
            return i
    raise KeyError(f"{module}: no layer; add its package to LAYERS")


def trace(run) -> tuple[list[tuple[str, str, str]], int, int]:
    """The distinct (caller module, callee module, callee function) calls between evalsuite modules, in order,
    how many calls (not distinct) reached the result store from another module, and how many cell files
    were written."""
    seen: dict[tuple[str, str, str], None] = {}
    store = [0, 0]

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = frame.f_globals.get("__name__", "")
        caller_frame = frame.f_back
        caller = caller_frame.f_globals.get("__name__", "") if caller_frame is not None else ""
        if callee == STORE_MODULE and frame.f_code.co_name == "write":
            store[1] += 1
        if callee.startswith("evalsuite") and caller.startswith("evalsuite") and callee != caller:
            seen.setdefault((caller, callee, frame.f_code.co_name), None)
            store[0] += callee == STORE_MODULE

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return list(seen), store[0], store[1]


def measure(report_root: Path) -> dict:
    config = build_config(
        "path",
        {
            "models": [{"spec": "bundled:smollm2-135m-instruct", "name": "smollm2"}],
            "datasets": ["nq"],
            "sizes": [0, 4],
            "judges": ["reference"],
            "eval_limit": 3,
            "max_new_tokens": 8,
            "finetune": {"epochs": 1, "max_seq_length": 128},
        },
    )
    session = MatrixSession(config, report_root=report_root)
    for cell in session.cells:  # warm: the index, the adapter, the answers (the path, not the work, is measured)
        session.evaluate(cell)
    cold = MatrixSession(config, report_root=report_root, run_id="path-traced")
    calls, store, writes = trace(lambda: [cold.evaluate(cell) for cell in cold.cells])
    climbs = [c for c in calls if layer(c[1]) > layer(c[0])]
    return {
        "calls": len(calls),
        "modules": len({m for c in calls for m in c[:2]}),
        "climbs": len(climbs),
        "store": store,
        "cell_writes": writes,
        "climb_calls": [f"{a} -> {b}.{f}" for a, b, f in climbs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="evalsuite-cell-path-") as tmp:
        out = measure(Path(tmp) / "reports")
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{out['calls']} distinct calls between {out['modules']} modules; {out['climbs']} climb back up a layer; "
            f"{out['store']} into the result store, {out['cell_writes']} cell files written"
        )
        for line in out["climb_calls"]:
            print("  climb:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
