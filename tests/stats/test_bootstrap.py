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


# ---- one draw for several CIs, and the row quantile (issue 25) -----------------------------------
from workbench.stats import delta_request, paired_bootstraps, ratio_request, values_request  # noqa: E402
from workbench.stats.bootstrap import row_quantiles  # noqa: E402


def _edge_arrays(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {"lognormal": rng.lognormal(size=n), "equal": np.full(n, 0.25), "zero-one": (rng.random(n) < 0.5) * 1.0,
            "ties": rng.integers(0, 3, n) / 2, "negative": rng.normal(size=n)}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 19, 20, 21, 101, 1000, 5001])
@pytest.mark.parametrize("q", [0.0, 0.05, 0.25, 0.5, 0.95, 0.975, 0.99, 0.999, 1.0])
def test_row_quantiles_equal_numpy_quantile_bit_for_bit(n, q):
    for name, x in _edge_arrays(n).items():
        matrix = x[np.random.default_rng(1).integers(0, n, size=(7, n))]
        expected = np.quantile(matrix, q, axis=-1)
        kept = matrix.copy()
        np.testing.assert_array_equal(row_quantiles(matrix, q), expected, err_msg=name)
        np.testing.assert_array_equal(matrix, kept)  # the caller's matrix is left as it was
        np.testing.assert_array_equal(row_quantiles(matrix, q, overwrite_input=True), expected, err_msg=name)


