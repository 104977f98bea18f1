"""Confidence intervals for a proportion (error rates, judge agreement rates).

Wilson's interval stays inside [0, 1] and does not collapse to zero width at 0 or n successes, which is
exactly where the naive normal interval lies (0 errors in 8 calls is not proof of a 0% error rate).
Within 3 successes of either end Wilson's bound on that side is too tight (coverage 90% at n = 5,
p = 0.02); there it takes the exact bound instead (Brown, Cai & DasGupta 2001).

`bounded_mean_ci` carries the same honesty to means of bounded values (win rates with ties, deltas of
0-1 metrics): z^2/2 pseudo-observations at each end of the range, then a normal interval on the
augmented sample (for 0/1 data this is exactly Agresti-Coull), widened to the exact interval within 3
successes of either end. It never has zero width, however well the few observed values agree; the
bootstrap intervals use it as their documented floor.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from workbench.stats._distributions import beta_ppf, binom_exact_ci, norm_ppf
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
    confidence = check_confidence(confidence)
    if int(n) != n or int(k) != k or n < 1 or not (0 <= k <= n):
        raise StatsInputError(f"proportion_ci: need integers 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if method == "exact":
        low, high = binom_exact_ci(k, n, confidence)
    elif method == "wilson":
        z = norm_ppf(0.5 + confidence / 2)
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        # At k=0 (k=n) the bound is exactly 0 (1); the subtraction leaves rounding dust like 3e-18.
        low = 0.0 if k == 0 else max(0.0, centre - half)
        high = 1.0 if k == n else min(1.0, centre + half)
        exact_low, exact_high = _clopper_pearson(k, n, confidence)
        low = min(low, exact_low) if k <= _NEAR_THE_END else low
        high = max(high, exact_high) if n - k <= _NEAR_THE_END else high
    else:
        raise StatsInputError(f"proportion_ci: method must be 'wilson' or 'exact', got {method!r}")
    return ProportionCI(k / n, low, high, k, n, confidence, method)


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + check_confidence(confidence) / 2)


def bounded_mean_ci(
    values: np.ndarray | list[float], *, value_range: tuple[float, float] = (0.0, 1.0), confidence: float = 0.95
) -> tuple[float, float]:
    """CI (low, high) for the mean of values known to lie in `value_range`, valid from n = 0 up.

    Adds z^2/2 pseudo-observations at each end of the range and takes the normal interval of the
    augmented weighted mean, clipped to the range: Agresti-Coull for 0/1 values, wider than the
    data's spread when n is small or every value agrees (n = 0 gives the whole range). Near either
    end (the rescaled values sum to within 3 of 0 or n) the exact interval is added."""
    low_end, high_end = (float(value_range[0]), float(value_range[1]))
    if not (np.isfinite(low_end) and np.isfinite(high_end) and low_end < high_end):
        raise StatsInputError(f"bounded_mean_ci: value_range must be finite with low < high, got {value_range!r}")
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(x).any() or np.isinf(x).any():
        raise StatsInputError("bounded_mean_ci: values must be finite numbers")
    span = high_end - low_end
    if ((x < low_end - 1e-12 * span) | (x > high_end + 1e-12 * span)).any():
        raise StatsInputError(f"bounded_mean_ci: values outside the declared range {value_range!r}")
    z = _z(confidence)
    pseudo = z * z / 2
    total = x.size + 2 * pseudo
    mean = (x.sum() + pseudo * (low_end + high_end)) / total
    var = (((x - mean) ** 2).sum() + pseudo * ((low_end - mean) ** 2 + (high_end - mean) ** 2)) / total
    half = z * float(np.sqrt(var / total))
    low, high = max(low_end, float(mean) - half), min(high_end, float(mean) + half)
    successes = float(((x - low_end) / span).sum())
    if min(successes, x.size - successes) <= _NEAR_THE_END:
        exact_low, exact_high = _clopper_pearson(successes, x.size, confidence)
        low, high = min(low, low_end + span * exact_low), max(high, low_end + span * exact_high)
    return low, high


# Within this many "successes" of either end, the normal interval's bound on that side is too tight
# (Brown, Cai & DasGupta 2001 correct Wilson's there); the exact interval is added to it.
_NEAR_THE_END = 3.0


def _clopper_pearson(successes: float, n: int, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson bounds, with a fractional success count (a sum of values in [0, 1])."""
    if n == 0:
        return 0.0, 1.0
    tail = (1 - confidence) / 2
    low = 0.0 if successes <= 0 else beta_ppf(tail, successes, n - successes + 1)
    high = 1.0 if successes >= n else beta_ppf(1 - tail, successes + 1, n - successes)
    return low, high


def widen_to_floor(
    low: float, high: float, values: np.ndarray | list[float], *, value_range: tuple[float, float],
    confidence: float = 0.95,
) -> tuple[float, float]:
    """The smallest interval holding both (low, high) and `bounded_mean_ci` of the values: the
    floor under a bootstrap interval, which alone collapses when a few values agree."""
    floor_low, floor_high = bounded_mean_ci(values, value_range=value_range, confidence=confidence)
    return min(float(low), floor_low), max(float(high), floor_high)


def floor_half_width(n: int, *, span: float = 1.0, confidence: float = 0.95) -> float:
    """z^2 * span / (2 (n + z^2)): the narrowest half-width `bounded_mean_ci` can give for n values
    (every value mid-range). Normal-approximation intervals (PPI) are never narrower than this."""
    if n < 0:
        raise StatsInputError(f"floor_half_width: n must be >= 0, got {n}")
    z = _z(confidence)
    return z * z * float(span) / (2 * (n + z * z))
