"""The last measured qualification of judges too slow to measure on every run (the bundled G-Eval judges).

``measured/bundled_geval.json`` holds, per judge spec, its qualification as measured by the
command recorded beside it, with the date and the machine, so a report can show it without
running the judges again. ``python -m benchmarks.judge_agreement --judge SPEC --limit 300
--record`` rewrites an entry; ``--record-graded`` measures only the graded long answers and adds
them to the entry's qualification (``graded``), with that command beside it (``graded_command``).
"""

from __future__ import annotations

import json
import os
import platform
from datetime import date
from pathlib import Path

from evalsuite.errors import ConfigError
from evalsuite.storage import atomic_write_json

MEASURED_FILE = Path(__file__).parent / "measured" / "bundled_geval.json"
# the paired spread of a judge's scores between two answer sets of one model, measured by
# `python -m benchmarks.gate_power --record` on the default profile's answers
SPREAD_FILE = Path(__file__).parent / "measured" / "gate_power.json"


def measured_spread(judge: str, path: Path | None = None) -> dict | None:
    """``{"paired_sd": {criterion: sd}, "source", "machine", "eval_questions", ...}`` of ``judge``,
    or None when no benchmark measured it."""
    path = SPREAD_FILE if path is None else path
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if data.get("judge") == judge else None


def measured_qualifications(path: Path = MEASURED_FILE) -> dict:
    """``{spec: {"command", "date", "machine", "qualification"}}``; empty when nothing was recorded."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("judges", {})


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def record_measured(spec: str, qualification: dict, command: str, note: str = "", path: Path = MEASURED_FILE) -> None:
    """Write (or replace) ``spec``'s entry, stamped with today's date and this machine."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    judges = data.get("judges", {})
    judges[spec] = {
        "command": command,
        "date": date.today().isoformat(),
        "machine": machine(),
        "note": note,
        "qualification": qualification,
    }
    atomic_write_json(path, {"about": __doc__.strip().splitlines()[0], "judges": dict(sorted(judges.items()))})


def record_measured_graded(spec: str, graded: dict, command: str, note: str = "", path: Path = MEASURED_FILE) -> None:
    """Add the graded long-answer figures (``GradedAgreement`` as JSON) to ``spec``'s recorded qualification."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    judges = data.get("judges", {})
    if spec not in judges:
        raise ConfigError(
            f"{path}: no recorded qualification of {spec}; record it first with "
            f"`python -m benchmarks.judge_agreement --judge {spec} --limit 300 --record`"
        )
    entry = judges[spec]
    entry["qualification"]["graded"] = graded
    entry.update(
        {
            "graded_command": command,
            "graded_date": date.today().isoformat(),
            "graded_machine": machine(),
            "graded_note": note,
        }
    )
    atomic_write_json(
        path, {"about": data.get("about", __doc__.strip().splitlines()[0]), "judges": dict(sorted(judges.items()))}
    )
