"""Keep API keys out of everything the workbench writes: messages, logs, reports."""
from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

_KEY_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{30,}|Bearer\s+[A-Za-z0-9._\-]{8,})")


def secret_values() -> list[str]:
    """Values of environment variables whose names look like credentials (longest first)."""
    values = {v for k, v in os.environ.items() if _KEY_NAME.search(k) and v and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace every known secret value and anything shaped like an API key with a marker."""
    for value in secret_values():
        text = text.replace(value, "[REDACTED]")
    return redact_url_credentials(_KEY_SHAPES.sub("[REDACTED]", text))


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


def endpoint_problem(url: str, *, recorded: bool) -> str | None:
    """What is wrong with `url` as a model server's base URL, None when nothing is: it must be an
    http(s) URL with a host (a typo must not become a request elsewhere), and one that is `recorded`
    (options are written with every run) must carry no credentials or query string."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host, such as http://127.0.0.1:8000/v1"
    if recorded and (parts.username or parts.password or parts.query):
        return ("must be a base URL without credentials or a query string (options are recorded with every run; "
                "the key goes in an environment variable named by api_key_env)")
    return None
