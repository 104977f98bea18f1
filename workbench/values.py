"""Small value helpers every layer shares: what counts as missing, and HTML escaping of values that
may hold model output (untrusted text). One copy each, so "missing" and "escaped" mean one thing."""
from __future__ import annotations

import html
import math
from typing import Any


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA and NaT (without importing pandas: this sits under every module)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        import numpy as np

        return isinstance(value, np.floating) and bool(np.isnan(value))
    except ImportError:  # pragma: no cover - numpy is a dependency
        return False


def is_blank(value: Any) -> bool:
    """Missing (see `is_missing`) or text of nothing but whitespace: an empty cell in any file format."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def present(value: Any) -> Any:
    """`value`, or None where it is missing (a NaN in a frame whose other rows have the field)."""
    return None if is_missing(value) else value


def esc(value: Any, missing: str = "") -> str:
    """Escape for HTML text and attributes; a missing value shows as `missing`, cut characters as nothing."""
    return missing if is_missing(value) else html.escape(without_cut_characters(str(value)), quote=True)


CUT_CHARACTER = "\ufffd"  # what a decoder shows for the bytes of a character cut in half


def without_cut_characters(text: str) -> str:
    """Text as a reader should see it: a generation cut at max_tokens (or a clipped excerpt) can end
    inside a multi-byte character, which decodes to U+FFFD; those never carry meaning."""
    return text.replace(CUT_CHARACTER, "")
