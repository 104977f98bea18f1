"""Paired percentile bootstrap, vectorised.

Items are resampled with replacement and both models' values travel together, so the CI reflects the
paired design (item difficulty cancels). One integer matrix of resample indices (resamples x items)
replaces a Python loop; it is drawn in row chunks to bound memory, from `numpy.random.default_rng(seed)`,
so the same inputs and seed always give the same interval. Drawing the indices is about half of a mean
CI's work at 100k items; `paired_bootstraps` computes several statistics over the same n from one draw, each CI
equal bit for bit to the one its single function gives with the same seed.

The percentile bootstrap has zero width when the few observed values agree (two ties are not proof
of a 0.5 win rate). Intervals on bounded means (win rates, deltas of metrics with a declared range)
therefore have a documented floor: they always contain `proportions.bounded_mean_ci` of the same
values (pseudo-observations at the ends of the range, Agresti-Coull for 0/1 data).
"""
from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Callable, Hashable, Iterator, Literal, Mapping, Sequence, Union

import numpy as np

from workbench.stats._validate import StatsInputError, as_float_array, as_scores, check_confidence, same_length
from workbench.stats.proportions import widen_to_floor

Statistic = Union[str, Callable[[np.ndarray], np.ndarray]]
"""'mean' | 'median' | 'sum' | 'p<q>' (e.g. 'p95') or a function mapping a (resamples, items) matrix to
one value per row (it must reduce along axis=1)."""

_CHUNK_ELEMENTS = 200_000  # 1.6 MB of intp indices per chunk: the gathers stay in cache (1M: 5-13% slower)


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
    """Row chunks of the resample indices, drawn as intp: numpy draws a bounded integer below 2**32 with
    the same 32-bit generator for every integer dtype, so these are the int32 draws' values (the
    documented stream, `bootstrap_indices`), without a cast before the gathers (numpy casts other
    index types at every gather)."""
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n, size=(min(rows, n_resamples - start), n), dtype=np.intp)


