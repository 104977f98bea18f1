"""Keep API keys out of everything the workbench writes: messages, logs, reports, the store.

A secret is the value of an environment variable named like a credential (KEY, TOKEN, SECRET,
PASSWORD) or named by a model's `api_key_env` (whatever it is called: `LLM_CRED`). Careless servers
echo what they were sent in their error messages, so each value is also hidden in the forms it
travels in (base64 as in Basic auth, URL-encoded) and as fragments of 8 characters or more.
"""
from __future__ import annotations

import base64
import functools
import os
import re
from urllib.parse import quote, quote_plus, urlsplit

_KEY_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{30,}|Bearer\s+[A-Za-z0-9._\-]{8,}"
                         r"|Basic\s+[A-Za-z0-9+/]{8,}={0,2})")
# The names of the variables models are configured to read keys from: inherited by the processes the
# workbench starts (the report's kernel), which redact the same values.
KEY_VARIABLES_ENV = "WORKBENCH_KEY_VARIABLES"
_MIN_SECRET = 6  # shorter values are too common to hide everywhere
_FRAGMENT = 8  # pieces of a secret of twice that length are hidden from this long (always from 11 on)
_STRIDE = 4
MARK = "[REDACTED]"


def register_key_variable(name: str) -> None:
    """Say that environment variable `name` holds a key (a model's `api_key_env`): its value is
    redacted from then on, in this process and in the processes it starts."""
    names = _key_variables()
    if name not in names:
        os.environ[KEY_VARIABLES_ENV] = ",".join([*names, name])


def _key_variables() -> list[str]:
    return [n for n in os.environ.get(KEY_VARIABLES_ENV, "").split(",") if n]


def secret_values() -> list[str]:
    """Values of environment variables whose names look like credentials, or that a model reads its
    key from (longest first)."""
    named = set(_key_variables())
    values = {v for k, v in os.environ.items()
              if (k in named or (_KEY_NAME.search(k) and k != KEY_VARIABLES_ENV)) and v and len(v) >= _MIN_SECRET}
    return sorted(values, key=len, reverse=True)


def encoded_forms(secret: str) -> set[str]:
    """The forms `secret` travels in: itself, URL-encoded, and base64 at each of the three offsets
    it can have inside an encoded string (`user:KEY` in Basic auth), trimmed to the characters that
    depend on the secret alone."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    raw = secret.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        first = -(-offset // 3)  # the first 3-byte group made of the secret's bytes only
        last = (offset + len(raw)) // 3
        if last - first >= 2:
            stable = encoded[4 * first:4 * last]
            forms.update({stable, stable.replace("+", "-").replace("/", "_")})  # urlsafe too
    return forms


@functools.lru_cache(maxsize=8)
def _needles(values: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
    """(every whole form of every secret, every _FRAGMENT-long window of the long forms)."""
    forms = {form for value in values for form in encoded_forms(value)}
    windows = frozenset(form[i:i + _FRAGMENT] for form in forms if len(form) >= 2 * _FRAGMENT
                        for i in range(len(form) - _FRAGMENT + 1))
    return tuple(sorted(forms, key=len, reverse=True)), windows


def redact_values(text: str, values: tuple[str, ...] | None = None) -> str:
    """Only the known secrets' values (whole, encoded, long fragments): for model answers, where a
    key-shaped string the model wrote is content, but the caller's own key echoed back is not.
    `values`: `secret_values()` read once by a caller that redacts many texts. A set lookup per
    fourth position (a few us per 400 characters), not a regex of every fragment."""
    values = tuple(secret_values()) if values is None else values
    if not values:
        return text
    forms, windows = _needles(values)
    spans: list[tuple[int, int]] = []
    for form in forms:
        start = text.find(form)
        while start >= 0:
            spans.append((start, start + len(form)))
            start = text.find(form, start + 1)
    if windows:  # every _STRIDE-th position: any fragment of _FRAGMENT + _STRIDE - 1 characters has one
        for i in range(0, len(text) - _FRAGMENT + 1, _STRIDE):
            if text[i:i + _FRAGMENT] in windows:
                start, end = i, i + _FRAGMENT
                while start > 0 and text[start - 1:start - 1 + _FRAGMENT] in windows:
                    start -= 1
                while end < len(text) and text[end + 1 - _FRAGMENT:end + 1] in windows:
                    end += 1
                spans.append((start, end))
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + MARK + text[end:]
    return text


def redact(text: str) -> str:
    """Replace every known secret (whole, encoded, or a long fragment) and anything shaped like an
    API key with a marker."""
    return redact_url_credentials(redact_values(_KEY_SHAPES.sub(MARK, text)))


# Credentials inside URLs: `scheme://user:SECRET@host` and query parameters named like credentials.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s?#]+)@")
_URL_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;](?:[A-Za-z0-9_\-]*?)(?:key|token|secret|signature|sig|password|passwd|pwd|auth|credential)"
    r"[A-Za-z0-9_\-]*=)(?P<value>[^&#\s;'\"]+)", re.I)


def redact_url_credentials(text: str) -> str:
    """Hide the credentials a URL can carry: the userinfo part and secret-named query parameters."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}[REDACTED]@", text)
    return _URL_SECRET_PARAM.sub(lambda m: f"{m['name']}[REDACTED]", text)


def redact_config(value: object) -> object:
    """A JSON-like structure with every string redacted (for manifests and recorded parameters)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_config(v) for v in value]
    return value


def endpoint_problem(url: str, *, recorded: bool = True) -> str | None:
    """What is wrong with `url` as a model server's base URL, None when nothing is: it must be an
    http(s) URL with a host (a typo must not become a request elsewhere) and carry no credentials or
    query string: URLs are recorded with every run, and a client sends `user:KEY@` as Basic auth that
    servers echo. `recorded` says why in the message (a model's options vs the run's api_base)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number: `user:KEY/with/slashes@host`)
    except ValueError:
        parts = parts._replace(netloc="")
    if "@" in url or parts.username or parts.password or parts.query:
        where = "options are recorded with every run" if recorded else "the URL is recorded with every run"
        return (f"must be a base URL without credentials or a query string ({where}; the key goes in an "
                "environment variable: OPENAI_API_KEY or the one a model's api_key_env names)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host, such as http://127.0.0.1:8000/v1"
    return None
