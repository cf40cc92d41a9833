"""The evaluation matrix as data: named profiles in a TOML file, each a difference from ``[default]``.

A profile fixes which models, datasets, fine-tuning sizes and judges form the matrix, and
how each cell is run. :func:`load_config` reads a profile, applies command-line overrides,
validates every value and returns a frozen :class:`MatrixConfig`. Unknown keys are errors
that name the key and the file, so a typo never silently falls back to a default.

One top-level table is not a profile: ``[prices]``, what an API model's tokens cost, read by
:func:`read_prices` for the cost column of a dry run (``evalsuite run --dry-run``)::

    [prices]                     # currency units per million tokens; none is built in
    "openai:gpt-4" = {prompt = 30.0, completion = 60.0}
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from evalsuite.datasets import SUBSET_OPTION, DatasetSpec, content_digest
from evalsuite.errors import ConfigError, EvalsuiteError, SpecError
from evalsuite.finetune import FinetuneConfig
from evalsuite.models import parse_spec
from evalsuite.records import stable_hash
from evalsuite.redaction import scrub

DATASETS = ("qasper", "nq", "bioasq")  # the study's datasets, read from the data root
JUDGE_MODES = ("logprobs", "sample")
DEFAULT_MARGIN = 0.75  # the margin of the [default] profile of test_cases/matrix.toml
# ``margin = "auto"`` when the judge has no repeated runs to measure its spread with
AUTO_MARGIN_FALLBACK = 0.25


@dataclass(frozen=True)
class ModelEntry:
    """A model of the matrix: its spec, the short name used in cell ids, and its role."""

    spec: str
    name: str
    baseline_only: bool = False  # an un-tuned reference (e.g. GPT-4): only its ft0 cells run


RECIPE_ALIASES = {"r": "lora_r", "alpha": "lora_alpha", "dropout": "lora_dropout"}  # the study's names


@dataclass(frozen=True)
class Recipe:
    """A named fine-tuning recipe: options of :class:`evalsuite.finetune.FinetuneConfig` over the
    profile's ``[finetune]`` table. Each fine-tuned size is trained once per recipe."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()  # sorted (option, value) pairs, aliases resolved


SERVE_KEYS = ("url", "models", "adapter_path", "api_key_env", "timeout", "concurrency")


@dataclass(frozen=True)
class ServeConfig:
    """``[<profile>.serve]``: generation of the base and fine-tuned cells of local models
    (``bundled:``, ``hf:``) through an OpenAI-compatible server that serves LoRA adapters by name
    (vLLM with ``--enable-lora``). Adapters are still trained here; the server must read them."""

    url: str  # base URL of the server's API, e.g. http://gpu-host:8000/v1
    # matrix model name -> (name the server serves that base under, its own server URL or None for ``url``)
    models: tuple[tuple[str, str, str | None], ...] = ()
    adapter_path: str | None = None  # the server's path of this machine's adapter store; None: the same path
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the server's key (a loopback server needs none)
    timeout: float = 600.0  # seconds per request
    concurrency: int = 8  # requests in flight

    def served(self, model: ModelEntry) -> tuple[str, str]:
        """(the name the server serves ``model``'s base under, that server's URL)."""
        for name, served, url in self.models:
            if name == model.name:
                return served, url or self.url
        return model.spec.split(":", 1)[1], self.url  # hf:<hub id>: vLLM serves it under the id

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "adapter_path": self.adapter_path,
            "api_key_env": self.api_key_env,
            "timeout": self.timeout,
            "concurrency": self.concurrency,
            "models": {
                name: (served if url is None else {"name": served, "url": url}) for name, served, url in self.models
            },
        }


