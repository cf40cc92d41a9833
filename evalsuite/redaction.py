"""Credentials never leave the process: scrub them from anything recorded, printed or hashed.

Recognised: API keys by their shape (``sk-...``, ``hf_...``, AWS, GitHub, Slack tokens), bearer
tokens, ``Authorization:`` header values, the user and password of a URL
(``https://user:key@host/v1``), secret-looking query parameters (``?api_key=...``), and the
values of dict keys named like a secret (``api_key``, ``password``, ``authorization``, ...).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"

_SECRET_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|xox[baprs]-[A-Za-z0-9-]{10,}"
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,})"
)
_SECRET_KEY = re.compile(
    r"(api[_-]?key|apikey|secret|password|passwd|authorization|access[_-]?token|auth[_-]?token"
    r"|hf[_-]?token)$",
    re.I,
)
_SECRET_PARAM = re.compile(
    r"^(api[_-]?key|apikey|key|token|access[_-]?token|auth|secret|password|passwd|pwd|sig|signature)$", re.I
)
_AUTH_HEADER = re.compile(r"(?i)(authorization\s*[:=]\s*)(\S+(?:\s+\S+)?)")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()\[\]{}#]+")


def _scrub_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.search(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="[]")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub_text(text: str) -> str:
    """``text`` with every credential replaced by ``[redacted]``."""
    text = _URL.sub(lambda m: _scrub_url(m.group(0)), text)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    return _SECRET_VALUE.sub(REDACTED, text)


def scrub(obj: Any) -> Any:
    """A copy of ``obj`` (dicts, lists, strings) with anything that looks like a credential redacted."""
    if isinstance(obj, dict):  # keys too: a judge's name holds its model spec
        return {
            (scrub_text(k) if isinstance(k, str) else k): (
                REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and isinstance(v, str) and v else scrub(v)
            )
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    if isinstance(obj, str):
        return scrub_text(obj)
    return obj


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None, dict[str, str]]:
    """``url`` without its user-info and secret query parameters, the (user, password) pair, and
    those parameters: what a client sends as authentication instead of as part of the address."""
    parts = urlsplit(url)
    auth = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        auth = (user, password)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret = {k: v for k, v in pairs if _SECRET_PARAM.search(k)}
    query = urlencode([(k, v) for k, v in pairs if k not in secret])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), auth, secret
