"""Backends register a spec scheme ("hf", "openai", ...) here, with what they can do; built-ins use the same call.

A third-party package can register from its own import, or declare an entry point in the
group ``evalsuite.backends`` whose value is a factory; it is looked up when its scheme is asked for,
and the factory's ``capabilities`` attribute (a :class:`BackendCapabilities`) says what it can do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any, Callable

from evalsuite.errors import SpecError

# factory(target, adapter_dir_or_None, options) -> Backend
Factory = Callable[[str, "str | None", dict[str, Any]], Any]

SPEC_HELP = (
    "use bundled:smollm2-135m-instruct, bundled:gemma3-270m, hf:<hub id or path>, openai:<model> "
    "or openai:<base_url>#<model>, optionally followed by +lora:<adapter dir>"
)


@dataclass(frozen=True)
class ParsedSpec:
    """A model spec parsed once: ``<scheme>:<target>`` (the base), and the LoRA adapter folder if any."""

    scheme: str
    target: str
    adapter: str | None = None

    @property
    def base(self) -> str:
        """The spec without its adapter: ``<scheme>:<target>``."""
        return f"{self.scheme}:{self.target}"

    @property
    def spec(self) -> str:
        """The whole spec, as ``parse_spec`` reads it back."""
        return self.base if self.adapter is None else f"{self.base}+lora:{self.adapter}"

    def with_adapter(self, adapter: Any) -> "ParsedSpec":
        """This base with the LoRA adapter folder ``adapter`` (a path) on it."""
        return replace(self, adapter=str(adapter))

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class Weights:
    """Where a base model's transformers files are, and the identity of what they hold."""

    path: str
    identity: str


def always_available(spec: ParsedSpec) -> str | None:
    """The availability check of a backend with nothing to fetch (an in-process generator)."""
    return None


@dataclass(frozen=True)
class BackendCapabilities:
    """What a backend can do, declared when it registers (the defaults: a remote backend that
    loads no adapters, cannot be fine-tuned, and implements ``generate_batch`` alone).

    ``local``: the model runs in this process (its speed is estimated from its weights' size).
    ``adapters``: ``<base>+lora:<dir>`` specs load. ``fine_tunable``: ``evalsuite finetune``
    trains an adapter for it; it then needs ``weights(target, revision) -> Weights``, a folder
    of transformers files. ``logprobs``: answers can carry the top tokens' log probabilities;
    ``top_logprobs``: the most alternatives per step it returns (None: as many as asked).
    ``availability(parsed_spec) -> reason or None``: an offline check that the spec can run here.
    What the wrapper may use of the backend object: ``tokenizer`` (its ``tokenizer`` attribute is
    the one it counts tokens with), ``concurrent`` (its ``concurrency`` attribute says how many calls
    may run at once; otherwise one), ``length_sorting`` (its ``sort_key(prompt)`` orders prompts by
    length), ``batch_dependent`` (an answer may depend on its batch; its ``batch_invariant``
    attribute says whether it does now, and its ``batch_size`` option 1 makes it not), ``seeded_sampling`` (its
    ``generate_seeded(prompt,
    settings, seeds)`` draws every seed's sample from one reading of the prompt).
    """

    local: bool = False
    adapters: bool = False
    fine_tunable: bool = False
    logprobs: bool = False
    top_logprobs: int | None = None
    availability: Callable[[ParsedSpec], "str | None"] = always_available
    weights: Callable[[str, "str | None"], Weights] | None = None
    tokenizer: bool = False
    concurrent: bool = False
    length_sorting: bool = False
    batch_dependent: bool = False
    seeded_sampling: bool = False

    def __post_init__(self) -> None:
        if self.fine_tunable and self.weights is None:
            raise SpecError(
                "a fine-tunable backend declares where its weights are: pass "
                "BackendCapabilities(fine_tunable=True, weights=<callable(target, revision) -> Weights>)"
            )
        if self.top_logprobs is not None and self.top_logprobs < 1:
            raise SpecError(f"top_logprobs must be >= 1 or None (no limit), got {self.top_logprobs}")


DEFAULT_CAPABILITIES = BackendCapabilities()

