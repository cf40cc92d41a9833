"""DatasetSpec (matrix entries), its identity, load_spec, and the loader registry with entry points."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from evalsuite.datasets import (
    ENTRY_POINT_GROUP,
    DatasetSpec,
    data_root,
    formats,
    get_loader,
    load,
    load_spec,
    register_loader,
)
from evalsuite.errors import ConfigError, DataError
from evalsuite.records import Dataset, Example

QASPER_TRAIN = data_root() / "qasper" / "train.json"
FAQ = [
    {"id": "f1", "question": "How do I reset my password?", "answers": ["Use the reset link."], "evidence": ["kb-1"]},
    {"id": "f2", "question": "When are invoices sent?", "answers": ["Monthly."], "evidence": ["kb-2"]},
]
KB = [
    {"id": "kb-1", "title": "Sign-in", "text": "Reset your password with the reset link."},
    {"id": "kb-2", "title": "Billing", "text": "Invoices are sent monthly."},
]


@pytest.fixture
def team(tmp_path):
    """A matrix folder with a team's data files in data/."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in FAQ))
    (tmp_path / "data" / "kb.jsonl").write_text("".join(json.dumps(r) + "\n" for r in KB))
    return tmp_path


@pytest.fixture
def registry(monkeypatch):
    """Leave the registry as it was after a test that registers formats."""
    from evalsuite.datasets import _registry

    monkeypatch.setattr(_registry, "_LOADERS", dict(_registry._LOADERS))


def test_built_in_formats_are_registered_like_any_other():
    assert {"qasper", "nq", "bioasq", "qa"} <= set(formats())
    assert get_loader("nq").default_files == ("dev.jsonl",) and get_loader("qasper").default_files == (
        "train.json",
        "test.json",
    )
    qa = get_loader("qa")
    assert qa.corpus and qa.options == ("scope",) and "answers" in qa.columns and qa.default_files == ()
    with pytest.raises(
        ConfigError, match=r"unknown dataset format 'squad': choose one of .*bioasq.*qa.*evalsuite\.datasets"
    ):
        get_loader("squad")


# --- parsing matrix entries ------------------------------------------------------------------------


def test_parse_the_entry_forms(team):
    assert DatasetSpec.parse("qasper", team) == DatasetSpec("qasper", "qasper")
    faq = DatasetSpec.parse({"name": "support-faq", "path": "data/faq.jsonl", "corpus": "data/kb.jsonl"}, team)
    assert (
        faq.format == "qa"
        and faq.path == str(team / "data" / "faq.jsonl")
        and faq.corpus == str(team / "data" / "kb.jsonl")
    )
    full = DatasetSpec.parse({"name": "qasper-full", "format": "qasper", "path": str(QASPER_TRAIN)}, "/elsewhere")
    assert full.format == "qasper" and full.path == str(QASPER_TRAIN)
    hub = DatasetSpec.parse(
        {"name": "faq", "path": "hub:org/faq", "columns": {"question": "q", "answers": "a"}, "split": "test"}, team
    )
    assert (
        hub.hub and hub.format == "qa" and hub.columns == (("answers", "a"), ("question", "q")) and hub.split == "test"
    )
    assert hub == DatasetSpec("faq", path="hub:org/faq", columns={"answers": "a", "question": "q"}, split="test")
    assert len({faq, hub, full, DatasetSpec.parse("qasper", team)}) == 4  # frozen and hashable
    assert DatasetSpec.parse({"name": "nq"}, team).format == "nq"