def _serve_config(raw: Any, where: str) -> ServeConfig | None:
    if raw is None or isinstance(raw, ServeConfig):
        return raw
    fix = 'write [<profile>.serve] with url = "http://<host>:8000/v1"'
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: 'serve' must be a table; {fix}")
    for key in raw:
        if key not in SERVE_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r} in [serve]; allowed: {', '.join(SERVE_KEYS)}")

    def url_of(value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}: serve {key} = {scrub(value)!r} must be the http(s) base URL of the server's API; {fix}"
            )
        return value.rstrip("/")

    url = url_of(raw.get("url"), "url")
    models = []
    table = raw.get("models") or {}
    if not isinstance(table, Mapping):
        raise ConfigError(f'{where}: serve models must be a table of <model name> = "<served name>"')
    for name, entry in table.items():
        if isinstance(entry, str) and entry:
            models.append((name, entry, None))
        elif isinstance(entry, Mapping) and isinstance(entry.get("name"), str) and set(entry) <= {"name", "url"}:
            models.append(
                (name, entry["name"], url_of(entry["url"], f"models.{name}.url") if entry.get("url") else None)
            )
        else:
            raise ConfigError(
                f"{where}: serve models.{name} must be the name the server serves that model under, "
                'or {name = "<served name>", url = "http://<host>:<port>/v1"}'
            )
    adapter_path = raw.get("adapter_path")
    if adapter_path is not None and (not isinstance(adapter_path, str) or not adapter_path.startswith("/")):
        raise ConfigError(
            f"{where}: serve adapter_path = {adapter_path!r} must be the absolute path at which the "
            "server reads this machine's adapter store"
        )
    api_key_env = raw.get("api_key_env", "OPENAI_API_KEY")
    if not isinstance(api_key_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
        raise ConfigError(
            f"{where}: serve api_key_env must name an environment variable (the key itself never "
            "goes into a matrix file)"
        )
    timeout, concurrency = raw.get("timeout", 600.0), raw.get("concurrency", 8)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"{where}: serve timeout = {timeout!r} must be a number of seconds > 0")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"{where}: serve concurrency = {concurrency!r} must be a whole number >= 1")
    return ServeConfig(
        url,
        tuple(sorted(models)),
        adapter_path.rstrip("/") if adapter_path else None,
        api_key_env,
        float(timeout),
        concurrency,
    )


