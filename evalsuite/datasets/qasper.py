"""Qasper v0.3: questions over NLP papers, answered from the paper's full text.

Reads the release JSON (an object keyed by arXiv id) or the column layout of the
``allenai/qasper`` hub dataset, where ``full_text``, ``qas`` and each question's
``answers`` are stored as dicts of lists: from the hub, or exported as JSON lines (one paper
per line with its ``id``, as ``datasets.Dataset.to_json`` writes it) or as a JSON array of
such rows. The layout is told from the content, not the file suffix. The corpus is the papers' paragraphs (plus
abstract and figure/table captions); a passage keeps its paper id and section name.
Retrieval is scoped to the question's own paper, as in the released task.
"""

from __future__ import annotations

from typing import Any

from ..records import Dataset, Example, Passage
from ._common import HUB_PREFIX, Checker, hub_rows, hub_source, read_json_or_lines, resolve, unique
from ._fetch import require

NAME = "qasper"
DEFAULT_FILES = ("train.json", "test.json")  # in the data root's qasper/ folder
FLOAT_PREFIX = "FLOAT SELECTED:"


def load(path=None, *, split=None, skip_invalid=False, hub_kwargs=None) -> Dataset:
    if isinstance(path, str) and path.startswith(HUB_PREFIX):
        hub_id = path[len(HUB_PREFIX) :]
        checker = Checker(hub_source(path, split, hub_kwargs), skip_invalid)
        papers = [
            (str(row.get("id", f"row {i}")), _rows_from_columns(row), checker, str(row.get("id", f"row {i}")))
            for i, row in enumerate(hub_rows(hub_id, split, hub_kwargs))
        ]
        return _build(papers, [checker], checker.file)
    if path is None:
        files = require(NAME, *DEFAULT_FILES)
    else:
        files = (resolve(path, NAME, DEFAULT_FILES[0]),)
    papers, checkers = [], []
    for file in files:
        checker = Checker(str(file), skip_invalid)
        checkers.append(checker)
        kind, data = read_json_or_lines(file, checker)
        papers.extend((pid, paper, checker, label) for pid, paper, label in _papers(kind, data, checker))
    return _build(papers, checkers, ",".join(str(f) for f in files))


def _papers(kind: str, data: Any, ck: Checker) -> list[tuple[str, Any, str]]:
    """(paper id, paper in the release layout, record label) of every paper of a file, whatever its layout."""
    if kind == "lines":
        rows = [(f"line {n}", row) for n, row in data]
    elif isinstance(data, list):
        rows = [(f"item {i}", row) for i, row in enumerate(data)]
    elif isinstance(data, dict) and isinstance(data.get("qas"), (dict, list)) and "full_text" in data:
        rows = [("line 1", data)]  # one hub row: a JSON-lines file of a single paper
    elif isinstance(data, dict):
        return [
            (pid, _rows_from_columns(paper) if isinstance(paper, dict) else paper, pid) for pid, paper in data.items()
        ]
    else:
        ck.guard(
            "(top level)",
            lambda: ck.fail("(top level)", "(file)", "expected an object keyed by paper id, or one paper per line"),
        )
        return []
    out = []
    for label, row in rows:

        def paper_id() -> str:
            pid = ck.text(row, "id", label)  # a hub row carries its arXiv id in "id"
            return pid.strip()

        pid = ck.guard(label, paper_id)
        if pid is not None:
            out.append((pid, _rows_from_columns(row), f"{label} ({pid})"))
    return out


def _rows_from_columns(paper: dict) -> dict:
    """Convert the hub's dict-of-lists layout to the release's list-of-dicts layout."""
    paper = dict(paper)
    ft = paper.get("full_text")
    if isinstance(ft, dict):
        paper["full_text"] = [
            {"section_name": s, "paragraphs": p} for s, p in zip(ft.get("section_name", []), ft.get("paragraphs", []))
        ]
    fig = paper.get("figures_and_tables")
    if isinstance(fig, dict):
        paper["figures_and_tables"] = [
            {"caption": c, "file": f} for c, f in zip(fig.get("caption", []), fig.get("file", []))
        ]
    qas = paper.get("qas")
    if isinstance(qas, dict):
        keys = list(qas)
        n = len(qas.get("question", []))
        rows = []
        for i in range(n):
            q = {k: qas[k][i] for k in keys if isinstance(qas[k], list) and i < len(qas[k])}
            ans = q.get("answers")
            if isinstance(ans, dict):
                q["answers"] = [
                    {"answer": a, "annotation_id": aid, "worker_id": wid}
                    for a, aid, wid in zip(
                        ans.get("answer", []), ans.get("annotation_id", []), ans.get("worker_id", [])
                    )
                ]
            rows.append(q)
        paper["qas"] = rows
    return paper


