"""Datasets: the study's three releases, a generic QA format for a team's own data, and a
registry of formats.

``load_spec(DatasetSpec(...))`` loads what a matrix entry names (``DatasetSpec.parse(entry,
base_dir)`` reads one); ``load(name, path=None, ...)`` is the same for a name and keyword
arguments. The built-in formats: ``qasper``, ``nq`` and ``bioasq`` (their released files,
hub layouts and exports, read from the data root ``data_root()`` by default, which
``evalsuite datasets download`` fills), and ``qa`` (see :mod:`evalsuite.datasets.qa`). Other
formats register with :func:`register_loader` or an entry point in the group
``evalsuite.datasets``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError, DataError
from ..records import Dataset, normalize_question
from . import bioasq, nq, qa, qasper
from ._common import HUB_PREFIX
from ._fetch import data_root, download, redact
from ._fetch import require as data_files
from ._registry import ENTRY_POINT_GROUP, LoaderInfo, formats, get_loader, register_loader
from ._spec import HUB_OPTIONS, SUBSET_OPTION, DatasetSpec, content_digest, load_spec

NAMES = ("qasper", "nq", "bioasq")  # the study's datasets, in the data root


def _release_loader(module):
    def loader(spec: DatasetSpec, *, skip_invalid: bool = False) -> Dataset:
        return module.load(spec.path, split=spec.split, skip_invalid=skip_invalid, hub_kwargs=spec.hub_kwargs())

    loader.__doc__ = module.__doc__
    return loader


def _qa_loader(spec: DatasetSpec, *, skip_invalid: bool = False) -> Dataset:
    return qa.load(
        spec.path,
        corpus=spec.corpus,
        columns=spec.columns,
        split=spec.split,
        scope=spec.option("scope", "corpus"),
        name=spec.name,
        skip_invalid=skip_invalid,
        hub_kwargs=spec.hub_kwargs(),
    )


_qa_loader.__doc__ = qa.__doc__

register_loader("qasper", _release_loader(qasper), default_files=qasper.DEFAULT_FILES)
register_loader("nq", _release_loader(nq), default_files=(nq.DEFAULT_FILE,))
register_loader("bioasq", _release_loader(bioasq), default_files=(bioasq.DEFAULT_FILE,))
register_loader("qa", _qa_loader, options=qa.OPTIONS, corpus=True, columns=qa.FIELDS)

_HUB_KWARGS = {"data_files": "data_files", "revision": "revision", "name": "config"}


def load(
    name: str,
    path=None,
    *,
    format: str | None = None,
    corpus=None,
    columns: Mapping[str, str] | Iterable = (),
    split: str | None = None,
    options: Mapping[str, Any] | Iterable = (),
    skip_invalid: bool = False,
    hub_kwargs: dict | None = None,
) -> Dataset:
    """Load dataset ``name``: a built-in one from the data root, or ``path`` (a file or ``hub:<id>``)
    read by ``format`` (default: ``name`` when it is a format, else ``qa``). Relative paths are read
    from the current folder. ``hub_kwargs`` (``data_files``, ``revision``, ``name``) go to
    ``datasets.load_dataset``. Invalid records raise :class:`DataError` naming file, record and
    field, or with ``skip_invalid`` are left out and listed in ``Dataset.invalid``."""
    opts = dict(options)
    for key, value in (hub_kwargs or {}).items():
        if key not in _HUB_KWARGS:
            raise ConfigError(f"hub argument {key!r} is not supported: use {', '.join(_HUB_KWARGS)}")
        opts[_HUB_KWARGS[key]] = value
    if path is not None and not str(path).startswith(HUB_PREFIX):
        p = Path(path).expanduser().absolute()
        if not p.exists():
            raise DataError(f"{p}: file not found (pass --path to an existing file)")
        path = str(p)
    if corpus is not None:
        c = Path(corpus).expanduser().absolute()
        if not c.exists():
            raise DataError(f"{c}: corpus file not found (pass --corpus to an existing file)")
        corpus = str(c)
    spec = DatasetSpec(name, format, path, corpus, tuple(dict(columns).items()), split, tuple(opts.items()))
    return load_spec(spec, skip_invalid=skip_invalid)


def require_passages(dataset: Dataset) -> Dataset:
    """``dataset`` if it has passages to retrieve from; else a one-line error saying how to add them."""
    if not dataset.passages:
        raise DataError(
            f"dataset {dataset.name!r} ({dataset.source}) has no passages, so nothing can be retrieved for it: "
            "add passages to its records or a corpus file (corpus = ... in the matrix, --corpus on the command line)"
        )
    return dataset


__all__ = [
    "DatasetSpec",
    "SUBSET_OPTION",
    "load_spec",
    "load",
    "register_loader",
    "get_loader",
    "formats",
    "LoaderInfo",
    "ENTRY_POINT_GROUP",
    "HUB_OPTIONS",
    "NAMES",
    "require_passages",
    "content_digest",
    "normalize_question",
    "redact",
    "data_files",
    "data_root",
    "download",
]
