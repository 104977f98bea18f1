"""Multiple-testing control across every (window, signal) test of a run.

Testing 4 signals on 30 windows is 120 tests: at p < 0.05 each, six would flag by chance alone.
- "bh" (default): Benjamini-Hochberg adjusted p-values (q-values); flagging q <= alpha keeps the
  expected share of false flags among all flags at or below alpha, and the chance of any false
  flag when nothing drifted at or below alpha. Valid for independent or positively dependent
  tests (ours share the reference, which makes them positively dependent).
- "holm": Holm's step-down adjusted p-values; the chance of any false flag stays at or below alpha
  under any dependence. Fewer flags; for when every flag triggers costly work.
"""
from __future__ import annotations

import numpy as np

METHODS = {"bh": "Benjamini-Hochberg (false discovery rate)", "holm": "Holm (family-wise error rate)"}


def adjust(p_values: np.ndarray | list[float], method: str) -> np.ndarray:
    """Adjusted p-values, in the input order; compare them with alpha."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p.copy()
    if np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError("p-values must lie in [0, 1]")
    if method == "bh":
        return _bh(p)
    if method == "holm":
        return _holm(p)
    raise ValueError(f"unknown correction '{method}'; use one of {sorted(METHODS)}")


def _bh(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p)
    ranked = p[order] * (m - np.arange(m))
    ranked = np.maximum.accumulate(ranked)
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out


def describe(method: str, alpha: float, tests: int, windows: int, signals: int) -> str:
    return (f"{METHODS[method]} at alpha = {alpha:g} across {tests} tests "
            f"({windows} tested windows x {signals} signals)")