@dataclass(frozen=True)
class MatrixConfig:
    """Everything that decides the cells of a run and their results (hashed into the run id).

    The defaults are the ``[default]`` profile of ``test_cases/matrix.toml``: a matrix file of
    one's own that leaves a key out gets that profile's value (a test holds the two, and the
    README's table of defaults, together)."""

    profile: str = "default"
    models: tuple[ModelEntry, ...] = (ModelEntry("bundled:smollm2-135m-instruct", "smollm2"),)
    datasets: tuple[DatasetSpec, ...] = tuple(DatasetSpec(name) for name in DATASETS)
    sizes: tuple[int, ...] = (0, 5, 12, 30)
    eval_limit: int = 40  # eval questions per dataset (the first N of the eval split)
    top_k: int = 5  # retrieved chunks per question
    max_new_tokens: int = 40
    # the judge that qualifies against human judgments gates; the token-overlap judge is reported
    judges: tuple[str, ...] = ("learned-correctness", "token-overlap")
    judge_mode: str = "logprobs"
    judge_repeats: int = 1
    qualify_limit: int | None = (
        None  # score only this many answers of the human set (an API judge's budget); None = all
    )
    margin: float | str = DEFAULT_MARGIN  # a number, or "auto" = twice the judge's measured repeat std
    max_unscored: float = 0.2  # a baseline is invalid when a larger share of its verdicts is unscored
    # a gated comparison needs this many questions scored in both arms (and at most 5% unscored in either)
    min_paired: int = 10
    seed: int = 0
    # a quick run's retrieval corpus: only the passages of the questions this run uses (its eval
    # questions and the pool pairs of its largest size) plus this many seeded distractors; None = all
    corpus_subset: int | None = 1000
    # options of evalsuite.finetune.FinetuneConfig, sorted pairs
    finetune: tuple[tuple[str, Any], ...] = (("epochs", 1), ("max_seq_length", 512))
    recipes: tuple[Recipe, ...] = ()  # named recipes over [finetune]; none = one recipe, the table itself
    serve: ServeConfig | None = None  # generate through a server of LoRA adapters (see ServeConfig)
    candidate: str | None = None  # a user-supplied model or adapter gated against the baseline
    candidate_base: str | None = None  # the matrix model whose baseline the candidate is compared with
    baseline_from: str | None = None  # a stored run or baseline file used instead of computing baselines

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def finetune_options(self) -> dict[str, Any]:
        """The ``[finetune]`` table without ``train_file`` (the options of FinetuneConfig)."""
        return {k: v for k, v in self.finetune if k != "train_file"}

    def recipe_options(self, recipe: str | None) -> dict[str, Any]:
        """The fine-tuning options of ``recipe`` (None: the profile's ``[finetune]`` table alone)."""
        if recipe is None:
            return self.finetune_options
        for r in self.recipes:
            if r.name == recipe:
                return {**self.finetune_options, **dict(r.options)}
        raise ConfigError(
            f"no recipe named {recipe!r} in profile {self.profile!r}; "
            f"known: {', '.join(r.name for r in self.recipes) or 'none'}"
        )

    @property
    def train_file(self) -> str | None:
        """``[finetune] train_file``: fine-tuning pairs of the user's own instead of the dataset's pool."""
        return dict(self.finetune).get("train_file")

    @property
    def dataset_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.datasets)

    def dataset(self, name: str) -> DatasetSpec:
        """The spec of dataset ``name`` as this profile loads it (with its corpus subset, if any)."""
        for d in self.datasets:
            if d.name == name:
                if self.corpus_subset is None:
                    return d
                subset = (self.eval_limit, max(self.sizes), self.corpus_subset, self.seed)
                return dataclasses.replace(d, options=tuple(sorted((*d.options, (SUBSET_OPTION, subset)))))
        raise ConfigError(
            f"no dataset named {name!r} in profile {self.profile!r}; known: {', '.join(self.dataset_names)}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["finetune"] = dict(self.finetune)
        if self.recipes:
            data["recipes"] = [{"name": r.name, **dict(r.options)} for r in self.recipes]
        else:  # a profile without recipes keeps its run id, cells and stored results
            del data["recipes"]
        if self.serve is not None:
            data["serve"] = self.serve.to_dict()
        else:  # likewise a profile that generates in-process
            del data["serve"]
        data["datasets"] = list(self.dataset_names)
        data["dataset_specs"] = [d.to_dict() for d in self.datasets]
        return data

    def to_json(self) -> str:
        """Sorted JSON: the canonical form that is hashed into the run id."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MatrixConfig":
        """The configuration written by :meth:`to_dict` (e.g. the ``config`` of a ``results.json``)."""
        values = {k: v for k, v in dict(data).items() if k not in ("profile", "dataset_specs")}
        values["datasets"] = [
            {k: v for k, v in spec.items() if v not in (None, {}, [])}
            for spec in data.get("dataset_specs") or [{"name": n} for n in data.get("datasets", [])]
        ]
        return build_config(str(data.get("profile", "default")), values, where="results.json config")

    def run_id(self) -> str:
        """Deterministic run id: the same configuration finds the same run folder (and resumes it).

        Datasets count by name and content (not by where their files are); no credential goes
        into a folder name."""
        data = self.to_dict()
        data["dataset_specs"] = [[d.name, d.identity()] for d in self.datasets]
        if self.train_file:
            data["finetune"]["train_file"] = content_digest(self.train_file)
        return f"{self.profile}-{stable_hash(scrub(data), 10)}"

    def model(self, name: str) -> ModelEntry:
        for m in self.models:
            if m.name == name:
                return m
        raise ConfigError(
            f"no model named {name!r} in profile {self.profile!r}; known: {', '.join(m.name for m in self.models)}"
        )


def _validate(config: "MatrixConfig") -> None:
    """Every check of a profile's settings; a ConfigError names the profile and the setting."""
    if not config.models:
        raise ConfigError(f"profile {config.profile!r}: 'models' is empty; name at least one model spec")
    names = [m.name for m in config.models]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"profile {config.profile!r}: two models share a short name in {names}; give each a distinct 'name'"
        )
    for name in names:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.]*", name):
            raise ConfigError(
                f"profile {config.profile!r}: model name {name!r} must be lower-case letters, digits, '_' or "
                f"'.' (it goes into cell ids)"
            )
    if not config.datasets:
        raise ConfigError(
            f"profile {config.profile!r}: 'datasets' is empty; name one of {', '.join(DATASETS)} "
            "or a file of your own ({name = ..., path = ...})"
        )
    object.__setattr__(
        config, "datasets", tuple(d if isinstance(d, DatasetSpec) else DatasetSpec.parse(d) for d in config.datasets)
    )
    if len(set(config.dataset_names)) != len(config.datasets):
        raise ConfigError(f"profile {config.profile!r}: a dataset name is listed twice in {list(config.dataset_names)}")
    for size in config.sizes:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ConfigError(f"profile {config.profile!r}: fine-tuning size {size!r} must be a whole number >= 0")
    if len(set(config.sizes)) != len(config.sizes):
        raise ConfigError(f"profile {config.profile!r}: a fine-tuning size is listed twice in {list(config.sizes)}")
    for key in ("eval_limit", "top_k", "max_new_tokens", "judge_repeats", "min_paired"):
        value = getattr(config, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"profile {config.profile!r}: {key} = {value!r} must be a whole number >= 1")
    if config.qualify_limit is not None and (
        not isinstance(config.qualify_limit, int) or isinstance(config.qualify_limit, bool) or config.qualify_limit < 50
    ):
        raise ConfigError(
            f"profile {config.profile!r}: qualify_limit = {config.qualify_limit!r} must be a whole number "
            ">= 50 (answers of the human set a judge is qualified on), or left out for all of them"
        )
    if config.corpus_subset is not None and (
        not isinstance(config.corpus_subset, int) or isinstance(config.corpus_subset, bool) or config.corpus_subset < 0
    ):
        raise ConfigError(
            f"profile {config.profile!r}: corpus_subset = {config.corpus_subset!r} must be a whole number "
            ">= 0 (distractor passages indexed beside the ones the run's questions need), or false "
            "for the whole corpus"
        )
    if not config.judges:
        raise ConfigError(f"profile {config.profile!r}: 'judges' is empty; add at least 'token-overlap'")
    if config.judge_mode not in JUDGE_MODES:
        raise ConfigError(
            f"profile {config.profile!r}: judge_mode {config.judge_mode!r} must be one of {', '.join(JUDGE_MODES)}"
        )
    if isinstance(config.margin, str):
        if config.margin != "auto":
            raise ConfigError(f"profile {config.profile!r}: margin {config.margin!r} must be a number >= 0 or 'auto'")
    elif isinstance(config.margin, bool) or not isinstance(config.margin, (int, float)) or not config.margin >= 0:
        raise ConfigError(f"profile {config.profile!r}: margin {config.margin!r} must be a number >= 0 or 'auto'")
    if config.candidate_base is not None and not any(config.candidate_base in (m.name, m.spec) for m in config.models):
        raise ConfigError(
            f"--candidate-base {config.candidate_base!r} is not a model of profile {config.profile!r}; "
            f"choose one of {', '.join(m.name for m in config.models)}"
        )
    names = [r.name for r in config.recipes]
    for name in names:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.]*", name):
            raise ConfigError(
                f"profile {config.profile!r}: recipe name {name!r} must be lower-case letters, digits, "
                "'_' or '.' (it goes into cell ids)"
            )
    if len(set(names)) != len(names):
        raise ConfigError(
            f"profile {config.profile!r}: two recipes share the name in {names}; give each a distinct name"
        )
    if config.serve is not None:
        names = {m.name for m in config.models}
        for name, _, _ in config.serve.models:
            if name not in names:
                raise ConfigError(
                    f"profile {config.profile!r}: serve models.{name} names no model of the profile; "
                    f"use one of {', '.join(sorted(names))}"
                )
        mapped = {name for name, _, _ in config.serve.models}
        for m in config.models:
            if m.spec.startswith("bundled:") and not m.baseline_only and m.name not in mapped:
                raise ConfigError(
                    f"profile {config.profile!r}: serve: {m.spec} has no served name; add "
                    f'models.{m.name} = "<the name the server serves it under>" to [serve]'
                )
    if not (isinstance(config.max_unscored, (int, float)) and 0 <= config.max_unscored <= 1):
        raise ConfigError(
            f"profile {config.profile!r}: max_unscored {config.max_unscored!r} must be a share between 0 and 1"
        )


