"""The study's three datasets: loaders for their released formats.

``load(name, path=None)`` reads the sample in the data root (``data_root()``, filled by
``evalsuite datasets download``), another file of the same release
(``path``), or a hub dataset (``path="hub:<id>"``, through ``datasets.load_dataset``).
"""
from __future__ import annotations

from ..errors import DataError
from ..records import Dataset
from . import bioasq, nq, qasper
from ._fetch import data_root, download
from ._fetch import require as data_files

LOADERS = {"qasper": qasper.load, "nq": nq.load, "bioasq": bioasq.load}
NAMES = tuple(LOADERS)
_memo: dict[tuple, Dataset] = {}


def load(name: str, path=None, *, split: str | None = None, skip_invalid: bool = False, hub_kwargs: dict | None = None) -> Dataset:
    """Load dataset ``name`` (qasper, nq or bioasq). Invalid records raise :class:`DataError`
    naming file, record and field, or with ``skip_invalid`` are left out and listed in ``Dataset.invalid``."""
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(NAMES)}")
    key = (name, str(path) if path is not None else f"data root {data_root()}", split, skip_invalid, repr(sorted((hub_kwargs or {}).items())))
    if key not in _memo:
        ds = LOADERS[name](path, split=split, skip_invalid=skip_invalid, hub_kwargs=hub_kwargs)
        if not ds.examples:
            raise DataError(f"{ds.source}: no valid questions (check the file is a {name} release file)")
        _memo[key] = ds
    return _memo[key]


__all__ = ["load", "NAMES", "LOADERS", "data_files", "data_root", "download"]