def _build(papers: list[tuple[str, Any, Checker, str]], checkers: list[Checker], source: str) -> Dataset:
    passages: list[Passage] = []
    examples: list[Example] = []
    for paper_id, paper, checker, label in papers:
        built = checker.guard(label, lambda: _paper(paper_id, paper, checker, label))
        if built is None:
            continue
        paper_passages, paper_examples = built
        passages.extend(paper_passages)
        examples.extend(paper_examples)
    invalid = tuple(bad for c in checkers for bad in c.invalid)
    return Dataset(NAME, source, tuple(examples), tuple(passages), retrieval_scope="document", invalid=invalid)


def _paper(paper_id: str, paper: Any, ck: Checker, label: str) -> tuple[list[Passage], list[Example]]:
    rec = label
    sections = ck.field(paper, "full_text", list, rec)
    qas = ck.field(paper, "qas", list, rec)
    passages: list[Passage] = []
    abstract = ck.field(paper, "abstract", str, rec, optional=True)
    if abstract and abstract.strip():
        passages.append(Passage(f"qasper:{paper_id}:0", NAME, paper_id, "Abstract", abstract.strip()))
    for s, section in enumerate(sections):
        srec = f"{label} full_text[{s}]"
        name = ck.field(section, "section_name", str, srec, optional=True) or ""
        for p, para in enumerate(ck.str_list(section, "paragraphs", srec)):
            if para.strip():
                passages.append(Passage(f"qasper:{paper_id}:{len(passages)}", NAME, paper_id, name, para.strip()))
    for f, fig in enumerate(ck.field(paper, "figures_and_tables", list, rec, optional=True) or []):
        caption = ck.field(fig, "caption", str, f"{label} figures_and_tables[{f}]")
        if caption.strip():
            passages.append(
                Passage(f"qasper:{paper_id}:{len(passages)}", NAME, paper_id, "Figure/Table", caption.strip())
            )
    by_text = {}
    for passage in passages:
        by_text.setdefault(passage.text, passage.id)

    examples = []
    for q, qa in enumerate(qas):
        examples.append(_question(paper_id, label, q, qa, by_text, ck))
    examples = [e for e in examples if e is not None]
    return passages, examples


def _question(paper_id: str, label: str, q: int, qa: Any, by_text: dict[str, str], ck: Checker) -> Example | None:
    def build() -> Example:
        rec = f"{label} qas[{q}]"
        qid = ck.text(qa, "question_id", rec)
        rec = f"{label} qas[{q}] ({qid})"
        question = ck.text(qa, "question", rec)
        answers = ck.field(qa, "answers", list, rec)
        if not answers:
            ck.fail(rec, "answers", "empty")
        refs, types, evidence = [], [], []
        yes_no = None
        for a, wrapper in enumerate(answers):
            arec = f"{rec} answers[{a}]"
            ans = ck.field(wrapper, "answer", dict, arec)
            unanswerable = ck.field(ans, "unanswerable", bool, arec)
            spans = ck.str_list(ans, "extractive_spans", arec)
            free = ck.field(ans, "free_form_answer", str, arec, optional=True) or ""
            yn = ck.field(ans, "yes_no", bool, arec, optional=True)
            for ev in ck.str_list(ans, "evidence", arec):
                key = ev.strip()
                if key.startswith(FLOAT_PREFIX):
                    key = key[len(FLOAT_PREFIX) :].strip()
                if key in by_text:
                    evidence.append(by_text[key])
            if unanswerable:
                types.append("unanswerable")
                refs.append("Unanswerable")
            elif spans:
                types.append("extractive")
                refs.append(", ".join(s.strip() for s in spans))
            elif free.strip():
                types.append("abstractive")
                refs.append(free)
            elif yn is not None:
                types.append("yes_no")
                refs.append("Yes" if yn else "No")
                if yes_no is None:
                    yes_no = yn
            else:
                ck.fail(arec, "answer", "no extractive_spans, free_form_answer, yes_no or unanswerable")
        return Example(
            id=qid,
            dataset=NAME,
            question=question.strip(),
            references=unique(refs),
            answer_type=types[0],
            evidence=unique(evidence),
            doc_ids=(paper_id,),
            yes_no=yes_no if types[0] == "yes_no" else None,
            unanswerable=types[0] == "unanswerable",
        )

    return ck.guard(f"{label} qas[{q}]", build)