@pytest.mark.parametrize(
    "entry, error, match",
    [
        (
            {"name": "faq", "path": "data/faq.jsonl", "corpsu": "data/kb.jsonl"},
            ConfigError,
            r"dataset 'faq': unknown key 'corpsu'",
        ),
        ({"path": "data/faq.jsonl"}, ConfigError, r"'name' is missing"),
        (
            {"name": "Support FAQ", "path": "data/faq.jsonl"},
            ConfigError,
            r"'Support FAQ' must be lower-case letters, digits",
        ),
        (
            {"name": "faq", "path": "data/nope.jsonl"},
            DataError,
            r"dataset 'faq': path .*data/nope\.jsonl: file not found \(relative paths are read from ",
        ),
        (
            {"name": "faq", "path": "data/faq.jsonl", "corpus": "kb.jsonl"},
            DataError,
            r"corpus .*/kb\.jsonl: file not found",
        ),
        ("faq", ConfigError, r"unknown dataset 'faq': choose one of qasper, nq, bioasq, or give a path"),
        (
            {"name": "q", "format": "qasper", "path": "data/faq.jsonl", "columns": {"question": "q"}},
            ConfigError,
            r"takes no column mapping",
        ),
        (
            {"name": "n", "format": "nq", "path": "data/faq.jsonl", "corpus": "data/kb.jsonl"},
            ConfigError,
            r"format 'nq' takes no corpus",
        ),
        (
            {"name": "faq", "path": "data/faq.jsonl", "split": "test"},
            ConfigError,
            r"split applies to hub:<id> paths only",
        ),
        (
            {"name": "faq", "path": "data/faq.jsonl", "options": {"data_files": "x"}},
            ConfigError,
            r"unknown option 'data_files' \(choose from scope, subset\)",
        ),
        ({"name": "faq", "path": "data/faq.jsonl", "format": "csvqa"}, ConfigError, r"unknown dataset format 'csvqa'"),
        (
            {"name": "faq", "path": "data/faq.jsonl", "columns": {"context": "c"}},
            ConfigError,
            r"unknown field 'context'",
        ),
        (
            {"name": "faq", "path": "data/faq.jsonl", "options": {"scope": {"a": 1}}},
            ConfigError,
            r"options 'scope' must be a string",
        ),
        ({"name": "faq", "path": 3}, ConfigError, r"path must be a string"),
        (["faq"], ConfigError, r"write a name"),
    ],
)
def test_bad_entries_are_one_line_errors_naming_the_key_or_file(team, entry, error, match):
    with pytest.raises(error, match=match) as err:
        DatasetSpec.parse(entry, team)
    assert "\n" not in str(err.value)


# --- identity ---------------------------------------------------------------------------------------


def test_identity_follows_the_content_not_the_name_or_place(team, tmp_path_factory):
    spec = DatasetSpec.parse({"name": "support-faq", "path": "data/faq.jsonl", "corpus": "data/kb.jsonl"}, team)
    elsewhere = tmp_path_factory.mktemp("copy")
    for f in ("faq.jsonl", "kb.jsonl"):
        (elsewhere / f).write_bytes((team / "data" / f).read_bytes())
    moved = DatasetSpec("renamed", path=str(elsewhere / "faq.jsonl"), corpus=str(elsewhere / "kb.jsonl"))
    assert spec.identity() == moved.identity() == spec.identity() and len(spec.identity()) == 32
    scoped = DatasetSpec("support-faq", path=spec.path, corpus=spec.corpus, options={"scope": "document"})
    assert scoped.identity() != spec.identity()
    no_corpus = DatasetSpec("support-faq", path=spec.path)
    assert no_corpus.identity() != spec.identity()
    kb = elsewhere / "kb.jsonl"
    kb.write_text(kb.read_text().replace("monthly", "weekly"))
    assert moved.identity() != spec.identity()
    os.utime(team / "data" / "faq.jsonl", ns=(1, 1))  # a new modification time, same content
    assert spec.identity() == DatasetSpec("support-faq", path=spec.path, corpus=spec.corpus).identity()


def test_identity_of_the_data_root_default_is_the_manifest(tmp_path, monkeypatch):
    before = {n: DatasetSpec(n).identity() for n in ("qasper", "nq", "bioasq")}
    assert len(set(before.values())) == 3
    monkeypatch.setenv("EVALSUITE_DATA", str(tmp_path / "empty"))  # nothing is read to compute it
    assert {n: DatasetSpec(n).identity() for n in before} == before
    assert DatasetSpec("qasper-sample", "qasper").identity() == before["qasper"]
    assert DatasetSpec("qasper-file", "qasper", path=str(QASPER_TRAIN)).identity() != before["qasper"]


