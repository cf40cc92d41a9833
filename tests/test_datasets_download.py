"""The data root and ``evalsuite datasets download`` from a mirror folder.

The mirror here is made by the test from the real data root (files copied at run time),
so nothing of the data sets is committed.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from evalsuite.datasets import data_root, download, load
from evalsuite.datasets._fetch import manifest
from evalsuite.errors import ConfigError, DataError


@pytest.fixture
def mirror(tmp_path):
    """A mirror folder holding the nq files of the real data root."""
    folder = tmp_path / "mirror"
    shutil.copytree(data_root() / "nq", folder / "nq")
    return folder


def test_download_verifies_and_skips_what_is_present(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_DATA", str(tmp_path / "root"))
    first = download("nq", str(mirror), progress=False)
    assert sorted(r.name for r in first) == sorted(manifest()["nq"]) and {r.status for r in first} == {"fetched"}
    assert load("nq").source == str(tmp_path / "root" / "nq" / "dev.jsonl")
    again = download("nq", str(mirror), progress=False)
    assert {r.status for r in again} == {"present"}


def test_a_corrupt_mirror_file_is_refused_and_leaves_nothing(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_DATA", str(tmp_path / "root"))
    dev = mirror / "nq" / "dev.jsonl"
    data = bytearray(dev.read_bytes())
    data[100] ^= 1
    dev.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum mismatch"):
        download("nq", str(mirror), progress=False)
    assert not (tmp_path / "root" / "nq" / "dev.jsonl").exists()
    assert not (tmp_path / "root" / "nq" / "dev.jsonl.part").exists()


def test_a_missing_dataset_is_one_line_naming_the_download_command(tmp_path):
    env = {"EVALSUITE_DATA": str(tmp_path / "empty"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "evalsuite", "datasets", "stats", "bioasq"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "evalsuite datasets download bioasq --mirror" in proc.stderr


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        download("squad", str(tmp_path))
    with pytest.raises(ConfigError, match="no such folder"):
        download("nq", str(tmp_path / "nowhere"))
