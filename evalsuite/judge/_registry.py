"""One registry of judges: every judge spec resolves here, built-ins the same way as third parties.

A spec is a judge name (``token-overlap``, ``learned-correctness``, ``learned-claims``) or ``<scheme>:<rest>``
(``bundled:...``, ``hf:...``, ``openai:...`` are G-Eval judges on that model spec;
``deepeval:<model spec>`` is deepeval's GEval on it). ``register_judge(name_or_scheme,
factory)`` adds one: a name's factory is called as ``factory(**options)``, a scheme's as
``factory(spec, **options)`` with the whole spec. A third-party package declares an entry
point in the group ``evalsuite.judges`` (name = judge name or scheme, value = factory); it is
loaded when its spec is first asked for. Any other scheme that names a model backend
(``evalsuite.models.backends()`` or the ``evalsuite.backends`` entry points) is a G-Eval judge.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any, Callable

from evalsuite.errors import ConfigError, SpecError
from evalsuite.models import backends, is_backend

ENTRY_POINT_GROUP = "evalsuite.judges"
ENGINES = ("native", "deepeval")
# Options a caller may pass to any judge (the matrix passes its judge settings to every
# G-Eval-capable spec); a judge whose factory has no such argument ignores them: a
# deterministic judge has one run per item and no scoring mode.
COMMON_OPTIONS = ("mode", "repeats", "temperature", "cache")

_FACTORIES: dict[str, Callable[..., Any]] = {}
_MODEL_JUDGE: list[Callable[..., Any]] = []  # the judge on a model spec of any backend


def register_judge(name_or_scheme: str, factory: Callable[..., Any]) -> None:
    """Make specs named ``name_or_scheme`` (or starting with ``name_or_scheme:``) resolve through ``factory``."""
    if not name_or_scheme or ":" in name_or_scheme or not name_or_scheme.strip() == name_or_scheme:
        raise ConfigError(f"judge name or scheme {name_or_scheme!r} must be a word without ':' or spaces")
    _FACTORIES[name_or_scheme] = factory


def register_model_judge(factory: Callable[..., Any]) -> None:
    """Make a spec whose scheme is a model backend (registered now or later) with no judge of its
    own resolve through ``factory(spec, **options)``; each backend registered now is listed under it."""
    _MODEL_JUDGE[:] = [factory]
    for scheme in backends():
        _FACTORIES.setdefault(scheme, factory)


def _entry_point(key: str) -> Callable[..., Any] | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == key:
            try:
                factory = ep.load()
            except ImportError as err:
                raise SpecError(
                    f"judge {key!r} (entry point {ep.value}) cannot be imported: {err}; "
                    f"install the package that provides it"
                ) from None
            register_judge(key, factory)
            return factory
    return None


def registered_judges() -> dict[str, Callable[..., Any] | str]:
    """Registered names and schemes -> factory; entry points not loaded yet -> their ``module:object``."""
    found: dict[str, Callable[..., Any] | str] = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found.update(_FACTORIES)
    return dict(sorted(found.items()))


def _is_model_scheme(scheme: str) -> bool:
    return is_backend(scheme)


def _call(factory: Callable[..., Any], args: tuple, options: dict[str, Any], spec: str) -> Any:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return factory(*args, **options)
    params = signature.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        unknown = [k for k in options if k not in params and k not in COMMON_OPTIONS]
        if unknown:
            known = ", ".join(
                k
                for k, p in params.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY or (p.default is not inspect.Parameter.empty)
            )
            raise ConfigError(
                f"judge {spec!r} takes no option {', '.join(map(repr, unknown))}; its options: {known or 'none'}"
            )
        options = {k: v for k, v in options.items() if k in params}
    return factory(*args, **options)


def make_judge(spec: str, *, engine: str = "native", **options: Any) -> Any:
    """The judge named by ``spec`` (see the module doc), made with ``options``.

    ``engine="deepeval"`` is ``make_judge("deepeval:" + spec)``: deepeval's GEval on that model.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(
            "empty judge spec; pass --judge reference, learned-correctness, learned-claims or a model spec "
            "such as bundled:smollm2-135m-instruct"
        )
    spec = spec.strip()
    if engine not in ENGINES:
        raise ConfigError(f"unknown judge engine {engine!r}: choose {' or '.join(ENGINES)}")
    if engine == "deepeval" and not spec.startswith("deepeval:"):
        spec = f"deepeval:{spec}"
    if ":" not in spec:
        factory = _FACTORIES.get(spec) or _entry_point(spec)
        if factory is None:
            names = ", ".join(k for k in registered_judges())
            raise SpecError(
                f"unknown judge {spec!r}: registered names and schemes are {names} (a scheme is written "
                f"<scheme>:<rest>, e.g. bundled:smollm2-135m-instruct)"
            )
        return _call(factory, (), options, spec)
    scheme = spec.split(":", 1)[0]
    factory = _FACTORIES.get(scheme) or _entry_point(scheme)
    if factory is None and _MODEL_JUDGE and _is_model_scheme(scheme):
        factory = _MODEL_JUDGE[0]  # a G-Eval judge on any model backend
    if factory is None:
        raise SpecError(
            f"unknown judge scheme {scheme!r} in {spec!r}: use token-overlap, learned-correctness, learned-claims, "
            f"a model spec "
            f"(bundled:, hf:, openai:), deepeval:<model spec>, or install the package that registers it "
            f"(entry point group {ENTRY_POINT_GROUP})"
        )
    return _call(factory, (spec,), options, spec)
