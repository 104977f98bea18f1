"""Never more confident than the data: interval coverage at small n and near 0 and 1, and the edges
(n = 0, 1, 2, 3, every value equal) where a bootstrap or CLT interval alone collapses to zero width."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from workbench.stats import paired_delta_ci, ppi_win_rate, proportion_ci, win_rate_ci
from workbench.stats.ppi import floored_interval, labels_needed, ppi_batch
from workbench.stats.proportions import bounded_mean_ci, floor_half_width

SIZES = (5, 10, 30)
NEAR = (0.02, 0.5, 0.98)  # p near 0, 0.5 and 1
FLOOR = 0.93


def _covers(low: float, high: float, truth: float) -> bool:
    return low - 1e-12 <= truth <= high + 1e-12


# ---- exact coverage (every outcome weighed by its probability) --------------------------------
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("p", NEAR)
@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_proportion_ci_covers(n, p, method):
    coverage = sum(sps.binom.pmf(k, n, p) for k in range(n + 1)
                   if _covers(*(lambda c: (c.low, c.high))(proportion_ci(k, n, method=method)), p))
    assert coverage >= FLOOR, f"{method} n={n} p={p}: {coverage:.3f}"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("p", NEAR)
def test_bounded_mean_floor_covers_zero_one_outcomes(n, p):
    coverage = sum(sps.binom.pmf(k, n, p) for k in range(n + 1)
                   if _covers(*bounded_mean_ci(np.r_[np.ones(k), np.zeros(n - k)]), p))
    assert coverage >= FLOOR, f"n={n} p={p}: {coverage:.3f}"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("probs", [(0.01, 0.04, 0.95), (0.3, 0.4, 0.3), (0.95, 0.04, 0.01), (0.0, 1.0, 0.0)])
def test_bounded_mean_floor_covers_win_rates_with_ties(n, probs):
    """Scores 0 / 0.5 / 1 with probabilities `probs`: every (losses, ties, wins) outcome enumerated."""
    truth = probs[1] * 0.5 + probs[2]
    coverage = 0.0
    for losses in range(n + 1):
        for ties in range(n + 1 - losses):
            wins = n - losses - ties
            weight = sps.multinomial.pmf([losses, ties, wins], n, probs)
            if weight and _covers(*bounded_mean_ci(np.r_[np.zeros(losses), np.full(ties, 0.5), np.ones(wins)]), truth):
                coverage += weight
    assert coverage >= FLOOR, f"n={n} probs={probs}: {coverage:.3f}"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("p", NEAR)
def test_win_rate_ci_covers(n, p):
    """The reported win-rate interval (bootstrap with its floor) on every outcome of n decisive
    verdicts, each weighed by its probability: simulation with infinitely many repetitions."""
    coverage = 0.0
    for k in range(n + 1):
        ci = win_rate_ci(np.r_[np.ones(k), np.zeros(n - k)], n_resamples=500)
        coverage += sps.binom.pmf(k, n, p) if _covers(ci.low, ci.high, p) else 0.0
    assert coverage >= FLOOR, f"n={n} p={p}: {coverage:.3f}"


# ---- simulated coverage of what the product reports --------------------------------------------
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("p", NEAR)
def test_rate_difference_ci_covers(n, p):
    """Paired 0/1 outcomes (exact match on the same items): the candidate flips 10% of the
    baseline's outcomes, so the true difference is small and the two agree on most items."""
    rng = np.random.default_rng(7 + n)
    flip = 0.1
    truth = (p * (1 - flip) + (1 - p) * flip) - p
    reps, hits = 600, 0
    for _ in range(reps):
        base = (rng.random(n) < p).astype(float)
        cand = np.where(rng.random(n) < flip, 1 - base, base)
        ci = paired_delta_ci(cand, base, n_resamples=200, seed=int(rng.integers(1 << 30)), value_range=(0.0, 1.0))
        hits += _covers(ci.low, ci.high, truth)
    assert hits / reps >= FLOOR, f"n={n} p={p}: {hits / reps:.3f}"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("p", (0.03, 0.5, 0.97))
def test_prediction_powered_interval_covers_with_few_labels(n, p):
    """A judge right 80% of the time on 200 items, n of them labelled uniformly at random."""
    rng = np.random.default_rng(1000 + n)
    n_total, reps, hits = 200, 800, 0
    for _ in range(reps):
        y = (rng.random(n_total) < p).astype(float)
        f = np.where(rng.random(n_total) < 0.8, y, rng.choice([0.0, 0.5, 1.0], n_total))
        mask = np.zeros(n_total, bool)
        mask[rng.choice(n_total, n, replace=False)] = True
        r = {k: float(v[0]) for k, v in ppi_batch(y, f, mask).items()}
        hits += _covers(*floored_interval(r["estimate"], r["ci_low"], r["ci_high"], n, 0.95), p)
    assert hits / reps >= FLOOR, f"n={n} p={p}: {hits / reps:.3f}"


