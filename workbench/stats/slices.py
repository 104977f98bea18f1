"""Per-slice deltas and win rates with CIs, flagging slices whose regression is significant.

A migration that is fine on average can still break one language or task. Each slice gets its own
paired bootstrap CI; a slice with fewer than `min_items` items gets the verdict 'too few items'
instead of a judgement (its CI would be noise). On a bounded scale (win rates; metrics with a
`value_range`) the CI has the small-sample floor of `proportions.bounded_mean_ci`.

Testing many slices, some would be flagged by chance at 95% confidence: each slice's two-sided
bootstrap p-value (of "no change") is adjusted with Holm's step-down method over the slices of the
table (the `correction` column says so and over how many), and a slice is flagged only when its
adjusted p-value is below 1 - confidence and its CI excludes no change.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from workbench.stats._validate import StatsInputError, as_float_array, as_scores
from workbench.stats.bootstrap import bootstrap_distribution, bootstrap_distributions, values_request
from workbench.stats.proportions import widen_to_floor

ALL = "(all)"
MISSING = "(missing)"
TOO_FEW = "too few items"
REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no significant change"

COLUMNS = ["column", "slice", "n", "estimate", "ci_low", "ci_high", "p_value", "p_adjusted", "correction", "verdict"]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control); NaN entries stay NaN and do
    not count as tests."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = tested.size
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out


def _groups(frame: pd.DataFrame, by: str | Sequence[str], include_all: bool):
    columns = [by] if isinstance(by, str) else list(by)
    for col in columns:
        if col not in frame.columns:
            raise StatsInputError(f"slices: no metadata column {col!r}; has {list(frame.columns)}")
    if include_all:
        yield ALL, ALL, np.arange(len(frame))
    for col in columns:
        # a groupby of the column's distinct values, not of 100,000 Python objects (12 MiB at 100,000
        # items): its keys, their order and their types (numpy scalars for numbers) are those of a
        # groupby of every row; equal labels (a value "(missing)" and a missing value) make one slice
        codes, uniques = pd.factorize(frame[col], use_na_sentinel=True)
        labels = np.asarray(uniques, dtype=object).tolist()
        if (codes < 0).any():
            labels.append(MISSING)
            codes = np.where(codes < 0, len(labels) - 1, codes)
        keys = pd.Series(labels, dtype=object)
        slices = keys.groupby(keys, sort=True).indices
        slice_of_label = np.empty(len(labels), dtype=np.intp)
        for number, at in enumerate(slices.values()):
            slice_of_label[at] = number
        slice_of_row = slice_of_label[codes]
        counts = np.bincount(slice_of_row, minlength=len(slices))
        rows = np.split(np.argsort(slice_of_row, kind="stable"), np.cumsum(counts)[:-1])
        yield from ((col, value, positions) for value, positions in zip(slices, rows))


def _distributions(groups: Sequence[np.ndarray], min_items: int, n_resamples: int, seed) -> list[np.ndarray | None]:
    """The bootstrap distribution of the mean of each group of at least `min_items` values (None for the
    others). With an integer seed, groups of equal size share one draw of the resample indices
    (`bootstrap_distributions`): a fresh `default_rng(seed)` draws the same indices for the same n, so
    each distribution equals `bootstrap_distribution(v, "mean", n_resamples, seed)`, bit for bit. Other
    seeds (None, a Generator) draw per group, in order, as before."""
    shared = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    if not shared:
        return [bootstrap_distribution(v, "mean", n_resamples, seed) if v.size >= min_items else None
                for v in groups]
    requests = {i: values_request(v) for i, v in enumerate(groups) if v.size >= min_items}
    boots = bootstrap_distributions(requests, n_resamples=n_resamples, seed=int(seed))
    return [boots.get(i) for i in range(len(groups))]


def _table(
    frame: pd.DataFrame, by, values: np.ndarray, verdict: Callable[[float, float], str], *,
    min_items: int, n_resamples: int, confidence: float, seed: int | None, include_all: bool,
    null: float, value_range: tuple[float, float] | None,
) -> pd.DataFrame:
    if min_items < 2:
        raise StatsInputError(f"min_items must be at least 2, got {min_items}")
    tail = (1 - confidence) / 2
    groups = [(col, value, values[pos]) for col, value, pos in _groups(frame, by, include_all)]
    boots = _distributions([v for _, _, v in groups], min_items, n_resamples, seed)
    rows = []
    for (col, value, v), boot in zip(groups, boots):
        if v.size < min_items:
            rows.append([col, value, v.size, float(v.mean()) if v.size else np.nan, np.nan, np.nan, np.nan, TOO_FEW])
            continue
        low, high = (float(x) for x in np.quantile(boot, [tail, 1 - tail]))
        if value_range is not None:
            low, high = widen_to_floor(low, high, np.clip(v, *value_range), value_range=value_range,
                                       confidence=confidence)
        # two-sided bootstrap p-value of "no change"; 1/(B+1) is the smallest a bootstrap can show
        p = min(1.0, max(2 * min(np.mean(boot <= null), np.mean(boot >= null)), 1 / (n_resamples + 1)))
        rows.append([col, value, v.size, float(v.mean()), low, high, p, None])
    adjusted = holm([r[6] for r in rows])
    tested = int(np.sum(~np.isnan(adjusted)))
    out = []
    for row, p_adj in zip(rows, adjusted):
        col, value, n, estimate, low, high, p, label = row
        if label is None:
            label = verdict(low, high) if p_adj < 1 - confidence else NO_CHANGE
        out.append((col, value, n, estimate, low, high, p, p_adj, f"Holm over {tested} slices" if tested else "",
                    label))
    return pd.DataFrame(out, columns=COLUMNS)


def slice_deltas(
    frame: pd.DataFrame, by: str | Sequence[str], *, candidate: str = "candidate", baseline: str = "baseline",
    higher_is_better: bool = True, min_items: int = 20, n_resamples: int = 1000, confidence: float = 0.95,
    seed: int | None = 0, include_all: bool = True, value_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Mean per-item delta (candidate - baseline, in the metric's units) with a CI for each value of each
    column in `by`. `frame` has one row per paired item (see pair_by_item) plus its metadata columns.

    verdict: 'regression' when the whole CI is on the worse side of 0 (below 0 if higher is better,
    above 0 if lower is better), 'improvement' for the mirror case, else 'no significant change';
    'too few items' below `min_items`. value_range: the metric's scale, for the small-sample floor.
    """
    for col in (candidate, baseline):
        if col not in frame.columns:
            raise StatsInputError(f"slices: missing value column {col!r}; has {list(frame.columns)}")
    delta = as_float_array(frame[candidate], candidate) - as_float_array(frame[baseline], baseline)

    def verdict(low: float, high: float) -> str:
        worse, better = (high < 0, low > 0) if higher_is_better else (low > 0, high < 0)
        return REGRESSION if worse else IMPROVEMENT if better else NO_CHANGE

    span = None if value_range is None else float(value_range[1]) - float(value_range[0])
    return _table(frame, by, delta, verdict, min_items=min_items, n_resamples=n_resamples,
                  confidence=confidence, seed=seed, include_all=include_all, null=0.0,
                  value_range=None if span is None else (-span, span))


def slice_win_rates(
    frame: pd.DataFrame, by: str | Sequence[str], *, score: str = "score", min_items: int = 20,
    n_resamples: int = 1000, confidence: float = 0.95, seed: int | None = 0, include_all: bool = True,
) -> pd.DataFrame:
    """Candidate win rate (ties 0.5) with a CI per slice; 'regression' when the CI's upper bound is
    below 0.5, 'improvement' when its lower bound is above 0.5 (and Holm's adjusted p agrees)."""
    if score not in frame.columns:
        raise StatsInputError(f"slices: missing score column {score!r}; has {list(frame.columns)}")
    s = as_scores(frame[score], score)

    def verdict(low: float, high: float) -> str:
        return REGRESSION if high < 0.5 else IMPROVEMENT if low > 0.5 else NO_CHANGE

    return _table(frame, by, s, verdict, min_items=min_items, n_resamples=n_resamples,
                  confidence=confidence, seed=seed, include_all=include_all, null=0.5, value_range=(0.0, 1.0))