def bootstrap_indices(n: int, n_resamples: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """The (n_resamples, n) int32 matrix of resample indices the CI functions use (same chunked draws)."""
    _check_sizes(n, n_resamples)
    return np.concatenate(list(_index_chunks(n, n_resamples, _rng(seed))), axis=0).astype(np.int32)


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
    q = _quantile_of(statistic)
    if q is not None:
        return lambda m: row_quantiles(m, q, overwrite_input=True)  # fresh gathers; x[None, :] views are copied
    raise StatsInputError(f"unknown statistic {statistic!r}; use 'mean', 'median', 'sum', 'p95'-style or a function")


def row_quantiles(matrix: np.ndarray, q: float, *, overwrite_input: bool = False) -> np.ndarray:
    """`np.quantile(matrix, q, axis=-1)` (its default 'linear' method), bit for bit, for 0 <= q <= 1.

    Why not np.quantile: it partitions a copy at four positions (0, k, k + 1, -1), which is 5-6x
    slower on 100k-item rows than partitioning once at k in place and taking the (k + 1)-th smallest
    as the minimum of what lies above it. The interpolation is numpy's `_lerp`, step for step.
    overwrite_input: partition `matrix` itself (when it is a float64 C-contiguous array owning its data,
    as a gathered resample is) instead of a copy."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] == 0:
        return np.quantile(m, q, axis=-1)
    n = m.shape[1]
    virtual = (n - 1) * float(q)
    if virtual >= n - 1:
        return m.max(axis=-1)
    k = int(math.floor(virtual))
    gamma = virtual - k
    own = overwrite_input and m.flags.c_contiguous and m.flags.writeable and m.flags.owndata
    m = m if own else m.copy()
    m.partition(k, axis=-1)
    return _lerp(m[:, k], m[:, k + 1:].min(axis=-1), gamma)


def _lerp(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """numpy's `_lerp` of the k-th and (k + 1)-th smallest values, step for step (so bit for bit)."""
    diff_b_a = b - a
    result = np.add(a, diff_b_a * gamma)
    if gamma >= 0.5:
        result = np.subtract(b, diff_b_a * (1 - gamma))
    return result


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


class Gather:
    """values -> the values at one chunk's resample indices (rows x items), in a buffer that the next
    gather overwrites: a reducer takes what it needs from it before gathering again. `ranks(table)`:
    the same for a table of 4-byte integers (`_ByRank`), in the same buffer's memory."""

    def __init__(self, idx: np.ndarray, buffer: np.ndarray):
        self.idx, self.buffer = idx, buffer

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.take(values, self.idx, out=self.buffer, mode="clip")

    def ranks(self, table: np.ndarray) -> np.ndarray:
        out = self.buffer.view(table.dtype).reshape(-1)[:self.idx.size].reshape(self.idx.shape)
        return np.take(table, self.idx, out=out, mode="clip")


def _resampled(n: int, reducers: Sequence[Callable[[Gather], np.ndarray]], n_resamples: int,
               seed: int | np.random.Generator | None) -> list[np.ndarray]:
    """Each reducer (a chunk's gather -> one value per row) over the same chunked index draws.

    Every gather of a chunk writes into one reused buffer (`np.take(..., out=)`; 'clip' is never
    applied, the indices lie in range, and it avoids the copy numpy makes of `out` in its default
    mode): a fresh 8 MB array per gather costs its page faults again, about a third of the gather."""
    chunks: list[list[np.ndarray]] = [[] for _ in reducers]
    buffers: dict[tuple[int, ...], np.ndarray] = {}  # at most two shapes: the full chunk and the last
    for idx in _drawn_ahead(_index_chunks(n, n_resamples, _rng(seed)), several=n * n_resamples > _CHUNK_ELEMENTS):
        buffer = buffers.get(idx.shape)
        if buffer is None:
            buffer = buffers[idx.shape] = np.empty(idx.shape, dtype=np.float64)
        gather = Gather(idx, buffer)
        for out, reduce in zip(chunks, reducers):
            out.append(reduce(gather))
    return [np.concatenate(parts) for parts in chunks]


def _drawn_ahead(chunks: Iterator[np.ndarray], *, several: bool) -> Iterator[np.ndarray]:
    """The chunks in their order, each next one drawn on a helper thread while the caller reduces the
    one before: numpy draws without the GIL, so on two cores the draw (a third of a bootstrap's CPU)
    leaves the critical path. The generator is advanced by one thread at a time, in the same order,
    so the indices, and every number, are those of a plain loop. One chunk: nothing to overlap."""
    if not several:
        yield from chunks
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-bootstrap-draw") as pool:
        pending = pool.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, chunks, None)
            yield chunk


def _resampler(statistic: Statistic, values: np.ndarray) -> Callable[[Gather], np.ndarray]:
    """gather -> the statistic of `values` on each resample. A caller's function gets a fresh matrix
    (it may keep or return a view of it); the built-in reducers only read the shared buffer (the
    quantiles partition it in place) and return new arrays; a quantile is read by rank where it can
    be (`_ByRank`)."""
    reduce = _reducer(statistic)
    if callable(statistic):
        return lambda gather: reduce(gather(values).copy())
    quantile = _quantile_of(statistic)
    by_rank = _ByRank.of(values, quantile) if quantile is not None else None
    if by_rank is not None:
        return by_rank
    return lambda gather: reduce(gather(values))


def _quantile_of(statistic: Statistic) -> float | None:
    match = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?)", statistic) if isinstance(statistic, str) else None
    return float(match.group(1)) / 100 if match else None


_RANKED_FROM = 2_000  # values; 1,000 resamples of p95: 15.5 against 13.8 ms partitioned at 1k, 27 against 38 at 3k


