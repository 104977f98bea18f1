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
    """Escape for HTML text and attributes; a missing value shows as `missing`."""
    return missing if is_missing(value) else html.escape(str(value), quote=True)