_RUN_ONLY = ("candidate", "candidate_base", "baseline_from")  # options of a run, not keys of a matrix file
_FIELDS = {f.name for f in dataclasses.fields(MatrixConfig)} - {"profile", *_RUN_ONLY}
_MODEL_KEYS = {"spec", "name", "baseline_only"}


def short_name(spec: str) -> str:
    """The short model name used in cell ids: ``bundled:smollm2-135m-instruct`` -> ``smollm2``,
    ``hf:meta-llama/Llama-2-7b-chat-hf`` -> ``llama2``, ``openai:gpt-4`` -> ``gpt4``."""
    try:
        target = parse_spec(spec).target
    except SpecError:  # a malformed spec still gets a name here; loading it names the fix
        target = spec.split(":", 1)[-1]
    base = target.split("#", 1)[-1] if "#" in target else target
    base = base.rstrip("/").rsplit("/", 1)[-1].lower()
    parts = [p for p in re.split(r"[^a-z0-9.]+", base) if p]
    if not parts:
        return "model"
    name = parts[0]
    if name.isalpha() and len(parts) > 1 and parts[1][:1].isdigit():
        name += parts[1]
    return re.sub(r"[^a-z0-9_.]", "", name) or "model"


def _model_entry(raw: Any, where: str) -> ModelEntry:
    if isinstance(raw, str):
        return ModelEntry(spec=raw, name=short_name(raw))
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - _MODEL_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r} in a model entry; allowed: {', '.join(sorted(_MODEL_KEYS))}"
            )
        if not isinstance(raw.get("spec"), str):
            raise ConfigError(f'{where}: a model entry needs spec = "..." (e.g. "bundled:smollm2-135m-instruct")')
        return ModelEntry(
            spec=raw["spec"],
            name=str(raw.get("name") or short_name(raw["spec"])),
            baseline_only=bool(raw.get("baseline_only", False)),
        )
    raise ConfigError(f"{where}: a model must be a spec string or a table {{spec = ..., name = ...}}, not {raw!r}")