class _ByRank:
    """`row_quantiles(gather(values), q)` of each resample, read from the ranks of the values instead of
    partitioning every gathered row: the resample's k-th smallest value is the sorted values' at the
    first rank where the running count of the resample's ranks passes k (a bincount and a cumulative
    sum per row, a fraction of a partition at 100k items: the p95 latency ratio of a comparison was
    1.6 s of partitions). Each is one of the values and the interpolation is `row_quantiles`', so the
    numbers are the same bit for bit; `of` declines values holding both 0.0 and -0.0, equal values of
    which a partition may return either."""

    def __init__(self, values: np.ndarray, q: float):
        self.values, self.q = values, q
        self.order = np.argsort(values, kind="stable").astype(np.int32)  # rank -> position (4 bytes: n < 2**31)
        self.rank = np.empty(values.size, dtype=np.int32)  # position -> rank
        self.rank[self.order] = np.arange(values.size, dtype=np.int32)

    @classmethod
    def of(cls, values: np.ndarray, q: float) -> "_ByRank | None":
        """None below `_RANKED_FROM` values (a row of a few hundred partitions faster than it is counted) or
        for values holding both zeros."""
        zeros = values[values == 0]
        if values.size < _RANKED_FROM or (np.signbit(zeros).any() and not np.signbit(zeros).all()):
            return None
        return cls(values, q)

    def __call__(self, gather: Gather) -> np.ndarray:
        ranks = gather.ranks(self.rank)
        rows, n = ranks.shape
        virtual = (n - 1) * float(self.q)
        k = min(int(math.floor(virtual)), n - 1)
        below = np.empty(rows, dtype=np.intp)  # the rank of each row's k-th smallest value
        above = np.empty(rows, dtype=np.intp)  # and of its (k + 1)-th
        for row in range(rows):
            running = np.cumsum(np.bincount(ranks[row], minlength=n))
            below[row], above[row] = np.searchsorted(running, (k, min(k + 1, n - 1)), side="right")
        a, b = self.values[self.order[below]], self.values[self.order[above]]
        return a if virtual >= n - 1 else _lerp(a, b, virtual - k)  # row_quantiles: the maximum, or between