def test_identity_of_hub_datasets(tmp_path):
    base = DatasetSpec("faq", path="hub:org/faq", columns={"question": "q", "answers": "a"}, split="test")
    assert (
        base.identity()
        == DatasetSpec("other", path="hub:org/faq", columns={"answers": "a", "question": "q"}, split="test").identity()
    )
    assert (
        base.identity()
        != DatasetSpec("faq", path="hub:org/faq", columns={"question": "q", "answers": "a"}, split="train").identity()
    )
    assert (
        base.identity()
        != DatasetSpec("faq", path="hub:org/faq", columns={"question": "q2", "answers": "a"}, split="test").identity()
    )
    assert (
        base.identity()
        != DatasetSpec("faq", path="hub:org/faq2", columns={"question": "q", "answers": "a"}, split="test").identity()
    )
    local = tmp_path / "faq.jsonl"
    local.write_text(json.dumps({"q": "Q?", "a": "A"}) + "\n")
    spec = DatasetSpec("faq", path="hub:json", options={"data_files": str(local)})
    first = spec.identity()
    local.write_text(json.dumps({"q": "Q?", "a": "B"}) + "\n")
    assert spec.identity() != first  # local data files are hashed by content
    one = DatasetSpec("faq", path="hub:json", options={"data_files": "https://alice:pw1@example.org/faq.jsonl"})
    two = DatasetSpec("faq", path="hub:json", options={"data_files": "https://alice:pw2@example.org/faq.jsonl"})
    assert one.identity() == two.identity()  # credentials are not part of the key
    assert (
        "pw1" not in json.dumps(one.to_dict())
        and one.to_dict()["options"]["data_files"] == "https://example.org/faq.jsonl"
    )


# --- load_spec ----------------------------------------------------------------------------------------


def test_load_spec_names_the_dataset_and_is_memoized_until_the_file_changes(team):
    spec = DatasetSpec.parse({"name": "support-faq", "path": "data/faq.jsonl", "corpus": "data/kb.jsonl"}, team)
    ds = load_spec(spec)
    assert ds.name == "support-faq" and [e.id for e in ds.examples] == ["f1", "f2"]
    assert ds.source == f"{spec.path} (corpus {spec.corpus})"
    assert (
        load_spec(DatasetSpec.parse({"name": "support-faq", "path": "data/faq.jsonl", "corpus": "data/kb.jsonl"}, team))
        is ds
    )
    faq = team / "data" / "faq.jsonl"
    faq.write_text(
        faq.read_text() + json.dumps({"id": "f3", "question": "Is there an app?", "answers": ["yes"]}) + "\n"
    )
    assert [e.id for e in load_spec(spec).examples] == ["f1", "f2", "f3"]
    full = load_spec(DatasetSpec("qasper-full", "qasper", path=str(QASPER_TRAIN)))
    assert full.name == "qasper-full" and full.examples == load("qasper", QASPER_TRAIN).examples
    assert load_spec(DatasetSpec("qasper")).name == "qasper" and len(load_spec(DatasetSpec("qasper")).examples) == 101
    with pytest.raises(ConfigError, match="takes a DatasetSpec"):
        load_spec("qasper")


