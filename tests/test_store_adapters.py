"""The adapter store: a repeated request is a store hit that loads nothing heavy; a damaged adapter
is quarantined and trained again with the same numbers; older adapters are kept when whole."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from evalsuite.finetune import FinetuneConfig, train_adapter
from evalsuite.finetune._train import _open_adapter, request_key
from evalsuite.storage import CorruptionWarning, cache_dir

BASE = "bundled:smollm2-135m-instruct"
ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "faiss")


def tiny_config(seed: int) -> FinetuneConfig:
    return FinetuneConfig(
        epochs=1,
        per_device_batch_size=2,
        max_seq_length=64,
        lora_r=4,
        lora_alpha=8,
        target_modules=("q_proj",),
        seed=seed,
    )


def cleanup(key: str, config: FinetuneConfig) -> None:
    store = cache_dir("adapters")
    shutil.rmtree(store / key, ignore_errors=True)
    request = request_key(BASE, "nq", 4, config)
    if request:
        (store / "requests" / f"{request[0]}.json").unlink(missing_ok=True)
    for moved in (cache_dir("quarantine", "adapters")).glob(f"{key}-*"):
        shutil.rmtree(moved, ignore_errors=True)


@pytest.fixture(scope="module")
def trained():
    config = tiny_config(random.randrange(10**6, 10**9))  # a fresh key: this module trains for real
    result = train_adapter(BASE, "nq", 4, config, progress=False)
    yield result, config
    cleanup(result.key, config)


HIT = """
import json, sys
from evalsuite.finetune import FinetuneConfig, train_adapter
config = FinetuneConfig(epochs=1, per_device_batch_size=2, max_seq_length=64, lora_r=4, lora_alpha=8,
                        target_modules=("q_proj",), seed=int(sys.argv[1]))
r = train_adapter("bundled:smollm2-135m-instruct", "nq", 4, config, progress=False)
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers", "peft", "faiss") if m in sys.modules)
print(json.dumps({"cached": r.cached, "path": r.path, "key": r.key, "heavy": heavy}))
"""


def test_repeated_request_is_a_store_hit_without_heavy_imports(trained):
    result, config = trained
    assert not result.cached
    out = subprocess.run(
        [sys.executable, "-c", HIT, str(config.seed)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    hit = json.loads(out.stdout.strip().splitlines()[-1])
    assert hit == {"cached": True, "path": result.path, "key": result.key, "heavy": []}


def test_request_key_follows_the_dataset_files_and_the_request(tmp_path, trained):
    _, config = trained
    from evalsuite.datasets import data_files

    [source] = data_files("nq", "dev.jsonl")
    copy = tmp_path / "dev.jsonl"
    shutil.copyfile(source, copy)
    key, parts = request_key(BASE, "nq", 4, config, str(copy))
    assert set(parts) >= {"base_spec", "base", "dataset", "data", "size", "config", "versions", "loss", "code"}
    assert request_key(BASE, "nq", 4, config, str(copy))[0] == key
    assert request_key(BASE, "nq", 5, config, str(copy))[0] != key
    assert request_key(BASE, "nq", 4, tiny_config(config.seed + 1), str(copy))[0] != key
    with open(copy, "a", encoding="utf-8") as fh:  # the file changes: so does the key
        fh.write("\n")
    assert request_key(BASE, "nq", 4, config, str(copy))[0] != key
    assert request_key(BASE, "nq", 4, config, "hub:some/dataset") is None  # not cheap: no shortcut


def test_truncated_adapter_is_quarantined_and_trained_again_with_the_same_numbers(trained):
    result, config = trained
    weights = Path(result.path) / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    from evalsuite import artifacts as _artifacts

    _artifacts.forget(result.path)  # as a new process would see it
    with pytest.warns(CorruptionWarning) as caught:
        again = train_adapter(BASE, "nq", 4, config, progress=False)
    caught = [w for w in caught if issubclass(w.category, CorruptionWarning)]
    assert len(caught) == 1
    message = str(caught[0].message)
    [moved] = sorted(cache_dir("quarantine", "adapters").glob(f"{result.key}-*"))
    assert f"stored adapter ({BASE}, nq, 4 pairs) {result.path} failed verification" in message
    assert "adapter_model.safetensors is" in message and str(moved) in message
    assert not again.cached and again.path == result.path and again.key == result.key
    assert again.train_loss_first == pytest.approx(result.train_loss_first, rel=1e-3)
    assert again.train_loss_last == pytest.approx(result.train_loss_last, rel=1e-3)
    assert (moved / "adapter_model.safetensors").stat().st_size == len(data) // 3
    assert train_adapter(BASE, "nq", 4, config, progress=False).cached


def copy_entry(result, tmp_key: str) -> tuple[Path, dict]:
    """A copy of the stored adapter under another key, and its manifest (key changed, not yet written)."""
    src = Path(result.path)
    dst = src.parent / tmp_key
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["key"] = tmp_key
    return dst, manifest


def test_garbled_manifest_is_quarantined(trained):
    result, _ = trained
    dst, _ = copy_entry(result, f"{result.key}x1")
    try:
        (dst / "manifest.json").write_text('{"key": ')
        with pytest.warns(CorruptionWarning, match="manifest.json is unreadable"):
            assert _open_adapter(dst, "stored adapter") is None
        assert not dst.exists()
    finally:
        shutil.rmtree(dst, ignore_errors=True)
        for moved in cache_dir("quarantine", "adapters").glob(f"{result.key}x1-*"):
            shutil.rmtree(moved)


def test_adapter_stored_before_checksums_is_kept_when_whole(trained):
    result, _ = trained
    dst, manifest = copy_entry(result, f"{result.key}x2")
    try:
        files = manifest.pop("files")
        (dst / "manifest.json").write_text(json.dumps(manifest))
        with warnings.catch_warnings():
            warnings.simplefilter("error", CorruptionWarning)
            kept = _open_adapter(dst, "stored adapter")
        assert kept is not None and kept["files"] == files and kept["loss"] == manifest["loss"]
        # an older adapter whose weights were cut short is not
        (dst / "manifest.json").write_text(json.dumps(manifest))
        weights = dst / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-10])
        from evalsuite import artifacts as _artifacts

        _artifacts.forget(dst)
        with pytest.warns(CorruptionWarning, match="its header describes"):
            assert _open_adapter(dst, "stored adapter") is None
    finally:
        shutil.rmtree(dst, ignore_errors=True)
        for moved in cache_dir("quarantine", "adapters").glob(f"{result.key}x2-*"):
            shutil.rmtree(moved)
