"""The generic QA format (``qa``): JSON lines and CSV, inline passages or a corpus file, validation,
source documents for the split, retrieval scope, column mapping (files and hub), and the CLI.

Records are invented here, or taken at run time from the NQ file of the data root."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.datasets import data_root, load, require_passages
from evalsuite.datasets.qa import question_id
from evalsuite.errors import ConfigError, DataError
from evalsuite.splits import groups, split

NQ = data_root() / "nq" / "dev.jsonl"

FAQ = [
    {
        "id": "faq-1",
        "question": "How do I reset my password?",
        "answers": ["Use the 'Forgot password' link."],
        "evidence": ["kb-1"],
    },
    {
        "id": "faq-2",
        "question": "Can I change my password on the phone app?",
        "answers": ["Yes, under Settings."],
        "evidence": ["kb-1", "kb-3"],
    },
    {
        "id": 3,
        "question": "When are invoices sent?",
        "answers": ["monthly", "every month"],
        "evidence": ["kb-2"],
        "answer_type": "short",
    },
    {"question": "Is there a dark mode?", "answers": ["yes"], "answer_type": "yes_no"},
]
KB = [
    {
        "id": "kb-1",
        "title": "Signing in",
        "text": "If you forgot your password, use the 'Forgot password' link on the sign-in page.",
        "doc_id": "help/signin",
    },
    {
        "id": "kb-2",
        "title": "Billing",
        "text": "Invoices are sent on the first day of every month.",
        "doc_id": "help/billing",
    },
    {
        "id": "kb-3",
        "title": "Mobile",
        "text": "The phone app has the same settings as the web site.",
        "doc_id": "help/mobile",
    },
    {"id": "kb-4", "text": "Dark mode is in the display settings."},
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_jsonl_with_corpus_file(tmp_path):
    ds = load("support-faq", write_jsonl(tmp_path / "faq.jsonl", FAQ), corpus=write_jsonl(tmp_path / "kb.jsonl", KB))
    assert ds.name == "support-faq" and ds.retrieval_scope == "corpus"
    assert [e.id for e in ds.examples] == ["faq-1", "faq-2", "3", question_id("Is there a dark mode?")]
    first, second, third, fourth = ds.examples
    assert first.references == ("Use the 'Forgot password' link.",) and first.answer_type == "free_form"
    assert first.evidence == ("kb-1",) and first.doc_ids == ("help/signin",)
    assert second.doc_ids == ("help/signin", "help/mobile")
    assert third.references == ("monthly", "every month") and third.answer_type == "short"
    assert fourth.yes_no is True and fourth.evidence == () and fourth.doc_ids == ()
    passages = {p.id: p for p in ds.passages}
    assert list(passages) == ["kb-1", "kb-2", "kb-3", "kb-4"]
    assert (
        passages["kb-4"].doc_id == "kb-4" and passages["kb-4"].title == ""
    )  # no doc_id: the passage is its own document
    assert question_id("is there a DARK mode") == fourth.id  # derived from the normalized question text


def test_csv_answers_as_json_list_or_pipes_and_a_csv_corpus(tmp_path):
    faq = write_csv(
        tmp_path / "faq.csv",
        ["id", "question", "answers", "evidence", "answer_type"],
        [
            ["f1", "Which browsers are supported?", "Chrome|Firefox | Safari", "kb-1", "list"],
            [
                "f2",
                "What does the error 'a|b' mean?",
                json.dumps(["A pipe, written a|b", "a separator"]),
                json.dumps(["kb-2"]),
                "",
            ],
            ["f3", "Multi-line\nquestion?", "one", "", ""],
        ],
    )
    kb = write_csv(
        tmp_path / "kb.csv",
        ["id", "title", "text"],
        [["kb-1", "Browsers", "Chrome, Firefox and Safari."], ["kb-2", "", "Errors use a|b as a separator."]],
    )
    ds = load("faq", faq, corpus=kb)
    f1, f2, f3 = ds.examples
    assert f1.references == ("Chrome", "Firefox", "Safari") and f1.answer_type == "list" and f1.evidence == ("kb-1",)
    assert (
        f2.references == ("A pipe, written a|b", "a separator")
        and f2.evidence == ("kb-2",)
        and f2.answer_type == "free_form"
    )
    assert f3.question == "Multi-line\nquestion?" and f3.evidence == ()
    # the layout is read from the content: the same JSON lines load from a file named .csv
    assert load("faq", write_jsonl(tmp_path / "faq-as.csv", FAQ[:1]), corpus=kb).examples[0].id == "faq-1"


def test_inline_passages_are_the_evidence_and_shared_text_is_one_passage(tmp_path):
    rows = [
        {
            "id": "a",
            "question": "Who wrote the manual?",
            "answers": ["The docs team"],
            "passages": [
                "The manual was written by the docs team.",
                {"title": "Credits", "text": "Thanks to all readers."},
            ],
        },
        {
            "id": "b",
            "question": "Who maintains the manual?",
            "answers": ["The docs team"],
            "passages": ["The manual was written by the docs team."],
        },
        {
            "id": "c",
            "question": "Where is the manual?",
            "answers": ["On the intranet"],
            "passages": [
                {"id": "m1", "text": "The manual is on the intranet.", "doc_id": "manual"},
                {"id": "m2", "text": "Printed copies are in room 4.", "doc_id": "manual"},
            ],
            "evidence": ["m1"],
        },
        {"id": "d", "question": "Where are printed copies?", "answers": ["room 4"], "evidence": ["m2"]},
    ]
    ds = load("manual", write_jsonl(tmp_path / "manual.jsonl", rows))
    a, b, c, d = ds.examples
    assert len(a.evidence) == 2 and b.evidence == (a.evidence[0],)  # same text, one passage
    assert len(ds.passages) == 4
    assert c.evidence == ("m1",) and d.evidence == ("m2",) and c.doc_ids == d.doc_ids == ("manual",)
    # source documents drive the leakage-free split: a and b share a passage, c and d a document
    comps = sorted(sorted(e.id for e in g) for g in groups(ds.examples))
    assert comps == [["a", "b"], ["c", "d"]]


def test_questions_and_answers_only_load_as_fine_tuning_pairs_but_cannot_be_retrieved(tmp_path):
    rows = [{"question": f"What is item {i}?", "answers": [f"Item {i} is a widget."]} for i in range(60)]
    ds = load("pairs", write_jsonl(tmp_path / "pairs.jsonl", rows))
    assert len(ds.examples) == 60 and ds.passages == ()
    sp = split(ds)
    assert len(sp.pool) + len(sp.eval) == 60 and not {e.id for e in sp.pool} & {e.id for e in sp.eval}
    with pytest.raises(DataError) as err:
        require_passages(ds)
    assert "no passages" in str(err.value) and "corpus" in str(err.value) and "\n" not in str(err.value)


def test_document_scope_is_an_option(tmp_path):
    faq = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    kb = write_jsonl(tmp_path / "kb.jsonl", KB)
    assert load("faq", faq, corpus=kb, options={"scope": "document"}).retrieval_scope == "document"
    with pytest.raises(ConfigError, match="scope = 'paper'.*corpus, document"):
        load("faq", faq, corpus=kb, options={"scope": "paper"})
    with pytest.raises(ConfigError, match="unknown option 'scpoe'"):
        load("faq", faq, corpus=kb, options={"scpoe": "document"})


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, line_record, field, problem",
    [
        ({"id": "x", "answers": ["a"]}, "line 2", "question", "missing"),
        ({"id": "x", "question": "  ", "answers": ["a"]}, "line 2", "question", "empty"),
        ({"id": "x", "question": 7, "answers": ["a"]}, "line 2", "question", "expected str"),
        ({"id": "x", "question": "Q?", "answers": "a"}, "line 2 (x)", "answers", "expected a list"),
        ({"id": "x", "question": "Q?", "answers": []}, "line 2 (x)", "answers", "empty"),
        ({"id": "x", "question": "Q?", "answers": [" "]}, "line 2 (x)", "answers", "empty"),
        ({"id": "x", "question": "Q?", "answers": ["a", 3]}, "line 2 (x)", "answers[1]", "expected str"),
        (
            {"id": "x", "question": "Q?", "answers": ["a"], "evidence": ["kb-9"]},
            "line 2 (x)",
            "evidence[0]",
            "not in the corpus",
        ),
        (
            {"id": "faq-1", "question": "Q?", "answers": ["a"]},
            "line 2 (faq-1)",
            "id",
            "duplicate id 'faq-1' (first at line 1)",
        ),
        (
            {"question": "How do I RESET my password", "answers": ["a"]},
            f"line 2 ({question_id('how do i reset my password')})",
            "question",
            "same question as line 1",
        ),
        ({"id": ["x"], "question": "Q?", "answers": ["a"]}, "line 2", "id", "expected a string or integer id"),
        (
            {"id": "x", "question": "Q?", "answers": ["maybe"], "answer_type": "yes_no"},
            "line 2 (x)",
            "answers",
            "must be yes or no",
        ),
        (
            {"id": "x", "question": "Q?", "answers": ["a"], "passages": [{"title": "t"}]},
            "line 2 (x)",
            "passages[0].text",
            "missing",
        ),
        (
            {"id": "x", "question": "Q?", "answers": ["a"], "passages": [{"id": "kb-1", "text": "Other text."}]},
            "line 2 (x)",
            "passages[0]",
            "already names a different passage",
        ),
    ],
)
def test_a_bad_record_is_one_line_naming_file_record_and_field(tmp_path, row, line_record, field, problem):
    first = (
        {"question": "How do I reset my password?", "answers": ["a"], "id": "faq-1"}
        if "id" in row
        else {"question": "How do I reset my password?", "answers": ["a"]}
    )
    path = write_jsonl(tmp_path / "faq.jsonl", [first, row])
    kb = write_jsonl(tmp_path / "kb.jsonl", KB)
    with pytest.raises(DataError) as err:
        load("faq", path, corpus=kb)
    message = str(err.value)
    assert (
        message.startswith(f"{path}: record {line_record}") and f"field {field!r}" in message and problem in message
    ), message
    assert "\n" not in message and "--skip-invalid" in message
    skipped = load("faq", path, corpus=kb, skip_invalid=True)
    assert [e.question for e in skipped.examples] == ["How do I reset my password?"]
    assert [(b.record, b.field) for b in skipped.invalid] == [(line_record, field)]


def test_bad_corpus_and_csv_records_name_their_file_and_line(tmp_path):
    faq = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    kb = write_jsonl(tmp_path / "kb.jsonl", KB + [{"id": "kb-2", "text": "Again."}])
    with pytest.raises(
        DataError, match=rf"^{tmp_path}/kb\.jsonl: record line 5 \(kb-2\): field 'id': duplicate id 'kb-2' \(first at "
    ):
        load("faq", faq, corpus=kb)
    kb = write_jsonl(tmp_path / "kb2.jsonl", KB[:3] + [{"id": "kb-4", "title": "t"}])
    with pytest.raises(DataError, match=r"kb2\.jsonl: record line 4 \(kb-4\): field 'text': missing"):
        load("faq", faq, corpus=kb)
    # with --skip-invalid the bad passage is left out, and so is the question citing it
    ok = load(
        "faq",
        faq,
        corpus=write_jsonl(tmp_path / "kb3.jsonl", KB[:1] + [{"id": "kb-2", "text": " "}] + KB[2:]),
        skip_invalid=True,
    )
    assert [b.field for b in ok.invalid] == ["text", "evidence[0]"] and "3" not in {e.id for e in ok.examples}
    bad_csv = write_csv(
        tmp_path / "faq.csv",
        ["id", "question", "answers"],
        [["a", "Q1?", "x"], ["b", "", "y"], ["c", "Q3?", "[not json"]],
    )
    with pytest.raises(DataError, match=r"faq\.csv: record line 3: field 'question': missing"):
        load("faq", bad_csv)
    ds = load("faq", bad_csv, skip_invalid=True)
    assert [e.id for e in ds.examples] == ["a"]
    assert [(b.record, b.field) for b in ds.invalid] == [("line 3", "question"), ("line 4 (c)", "answers")]
    assert "must be a JSON list" in ds.invalid[1].problem
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(FAQ[3]) + "\n{oops\n" + json.dumps(FAQ[2] | {"evidence": []}) + "\n")
    with pytest.raises(DataError, match=r"broken\.jsonl: record line 2: field '\(JSON syntax\)'"):
        load("faq", broken)


def test_no_valid_question_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no valid questions"):
        load("faq", empty)
    with pytest.raises(DataError, match="nowhere.jsonl: file not found"):
        load("faq", tmp_path / "nowhere.jsonl")
    with pytest.raises(DataError, match="kb.jsonl: corpus file not found"):
        load("faq", write_jsonl(tmp_path / "faq.jsonl", FAQ), corpus=tmp_path / "kb.jsonl")
    with pytest.raises(ConfigError, match="unknown dataset 'faq'.*give a path"):
        load("faq")


# --- column mapping: files and hub datasets -------------------------------------------------------


def _squad_like(rows):
    return [
        {
            "qid": f"s{i}",
            "q": r["question"],
            "answers": {"text": r["answers"], "answer_start": [0] * len(r["answers"])},
            "context": r["ctxs"][0]["text"],
            "kind": "short",
        }
        for i, r in enumerate(rows)
    ]


def _nq_rows(n):
    return [json.loads(line) for line in NQ.read_text(encoding="utf-8").splitlines()[:n]]


def test_columns_map_fields_and_reach_into_nested_objects(tmp_path):
    rows = _nq_rows(12)
    path = write_jsonl(tmp_path / "squad.jsonl", _squad_like(rows))
    columns = {"id": "qid", "question": "q", "answers": "answers.text", "answer_type": "kind"}
    ds = load("squad-like", path, columns=columns)
    assert [e.question for e in ds.examples] == [r["question"] for r in rows]
    assert [list(e.references) for e in ds.examples] == [
        list(dict.fromkeys(a.strip() for a in r["answers"])) for r in rows
    ]
    assert ds.passages == () and ds.examples[0].answer_type == "short"
    # the answers as an object without the mapping: the error says how to map it
    with pytest.raises(
        DataError,
        match=r"field 'answers': expected a list, got dict \(map a list inside it with columns, e\.g\. answers\.text\)",
    ):
        load("squad-like", path, columns={"id": "qid", "question": "q"})
    with pytest.raises(DataError, match=r"record line 1: field 'query': missing \(the column mapped to question\)"):
        load("squad-like", path, columns={"question": "query"})
    with pytest.raises(ConfigError, match="unknown field 'context'"):
        load("squad-like", path, columns={"context": "passages"})


def test_hub_dataset_with_a_column_mapping_through_the_json_builder(tmp_path):
    import datasets as hf

    rows = _nq_rows(30)
    path = tmp_path / "hub-export.jsonl"
    hf.Dataset.from_list(_squad_like(rows)).to_json(str(path))
    ds = load(
        "hub-faq",
        "hub:json",
        columns={"id": "qid", "question": "q", "answers": "answers.text", "passages": "context"},
        hub_kwargs={"data_files": str(path)},
        split="train",
    )
    assert [e.id for e in ds.examples] == [f"s{i}" for i in range(30)]
    assert all(len(e.evidence) == 1 for e in ds.examples)  # the one context string is the question's passage
    by_id = {p.id: p for p in ds.passages}
    assert [by_id[e.evidence[0]].text for e in ds.examples] == [r["ctxs"][0]["text"].strip() for r in rows]
    assert ds.source.startswith("hub:json (split train, data_files ")


def test_nq_rows_as_a_team_would_write_them_match_the_nq_loader(tmp_path):
    rows = _nq_rows(200)
    qa_rows = [
        {
            "question": r["question"],
            "answers": r["answers"],
            "passages": [{"title": c["title"], "text": c["text"], "doc_id": c["title"]} for c in r["ctxs"]],
        }
        for r in rows
    ]
    ours = load("nq-as-qa", write_jsonl(tmp_path / "nq-qa.jsonl", qa_rows))
    release = load("nq", write_jsonl(tmp_path / "nq.jsonl", rows))
    assert len(ours.examples) == len(release.examples) == 200
    text = {p.id: p.text for p in ours.passages}
    rtext = {p.id: p.text for p in release.passages}
    for a, b in zip(ours.examples, release.examples):
        assert a.question == b.question and a.references == b.references
        assert [text[p] for p in a.evidence] == [rtext[p] for p in b.evidence]
        assert a.doc_ids == b.doc_ids  # the Wikipedia page, as the NQ loader groups it
    assert [len(g) for g in groups(ours.examples)] == [len(g) for g in groups(release.examples)]


def test_retrieval_over_a_team_corpus_in_both_scopes(tmp_path):
    """Builds a small index with the bundled embedder: NQ rows as a team would write them, passages in
    a corpus file whose documents are the Wikipedia pages."""
    from evalsuite.retrieval import get_retriever
    from evalsuite.retrieval.evaluate import retrieval_eval

    rows = _nq_rows(120)
    corpus, faq = [], []
    for i, r in enumerate(rows):
        ctx = r["ctxs"][0]
        pid = f"p{i}"
        corpus.append({"id": pid, "title": ctx["title"], "text": ctx["text"], "doc_id": ctx["title"]})
        faq.append({"id": f"q{i}", "question": r["question"], "answers": r["answers"], "evidence": [pid]})
    faq_file, kb_file = write_jsonl(tmp_path / "faq.jsonl", faq), write_jsonl(tmp_path / "kb.jsonl", corpus)
    ds = load("wiki-faq", faq_file, corpus=kb_file)
    result = retrieval_eval(ds, k=5)
    assert result["questions"] == 40 and result["recall@5"] >= 0.9 and 0 < result["mrr"] <= result["recall@5"]
    scoped = load("wiki-faq-by-page", faq_file, corpus=kb_file, options={"scope": "document"})
    retriever = get_retriever(scoped, progress=False)
    for ex in scoped.examples[:10]:
        chunks = retriever.retrieve(ex, k=5)
        assert chunks and {c.doc_id for c in chunks} == set(ex.doc_ids)  # only the question's own document


def test_the_documented_examples_load(tmp_path):
    """The JSON line, corpus line, CSV file and matrix entries of the format's description."""
    import tomllib

    from evalsuite.datasets import DatasetSpec, load_spec, qa

    doc = [line.strip() for line in qa.__doc__.splitlines()]
    json_line = next(line for line in doc if line.startswith('{"id": "faq-17"'))
    corpus_line = next(line for line in doc if line.startswith('{"id": "kb-204"'))
    start = doc.index("id,question,answers,evidence,answer_type")
    csv_text = "\n".join(doc[start : start + 3]) + "\n"
    data = tmp_path / "data"
    data.mkdir()
    (data / "faq.jsonl").write_text(json_line + "\n")
    (data / "kb.jsonl").write_text(
        corpus_line + "\n" + json.dumps({"id": "kb-311", "text": "Chrome, Firefox and Safari."}) + "\n"
    )
    (data / "manuals.csv").write_text(csv_text)
    entries = tomllib.loads(
        "\n".join(
            f"e{i} = {line}" if not line.startswith("datasets") else line
            for i, line in enumerate(x for x in doc if x.startswith(("datasets = [", "{name = ")))
        )
    )
    specs = [DatasetSpec.parse(e, tmp_path) for e in entries.pop("datasets")] + [
        DatasetSpec.parse(e, tmp_path) for e in entries.values()
    ]
    assert [(s.name, s.format) for s in specs] == [
        ("qasper", "qasper"),
        ("support-faq", "qa"),
        ("faq", "qa"),
        ("manuals", "qa"),
    ]
    faq = load_spec(specs[1])
    assert faq.examples[0].id == "faq-17" and faq.examples[0].doc_ids == ("help-center/signing-in",)
    with pytest.raises(DataError, match="evidence id 'kb-204' is not in the corpus"):  # that entry has no corpus file
        load_spec(specs[3])
    both = load("manuals", data / "manuals.csv", corpus=data / "kb.jsonl", options={"scope": "document"})
    assert [e.references for e in both.examples][1] == (
        "Chrome",
        "Firefox",
        "Safari",
    ) and both.retrieval_scope == "document"


