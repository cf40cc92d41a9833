"""Corrupt generation and judge caches: quarantined, made anew with one warning, and the run goes on
with the same numbers (also when the damage shows on a later query, not at open)."""

from __future__ import annotations

import random
import sqlite3
import warnings
from pathlib import Path

import pytest

from evalsuite.judge import JudgeItem
from evalsuite.judge._cache import JudgeCache
from evalsuite.judge._judges import geval_judge
from evalsuite.models import GenerationSettings, load_model
from evalsuite.models._cache import GenerationCache
from evalsuite.records import Message, Prompt
from evalsuite.storage import CorruptionWarning, open_sqlite

BASE = "bundled:smollm2-135m-instruct"


def garble_header(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.write(b"this is not a sqlite database at all" * 3)


def garble_pages(path: Path) -> None:
    """Overwrite every page but the first (schema and header stay readable: open succeeds)."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    assert len(data) > 2 * page, "the test needs rows beyond the first page"
    rng = random.Random(0)
    data[page:] = bytes(rng.randrange(256) for _ in range(len(data) - page))
    path.write_bytes(bytes(data))


def quarantined(root: Path, store: str) -> list[Path]:
    folder = root / "quarantine" / store
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_generation_run_after_a_garbled_cache_file_gives_the_same_answers(tmp_path, monkeypatch):
    load_model(BASE, cache=False)  # the backend, from the shared model store, before the cache moves
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    prompts = [
        Prompt((Message("user", "Name one colour of the rainbow."),)),
        Prompt((Message("user", "What is two plus two?"),)),
    ]
    settings = GenerationSettings(max_new_tokens=8)
    first_model = load_model(BASE)
    first = [g.text for g in first_model.generate(prompts, settings)]
    first_model._cache.close()
    db = tmp_path / "generations" / "generations.sqlite"
    garble_header(db)

    with pytest.warns(CorruptionWarning) as caught:
        again = load_model(BASE)
        second = again.generate(prompts, settings)
    assert [g.text for g in second] == first
    assert again.stats["model_calls"] == 2 and not any(g.cached for g in second)  # computed again
    [moved] = quarantined(tmp_path, "generations")
    caught = [w for w in caught if issubclass(w.category, CorruptionWarning)]
    assert len(caught) == 1
    text = str(caught[0].message)
    assert str(db) in text and str(moved) in text and "building it again" in text
    assert (moved / "generations.sqlite").read_bytes().startswith(b"this is not a sqlite")
    third = load_model(BASE)  # the new file works: a rerun is answered from it
    assert [g.text for g in third.generate(prompts, settings)] == first and third.stats["cache_hits"] == 2


def test_judge_run_after_corruption_found_on_a_later_query(tmp_path, monkeypatch):
    load_model(BASE, batch_size=1, cache=False)  # the judge's backend, from the shared model store
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    cache_file = tmp_path / "judge" / "judge.sqlite"
    items = [
        JudgeItem("q1", "What is the capital of France?", ("Paris",), ("Paris is the capital of France.",), "Paris"),
        JudgeItem("q2", "Which organ makes insulin?", ("the pancreas",), (), "The liver."),
    ]
    # rows enough to fill several pages, then the run's own rows
    cache = JudgeCache(cache_file)
    for i in range(400):
        cache.put(f"filler-{i}", judge="other", criterion="accuracy", text="x" * 200, score=3.0)
    cache.close()
    judge = geval_judge(BASE, mode="logprobs", cache_path=str(cache_file), model_options={"cache": False})
    first = judge.judge(items)
    assert judge.stats["model_calls"] > 0
    judge._cache.close()
    garble_pages(cache_file)

    again = geval_judge(BASE, mode="logprobs", cache_path=str(cache_file), model_options={"cache": False})
    with pytest.warns(CorruptionWarning, match="the judge cache .*judge.sqlite failed verification") as caught:
        second = again.judge(items)  # opens fine; the damage shows on the first lookup
    caught = [w for w in caught if issubclass(w.category, CorruptionWarning)]
    assert len(caught) == 1
    assert [(v.accuracy, v.completeness) for v in second] == [(v.accuracy, v.completeness) for v in first]
    assert again.stats["model_calls"] == judge.stats["model_calls"]  # everything scored again
    assert len(quarantined(tmp_path, "judge")) == 1
    assert JudgeCache(cache_file).count() == again.stats["model_calls"]  # the new file holds this run's rows


def test_a_process_follows_a_file_another_process_healed(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    path = tmp_path / "generations" / "generations.sqlite"
    other = GenerationCache(path)  # a second worker with the file open
    other.put("k", "m", "p", {"text": "a"})
    other._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, which then breaks
    garble_header(path)
    with pytest.warns(CorruptionWarning):
        healed = GenerationCache(path)  # this worker finds it corrupt, moves it aside, makes a new file
    healed.put("k2", "m", "p", {"text": "b"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptionWarning)  # the other follows the new file: no second quarantine
        assert other.get("k2") == {"text": "b"} and other.get("k") is None
    assert len(quarantined(tmp_path, "generations")) == 1


def test_migrations_add_last_use_to_an_existing_cache(tmp_path):
    path = tmp_path / "generations.sqlite"
    old = sqlite3.connect(path)
    old.execute("""CREATE TABLE generations (key TEXT PRIMARY KEY, model TEXT NOT NULL, prompt TEXT NOT NULL,
                   value TEXT NOT NULL, created REAL NOT NULL)""")
    old.execute("INSERT INTO generations VALUES ('k', 'm', 'p', '{\"text\": \"a\"}', 1000.0)")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    cache = GenerationCache(path)
    assert cache._conn.execute("SELECT used FROM generations WHERE key = 'k'").fetchone() == (1000.0,)
    assert cache.get("k") == {"text": "a"}  # a hit stamps its last use
    assert cache._conn.execute("SELECT used FROM generations WHERE key = 'k'").fetchone()[0] > 1000.0
    assert cache._conn.execute("PRAGMA user_version").fetchone()[0] == 4
    db = open_sqlite(tmp_path / "other.sqlite", ("CREATE TABLE t (x)",))
    assert db.execute("PRAGMA user_version").fetchone() == (1,)
