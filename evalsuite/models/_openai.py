"""Any OpenAI-compatible chat endpoint: OpenAI itself, vLLM, TGI, Ollama, ``transformers serve``.

Specs: ``openai:<model>`` (the official endpoint) or ``openai:<base_url>#<model>``.
The API key comes from ``$OPENAI_API_KEY`` (or the variable named by ``api_key_env``); it is never
printed, stored or part of a cache key. A server on loopback needs no key (a dummy one is sent).

Each call sends one prompt; the wrapper runs up to ``concurrency`` calls at once and retries
rate limits (429), server errors (5xx), timeouts and dropped connections with exponential backoff
and jitter, honouring ``Retry-After``. The client's own retries are off so these are the only ones.

Chat APIs cannot start the assistant's turn for us, so ``Prompt.prefill`` is appended to the last
user message as an instruction to begin the reply with it; a reply that does begin with it has
the prefill removed, so ``Generation.text`` is what follows the prefill, as for local models.
A plain prompt (``chat=False``) is sent as one user message.

Serving LoRA adapters by name (``serves_adapters``): a server that loads adapters at run time,
as vLLM does (``vllm serve <base> --enable-lora`` with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``),
takes ``POST /v1/load_lora_adapter`` ``{"lora_name", "lora_path"}`` and
``POST /v1/unload_lora_adapter`` ``{"lora_name"}``, lists the base and the loaded adapters at
``GET /v1/models``, and generates with an adapter named in a request's ``model``. A backend
built with ``lora_base`` (the served base) and ``lora_digest`` (the adapter's content digest) sends
its requests to the adapter it names; its identity, and so every generation cache key, holds the
base and the adapter's content, not the name it is served under. With ``lora_path`` (where the
server reads the adapter) a request the server answers with 404 loads the adapter again and is retried.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence
from urllib.parse import urlparse

from evalsuite.errors import EvalsuiteError, SpecError
from evalsuite.records import Prompt, stable_hash
from evalsuite.redaction import scrub_text, split_credentials

from ._types import Generation, GenerationSettings, ServingError, TransientError

OFFICIAL = "https://api.openai.com/v1"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def _retry_after(err: Any) -> float | None:
    headers = getattr(getattr(err, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date; fall back to our own backoff
    return None


class OpenAIBackend:
    batch_size = 1
    tokenizer = None
    serves_adapters = True  # see load_adapter, unload_adapter, served_models

    def __init__(
        self,
        model: str,
        base_url: str | None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        concurrency: int = 8,
        lora_base: str | None = None,
        lora_digest: str | None = None,
        lora_path: str | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise SpecError("the openai backend needs the openai package: pip install openai") from None
        self._openai = openai
        self.model = model
        # Credentials in the URL (user:password@, ?api_key=) are sent as authentication, never kept
        # in the address the backend prints, records or hashes into its identity.
        self.base_url, basic_auth, secret_query = split_credentials(base_url or OFFICIAL)
        self.timeout = float(timeout)
        self.concurrency = int(concurrency)
        key = os.environ.get(api_key_env)
        if not key and (basic_auth or secret_query):
            key = "EMPTY"  # the URL carries the credentials
        if not key:
            host = urlparse(self.base_url).hostname or ""
            if base_url is None or host not in LOOPBACK:
                raise SpecError(
                    f"openai:{model} needs an API key: set {api_key_env} or pass --judge bundled:smollm2-135m-instruct "
                    "(or use a local openai:<base_url>#<model> server)"
                )
            key = "EMPTY"  # local servers accept any key
        extra: dict[str, Any] = {}
        if secret_query:
            extra["default_query"] = secret_query
        if basic_auth:
            import httpx

            extra["http_client"] = httpx.Client(auth=basic_auth, timeout=self.timeout)
        self.client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0, **extra)
        if (lora_base is None) != (lora_digest is None):
            raise SpecError(
                f"openai:{model}: a served adapter needs both lora_base (the served base model) and "
                "lora_digest (the adapter's content digest)"
            )
        self.lora_base = lora_base
        self.lora_path = lora_path  # where the server reads the adapter: loaded again when it forgot it
        identity: dict[str, Any] = {"openai": self.base_url.rstrip("/"), "model": model}
        if lora_digest is not None:  # the adapter's content, not the name the server knows it by
            identity = {"openai": self.base_url.rstrip("/"), "model": lora_base, "lora": lora_digest}
        self.identity = stable_hash(identity, length=32)

    @classmethod
    def from_target(cls, target: str, **options: Any) -> "OpenAIBackend":
        known = {"api_key_env", "timeout", "concurrency", "lora_base", "lora_digest", "lora_path"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SpecError(
                f"unknown option(s) {', '.join(unknown)} for openai: models: use {', '.join(sorted(known))}"
            )
        if "#" in target:
            base_url, _, model = target.rpartition("#")
            if not urlparse(base_url).scheme.startswith("http") or not model:
                raise SpecError(
                    f"malformed spec {scrub_text('openai:' + target)}: write openai:<http(s) base_url>#<model>"
                )
            return cls(model, base_url, **options)
        if target.startswith(("http://", "https://")):
            raise SpecError(f"spec {scrub_text('openai:' + target)} names no model: write openai:<base_url>#<model>")
        return cls(target, None, **options)

    def generate_batch(self, prompts: Sequence[Prompt], settings: GenerationSettings) -> list[Generation]:
        return [self._one(p, settings) for p in prompts]

    # -- adapters served by name ----------------------------------------------------------------
    def served_models(self) -> list[str]:
        """The ids the server lists at ``GET /models``: its base model(s) and the adapters loaded on it."""
        openai = self._openai
        try:
            page = self.client.models.list()
        except openai.APIConnectionError:
            raise ServingError(f"no server answers at {self.base_url}", "unreachable") from None
        except openai.APIStatusError as err:
            raise ServingError(
                f"{self.base_url}/models refused ({err.status_code}): {scrub_text(_short(err))}", "refused"
            ) from None
        return [str(m.id) for m in page.data]

    def load_adapter(self, name: str, path: str) -> None:
        """Have the server load the LoRA adapter at ``path`` (a path the server reads) as ``name``;
        an adapter already loaded under ``name`` is kept."""
        self._manage("load_lora_adapter", {"lora_name": name, "lora_path": str(path)})

    def unload_adapter(self, name: str) -> None:
        """Have the server drop adapter ``name`` (one it does not hold is no error)."""
        self._manage("unload_lora_adapter", {"lora_name": name})

    def _manage(self, endpoint: str, body: dict[str, str]) -> None:
        import httpx

        openai = self._openai
        where = f"{self.base_url.rstrip('/')}/{endpoint}"
        try:
            self.client.post(f"/{endpoint}", body=body, cast_to=httpx.Response)
        except openai.APIConnectionError:
            raise ServingError(f"no server answers at {self.base_url}", "unreachable") from None
        except openai.APIStatusError as err:
            text = scrub_text(_short(err))
            # vLLM answers 404 for an adapter it cannot find too ("No adapter found for <path>", "The lora
            # adapter '<name>' cannot be found."); a route it does not have is a bare 404 or 405
            if err.status_code in (404, 405) and "adapter" not in text.lower() and body["lora_name"] not in text:
                raise ServingError(f"{where} does not exist ({err.status_code})", "no-adapter-endpoint") from None
            if endpoint.startswith("load") and err.status_code == 400 and "already" in text.lower():
                return  # loaded before, by this run or another
            if endpoint.startswith("unload") and err.status_code in (400, 404):
                return  # already gone
            raise ServingError(f"{where} refused ({err.status_code}): {text}", "refused") from None

    def _one(self, prompt: Prompt, settings: GenerationSettings) -> Generation:
        openai = self._openai
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(prompt),
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
        }
        if settings.top_p < 1:
            kwargs["top_p"] = settings.top_p
        if settings.temperature > 0:
            kwargs["seed"] = settings.seed
        if settings.stop:
            kwargs["stop"] = list(settings.stop)
        if settings.top_logprobs > 0:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = settings.top_logprobs
        where = f"openai:{self.model} at {self.base_url}"
        start = time.perf_counter()
        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise TransientError(f"{where}: no answer within {self.timeout:g} s") from None
        except openai.RateLimitError as err:
            raise TransientError(f"{where}: rate limited (429)", _retry_after(err)) from None
        except openai.AuthenticationError:
            raise SpecError(f"{where} rejected the API key: set a valid key in OPENAI_API_KEY") from None
        except openai.APIStatusError as err:
            if err.status_code >= 500 or err.status_code == 408:
                raise TransientError(f"{where}: server error {err.status_code}", _retry_after(err)) from None
            if err.status_code == 404 and self.lora_path is not None:
                # the server no longer holds the adapter (restarted, or unloaded by another process of the
                # run that served the same adapter): load it again and let the wrapper send the request again
                self.load_adapter(self.model, self.lora_path)
                raise TransientError(f"{where}: the adapter was not loaded on the server; loaded it again") from None
            raise EvalsuiteError(
                f"{where}: request refused ({err.status_code}): {scrub_text(_short(err))}; "
                "check the model name and settings"
            ) from None
        except openai.APIConnectionError:
            raise TransientError(f"{where}: cannot connect") from None
        seconds = time.perf_counter() - start
        choice = response.choices[0]
        text = choice.message.content or ""
        if prompt.prefill and text.startswith(prompt.prefill):
            text = text[len(prompt.prefill) :]
        usage = response.usage
        top = None
        missing = False
        if settings.top_logprobs > 0:
            content = getattr(getattr(choice, "logprobs", None), "content", None)
            if content:
                top = tuple(
                    tuple((t.token, float(t.logprob)) for t in (item.top_logprobs or [item])) for item in content
                )
            else:
                missing = True
        return Generation(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            seconds=seconds,
            top_logprobs=top,
            logprobs_missing=missing,
        )


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    if prompt.chat:
        messages = [{"role": m.role, "content": m.content} for m in prompt.messages]
    else:
        messages = [{"role": "user", "content": "\n\n".join(m.content for m in prompt.messages)}]
    if prompt.prefill:
        note = f"\n\nBegin your reply with exactly: {prompt.prefill}"
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if users:
            messages[users[-1]] = {"role": "user", "content": messages[users[-1]]["content"] + note}
        else:
            messages.append({"role": "user", "content": note.strip()})
    return messages


def _short(err: Any) -> str:
    message = getattr(err, "message", None) or str(err)
    return " ".join(str(message).split())[:200]
