"""The materialized bundled model: a copy with damaged weights is quarantined and materialized again,
and the model answers as before."""

from __future__ import annotations

import shutil

import pytest

from evalsuite import artifacts as _artifacts
from evalsuite.models import GenerationSettings, clear_loaded, load_model
from evalsuite.models._bundled import MARKER, materialize
from evalsuite.records import Message, Prompt
from evalsuite.storage import CorruptionWarning

NAME = "smollm2-135m-instruct"
PROMPT = Prompt((Message("user", "Name one colour of the rainbow."),))


def answer() -> str:
    clear_loaded()
    model = load_model(f"bundled:{NAME}", cache=False)
    text = model.generate([PROMPT], GenerationSettings(max_new_tokens=8))[0].text
    clear_loaded()
    return text


def test_truncated_weights_are_quarantined_and_materialized_again(tmp_path, monkeypatch):
    shared, _ = materialize(NAME)  # the copy in the session's cache, made once
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path))
    copy = tmp_path / "models" / shared.name
    try:
        shutil.copytree(shared, copy)
        assert materialize(NAME)[0] == copy
        before = answer()
        weights = copy / "model.safetensors"
        size = weights.stat().st_size
        with open(weights, "r+b") as fh:
            fh.truncate(size - 4096)
        _artifacts.forget(copy)  # as a new process sees it
        with pytest.warns(CorruptionWarning) as caught:
            path, _ = materialize(NAME)
        caught = [w for w in caught if issubclass(w.category, CorruptionWarning)]
        assert len(caught) == 1 and path == copy
        [moved] = sorted((tmp_path / "quarantine" / "models").iterdir())
        message = str(caught[0].message)
        assert f"materialized model bundled:{NAME} {copy} failed verification" in message
        assert f"model.safetensors is {size - 4096} bytes" in message and str(moved) in message
        assert (copy / MARKER).is_file() and (copy / "model.safetensors").stat().st_size == size
        assert answer() == before
    finally:
        shutil.rmtree(tmp_path / "models", ignore_errors=True)
        shutil.rmtree(tmp_path / "quarantine", ignore_errors=True)
