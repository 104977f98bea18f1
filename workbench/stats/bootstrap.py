"""Paired percentile bootstrap, vectorised.

Items are resampled with replacement and both models' values travel together, so the CI reflects the
paired design (item difficulty cancels). One integer matrix of resample indices (resamples x items)
replaces a Python loop; it is drawn in row chunks to bound memory, from `numpy.random.default_rng(seed)`,
so the same inputs and seed always give the same interval.

The percentile bootstrap has zero width when the few observed values agree (two ties are not proof
of a 0.5 win rate). Intervals on bounded means (win rates, deltas of metrics with a declared range)
therefore have a documented floor: they always contain `proportions.bounded_mean_ci` of the same
values (pseudo-observations at the ends of the range, Agresti-Coull for 0/1 data).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterator, Union

import numpy as np

from workbench.stats._validate import StatsInputError, as_float_array, as_scores, check_confidence, same_length
from workbench.stats.proportions import widen_to_floor

Statistic = Union[str, Callable[[np.ndarray], np.ndarray]]
"""'mean' | 'median' | 'sum' | 'p<q>' (e.g. 'p95') or a function mapping a (resamples, items) matrix to
one value per row (it must reduce along axis=1)."""

_CHUNK_ELEMENTS = 4_000_000  # about 16 MB of int32 indices per chunk


@dataclass(frozen=True)
class BootstrapCI:
    """Point estimate on the full sample, percentile CI, and the bootstrap standard error."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    n_resamples: int
    seed: int | None
    standard_error: float

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _index_chunks(n: int, n_resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n, size=(min(rows, n_resamples - start), n), dtype=np.int32)


def bootstrap_indices(n: int, n_resamples: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """The (n_resamples, n) matrix of resample indices the CI functions use (same chunked draws)."""
    _check_sizes(n, n_resamples)
    return np.concatenate(list(_index_chunks(n, n_resamples, _rng(seed))), axis=0)


def _check_sizes(n: int, n_resamples: int) -> None:
    if n < 2:
        raise StatsInputError(f"bootstrap needs at least 2 items, got {n}")
    if int(n_resamples) != n_resamples or n_resamples < 10:
        raise StatsInputError(f"n_resamples must be an integer >= 10, got {n_resamples!r}")


def _reducer(statistic: Statistic) -> Callable[[np.ndarray], np.ndarray]:
    if callable(statistic):
        return statistic
    if statistic == "mean":
        return lambda m: m.mean(axis=-1)
    if statistic == "median":
        return lambda m: np.median(m, axis=-1)
    if statistic == "sum":
        return lambda m: m.sum(axis=-1)
    match = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?)", str(statistic))
    if match:
        q = float(match.group(1)) / 100
        return lambda m: np.quantile(m, q, axis=-1)
    raise StatsInputError(f"unknown statistic {statistic!r}; use 'mean', 'median', 'sum', 'p95'-style or a function")


def _percentile_ci(
    point: float, boot: np.ndarray, confidence: float, n: int, n_resamples: int, seed
) -> BootstrapCI:
    if not np.isfinite(boot).all():
        raise StatsInputError("bootstrap produced non-finite values (e.g. a ratio with a zero denominator)")
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return BootstrapCI(
        estimate=float(point),
        low=float(low),
        high=float(high),
        confidence=confidence,
        n=n,
        n_resamples=int(n_resamples),
        seed=seed if isinstance(seed, int) else None,
        standard_error=float(boot.std(ddof=1)),
    )


