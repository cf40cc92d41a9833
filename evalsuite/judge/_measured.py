"""The last measured qualification of judges too slow to measure on every run (the bundled G-Eval judges).

``measured/bundled_geval.json`` holds, per judge spec, its qualification as measured by the
command recorded beside it, with the date and the machine, so a report can show it without
running the judges again. ``python -m benchmarks.judge_agreement --judge SPEC --limit 300
--record`` rewrites an entry.
"""
from __future__ import annotations

import json
import os
import platform
from datetime import date
from pathlib import Path

from evalsuite._io import atomic_write_json

MEASURED_FILE = Path(__file__).parent / "measured" / "bundled_geval.json"


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
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def record_measured(spec: str, qualification: dict, command: str, note: str = "", path: Path = MEASURED_FILE) -> None:
    """Write (or replace) ``spec``'s entry, stamped with today's date and this machine."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    judges = data.get("judges", {})
    judges[spec] = {"command": command, "date": date.today().isoformat(), "machine": machine(), "note": note,
                    "qualification": qualification}
    atomic_write_json(path, {"about": __doc__.strip().splitlines()[0], "judges": dict(sorted(judges.items()))})
