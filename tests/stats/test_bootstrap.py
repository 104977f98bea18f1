"""Paired bootstrap: deterministic with a seed, correct on known cases, honest about bad input."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.stats import (
    StatsInputError,
    bootstrap_ci,
    bootstrap_distribution,
    bootstrap_indices,
    paired_delta_ci,
    paired_ratio_ci,
    win_rate_ci,
)
from workbench.stats import bootstrap as bootstrap_module


def test_same_seed_same_interval_and_different_seed_differs():
    x = np.random.default_rng(3).normal(size=300)
    a, b = bootstrap_ci(x, seed=7), bootstrap_ci(x, seed=7)
    assert (a.low, a.high) == (b.low, b.high)
    assert bootstrap_ci(x, seed=8).low != a.low


def test_indices_match_the_documented_generator():
    idx = bootstrap_indices(50, 20, seed=5)
    expected = np.random.default_rng(5).integers(0, 50, size=(20, 50), dtype=np.int32)
    np.testing.assert_array_equal(idx, expected)


def test_chunked_draws_equal_one_big_draw(monkeypatch):
    """Large inputs are resampled in row chunks to bound memory; that must not change any number."""
    x = np.random.default_rng(0).normal(size=101)
    one_chunk = bootstrap_distribution(x, "mean", 64, seed=1)
    np.testing.assert_array_equal(one_chunk, x[bootstrap_indices(101, 64, seed=1)].mean(axis=1))
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", 101 * 7)  # 7 rows per chunk, uneven last chunk
    np.testing.assert_array_equal(bootstrap_distribution(x, "mean", 64, seed=1), one_chunk)


def test_bootstrap_standard_error_matches_the_analytic_one():
    x = np.random.default_rng(11).normal(2.0, 3.0, size=4000)
    ci = bootstrap_ci(x, n_resamples=2000)
    analytic = x.std(ddof=1) / np.sqrt(x.size)
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.standard_error == pytest.approx(analytic, rel=0.08)
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * analytic, rel=0.1)


def test_coverage_is_near_nominal():
    rng = np.random.default_rng(2024)
    hits = 0
    for i in range(200):
        ci = bootstrap_ci(rng.normal(0.0, 1.0, size=200), n_resamples=400, seed=i)
        hits += ci.low <= 0.0 <= ci.high
    assert 0.88 <= hits / 200 <= 0.99


def test_pairing_removes_item_difficulty():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 5, size=500)
    base = difficulty + rng.normal(0, 0.3, size=500)
    cand = difficulty + 0.2 + rng.normal(0, 0.3, size=500)
    paired = paired_delta_ci(cand, base)
    assert paired.low > 0  # a 0.2 improvement is clear once difficulty cancels
    unpaired_width = 2 * 1.96 * np.sqrt(cand.var(ddof=1) / 500 + base.var(ddof=1) / 500)
    assert paired.high - paired.low < unpaired_width / 5


def test_constant_deltas_give_a_zero_width_interval():
    ci = paired_delta_ci([3.0, 4.0, 5.0], [2.0, 3.0, 4.0], n_resamples=50)
    assert (ci.estimate, ci.low, ci.high) == (1.0, 1.0, 1.0)


def test_win_rate_ci_brackets_the_win_rate():
    s = np.r_[np.ones(60), np.zeros(30), np.full(10, 0.5)]
    ci = win_rate_ci(s)
    assert ci.estimate == pytest.approx(0.65)
    assert ci.low < 0.65 < ci.high and 0.5 < ci.low


def test_ratio_of_p95_latency():
    rng = np.random.default_rng(4)
    base = rng.exponential(1.0, size=2000)
    cand = base * 2.0
    ci = paired_ratio_ci(cand, base, statistic="p95")
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((2.0, 2.0, 2.0))
    cost = paired_ratio_ci(rng.uniform(1, 2, 500), rng.uniform(2, 4, 500), statistic="sum")
    assert cost.low < cost.estimate < cost.high < 1


@pytest.mark.parametrize(
    "cand, base, match",
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "same length"),
        ([1.0, float("nan"), 2.0], [1.0, 1.0, 1.0], "NaN value"),
        ([], [], "empty"),
        ([1.0], [1.0], "at least 2"),
        (["a", "b"], [1.0, 2.0], "numeric"),
    ],
)
def test_bad_input_raises(cand, base, match):
    with pytest.raises(StatsInputError, match=match):
        paired_delta_ci(cand, base)


def test_zero_baseline_ratio_raises():
    with pytest.raises(StatsInputError, match="baseline"):
        paired_ratio_ci([1.0, 2.0], [0.0, 0.0])


def test_unknown_statistic_raises():
    with pytest.raises(StatsInputError, match="unknown statistic"):
        bootstrap_ci([1.0, 2.0, 3.0], statistic="mode")