def _check_keys(table: Mapping[str, Any], where: str) -> None:
    for key in table:
        if key not in _FIELDS:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(sorted(_FIELDS))}")


def _merge(base: dict[str, Any], diff: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in diff.items():
        if key == "finetune" and isinstance(value, Mapping):
            out["finetune"] = {**dict(out.get("finetune") or {}), **value}
        else:
            out[key] = value
    return out


def read_profiles(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every profile of a matrix file, each already merged onto ``[default]``, keys checked."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"matrix file {path} not found; pass --matrix FILE or create test_cases/matrix.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    if "default" not in data:
        raise ConfigError(f"{path}: no [default] table; every profile is written as a difference from [default]")
    data.pop(PRICES, None)  # not a profile: see read_prices
    profiles: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: unknown top-level key {name!r}; each top-level table is a profile ([default], [smoke], ...)"
            )
        _check_keys(table, f"{path} [{name}]")
        if "finetune" in table and not isinstance(table["finetune"], dict):
            raise ConfigError(f"{path} [{name}]: 'finetune' must be a table ([{name}.finetune])")
    base = dict(data["default"])
    for name, table in data.items():
        profiles[name] = base if name == "default" else _merge(base, table)
    return profiles


PRICES = "prices"  # the top-level table of API prices; the one top-level table that is not a profile


@dataclass(frozen=True)
class Price:
    """What a model's tokens cost, in currency units per million tokens (the currency is the file's choice)."""

    prompt: float
    completion: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt + completion_tokens * self.completion) / 1e6