def test_hub_source_never_shows_credentials(team, tmp_path):
    """A hub dataset read over HTTP with user:password@ in its data file URL (a real local server):
    the source and every message name it without the credentials, and the credentials reach the server."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "faq.jsonl").write_text(
        "".join(json.dumps({"q": r["question"], "a": r["answers"][0]}) + "\n" for r in FAQ)
    )
    seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def send_head(self):
            seen.append(self.headers.get("Authorization"))
            return super().send_head()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    script = textwrap.dedent(f"""
        from evalsuite.datasets import DatasetSpec, load_spec
        spec = DatasetSpec("faq", path="hub:json", columns={{"question": "q", "answers": "a"}},
                           options={{"data_files": "http://reader:s3cr3t@127.0.0.1:{port}/faq.jsonl"}})
        ds = load_spec(spec)
        print(len(ds.examples), ds.source)
    """)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}  # a local URL, not the hub
    env["HF_DATASETS_CACHE"] = str(tmp_path / "hf")
    try:
        ok = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "evalsuite",
                "datasets",
                "stats",
                "faq",
                "--path",
                "hub:json",
                "--columns",
                "question=q,answers=a",
                "--option",
                f"data_files=http://reader:s3cr3t@127.0.0.1:{port}/missing.jsonl",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout.strip() == f"2 hub:json (split train, data_files http://127.0.0.1:{port}/faq.jsonl)"
    assert (
        bad.returncode == 2
        and f"127.0.0.1:{port}/missing.jsonl" in bad.stderr
        and len(bad.stderr.strip().splitlines()) == 1
    )
    assert "s3cr3t" not in ok.stdout + ok.stderr + bad.stdout + bad.stderr
    assert seen and all(a == "Basic cmVhZGVyOnMzY3IzdA==" for a in seen)  # reader:s3cr3t
    cached = [f for f in (tmp_path / "hf").rglob("*") if f.is_file()]  # the datasets library's own cache
    assert cached and not [f for f in cached if b"s3cr3t" in f.read_bytes() or b"cmVhZGVyOnMzY3IzdA" in f.read_bytes()]


# --- registry and entry points -------------------------------------------------------------------------


def test_register_loader_in_process(team, registry):
    calls = []

    def upper(spec, *, skip_invalid=False):
        calls.append((spec.name, spec.option("shout"), skip_invalid))
        base = load(spec.name, spec.path, format="qa", corpus=Path(spec.path).with_name("kb.jsonl"))
        return Dataset(
            "ignored",
            base.source,
            tuple(Example(e.id, spec.name, e.question.upper(), e.references, e.answer_type) for e in base.examples),
            (),
        )

    register_loader("upper-qa", upper, options=("shout",))
    spec = DatasetSpec.parse(
        {"name": "loud", "format": "upper-qa", "path": "data/faq.jsonl", "options": {"shout": True}}, team
    )
    ds = load_spec(spec, skip_invalid=True)
    assert (
        ds.name == "loud"
        and ds.examples[0].question == "HOW DO I RESET MY PASSWORD?"
        and calls == [("loud", True, True)]
    )
    with pytest.raises(ConfigError, match=r"unknown option 'whisper' \(choose from shout, subset\)"):
        DatasetSpec("loud", "upper-qa", path=spec.path, options={"whisper": 1})
    register_loader("broken", lambda spec, skip_invalid=False: ["not", "a", "dataset"])
    with pytest.raises(ConfigError, match="returned list, not an evalsuite.records.Dataset"):
        load_spec(DatasetSpec("b", "broken", path=spec.path))


def test_third_party_loader_through_an_entry_point(team, tmp_path, monkeypatch, registry):
    site = tmp_path / "site"
    site.mkdir()
    (site / "tsvqa_plugin.py").write_text(
        textwrap.dedent('''
        """Questions and answers as tab-separated lines: question<TAB>answer."""
        from evalsuite.records import Dataset, Example

        def load(spec, *, skip_invalid=False):
            rows = [line.split("\\t") for line in open(spec.path, encoding="utf-8").read().splitlines() if line.strip()]
            sep = spec.option("separator", ";")
            examples = tuple(Example(f"tsv-{i}", spec.name, q, tuple(a.split(sep)), "short") for i, (q, a) in
            enumerate(rows))
            return Dataset(spec.name, spec.path, examples, ())

        load.options = ("separator",)
    ''')
    )
    dist = site / "tsvqa_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tsvqa-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntsvqa = tsvqa_plugin:load\n")
    assert "tsvqa" not in formats()
    monkeypatch.syspath_prepend(str(site))
    assert "tsvqa" in formats()
    (team / "data" / "helpdesk.tsv").write_text("Where is the printer?\tRoom 4;second floor\nWho fixes it?\tIT\n")
    spec = DatasetSpec.parse(
        {"name": "helpdesk", "format": "tsvqa", "path": "data/helpdesk.tsv", "options": {"separator": ";"}}, team
    )
    ds = load_spec(spec)
    assert ds.name == "helpdesk" and [e.references for e in ds.examples] == [("Room 4", "second floor"), ("IT",)]
    with pytest.raises(ConfigError, match=r"unknown option 'sep' \(choose from separator, subset\)"):
        DatasetSpec("helpdesk", "tsvqa", path=spec.path, options={"sep": ","})
    # the command line takes the plugin's format too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalsuite",
            "datasets",
            "stats",
            "helpdesk",
            "--path",
            str(team / "data" / "helpdesk.tsv"),
            "--format",
            "tsvqa",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["examples"] == 2