def bootstrap_distribution(
    values: np.ndarray, statistic: Statistic = "mean", n_resamples: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """The statistic on each of `n_resamples` resamples of the items (1-D float array)."""
    x = as_float_array(values, "values", min_size=2)
    _check_sizes(x.size, n_resamples)
    return _resampled(x.size, [_resampler(statistic, x)], n_resamples, seed)[0]


def bootstrap_ci(
    values: np.ndarray, *, statistic: Statistic = "mean", n_resamples: int = 1000,
    confidence: float = 0.95, seed: int | np.random.Generator | None = 0,
) -> BootstrapCI:
    """Percentile CI of a statistic of per-item values (e.g. per-item deltas or preference scores)."""
    return _single(values_request(values, statistic=statistic), n_resamples, confidence, seed)


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
    request = delta_request(candidate, baseline, statistic=statistic, value_range=value_range)
    return _single(request, n_resamples, confidence, seed)


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
    return _single(ratio_request(candidate, baseline, statistic=statistic), n_resamples, confidence, seed)


# ---- several CIs from one draw of the resample indices -------------------------------------------
@dataclass(frozen=True, eq=False)
class BootstrapRequest:
    """One CI for `paired_bootstraps`; made by `values_request`, `delta_request` or `ratio_request`,
    which check the input as the single functions do."""

    kind: Literal["values", "delta", "ratio"]
    first: np.ndarray  # the values, or the candidate's
    second: np.ndarray | None = None  # the baseline's (delta, ratio)
    statistic: Statistic = "mean"
    value_range: tuple[float, float] | None = None

    @property
    def n(self) -> int:
        return int(self.first.size)


def values_request(values: np.ndarray, *, statistic: Statistic = "mean") -> BootstrapRequest:
    """The CI `bootstrap_ci(values, statistic=...)` gives."""
    x = as_float_array(values, "values", min_size=2)
    _reducer(statistic)
    return BootstrapRequest("values", x, None, statistic)


def delta_request(candidate: np.ndarray, baseline: np.ndarray, *, statistic: Statistic = "mean",
                  value_range: tuple[float, float] | None = None) -> BootstrapRequest:
    """The CI `paired_delta_ci(candidate, baseline, statistic=..., value_range=...)` gives."""
    c = as_float_array(candidate, "candidate", min_size=2)
    b = as_float_array(baseline, "baseline", min_size=2)
    same_length(candidate=c, baseline=b)
    _reducer(statistic)
    return BootstrapRequest("delta", c, b, statistic, value_range)


def ratio_request(candidate: np.ndarray, baseline: np.ndarray, *, statistic: Statistic = "mean") -> BootstrapRequest:
    """The CI `paired_ratio_ci(candidate, baseline, statistic=...)` gives."""
    c = as_float_array(candidate, "candidate", min_size=2)
    b = as_float_array(baseline, "baseline", min_size=2)
    same_length(candidate=c, baseline=b)
    if float(_reducer(statistic)(b[None, :])[0]) == 0:
        raise StatsInputError(f"paired_ratio_ci: the baseline's {statistic} is 0; a ratio is undefined")
    return BootstrapRequest("ratio", c, b, statistic)


class _Plan:
    """A request as its point estimate and a reducer of resample indices (one value per row)."""

    def __init__(self, request: BootstrapRequest):
        self.request = request
        reduce = _reducer(request.statistic)
        if request.kind == "ratio":
            c, b = request.first, request.second
            self.point = float(reduce(c[None, :])[0]) / float(reduce(b[None, :])[0])  # not 0: ratio_request
            of_c, of_b = _resampler(request.statistic, c), _resampler(request.statistic, b)

            def ratio(gather: Gather) -> np.ndarray:
                numerator = of_c(gather)  # taken before the denominator's gather reuses the buffer
                with np.errstate(divide="ignore", invalid="ignore"):  # a zero denominator is reported below
                    return numerator / of_b(gather)

            self.reduce = ratio
            self.resampled = ("ratio", c, b)
        else:
            x = request.first - request.second if request.kind == "delta" else request.first
            self.values = x
            self.point = float(reduce(x[None, :])[0])
            self.reduce = _resampler(request.statistic, x)
            self.resampled = ("values", x)  # a delta's distribution is that of its per-item differences

    def ci(self, boot: np.ndarray, confidence: float, n_resamples: int, seed) -> BootstrapCI:
        request = self.request
        ci = _percentile_ci(self.point, boot, confidence, request.n, n_resamples, seed)
        if request.kind != "delta" or request.value_range is None or request.statistic != "mean":
            return ci
        span = float(request.value_range[1]) - float(request.value_range[0])
        return _floored(ci, np.clip(self.values, -span, span), (-span, span))


# Bootstrap distributions already computed in this process, by what determines them (the resampled
# values' bytes, the statistic, n_resamples, an integer seed). Why: compare asks for the same CI twice
# (a metric's delta, then the copy check's delta on all items: 1.2 s each at 100k items); a hit
# returns the very same numbers without drawing. Small (32 x n_resamples floats), thread-safe.
_MEMO_SIZE = 32
_memo: OrderedDict[tuple, np.ndarray] = OrderedDict()
_memo_lock = threading.Lock()


def _memo_key(plan: _Plan, n_resamples: int, seed) -> tuple | None:
    statistic = plan.request.statistic
    if callable(statistic) or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        return None  # a function or a Generator / fresh entropy: nothing to recognise it by
    kind, *arrays = plan.resampled
    digest = hashlib.blake2b(digest_size=20)
    for values in arrays:
        digest.update(np.ascontiguousarray(values).tobytes())
        digest.update(b"|")
    return kind, str(statistic), plan.request.n, int(n_resamples), int(seed), _CHUNK_ELEMENTS, digest.hexdigest()


def _distributions(plans: Sequence[_Plan], n: int, n_resamples: int, seed, *, memo: bool = True
                   ) -> list[np.ndarray]:
    """Each plan's bootstrap distribution over one shared draw; those computed before come from the memo."""
    keys = [_memo_key(plan, n_resamples, seed) if memo else None for plan in plans]
    with _memo_lock:
        found = [_memo.get(key) if key is not None else None for key in keys]
    missing = [i for i, boot in enumerate(found) if boot is None]
    if missing:
        for i, boot in zip(missing, _resampled(n, [plans[i].reduce for i in missing], n_resamples, seed)):
            boot.setflags(write=False)
            found[i] = boot
    with _memo_lock:
        for key, boot in zip(keys, found):
            if key is not None:
                _memo[key] = boot
                _memo.move_to_end(key)
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return found


def _single(request: BootstrapRequest, n_resamples: int, confidence: float, seed) -> BootstrapCI:
    confidence = check_confidence(confidence)
    _check_sizes(request.n, n_resamples)
    plan = _Plan(request)
    return plan.ci(_distributions([plan], request.n, n_resamples, seed)[0], confidence, n_resamples, seed)


def _check_shared_seed(seed, caller: str) -> None:
    if isinstance(seed, (bool, np.random.Generator)) or not (seed is None or isinstance(seed, (int, np.integer))):
        raise StatsInputError(f"{caller}: seed must be an integer or None, got {seed!r}")


def _shared_distributions(requests: Mapping[Hashable, BootstrapRequest], n_resamples: int, seed: int | None,
                          caller: str) -> tuple[dict[Hashable, _Plan], dict[Hashable, np.ndarray]]:
    """Each request's plan and bootstrap distribution, with one draw of the indices per item count."""
    _check_shared_seed(seed, caller)
    by_size: dict[int, list[Hashable]] = {}
    for key, request in requests.items():
        if not isinstance(request, BootstrapRequest):
            raise StatsInputError(f"{caller}: {key!r} is not a BootstrapRequest (make it with "
                                  "values_request, delta_request or ratio_request)")
        _check_sizes(request.n, n_resamples)
        by_size.setdefault(request.n, []).append(key)
    draw_seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
    plans: dict[Hashable, _Plan] = {}
    boots: dict[Hashable, np.ndarray] = {}
    for n, keys in by_size.items():
        for key in keys:
            plans[key] = _Plan(requests[key])
        found = _distributions([plans[key] for key in keys], n, n_resamples, draw_seed, memo=seed is not None)
        boots.update(zip(keys, found))
    return plans, boots


def bootstrap_distributions(
    requests: Mapping[Hashable, BootstrapRequest], *, n_resamples: int = 1000, seed: int | None = 0,
) -> dict[Hashable, np.ndarray]:
    """Each request's bootstrap distribution (its statistic on each resample; read-only arrays), with
    one draw of the resample indices per distinct item count, as `paired_bootstraps` draws them. A
    values request's equals `bootstrap_distribution(values, statistic, n_resamples, seed)` bit for bit
    for an integer seed. Why: per-slice CIs and p-values read the distributions, and slices of equal
    size share their draws (a fresh `default_rng(seed)` yields the same indices for the same n).
    seed: an integer, or None (fresh entropy, the same for all requests); not a Generator."""
    plans, boots = _shared_distributions(requests, n_resamples, seed, "bootstrap_distributions")
    return {key: boots[key] for key in requests}


def paired_bootstraps(
    requests: Mapping[Hashable, BootstrapRequest], *, n_resamples: int = 1000, confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[Hashable, BootstrapCI]:
    """Several bootstrap CIs, with one draw of the resample indices per distinct item count.

    Each CI equals, bit for bit, the one its single function (`bootstrap_ci`, `paired_delta_ci`,
    `paired_ratio_ci`) gives with the same `n_resamples`, `confidence` and integer `seed`: the requests
    over n items share the chunks a fresh `default_rng(seed)` yields for n, each chunk reduced for
    every request before the next is drawn. At 100k items x 1,000 resamples the draw is about half
    of a mean-delta CI's time, so k CIs over the same items save about k - 1 draws.
    seed: an integer, or None (fresh entropy, the same for all requests); not a Generator, whose
    stream one call would consume differently from several."""
    _check_shared_seed(seed, "paired_bootstraps")
    confidence = check_confidence(confidence)
    plans, boots = _shared_distributions(requests, n_resamples, seed, "paired_bootstraps")
    shown_seed = None if seed is None else int(seed)
    return {key: plans[key].ci(boots[key], confidence, n_resamples, shown_seed) for key in requests}