def _same(a, b) -> None:
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("n", [2, 3, 57, 4000])
def test_paired_bootstraps_equal_the_single_functions_bit_for_bit(n, monkeypatch):
    rng = np.random.default_rng(n)
    c, b = rng.lognormal(size=n), rng.lognormal(size=n)
    pass_c, pass_b = (rng.random(n) < 0.7) * 1.0, (rng.random(n) < 0.6) * 1.0
    ones = np.ones(n)
    requests = {
        "delta": delta_request(c, b), "rate": delta_request(pass_c, pass_b, value_range=(0, 1)),
        "equal": delta_request(ones, ones), "sum": ratio_request(c, b, statistic="sum"),
        "p95": ratio_request(c, b, statistic="p95"), "values": values_request(pass_c),
        "median": delta_request(c, b, statistic="median"),
        "short": delta_request(c[: max(2, n // 2)], b[: max(2, n // 2)]),  # another n: its own draw
    }
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", max(n, 1000))  # several chunks
    for seed in (0, 11):
        got = paired_bootstraps(requests, n_resamples=120, confidence=0.9, seed=seed)
        assert list(got) == list(requests)
        kw = dict(n_resamples=120, confidence=0.9, seed=seed)
        _same(got["delta"], paired_delta_ci(c, b, **kw))
        _same(got["rate"], paired_delta_ci(pass_c, pass_b, value_range=(0, 1), **kw))
        _same(got["equal"], paired_delta_ci(ones, ones, **kw))
        _same(got["sum"], paired_ratio_ci(c, b, statistic="sum", **kw))
        _same(got["p95"], paired_ratio_ci(c, b, statistic="p95", **kw))
        _same(got["values"], bootstrap_ci(pass_c, **kw))
        _same(got["median"], paired_delta_ci(c, b, statistic="median", **kw))
        _same(got["short"], paired_delta_ci(c[: max(2, n // 2)], b[: max(2, n // 2)], **kw))


def test_p95_ratio_bootstrap_is_numpy_quantile_of_the_documented_indices():
    rng = np.random.default_rng(4)
    c, b = rng.lognormal(size=301), rng.lognormal(size=301)
    idx = bootstrap_indices(301, 200, seed=3)
    boot = np.quantile(c[idx], 0.95, axis=1) / np.quantile(b[idx], 0.95, axis=1)
    ci = paired_ratio_ci(c, b, statistic="p95", n_resamples=200, seed=3)
    assert ci.estimate == np.quantile(c, 0.95) / np.quantile(b, 0.95)
    assert (ci.low, ci.high) == tuple(np.quantile(boot, [0.025, 0.975]))
    assert ci.standard_error == boot.std(ddof=1)


def test_paired_bootstraps_reject_bad_input_with_the_single_functions_errors():
    with pytest.raises(StatsInputError, match="NaN"):
        delta_request([0.1, np.nan, 0.3], [0.2, 0.2, 0.2])
    with pytest.raises(StatsInputError, match="same length"):
        delta_request([0.1, 0.2, 0.3], [0.2, 0.2])
    with pytest.raises(StatsInputError, match="at least 2"):
        values_request([1.0])
    with pytest.raises(StatsInputError, match="unknown statistic"):
        ratio_request([1.0, 2.0], [1.0, 2.0], statistic="average")
    with pytest.raises(StatsInputError, match="is 0"):
        ratio_request([1.0, 2.0], [0.0, 0.0], statistic="sum")
    with pytest.raises(StatsInputError, match="BootstrapRequest"):
        paired_bootstraps({"raw": np.ones(3)})
    with pytest.raises(StatsInputError, match="seed"):
        paired_bootstraps({"d": delta_request([1.0, 2.0], [0.0, 1.0])}, seed=np.random.default_rng(0))
    with pytest.raises(StatsInputError, match="n_resamples"):
        paired_bootstraps({"d": delta_request([1.0, 2.0], [0.0, 1.0])}, n_resamples=5)
    with pytest.raises(StatsInputError, match="non-finite"):  # a resample whose baseline p95 is 0
        paired_bootstraps({"p95": ratio_request([1.0, 2.0, 3.0], [0.0, 0.0, 5.0], statistic="p95")})
    assert paired_bootstraps({}) == {}


def test_a_ci_asked_for_again_comes_from_the_memo_with_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(9)
    c, b = rng.random(500), rng.random(500)
    monkeypatch.setattr(bootstrap_module, "_memo", type(bootstrap_module._memo)())
    draws = []
    real = bootstrap_module._index_chunks
    monkeypatch.setattr(bootstrap_module, "_index_chunks", lambda *a: draws.append(a) or real(*a))
    first = paired_delta_ci(c, b, n_resamples=100, seed=4)
    assert len(draws) == 1
    again = paired_delta_ci(c.copy(), b.copy(), n_resamples=100, seed=4)  # equal values, other arrays
    shared = paired_bootstraps({"same": delta_request(c, b), "copy check": values_request(c - b)},
                               n_resamples=100, seed=4)
    assert len(draws) == 1  # the delta's distribution is that of its differences: no new draw
    _same(again, first)
    _same(shared["same"], first)
    assert (shared["copy check"].low, shared["copy check"].high) == (first.low, first.high)
    other_seed = paired_delta_ci(c, b, n_resamples=100, seed=5)
    changed = c.copy()
    changed[0] += 1e-9
    paired_delta_ci(changed, b, n_resamples=100, seed=4)
    paired_delta_ci(c, b, n_resamples=100, seed=np.random.default_rng(4))  # a Generator: never memoised
    paired_bootstraps({"fresh": delta_request(c, b)}, n_resamples=100, seed=None)
    assert len(draws) == 5 and other_seed.low != first.low
    monkeypatch.setattr(bootstrap_module, "_MEMO_SIZE", 2)
    for seed in (6, 7, 8):
        paired_delta_ci(c, b, n_resamples=100, seed=seed)
    assert len(bootstrap_module._memo) == 2  # bounded: the oldest are let go


@pytest.mark.parametrize("n", [2, 3, 1000, 65_537, 3_000_017])
def test_intp_draws_are_the_documented_int32_stream(n, monkeypatch):
    """The chunks are drawn as intp (no cast before each gather): numpy's bounded draws below 2**32 use
    the same 32-bit generator for every dtype, so the indices are the int32 stream's (65,537 and
    3,000,017 make numpy's rejection step happen)."""
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", 7 * n)
    rows = 15 if n < 10**6 else 2
    got = list(bootstrap_module._index_chunks(n, rows, np.random.default_rng(8)))
    expected = np.random.default_rng(8).integers(0, n, size=(rows, n), dtype=np.int32)
    assert all(chunk.dtype == np.intp for chunk in got)
    np.testing.assert_array_equal(np.concatenate(got), expected)


def test_bootstrap_distributions_equal_the_single_distribution_and_are_read_only(monkeypatch):
    from workbench.stats import bootstrap_distributions

    rng = np.random.default_rng(12)
    x, y = rng.normal(size=333), rng.normal(size=333)
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", 333 * 9)  # uneven chunks
    got = bootstrap_distributions({"x": values_request(x), "y": values_request(y, statistic="p95"),
                                   "short": values_request(x[:50])}, n_resamples=100, seed=5)
    np.testing.assert_array_equal(got["x"], bootstrap_distribution(x, "mean", 100, seed=5))
    np.testing.assert_array_equal(got["y"], bootstrap_distribution(y, "p95", 100, seed=5))
    np.testing.assert_array_equal(got["short"], bootstrap_distribution(x[:50], "mean", 100, seed=5))
    assert not got["x"].flags.writeable
    with pytest.raises(StatsInputError, match="seed"):
        bootstrap_distributions({"x": values_request(x)}, seed=np.random.default_rng(1))


def test_a_callers_statistic_gets_its_own_matrix_not_the_shared_buffer(monkeypatch):
    """The built-in reducers read one reused gather buffer; a caller's function may return a view of
    its matrix (kept until every chunk is done), so it gets a fresh one per chunk."""
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", 10 * 7)  # 7 rows per chunk: 5 chunks
    x = np.arange(10.0)
    kept = []
    boot = bootstrap_distribution(x, lambda m: kept.append(m) or m[:, 0], 30, seed=2)
    np.testing.assert_array_equal(boot, x[bootstrap_indices(10, 30, seed=2)][:, 0])
    assert len(kept) == 5 and not np.shares_memory(kept[0], kept[1])


def test_chunks_drawn_ahead_on_a_thread_are_the_plain_loops_and_an_error_stops_cleanly(monkeypatch):
    """The next chunk of indices is drawn on a helper thread while the current one is reduced; the
    chunks, their order and so every number are the plain loop's, and a reducer's error ends the
    bootstrap without leaving the helper waiting."""
    import threading

    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", 200 * 3)  # 3 rows per chunk
    plain = list(bootstrap_module._index_chunks(200, 50, np.random.default_rng(4)))
    ahead = list(bootstrap_module._drawn_ahead(bootstrap_module._index_chunks(200, 50, np.random.default_rng(4)),
                                               several=True))
    assert len(ahead) == len(plain) == 17 and all(np.array_equal(a, b) for a, b in zip(ahead, plain))
    x = np.random.default_rng(1).random(200)
    np.testing.assert_array_equal(bootstrap_distribution(x, "mean", 50, seed=4),
                                  np.concatenate([x[idx].mean(axis=1) for idx in plain]))
    calls = []

    def failing(m):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("reducer failed")
        return m.mean(axis=1)

    with pytest.raises(RuntimeError, match="reducer failed"):
        bootstrap_distribution(x, failing, 50, seed=4)
    assert not [t for t in threading.enumerate() if t.name.startswith("workbench-bootstrap-draw")]


@pytest.mark.parametrize("n", [2, 3, 4, 19, 101, 1000, 5001])
@pytest.mark.parametrize("statistic", ["p0", "p5", "p50", "p95", "p97.5", "p99.9", "p99.999", "p99.99999999999999999"])
def test_quantiles_read_by_rank_equal_the_partitioned_rows_bit_for_bit(n, statistic, monkeypatch):
    """A resample's quantile comes from the ranks of the values (a count per rank), not from
    partitioning the gathered row: the same number, whatever the ties, equal values or signs."""
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", max(n, 1000))  # several chunks, the last one short
    monkeypatch.setattr(bootstrap_module, "_RANKED_FROM", 2)  # by rank at every n (by default from 2,000)
    q = float(statistic[1:]) / 100  # the last: 1.0 in floating point, the maximum
    for name, x in _edge_arrays(n).items():
        assert bootstrap_module._ByRank.of(x, q) is not None, name
        idx = bootstrap_indices(n, 37, seed=5)
        expected = np.quantile(x[idx], q, axis=1)
        np.testing.assert_array_equal(bootstrap_distribution(x, statistic, n_resamples=37, seed=5), expected,
                                      err_msg=name)


def test_values_with_both_zeros_or_few_values_are_partitioned_not_read_by_rank(monkeypatch):
    assert bootstrap_module._ByRank.of(np.arange(1999.0), 0.95) is None  # few: a partition is faster
    assert bootstrap_module._ByRank.of(np.arange(2000.0), 0.95) is not None
    monkeypatch.setattr(bootstrap_module, "_RANKED_FROM", 2)
    both = np.array([0.0, -0.0, 1.0, 2.0])
    assert bootstrap_module._ByRank.of(both, 0.5) is None  # a partition may return either zero
    assert bootstrap_module._ByRank.of(np.array([-0.0, -0.0, 1.0]), 0.5) is not None
    assert bootstrap_module._ByRank.of(np.array([0.0, 3.0, 1.0]), 0.5) is not None
    idx = bootstrap_indices(4, 50, seed=2)
    np.testing.assert_array_equal(bootstrap_distribution(both, "p50", n_resamples=50, seed=2),
                                  np.quantile(both[idx], 0.5, axis=1))
