"""Input checks shared by the statistics: a bad input must raise, never yield a quietly wrong number."""
from __future__ import annotations

from typing import Any

import numpy as np

from workbench.errors import InputError
from workbench.values import is_missing  # noqa: F401  (re-exported for the stats modules)


class StatsInputError(InputError, ValueError):
    """Bad input to a statistic. Also a ValueError, so generic numeric callers can catch it."""


def _positions(mask: np.ndarray, limit: int = 5) -> str:
    where = np.flatnonzero(mask)
    shown = ", ".join(str(int(i)) for i in where[:limit])
    return shown + (", ..." if where.size > limit else "")


def as_float_array(values: Any, name: str, *, allow_nan: bool = False, min_size: int = 1) -> np.ndarray:
    """Return `values` as a 1-D float64 array, rejecting empty, non-numeric, infinite or NaN input."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StatsInputError(f"{name}: values must be numeric ({exc})") from None
    if arr.ndim != 1:
        raise StatsInputError(f"{name}: expected a 1-D sequence, got shape {arr.shape}")
    if arr.size < min_size:
        what = "is empty" if arr.size == 0 else f"has {arr.size} value(s)"
        raise StatsInputError(f"{name}: {what}; at least {min_size} needed")
    if np.isinf(arr).any():
        bad = np.isinf(arr)
        raise StatsInputError(f"{name}: {int(bad.sum())} infinite value(s) at positions [{_positions(bad)}]")
    if not allow_nan and np.isnan(arr).any():
        bad = np.isnan(arr)
        raise StatsInputError(
            f"{name}: {int(bad.sum())} NaN value(s) at positions [{_positions(bad)}]; "
            "drop or impute them first (pair_by_item reports which items it dropped)"
        )
    return arr


def same_length(**arrays: np.ndarray) -> int:
    """Check that paired arrays are aligned item by item; return their common length."""
    sizes = {name: len(a) for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise StatsInputError(f"paired inputs must have the same length (one value per item): {listed}")
    return next(iter(sizes.values()))


def as_scores(values: Any, name: str = "scores", *, min_size: int = 1) -> np.ndarray:
    """Preference scores from the candidate's side: 1 = candidate wins, 0.5 = tie, 0 = baseline wins."""
    arr = as_float_array(values, name, min_size=min_size)
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        raise StatsInputError(
            f"{name}: preference scores must lie in [0, 1] (1 = candidate wins, 0.5 = tie, 0 = baseline wins); "
            f"{int(bad.sum())} outside at positions [{_positions(bad)}]"
        )
    return arr


def as_bool_array(values: Any, name: str) -> np.ndarray:
    """Pass/fail outcomes as booleans; accepts bools or 0/1, rejects anything else (NaN included)."""
    arr = as_float_array(values, name)
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise StatsInputError(f"{name}: pass/fail values must be 0/1 or bool; bad at positions [{_positions(bad)}]")
    return arr.astype(bool)


def check_confidence(confidence: float) -> float:
    if not (0.0 < float(confidence) < 1.0):
        raise StatsInputError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return float(confidence)
