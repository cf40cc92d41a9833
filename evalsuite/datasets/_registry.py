"""Dataset formats register a loader here; the built-ins (qasper, nq, bioasq, qa) use the same call.

A loader is a callable ``loader(spec, *, skip_invalid=False) -> Dataset`` that reads what the
:class:`~evalsuite.datasets.DatasetSpec` names (``spec.path``, ``spec.corpus``, ``spec.columns``,
``spec.split``, ``spec.options``). What a format accepts is declared when it registers, so a
matrix entry is checked before anything is read:

- ``options``: the option names it reads from ``spec.options``;
- ``corpus``: whether it takes a separate corpus file;
- ``columns``: the record fields a column mapping may name (empty: no mapping);
- ``default_files``: its files in the data root's ``<format>/`` folder, read when there is no path.

A third-party package declares an entry point in the group ``evalsuite.datasets``: its name is
the format, its value the loader; the same four declarations may be attributes of the loader.
It is looked up when its format is first asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

from ..errors import ConfigError

ENTRY_POINT_GROUP = "evalsuite.datasets"

Loader = Callable[..., Any]  # loader(spec, *, skip_invalid=False) -> Dataset


@dataclass(frozen=True)
class LoaderInfo:
    """A registered format: its loader and what a spec of it may carry."""

    format: str
    loader: Loader
    options: tuple[str, ...] = ()
    corpus: bool = False
    columns: tuple[str, ...] = ()
    default_files: tuple[str, ...] = ()


_LOADERS: dict[str, LoaderInfo] = {}


def register_loader(
    format: str,
    loader: Loader,
    *,
    options: Iterable[str] = (),
    corpus: bool = False,
    columns: Iterable[str] = (),
    default_files: Iterable[str] = (),
) -> LoaderInfo:
    """Make datasets of ``format`` load through ``loader`` (replacing an earlier registration)."""
    if not isinstance(format, str) or not format.strip() or format != format.strip():
        raise ConfigError(f"dataset format {format!r} must be a non-empty name without surrounding spaces")
    if not callable(loader):
        raise ConfigError(f"dataset format {format!r}: the loader must be callable, got {type(loader).__name__}")
    info = LoaderInfo(format, loader, tuple(options), bool(corpus), tuple(columns), tuple(default_files))
    _LOADERS[format] = info
    return info


def _entry_points():
    return entry_points(group=ENTRY_POINT_GROUP)


def _from_entry_point(format: str) -> LoaderInfo | None:
    for ep in _entry_points():
        if ep.name == format:
            try:
                loader = ep.load()
            except Exception as err:  # a broken plugin names itself, not a traceback
                raise ConfigError(
                    f"dataset format {format!r}: entry point {ep.value!r} of group {ENTRY_POINT_GROUP} "
                    f"failed to load ({type(err).__name__}: {err}); fix or uninstall that package"
                ) from None
            return register_loader(
                format,
                loader,
                options=getattr(loader, "options", ()),
                corpus=getattr(loader, "corpus", False),
                columns=getattr(loader, "columns", ()),
                default_files=getattr(loader, "default_files", ()),
            )
    return None


def formats() -> tuple[str, ...]:
    """Every format a spec may name: the registered ones and those of installed entry points, sorted."""
    return tuple(sorted(set(_LOADERS) | {ep.name for ep in _entry_points()}))


def is_format(name: str) -> bool:
    return name in _LOADERS or any(ep.name == name for ep in _entry_points())


def get_loader(format: str) -> LoaderInfo:
    """The registration of ``format``; an unknown format is a one-line error listing the known ones."""
    info = _LOADERS.get(format) or _from_entry_point(format)
    if info is None:
        raise ConfigError(
            f"unknown dataset format {format!r}: choose one of {', '.join(formats())} "
            f"(or install a package that registers it in the entry-point group {ENTRY_POINT_GROUP})"
        )
    return info