# ---- edges: n = 0, 1, 2, 3 and every value equal ------------------------------------------------
def test_bounded_mean_at_n_zero_is_the_whole_range():
    assert bounded_mean_ci([]) == pytest.approx((0.0, 1.0))
    assert bounded_mean_ci([], value_range=(-1.0, 1.0)) == pytest.approx((-1.0, 1.0))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_agreeing_values_never_give_zero_width(n, value):
    low, high = bounded_mean_ci(np.full(n, value))
    assert low <= value <= high and high - low >= 2 * floor_half_width(n) - 1e-12
    assert high - low > 0.3  # three agreeing values leave most of the range open


def test_floor_shrinks_with_n_and_is_the_narrowest_bounded_mean_interval():
    widths = [floor_half_width(n) for n in (0, 1, 2, 3, 10, 100)]
    assert widths == sorted(widths, reverse=True) and widths[0] == pytest.approx(0.5)
    for n in (10, 30):  # (below, the exact interval near the ends widens it further)
        low, high = bounded_mean_ci(np.full(n, 0.5))
        assert (high - low) / 2 == pytest.approx(floor_half_width(n))


def test_two_ties_are_not_proof_of_an_even_match():
    ci = win_rate_ci([0.5, 0.5])
    assert ci.estimate == 0.5 and ci.low < 0.2 and ci.high > 0.8


def test_two_baseline_wins_leave_the_candidate_room():
    ci = win_rate_ci([0.0, 0.0])
    assert ci.low == 0.0 and ci.high > 0.5  # Agresti-Coull for 0 of 2


def test_equal_items_give_an_honest_rate_difference_but_unbounded_metrics_keep_the_bootstrap():
    same = np.r_[np.ones(16), np.zeros(16)]
    ci = paired_delta_ci(same, same, value_range=(0.0, 1.0))
    assert ci.estimate == 0.0 and ci.low < -0.08 and ci.high > 0.08
    bleu = paired_delta_ci(same * 100, same * 100, value_range=(0.0, 100.0))
    assert bleu.low == pytest.approx(100 * ci.low) and bleu.high == pytest.approx(100 * ci.high)
    assert (paired_delta_ci(same, same).low, paired_delta_ci(same, same).high) == (0.0, 0.0)


def test_a_wide_interval_is_left_alone():
    rng = np.random.default_rng(3)
    s = rng.choice([0.0, 0.5, 1.0], 400)
    from workbench.stats import bootstrap_ci

    raw, floored = bootstrap_ci(s), win_rate_ci(s)
    assert floored.high - floored.low == pytest.approx(raw.high - raw.low, rel=0.15)


def test_bounded_mean_refuses_values_outside_the_range():
    from workbench.stats import StatsInputError

    with pytest.raises(StatsInputError, match="outside"):
        bounded_mean_ci([0.2, 1.5])
    with pytest.raises(StatsInputError, match="value_range"):
        bounded_mean_ci([0.2], value_range=(1.0, 1.0))


# ---- PPI and the stopping rule with two or three labels ----------------------------------------
def _judge_and_labels(n_total: int, labels: dict[str, float], judge_value: float = 0.0):
    ids = [f"i{i}" for i in range(n_total)]
    return pd.Series(judge_value, index=ids), pd.Series(labels)


def test_two_labels_for_the_baseline_do_not_make_a_zero_width_interval():
    judge, human = _judge_and_labels(40, {"i0": 0.0, "i1": 0.0})
    r = ppi_win_rate(judge, human)
    assert r.estimate == 0.0 and r.ci_low == 0.0 and r.ci_high >= floor_half_width(2, span=2.0) - 1e-12
    assert r.human_ci_high > 0.3


def test_the_stopping_rule_waits_for_enough_labels():
    judge, human = _judge_and_labels(40, {"i0": 0.0, "i1": 0.0, "i2": 0.0})
    r = ppi_win_rate(judge, human)
    advice = labels_needed(r, 0.45, min_labels=30)
    assert not advice.decided and advice.more_labels == 27 and "at least 30" in advice.reason
    # two ties on an all-tie judge: the interval is not [0.5, 0.5], so it cannot "decide" either side
    judge, human = _judge_and_labels(40, {"i0": 0.5, "i1": 0.5}, judge_value=0.5)
    tie = ppi_win_rate(judge, human)
    assert tie.ci_low < 0.45 and not labels_needed(tie, 0.45).decided
