"""Backends register a spec scheme ("hf", "openai", ...) here; built-ins use the same call.

A third-party package can register from its own import, or declare an entry point in the
group ``evalsuite.backends`` whose value is a factory; it is looked up when its scheme is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

from evalsuite.errors import SpecError

# factory(target, adapter_dir_or_None, options) -> Backend
Factory = Callable[[str, "str | None", dict[str, Any]], Any]

_FACTORIES: dict[str, Factory] = {}
_ADAPTERS_OK: dict[str, bool] = {}

SPEC_HELP = (
    "use bundled:smollm2-135m-instruct, bundled:gemma3-270m, hf:<hub id or path>, openai:<model> "
    "or openai:<base_url>#<model>, optionally followed by +lora:<adapter dir>"
)


def register_backend(scheme: str, factory: Factory, *, adapters: bool = False) -> None:
    """Make ``<scheme>:<target>`` specs load through ``factory``; ``adapters`` allows ``+lora:``."""
    _FACTORIES[scheme] = factory
    _ADAPTERS_OK[scheme] = adapters


def backends() -> list[str]:
    """The registered schemes, sorted."""
    return sorted(_FACTORIES)


@dataclass(frozen=True)
class ParsedSpec:
    scheme: str
    target: str
    adapter: str | None = None

    @property
    def base(self) -> str:
        return f"{self.scheme}:{self.target}"


def parse_spec(spec: str) -> ParsedSpec:
    """Split ``scheme:target[+lora:dir]``; a malformed spec raises a one-line SpecError."""
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"empty model spec: {SPEC_HELP}")
    spec = spec.strip()
    base, sep, adapter = spec.partition("+lora:")
    if sep and not adapter.strip():
        raise SpecError(f"model spec {spec!r} has '+lora:' with no adapter directory: write <base>+lora:<adapter dir>")
    scheme, colon, target = base.partition(":")
    if not colon or not scheme or not target.strip():
        raise SpecError(f"malformed model spec {spec!r}: {SPEC_HELP}")
    if "+" in target and not sep:
        raise SpecError(f"malformed model spec {spec!r}: the only composition is '+lora:<adapter dir>'")
    return ParsedSpec(scheme, target.strip(), adapter.strip() if sep else None)


def _entry_point_factory(scheme: str) -> Factory | None:
    for ep in entry_points(group="evalsuite.backends"):
        if ep.name == scheme:
            factory = ep.load()
            register_backend(scheme, factory, adapters=getattr(factory, "adapters", False))
            return factory
    return None


def build_backend(spec: str, options: dict[str, Any]) -> Any:
    parsed = parse_spec(spec)
    factory = _FACTORIES.get(parsed.scheme) or _entry_point_factory(parsed.scheme)
    if factory is None:
        raise SpecError(f"unknown model backend {parsed.scheme!r} in {spec!r}: {SPEC_HELP}")
    if parsed.adapter is not None and not _ADAPTERS_OK.get(parsed.scheme, False):
        raise SpecError(f"backend {parsed.scheme!r} cannot load LoRA adapters ({spec!r}): use a bundled: or hf: base")
    return factory(parsed.target, parsed.adapter, dict(options))
