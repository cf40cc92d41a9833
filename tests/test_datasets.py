"""Loaders: the bundled files, other files of the same releases, both Qasper layouts, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from evalsuite.datasets import data_root, load
from evalsuite.errors import DataError

QASPER_TRAIN = data_root() / "qasper" / "train.json"
BIOASQ = data_root() / "bioasq" / "training.json"
NQ = data_root() / "nq" / "dev.jsonl"


def test_bundled_counts_match_the_data_notices():
    q = load("qasper")
    assert len(q.examples) == 101 and len({e.doc_ids[0] for e in q.examples}) == 60
    # first-annotation types, as listed in the NOTICE (train 26/14/6/5 + test 25/13/5/7)
    assert Counter(e.answer_type for e in q.examples) == {
        "extractive": 51,
        "abstractive": 27,
        "unanswerable": 11,
        "yes_no": 12,
    }
    nq = load("nq")
    assert len(nq.examples) == 2355
    assert all(len(e.evidence) == 1 for e in nq.examples)
    b = load("bioasq")
    assert Counter(e.answer_type for e in b.examples) == {"factoid": 644, "yesno": 538, "summary": 472, "list": 356}


def test_qasper_records_keep_provenance_and_unanswerable():
    q = load("qasper")
    passages = {p.id: p for p in q.passages}
    unanswerable = [e for e in q.examples if e.unanswerable]
    assert unanswerable and all(
        e.references == ("Unanswerable",) or "Unanswerable" in e.references for e in unanswerable
    )
    with_evidence = [e for e in q.examples if e.evidence]
    assert len(with_evidence) >= 80
    for e in with_evidence:
        for pid in e.evidence:
            assert passages[pid].doc_id == e.doc_ids[0]  # evidence lies in the question's own paper
    assert any(p.title == "Introduction" for p in q.passages)
    yes_no = [e for e in q.examples if e.answer_type == "yes_no"]
    assert all(e.yes_no in (True, False) for e in yes_no)
    assert q.retrieval_scope == "document"


def test_every_annotator_answer_is_a_reference():
    raw = json.loads((data_root() / "qasper" / "test.json").read_text())
    paper_id, paper = next(iter(raw.items()))
    qa = paper["qas"][0]
    ex = next(e for e in load("qasper").examples if e.id == qa["question_id"])
    assert len(qa["answers"]) >= 2
    assert len(ex.references) >= 2 or len({json.dumps(a["answer"], sort_keys=True) for a in qa["answers"]}) == 1


def test_nq_ids_are_stable_and_passages_deduplicated(tmp_path):
    lines = NQ.read_text(encoding="utf-8").splitlines()[:50]
    shuffled = tmp_path / "nq.jsonl"
    shuffled.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    a = {e.question: e.id for e in load("nq", NQ).examples}
    b = load("nq", shuffled)
    assert all(a[e.question] == e.id for e in b.examples)
    assert len({p.id for p in load("nq").passages}) == len(load("nq").passages)


def test_bioasq_references_and_corpus():
    b = load("bioasq")
    by_type = {}
    for e in b.examples:
        by_type.setdefault(e.answer_type, e)
    assert by_type["yesno"].yes_no in (True, False) and by_type["yesno"].references[-1] in ("Yes", "No")
    assert by_type["factoid"].exact and by_type["summary"].exact == ()
    passages = {p.id for p in b.passages}
    assert all(pid in passages for e in b.examples for pid in e.evidence)


# --- other files of the same releases: records not in the repository ---------------------------


def _new_qasper_paper() -> dict:
    return {
        "title": "A paper that is not bundled",
        "abstract": "We study widgets.",
        "full_text": [
            {"section_name": "Introduction", "paragraphs": ["Widgets are small.", "Gadgets are large."]},
            {"section_name": "Results", "paragraphs": ["Our widget model reaches 91.2 F1."]},
        ],
        "qas": [
            {
                "question": "What F1 does the widget model reach?",
                "question_id": "q-new-1",
                "nlp_background": "",
                "topic_background": "",
                "paper_read": "",
                "search_query": "",
                "question_writer": "w",
                "answers": [
                    {
                        "answer": {
                            "unanswerable": False,
                            "extractive_spans": ["91.2 F1"],
                            "yes_no": None,
                            "free_form_answer": "",
                            "evidence": ["Our widget model reaches 91.2 F1."],
                            "highlighted_evidence": [],
                        },
                        "annotation_id": "a1",
                        "worker_id": "w1",
                    },
                    {
                        "answer": {
                            "unanswerable": False,
                            "extractive_spans": [],
                            "yes_no": None,
                            "free_form_answer": "91.2",
                            "evidence": ["Our widget model reaches 91.2 F1."],
                            "highlighted_evidence": [],
                        },
                        "annotation_id": "a2",
                        "worker_id": "w2",
                    },
                ],
            },
            {
                "question": "Are widgets small?",
                "question_id": "q-new-2",
                "answers": [
                    {
                        "answer": {
                            "unanswerable": False,
                            "extractive_spans": [],
                            "yes_no": True,
                            "free_form_answer": "",
                            "evidence": ["Widgets are small."],
                            "highlighted_evidence": [],
                        },
                        "annotation_id": "a3",
                        "worker_id": "w3",
                    }
                ],
            },
        ],
        "figures_and_tables": [{"caption": "Table 1: Scores.", "file": "t1.png"}],
    }


def _to_columns(paper_id: str, paper: dict) -> dict:
    """The allenai/qasper hub layout: nested fields as dicts of lists."""

    def cols(rows, keys):
        return {k: [r.get(k) for r in rows] for k in keys}

    qas = []
    for qa in paper["qas"]:
        qa = dict(qa)
        qa["answers"] = cols(qa["answers"], ["answer", "annotation_id", "worker_id"])
        qas.append(qa)
    return {
        "id": paper_id,
        "title": paper["title"],
        "abstract": paper["abstract"],
        "full_text": cols(paper["full_text"], ["section_name", "paragraphs"]),
        "qas": cols(qas, ["question", "question_id", "answers"]),
        "figures_and_tables": cols(paper["figures_and_tables"], ["caption", "file"]),
    }


def test_qasper_release_file_not_in_repository(tmp_path):
    path = tmp_path / "qasper-dev-v0.3.json"
    path.write_text(json.dumps({"2101.00001": _new_qasper_paper()}))
    ds = load("qasper", path)
    first, second = ds.examples
    assert first.references == ("91.2 F1", "91.2") and first.answer_type == "extractive"
    assert [p.text for p in ds.passages if p.id in first.evidence] == ["Our widget model reaches 91.2 F1."]
    assert second.yes_no is True and second.references == ("Yes",)


def test_qasper_hub_column_layout_through_datasets(tmp_path):
    rows = [_to_columns("2101.00001", _new_qasper_paper())]
    real = json.loads(QASPER_TRAIN.read_text())
    rows += [_to_columns(pid, p) for pid, p in list(real.items())[:2]]
    path = tmp_path / "qasper.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    hub = load("qasper", "hub:json", hub_kwargs={"data_files": str(path)}, split="train")
    release = load("qasper", QASPER_TRAIN)
    wanted = {e.id: e for e in release.examples}
    got = {e.id: e for e in hub.examples}
    assert "q-new-1" in got
    for qid, ex in got.items():
        if qid in wanted:
            assert ex == wanted[qid]  # the two layouts give identical records
    assert sum(qid in wanted for qid in got) >= 5


def test_nq_and_bioasq_through_hub_json_builder(tmp_path):
    nq_file = tmp_path / "nq.jsonl"
    nq_file.write_text("\n".join(NQ.read_text(encoding="utf-8").splitlines()[:20]), encoding="utf-8")
    assert load("nq", "hub:json", hub_kwargs={"data_files": str(nq_file)}).examples == load("nq", nq_file).examples
    questions = json.loads(BIOASQ.read_text())["questions"][:15]
    bq = tmp_path / "bioasq.jsonl"
    bq.write_text(
        "\n".join(json.dumps({k: v for k, v in q.items() if k not in ("concepts", "triples")}) for q in questions)
    )
    hub = load("bioasq", "hub:json", hub_kwargs={"data_files": str(bq)})
    assert [e.id for e in hub.examples] == [q["id"] for q in questions]


# --- hub layouts exported as JSON lines (datasets.Dataset.to_json), rows built from the data root ---

QASPER_QA_KEYS = [
    "question",
    "question_id",
    "nlp_background",
    "topic_background",
    "paper_read",
    "search_query",
    "question_writer",
    "answers",
]


def _hub_qasper_rows() -> list[dict]:
    """Every bundled paper in the allenai/qasper column layout (all question columns)."""

    def cols(rows, keys):
        return {k: [r.get(k) for r in rows] for k in keys}

    rows = []
    for file in ("train.json", "test.json"):
        for pid, paper in json.loads((data_root() / "qasper" / file).read_text()).items():
            qas = [
                dict(qa, answers=cols(qa["answers"], ["answer", "annotation_id", "worker_id"])) for qa in paper["qas"]
            ]
            rows.append(
                {
                    "id": pid,
                    "title": paper["title"],
                    "abstract": paper["abstract"],
                    "full_text": cols(paper["full_text"], ["section_name", "paragraphs"]),
                    "qas": cols(qas, QASPER_QA_KEYS),
                    "figures_and_tables": cols(paper["figures_and_tables"], ["caption", "file"]),
                }
            )
    return rows


def test_qasper_hub_export_in_json_lines_loads_like_the_release(tmp_path):
    import datasets as hf

    rows = _hub_qasper_rows()
    path = tmp_path / "qasper-hub.json"  # JSON lines behind a .json suffix: the layout is read from the content
    hf.Dataset.from_list(rows).to_json(str(path))
    assert len(path.read_text().splitlines()) == 60
    release = load("qasper")
    export = load("qasper", path)
    assert export.examples == release.examples and export.passages == release.passages
    single = tmp_path / "one-paper.jsonl"  # one line: a single paper, not a file keyed by paper id
    hf.Dataset.from_list(rows[:1]).to_json(str(single))
    assert [e.id for e in load("qasper", single).examples] == [
        e.id for e in release.examples if e.doc_ids == (rows[0]["id"],)
    ]
    array = tmp_path / "qasper-array.json"
    hf.Dataset.from_list(rows[:5]).to_json(str(array), lines=False)
    assert {e.doc_ids[0] for e in load("qasper", array).examples} == {r["id"] for r in rows[:5]}


def test_qasper_json_lines_errors_name_the_line(tmp_path):
    rows = _hub_qasper_rows()[:3]
    lines = [json.dumps(r) for r in rows]
    lines[1] = json.dumps({k: v for k, v in rows[1].items() if k != "id"})
    path = tmp_path / "qasper.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"qasper\.jsonl: record line 2: field 'id': missing"):
        load("qasper", path)
    rows[2]["qas"]["question"][0] = ""
    lines[2] = json.dumps(rows[2])
    path.write_text("\n".join(lines) + "\n")
    ds = load("qasper", path, skip_invalid=True)
    assert [(b.record.split(" qas")[0], b.field) for b in ds.invalid] == [
        ("line 2", "id"),
        (f"line 3 ({rows[2]['id']})", "question"),
    ]
    assert {e.doc_ids[0] for e in ds.examples} == {rows[0]["id"], rows[2]["id"]}


def test_bioasq_one_question_per_line_loads_like_the_release(tmp_path):
    import datasets as hf

    questions = json.loads(BIOASQ.read_text())["questions"]
    keep = ("id", "type", "body", "documents", "snippets", "ideal_answer", "exact_answer")
    # Arrow needs one type per column: factoid and list questions (exact answers as lists of synonym
    # lists) in one export, yes/no and summary questions (a string, or none) in another
    for kinds in (("factoid", "list"), ("yesno", "summary")):
        picked = [{k: q[k] for k in keep if k in q} for q in questions if q["type"] in kinds][:120]
        path = tmp_path / f"bioasq-{'-'.join(kinds)}.jsonl"
        hf.Dataset.from_list(picked).to_json(str(path))
        release = tmp_path / f"release-{'-'.join(kinds)}.json"
        release.write_text(json.dumps({"questions": picked}))
        want, got = load("bioasq", release), load("bioasq", path)
        assert got.examples == want.examples and got.passages == want.passages and len(got.examples) == 120
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join(json.dumps({k: q[k] for k in keep if k in q}) for q in questions[:3]).replace('"body"', '"bodyy"', 1)
    )
    with pytest.raises(DataError, match=r"bad\.jsonl: record line 1 \(\w+\): field 'body': missing"):
        load("bioasq", bad)


def test_nq_export_through_to_json_loads_like_the_release_lines(tmp_path):
    import datasets as hf

    lines = NQ.read_text(encoding="utf-8").splitlines()[:300]
    original = tmp_path / "nq-300.jsonl"
    original.write_text("\n".join(lines) + "\n", encoding="utf-8")
    export = tmp_path / "nq-export.json"
    hf.Dataset.from_list([json.loads(line) for line in lines]).to_json(str(export))
    a, b = load("nq", original), load("nq", export)
    assert a.examples == b.examples and a.passages == b.passages and len(a.examples) == 300


# --- bad input ----------------------------------------------------------------------------------


def _bioasq_with(tmp_path, mutate) -> Path:
    questions = json.loads(BIOASQ.read_text())["questions"][:5]
    mutate(questions)
    path = tmp_path / "bad-bioasq.json"
    path.write_text(json.dumps({"questions": questions}))
    return path


@pytest.mark.parametrize(
    "mutate, record, field",
    [
        (lambda qs: qs[2].pop("body"), "2", "body"),
        (lambda qs: qs[3].__setitem__("body", "   "), "3", "body"),
        (lambda qs: qs[1].__setitem__("snippets", "not a list"), "1", "snippets"),
        (lambda qs: qs[4].__setitem__("type", "essay"), "4", "type"),
    ],
)
def test_malformed_bioasq_names_file_record_field(tmp_path, mutate, record, field):
    path = _bioasq_with(tmp_path, mutate)
    with pytest.raises(DataError) as err:
        load("bioasq", path)
    message = str(err.value)
    assert str(path) in message and f"record {record}" in message and repr(field) in message
    assert "\n" not in message


def test_skip_invalid_collects_and_keeps_the_rest(tmp_path):
    path = _bioasq_with(tmp_path, lambda qs: (qs[0].pop("ideal_answer"), qs[3].__setitem__("body", "")))
    ds = load("bioasq", path, skip_invalid=True)
    assert len(ds.examples) == 3
    assert [(b.record.split()[0], b.field) for b in ds.invalid] == [("0", "ideal_answer"), ("3", "body")]


def test_invalid_json_and_bad_lines(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"questions": [ {"id": 1,, } ]}')
    with pytest.raises(DataError, match=r"broken\.json: record at line 1 column \d+: field \(JSON syntax\)"):
        load("bioasq", bad)
    lines = NQ.read_text(encoding="utf-8").splitlines()[:3]
    lines.insert(1, "{not json")
    nq = tmp_path / "nq.jsonl"
    nq.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=r"nq\.jsonl: record line 2: field '\(JSON syntax\)'"):
        load("nq", nq)
    assert len(load("nq", nq, skip_invalid=True).examples) == 3
    q = json.loads(QASPER_TRAIN.read_text())
    pid = next(iter(q))
    q[pid]["qas"][1]["answers"][0]["answer"]["unanswerable"] = "no"
    qp = tmp_path / "qasper.json"
    qp.write_text(json.dumps(q))
    with pytest.raises(
        DataError, match=rf"record {pid} qas\[1\] \(\w+\) answers\[0\]: field 'unanswerable': expected bool, got str"
    ):
        load("qasper", qp)


def test_cli_exit_status_2_one_line_no_traceback(tmp_path):
    path = _bioasq_with(tmp_path, lambda qs: qs[2].pop("body"))
    run = subprocess.run(
        [sys.executable, "-m", "evalsuite", "datasets", "stats", "bioasq", "--path", str(path), "--json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "record 2" in run.stderr and "'body'" in run.stderr
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalsuite",
            "datasets",
            "stats",
            "bioasq",
            "--path",
            str(path),
            "--json",
            "--skip-invalid",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["examples"] == 4
    assert "skipped 1 invalid record" in ok.stderr and "'body'" in ok.stderr


def test_cli_stats_json_shape():
    run = subprocess.run(
        [sys.executable, "-m", "evalsuite", "datasets", "stats", "qasper", "--json"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert set(out) == {"dataset", "examples", "passages", "pool", "eval", "answer_types"}
    assert out["examples"] == out["pool"] + out["eval"] == 101