def read_prices(path: str | Path) -> dict[str, Price]:
    """The ``[prices]`` table of a matrix file: ``{model spec: Price}`` (``{}`` without one).

    Written as ``[prices]`` then one line per model spec, as the spec appears in ``models`` or
    ``judges``: ``"openai:gpt-4" = {prompt = 30.0, completion = 60.0}`` (currency units per
    million prompt and completion tokens). No price is built in; a model without a line is not costed.
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get(PRICES, {})
    except FileNotFoundError:
        raise ConfigError(
            f"matrix file {path} not found; pass --matrix FILE or create test_cases/matrix.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [prices] must be a table of model spec = {{prompt = ..., completion = ...}}")
    prices = {}
    for spec, entry in table.items():
        where = f"{path} [prices] {spec!r}"
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where}: write {{prompt = <per million prompt tokens>, completion = <per million completion tokens>}}"
            )
        unknown = sorted(set(entry) - {"prompt", "completion"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: completion, prompt")
        values = {}
        for key in ("prompt", "completion"):
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(
                    f"{where}: {key} = {value!r} must be a number >= 0 (currency units per million tokens)"
                )
            values[key] = float(value)
        prices[spec] = Price(**values)
    return prices


def build_config(
    profile: str, values: Mapping[str, Any], *, where: str = "<options>", base_dir: str | Path = "."
) -> MatrixConfig:
    """A validated :class:`MatrixConfig` from plain values (as read from TOML or options);
    relative dataset and ``train_file`` paths resolve against ``base_dir`` (the matrix file's folder)."""
    values = dict(values)
    _check_keys({k: v for k, v in values.items() if k not in _RUN_ONLY}, where)
    kwargs: dict[str, Any] = {"profile": profile}
    for key, value in values.items():
        if key == "models":
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}: 'models' must be a list")
            value = tuple(_model_entry(m, where) for m in value)
        elif key == "finetune":
            value = dict(value)
            if value.get("train_file") is not None:
                if not isinstance(value["train_file"], str):
                    raise ConfigError(
                        f"{where}: [finetune] train_file must be a path to a JSON-lines or CSV file of "
                        "question/answers pairs"
                    )
                path = (Path(base_dir).expanduser() / value["train_file"]).absolute()
                if not path.is_file():
                    raise ConfigError(f"{where}: [finetune] train_file {path} not found")
                value["train_file"] = str(path)
            value = tuple(sorted(value.items()))
        elif key == "recipes":
            value = _recipes(value, where)
        elif key == "serve":
            value = _serve_config(value, where)
        elif key == "datasets":
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}: 'datasets' must be a list, not {value!r}")
            try:
                value = tuple(v if isinstance(v, DatasetSpec) else DatasetSpec.parse(v, base_dir) for v in value)
            except EvalsuiteError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        elif key == "corpus_subset" and value is False:
            value = None  # the whole corpus (a profile undoing the subset of [default])
        elif key in ("sizes", "judges"):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}: {key!r} must be a list, not {value!r}")
            value = tuple(value)
        elif (
            key in ("eval_limit", "top_k", "max_new_tokens", "judge_repeats", "seed", "min_paired")
            and isinstance(value, float)
            and value.is_integer()
        ):
            value = int(value)
        kwargs[key] = value
    try:
        config = MatrixConfig(**kwargs)
        from evalsuite.finetune import FinetuneConfig  # here: the fine-tuning package is only needed to validate

        if config.finetune:
            FinetuneConfig.from_dict(config.finetune_options)  # unknown or invalid [finetune] keys fail here
        for recipe in config.recipes:
            try:
                FinetuneConfig.from_dict(config.recipe_options(recipe.name))
            except ConfigError as exc:
                raise ConfigError(f"recipe {recipe.name!r}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config


def _recipes(value: Any, where: str) -> tuple[Recipe, ...]:
    """``recipes = [{name = "r8e1", r = 8, epochs = 1}, ...]`` as records; unknown keys name the recipe."""

    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: 'recipes' must be a list of tables, e.g. [{{name = \"r8\", r = 8}}]")
    allowed = {f.name for f in dataclasses.fields(FinetuneConfig)} | {"effective_batch_size"} | set(RECIPE_ALIASES)
    out = []
    for i, raw in enumerate(value):
        if isinstance(raw, Recipe):
            out.append(raw)
            continue
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise ConfigError(f'{where}: recipe {i + 1} must be a table with a name, e.g. {{name = "r8", r = 8}}')
        name = raw["name"]
        for key in raw:
            if key != "name" and key not in allowed:
                raise ConfigError(
                    f"{where}: recipe {name!r}: unknown key {key!r}; allowed: name, " + ", ".join(sorted(allowed))
                )
        options = {
            RECIPE_ALIASES.get(k, k): (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k != "name"
        }
        out.append(Recipe(name, tuple(sorted(options.items()))))
    return tuple(out)


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def load_config(path: str | Path, profile: str = "default", overrides: Mapping[str, Any] | None = None) -> MatrixConfig:
    """Read ``profile`` from the matrix file at ``path`` and apply ``overrides``.

    Overrides come from the command line and may be strings: ``models="a,b"``,
    ``sizes="0,100"``, ``datasets``, ``judges``, ``judge_mode``, ``judge_repeats``,
    ``eval_limit``, ``margin`` ("auto" or a number), ``candidate``, ``candidate_base``, ``baseline_from``.
    """
    profiles = read_profiles(path)
    path = Path(path)
    if profile not in profiles:
        raise ConfigError(f"{path}: no profile {profile!r}; known profiles: {', '.join(profiles)}")
    values = dict(profiles[profile])
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "models" and isinstance(value, str):
            value = _split_list(value)
        elif key == "judges" and isinstance(value, str):
            value = _split_list(value)
        elif key == "datasets" and isinstance(value, str):
            # names: the profile's own entries by name, else built-in datasets
            entries = {(e if isinstance(e, str) else e.get("name")): e for e in values.get("datasets", DATASETS)}
            value = [entries.get(name, name) for name in _split_list(value)]
        elif key == "sizes" and isinstance(value, str):
            try:
                value = [int(s) for s in _split_list(value)]
            except ValueError:
                raise ConfigError(f"--sizes {value!r}: give whole numbers separated by commas, e.g. 0,20,100") from None
        elif key in ("eval_limit", "judge_repeats", "max_new_tokens", "top_k") and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"--{key.replace('_', '-')} {value!r}: give a whole number") from None
        elif key == "margin" and isinstance(value, str) and value != "auto":
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"--margin {value!r}: give a number or 'auto'") from None
        if key == "models":
            # A model named on the command line keeps the profile's short name and role if the profile has it.
            known = {(_model_entry(m, str(path)).spec): m for m in values.get("models", [])}
            value = [known.get(m, m) if isinstance(m, str) else m for m in value]
        values[key] = value
    return build_config(profile, values, where=f"{path} [{profile}]", base_dir=path.parent)
