"""Keep API keys out of everything the workbench writes: messages, logs, reports."""
from __future__ import annotations

import os
import re

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
    return _KEY_SHAPES.sub("[REDACTED]", text)
