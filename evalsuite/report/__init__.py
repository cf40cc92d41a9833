"""Reports of a run, rendered only from its ``results.json``: summary.md, report.html, figures/*.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from evalsuite.errors import ConfigError
from evalsuite.report._compare import compare_runs, comparison_markdown
from evalsuite.report._figures import figures
from evalsuite.report._render import blocks, score_table, to_html, to_markdown
from evalsuite.report._stats import primary_judge, research_questions
from evalsuite.storage import atomic_write_text


def load_results(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir)
    path = path if path.name == "results.json" else path / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found; give a run folder under reports/runs/ (or run `evalsuite run` first)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); re-run the matrix to rewrite it") from None


def render(run_dir: str | Path) -> dict[str, Path]:
    """Write summary.md, report.html and figures/*.png of the run in ``run_dir``; returns their paths."""
    run_dir = Path(run_dir)
    if run_dir.name == "results.json":
        run_dir = run_dir.parent
    results = load_results(run_dir)
    pngs = figures(results, run_dir / "figures")
    bl = blocks(results, pngs)
    title = f"evalsuite run {results.get('run_id')}"
    return {
        "summary": atomic_write_text(run_dir / "summary.md", to_markdown(bl)),
        "html": atomic_write_text(run_dir / "report.html", to_html(bl, title)),
        **{f"figure:{p.stem}": p for p in pngs},
    }


def summary_tables(results: Mapping[str, Any]) -> str:
    """The accuracy and completeness tables of the primary judge, as Markdown (for a terminal)."""
    judge = primary_judge(results)
    if judge is None:
        return "(no cell was scored)\n"
    out = []
    for criterion in ("accuracy", "completeness"):
        out.append(("h3", f"{criterion} (judge {judge})"))
        out.append(score_table(results, judge, criterion))
    return to_markdown(out)


__all__ = ["compare_runs", "comparison_markdown", "load_results", "render", "research_questions", "summary_tables"]
