"""Generation of a cell through the profile's ``serve`` server: the base model it serves, or the
cell's adapter loaded on it under a name derived from the adapter's content.

The adapter is trained here as always and stored in this machine's adapter store
(``cache_dir("adapters")``); the server loads it from ``serve.adapter_path`` (the store as the
server sees it) or, without that option, from the same path, so the store must be on a file
system both machines read. Errors name the ``serve`` option to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from evalsuite.errors import ConfigError, SpecError
from evalsuite.finetune import FinetuneConfig
from evalsuite.matrix._cells import BASELINE, CANDIDATE, Cell
from evalsuite.matrix._config import MatrixConfig, ServeConfig
from evalsuite.models import ServingError, adapter_digest, capabilities, load_model, parse_spec
from evalsuite.redaction import scrub_text
from evalsuite.storage import cache_dir

VLLM_HINT = "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve {base} --enable-lora --max-lora-rank {rank}"


def max_rank(config: MatrixConfig) -> int:
    """The largest LoRA rank the profile trains (its ``[finetune]`` table and every recipe)."""

    recipes = [r.name for r in config.recipes] or [None]
    return max(FinetuneConfig.from_dict(config.recipe_options(r)).lora_r for r in recipes)


@dataclass(frozen=True)
class ServedCell:
    """How one cell generates through the server."""

    model: Any  # evalsuite.models.Model of the served base or adapter
    url: str  # the server's API address, credentials removed
    base: str  # the name the server serves the base model under
    adapter_name: str | None = None  # the served name of the cell's adapter (None: the base)
    adapter_path: str | None = None  # where the server read it

    @property
    def base_spec(self) -> str:
        """The served base as a model spec (the throughput entry of every cell of that base)."""
        return f"openai:{self.url}#{self.base}"

    def record(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "base": self.base,
            "adapter_name": self.adapter_name,
            "adapter_path": self.adapter_path,
        }

    def close(self) -> None:
        """Unload the cell's adapter from the server (the base stays)."""
        if self.adapter_name is not None:
            try:
                self.model.backend.unload_adapter(self.adapter_name)
            except ServingError:
                pass  # the answers are in; a server that went away holds nothing to unload


def served_name(digest: str) -> str:
    """The name an adapter is served under: from its content digest, so equal adapters share one."""
    return f"evalsuite-{digest[:16]}"


def server_path(serve: ServeConfig, adapter_dir: str) -> str:
    """``adapter_dir`` (in this machine's adapter store) as the server reads it."""
    if serve.adapter_path is None:
        return str(Path(adapter_dir).resolve())

    store = cache_dir("adapters").resolve()
    try:
        relative = Path(adapter_dir).resolve().relative_to(store)
    except ValueError:
        raise ConfigError(
            f"serve adapter_path maps the adapter store {store}, but the adapter {adapter_dir} is not in "
            "it; drop serve.adapter_path and put the adapter where the server reads it"
        ) from None
    return str(PurePosixPath(serve.adapter_path, *relative.parts))


def serves_locally_built(spec: str) -> bool:
    """Whether a matrix model's cells go to the ``serve`` server: a base whose weights are local (bundled: or hf:)."""
    parsed = parse_spec(spec)
    return capabilities(parsed).weights is not None and parsed.adapter is None


def served_base_spec(cell: Cell, config: MatrixConfig) -> str | None:
    """The spec of the served base that generates ``cell`` (``openai:<url>#<served name>``), or None
    when the cell generates in-process; nothing is contacted."""
    serve = config.serve
    if serve is None or cell.kind == CANDIDATE or not serves_locally_built(cell.spec):
        return None
    base, url = serve.served(config.model(cell.model))
    return f"openai:{url}#{base}"


def needs_local_weights(cell: Cell, config: MatrixConfig) -> bool:
    """Whether ``cell`` needs its model's weights on this machine: not a baseline the server generates."""
    return not (cell.kind == BASELINE and served_base_spec(cell, config) is not None)


def served_cell(cell: Cell, config: MatrixConfig, adapter: Any = None) -> ServedCell | None:
    """The served model of ``cell`` (its adapter loaded on the server), or None when the cell
    generates in-process: no ``serve`` table, an API model, a candidate."""
    serve = config.serve
    if served_base_spec(cell, config) is None:
        return None

    entry = config.model(cell.model)
    base, url = serve.served(entry)
    shown = scrub_text(url)
    start = VLLM_HINT.format(base=base, rank=max_rank(config))
    options = {"api_key_env": serve.api_key_env, "timeout": serve.timeout, "concurrency": serve.concurrency}
    try:
        base_model = load_model(f"openai:{url}#{base}", **options)
    except SpecError as err:
        raise ConfigError(f"serve: {err}; set serve.api_key_env to the variable holding the server's key") from None
    backend = base_model.backend
    if not getattr(backend, "serves_adapters", False):
        raise ConfigError(
            f"serve url = {shown}: its backend cannot load adapters; serve needs an OpenAI-compatible server (vLLM)"
        )
    try:
        listed = backend.served_models()
    except ServingError as err:
        if err.reason == "unreachable":
            raise ConfigError(
                f"serve url = {shown}: no server answers there; start it ({start}) or fix serve.url"
            ) from None
        raise ConfigError(f"serve url = {shown}: {err}; check serve.url and serve.api_key_env") from None
    if base not in listed:
        raise ConfigError(
            f"serve: the server at {shown} serves {', '.join(map(repr, listed)) or 'no model'}, not {base!r} "
            f"(the base of {cell.model}, {entry.spec}); start it with `{start}` or set "
            f"serve.models.{cell.model} to the name it serves that base under"
        )
    if adapter is None:
        return ServedCell(base_model, shown, base)
    digest = adapter_digest(adapter.path)
    name = served_name(digest)
    path = server_path(serve, adapter.path)
    try:
        backend.load_adapter(name, path)
    except ServingError as err:
        if err.reason == "no-adapter-endpoint":
            raise ConfigError(
                f"serve url = {shown}: the server does not load LoRA adapters at run time ({err}); start "
                f"it with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True: `{start}`"
            ) from None
        if err.reason == "unreachable":
            raise ConfigError(
                f"serve url = {shown}: no server answers there; start it ({start}) or fix serve.url"
            ) from None
        raise ConfigError(
            f"serve: the server at {shown} could not load the adapter from {path} ({err}); it must read "
            "this machine's adapter store there: mount the store at that path, or set serve.adapter_path "
            "to where the server sees it"
        ) from None
    model = load_model(f"openai:{url}#{name}", lora_base=base, lora_digest=digest, lora_path=path, **options)
    return ServedCell(model, shown, base, name, path)
