"""The shape of the code: no import cycle, no private module reached from another package, short classes.

Read from the source with ``ast`` (nothing is imported), counting imports inside functions and under
``TYPE_CHECKING`` as well: a cycle that an import inside a function hides is still a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("evalsuite", "benchmarks")  # tests may reach into what they test
MAX_CLASS_LINES = 200


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # a module of the project
    name: str | None  # the name taken from it (``from target import name``), None for ``import target``
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _sources(packages=CHECKED) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> list[Import]:
    package = _package_of(module, path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.append(Import(module, alias.name, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in known:  # ``from package import submodule``
                    found.append(Import(module, sub, None, node.lineno))
                elif source in known:
                    found.append(Import(module, source, alias.name, node.lineno))
    return found


def _graph(packages=CHECKED) -> tuple[dict[str, Path], list[Import]]:
    sources = _sources(packages)
    known = set(sources)
    edges = [imp for module, path in sources.items() for imp in _imports(module, path, known)]
    return sources, edges


def _cycles(nodes, edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    succ: dict[str, set[str]] = {n: set() for n in nodes}
    for e in edges:
        if e.target != e.importer:
            succ[e.importer].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return found


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _private_reaches(sources: dict[str, Path], edges: list[Import]) -> list[str]:
    """Imports of a private module, or of a private name, that belong to another package."""
    bad = set()
    for e in edges:
        own = _package_of(e.importer, sources[e.importer])
        parts = e.target.split(".")
        for depth, part in enumerate(parts):
            if _private(part):
                owner = ".".join(parts[:depth])
                if own != owner:
                    bad.add(f"{e.importer}:{e.line} imports private module {e.target}")
                break
        else:
            target_package = _package_of(e.target, sources[e.target])
            if e.name and _private(e.name) and own != target_package:
                bad.add(f"{e.importer}:{e.line} imports private name {e.name} from {e.target}")
    return sorted(bad)


def _long_classes(sources: dict[str, Path]) -> list[str]:
    long = []
    for module, path in sources.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long.append(f"{module}.{node.name} ({path.relative_to(ROOT)}:{node.lineno}): {lines} lines")
    return long


def _deferred_without_reason(sources: dict[str, Path]) -> list[str]:
    """The project's own imports inside a function with no comment (on the line or just above) saying why."""
    found = []
    for module, path in sources.items():
        src = path.read_text(encoding="utf-8")
        lines = src.splitlines()
        for func in ast.walk(ast.parse(src)):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                if isinstance(node, ast.ImportFrom):
                    own = node.level > 0 or (node.module or "").split(".")[0] in CHECKED
                else:
                    own = any(a.name.split(".")[0] in CHECKED for a in node.names)
                above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                if own and "#" not in lines[node.lineno - 1] and not above.startswith("#"):
                    found.append(f"{module}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def test_the_import_graph_has_no_cycle():
    sources, edges = _graph()
    assert _cycles(sources, edges) == []


def test_no_private_module_is_imported_from_another_package():
    sources, edges = _graph()
    assert _private_reaches(sources, edges) == []


def test_own_imports_are_at_module_top_unless_a_comment_says_why():
    sources, edges = _graph()
    assert _deferred_without_reason(sources) == []


def test_no_class_is_longer_than_the_limit():
    assert _long_classes(_sources(("evalsuite",))) == []


def test_the_checks_see_what_they_must(tmp_path, monkeypatch):
    """The checks find a cycle through a function-level import, a private reach and a long class."""
    pkg = tmp_path / "evalsuite"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from ._inner import thing\n")
    (pkg / "a" / "_inner.py").write_text("def thing():\n    from evalsuite.b import other\n    return other\n")
    (pkg / "b" / "__init__.py").write_text("from evalsuite.a._inner import thing as other\n")
    (pkg / "c.py").write_text("from evalsuite.a import _hidden\nclass Big:\n" + "    x = 1\n" * 205)
    (pkg / "d.py").write_text(
        "def f():\n    from evalsuite import b\n\n\ndef g():\n    from evalsuite import c  # why\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    sources, edges = _graph(("evalsuite",))
    assert _cycles(sources, edges) == [["evalsuite.a._inner", "evalsuite.b"]]
    assert _private_reaches(sources, edges) == [
        "evalsuite.b:1 imports private module evalsuite.a._inner",
        "evalsuite.c:1 imports private name _hidden from evalsuite.a",
    ]
    assert _long_classes(sources) == ["evalsuite.c.Big (evalsuite/c.py:2): 206 lines"]
    assert _deferred_without_reason(sources) == [
        "evalsuite.a._inner:2: from evalsuite.b import other",
        "evalsuite.d:2: from evalsuite import b",
    ]


def _readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Architecture") :]
    section = section[: section.index("\n## ", 5)]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def test_the_readme_examples_register_parts_that_run(tmp_path):
    """The architecture section's three examples: a dataset format, a judge and a backend, each used."""
    from evalsuite.datasets import DatasetSpec, load_spec
    from evalsuite.judge import JudgeItem, make_judge
    from evalsuite.models import load_model
    from evalsuite.prompts import rag_prompt

    fmt, judge, backend = _readme_examples()
    for block in (fmt, judge, backend):
        exec(compile(block, "README.md", "exec"), {})
    data = tmp_path / "qa.tsv"
    data.write_text("Who wrote it?\tAda\nWhen?\t1843\n", encoding="utf-8")
    ds = load_spec(DatasetSpec.parse({"name": "mine", "format": "tsv", "path": str(data)}, tmp_path))
    assert [ex.question for ex in ds.examples] == ["Who wrote it?", "When?"]
    answer = load_model("echo:any", cache=False).generate([rag_prompt(ds.examples[0].question, [])])[0].text
    assert answer
    [verdict] = make_judge("length").judge([JudgeItem("q", "Who wrote it?", ("Ada",), (), answer)])
    assert verdict.accuracy == 5.0


@pytest.mark.slow
def test_a_cell_runs_down_the_layers(tmp_path):
    """One baseline and one fine-tuned cell, traced: no call climbs back up a layer but the progress callback,
    and each cell's file is written once."""
    from benchmarks.cell_path import measure  # a benchmark: loaded only by the test that runs it

    out = measure(tmp_path / "reports")
    # the one climb is the progress callback a cell's pipeline reports through
    assert out["climb_calls"] == ["evalsuite.matrix._pipeline -> evalsuite.matrix._session.<lambda>"]
    assert out["cell_writes"] == 2  # each cell's file once, with its status