_FACTORIES: dict[str, Factory] = {}
_CAPABILITIES: dict[str, BackendCapabilities] = {}


def register_backend(
    scheme: str, factory: Factory, *, capabilities: BackendCapabilities | None = None, adapters: bool | None = None
) -> None:
    """Make ``<scheme>:<target>`` specs load through ``factory``, which can do what ``capabilities``
    says (default: the factory's ``capabilities`` attribute, else :class:`BackendCapabilities`());
    ``adapters=True`` is short for capabilities that allow ``+lora:``."""
    if not scheme or ":" in scheme or "+" in scheme or scheme.strip() != scheme:
        raise SpecError(f"backend scheme {scheme!r} must be a word without ':', '+' or spaces")
    caps = capabilities if capabilities is not None else getattr(factory, "capabilities", None)
    if caps is None:
        caps = DEFAULT_CAPABILITIES
    if not isinstance(caps, BackendCapabilities):
        raise SpecError(
            f"backend {scheme!r}: capabilities must be an evalsuite.models.BackendCapabilities, "
            f"not {type(caps).__name__}"
        )
    if adapters is not None:
        caps = replace(caps, adapters=bool(adapters))
    _FACTORIES[scheme] = factory
    _CAPABILITIES[scheme] = caps


def backends() -> list[str]:
    """The registered schemes, sorted."""
    return sorted(_FACTORIES)


def parse_spec(spec: "str | ParsedSpec") -> ParsedSpec:
    """Split ``scheme:target[+lora:dir]``; a malformed spec raises a one-line SpecError."""
    if isinstance(spec, ParsedSpec):
        return spec
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


def with_adapter(spec: "str | ParsedSpec", adapter: Any) -> str:
    """The spec of ``spec``'s base with the LoRA adapter folder ``adapter`` on it."""
    return parse_spec(spec).with_adapter(adapter).spec


def _entry_point_factory(scheme: str) -> Factory | None:
    for ep in entry_points(group="evalsuite.backends"):
        if ep.name == scheme:
            factory = ep.load()
            legacy = getattr(factory, "adapters", None)
            register_backend(
                scheme,
                factory,
                adapters=None if getattr(factory, "capabilities", None) is not None or legacy is None else bool(legacy),
            )
            return factory
    return None


def _factory(scheme: str) -> Factory | None:
    return _FACTORIES.get(scheme) or _entry_point_factory(scheme)


def is_backend(scheme: str) -> bool:
    """Whether ``scheme`` names a registered backend (or one an installed entry point provides)."""
    return scheme in _FACTORIES or any(ep.name == scheme for ep in entry_points(group="evalsuite.backends"))


def capabilities(spec_or_scheme: "str | ParsedSpec") -> BackendCapabilities:
    """What the backend of a spec (``hf:gpt2``, a :class:`ParsedSpec`) or of a scheme (``hf``) can do;
    an unknown scheme is a one-line SpecError."""
    if isinstance(spec_or_scheme, ParsedSpec):
        scheme = spec_or_scheme.scheme
    elif isinstance(spec_or_scheme, str) and ":" in spec_or_scheme:
        scheme = parse_spec(spec_or_scheme).scheme
    else:
        scheme = str(spec_or_scheme).strip()
    if _factory(scheme) is None:
        raise SpecError(
            f"unknown model backend {scheme!r}: {SPEC_HELP}, or register it with evalsuite.models.register_backend"
        )
    return _CAPABILITIES[scheme]


def build_backend(spec: "str | ParsedSpec", options: dict[str, Any]) -> Any:
    parsed = parse_spec(spec)
    written = spec if isinstance(spec, str) else parsed.spec
    factory = _factory(parsed.scheme)
    if factory is None:
        raise SpecError(f"unknown model backend {parsed.scheme!r} in {written!r}: {SPEC_HELP}")
    if parsed.adapter is not None and not _CAPABILITIES[parsed.scheme].adapters:
        raise SpecError(
            f"backend {parsed.scheme!r} cannot load LoRA adapters ({written!r}): use a bundled: or hf: base"
        )
    return factory(parsed.target, parsed.adapter, dict(options))