def bootstrap_distribution(
    values: np.ndarray, statistic: Statistic = "mean", n_resamples: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """The statistic on each of `n_resamples` resamples of the items (1-D float array)."""
    x = as_float_array(values, "values", min_size=2)
    _check_sizes(x.size, n_resamples)
    reduce = _reducer(statistic)
    return np.concatenate([reduce(x[idx]) for idx in _index_chunks(x.size, n_resamples, _rng(seed))])


def bootstrap_ci(
    values: np.ndarray, *, statistic: Statistic = "mean", n_resamples: int = 1000,
    confidence: float = 0.95, seed: int | np.random.Generator | None = 0,
) -> BootstrapCI:
    """Percentile CI of a statistic of per-item values (e.g. per-item deltas or preference scores)."""
    confidence = check_confidence(confidence)
    x = as_float_array(values, "values", min_size=2)
    boot = bootstrap_distribution(x, statistic, n_resamples, seed)
    point = float(_reducer(statistic)(x[None, :])[0])
    return _percentile_ci(point, boot, confidence, x.size, n_resamples, seed)


def _floored(ci: BootstrapCI, values: np.ndarray, value_range: tuple[float, float]) -> BootstrapCI:
    low, high = widen_to_floor(ci.low, ci.high, values, value_range=value_range, confidence=ci.confidence)
    return replace(ci, low=low, high=high)


def paired_delta_ci(
    candidate: np.ndarray, baseline: np.ndarray, *, statistic: Statistic = "mean", n_resamples: int = 1000,
    confidence: float = 0.95, seed: int | np.random.Generator | None = 0,
    value_range: tuple[float, float] | None = None,
) -> BootstrapCI:
    """CI of the statistic of per-item differences candidate - baseline (default: mean delta).

    value_range: the scale of a rate (pass / fail per item, e.g. (0, 1)); given, the CI of the mean
    delta (a rate difference) never falls below the bounded-mean floor over (low - high, high - low),
    so agreeing items cannot give zero width. Graded metrics leave it out: pseudo-observations at the
    ends of their scale would swamp their real spread."""
    c = as_float_array(candidate, "candidate", min_size=2)
    b = as_float_array(baseline, "baseline", min_size=2)
    same_length(candidate=c, baseline=b)
    ci = bootstrap_ci(c - b, statistic=statistic, n_resamples=n_resamples, confidence=confidence, seed=seed)
    if value_range is None or statistic != "mean":
        return ci
    span = float(value_range[1]) - float(value_range[0])
    return _floored(ci, np.clip(c - b, -span, span), (-span, span))


def win_rate_ci(
    scores: np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> BootstrapCI:
    """CI of the win rate from candidate-side preference scores (1 win, 0.5 tie, 0 loss): the
    percentile bootstrap, widened where needed to the bounded-mean floor (see the module docstring)."""
    s = as_scores(scores, min_size=2)
    ci = bootstrap_ci(s, statistic="mean", n_resamples=n_resamples, confidence=confidence, seed=seed)
    return _floored(ci, s, (0.0, 1.0))


def paired_ratio_ci(
    candidate: np.ndarray, baseline: np.ndarray, *, statistic: Statistic = "mean", n_resamples: int = 1000,
    confidence: float = 0.95, seed: int | np.random.Generator | None = 0,
) -> BootstrapCI:
    """CI of statistic(candidate) / statistic(baseline) with items resampled jointly.

    For cost ratios (statistic='sum' or 'mean') and tail-latency ratios ('p95').
    """
    confidence = check_confidence(confidence)
    c = as_float_array(candidate, "candidate", min_size=2)
    b = as_float_array(baseline, "baseline", min_size=2)
    n = same_length(candidate=c, baseline=b)
    _check_sizes(n, n_resamples)
    reduce = _reducer(statistic)
    denom = float(reduce(b[None, :])[0])
    if denom == 0:
        raise StatsInputError(f"paired_ratio_ci: the baseline's {statistic} is 0; a ratio is undefined")
    point = float(reduce(c[None, :])[0]) / denom
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero denominator is reported below
        boot = np.concatenate([reduce(c[idx]) / reduce(b[idx]) for idx in _index_chunks(n, n_resamples, _rng(seed))])
    return _percentile_ci(point, boot, confidence, n, n_resamples, seed)
