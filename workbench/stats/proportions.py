"""Confidence intervals for a proportion (error rates, judge agreement rates).

Wilson's interval stays inside [0, 1] and does not collapse to zero width at 0 or n successes, which is
exactly where the naive normal interval lies (0 errors in 8 calls is not proof of a 0% error rate).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from workbench.stats._validate import StatsInputError, check_confidence


@dataclass(frozen=True)
class ProportionCI:
    estimate: float
    low: float
    high: float
    k: int
    n: int
    confidence: float
    method: str


def proportion_ci(
    k: int, n: int, *, confidence: float = 0.95, method: Literal["wilson", "exact"] = "wilson"
) -> ProportionCI:
    """Two-sided CI for k successes in n trials: Wilson score (default) or Clopper-Pearson exact."""
    from scipy import stats

    confidence = check_confidence(confidence)
    if int(n) != n or int(k) != k or n < 1 or not (0 <= k <= n):
        raise StatsInputError(f"proportion_ci: need integers 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if method == "exact":
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
        low, high = float(ci.low), float(ci.high)
    elif method == "wilson":
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        # At k=0 (k=n) the bound is exactly 0 (1); the subtraction leaves rounding dust like 3e-18.
        low = 0.0 if k == 0 else max(0.0, centre - half)
        high = 1.0 if k == n else min(1.0, centre + half)
    else:
        raise StatsInputError(f"proportion_ci: method must be 'wilson' or 'exact', got {method!r}")
    return ProportionCI(k / n, low, high, k, n, confidence, method)