# --- command line --------------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "evalsuite", *args], capture_output=True, text=True)


def test_cli_stats_of_a_team_dataset_and_retrieval_without_passages(tmp_path):
    faq = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    kb = write_jsonl(tmp_path / "kb.jsonl", KB)
    run = _cli("datasets", "stats", "support-faq", "--path", str(faq), "--corpus", str(kb), "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["dataset"] == "support-faq" and out["examples"] == 4 and out["passages"] == 4
    assert out["answer_types"] == {"free_form": 2, "short": 1, "yes_no": 1}
    csv_faq = write_csv(tmp_path / "h.csv", ["Frage", "Antwort"], [["Wo ist das Handbuch?", "Im Intranet"]])
    run = _cli(
        "datasets",
        "stats",
        "handbuch",
        "--path",
        str(csv_faq),
        "--format",
        "qa",
        "--columns",
        "question=Frage,answers=Antwort",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[1].split()[:3] == ["handbuch", "1", "0"]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"question": "Q?", "answers": ["A"]}])
    run = _cli("retrieval-eval", "pairs", "--path", str(pairs))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert "has no passages" in run.stderr and "--corpus" in run.stderr
    run = _cli("datasets", "stats", "support-faq")
    assert (
        run.returncode == 2
        and "unknown dataset 'support-faq'" in run.stderr
        and len(run.stderr.strip().splitlines()) == 1
    )
    run = _cli("datasets", "stats", "Support FAQ", "--path", str(faq))
    assert run.returncode == 2 and "lower-case letters" in run.stderr
