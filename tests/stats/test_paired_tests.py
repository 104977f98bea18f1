"""Sign test, McNemar and non-inferiority against hand-computed and textbook values."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from workbench.stats import (
    StatsInputError,
    mcnemar_test,
    noninferiority_test,
    sign_test,
    win_rate_noninferiority,
)


def test_sign_test_exact_binomial_value():
    cand = [2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 1]
    base = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 1]  # 9 better, 1 worse, 2 ties
    r = sign_test(cand, base)
    assert (r.n_better, r.n_worse, r.n_ties) == (9, 1, 2)
    assert r.p_value == pytest.approx(2 * 11 / 1024)  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    assert sign_test(cand, base, alternative="greater").p_value == pytest.approx(11 / 1024)


def test_sign_test_with_only_ties_has_p_one():
    assert sign_test([1, 2], [1, 2]).p_value == 1.0


def test_mcnemar_exact_small_sample():
    cand = [1] * 6 + [1, 0] * 5  # 6 discordant pairs, all in the candidate's favour
    base = [0] * 6 + [1, 0] * 5
    r = mcnemar_test(cand, base)
    assert r.method == "exact"
    assert (r.n_candidate_only, r.n_baseline_only, r.n_both_pass, r.n_both_fail) == (6, 0, 5, 5)
    assert r.p_value == pytest.approx(2 / 64)


def test_mcnemar_chi_square_textbook_table():
    # 2x2 table a=101 (both pass), b=121, c=59, d=33: chi2 = (121-59)^2 / 180 = 21.36 (uncorrected)
    base = np.r_[np.ones(101), np.ones(121), np.zeros(59), np.zeros(33)]
    cand = np.r_[np.ones(101), np.zeros(121), np.ones(59), np.zeros(33)]
    plain = mcnemar_test(cand, base, correction=False)
    assert plain.method == "chi2"
    assert plain.statistic == pytest.approx(62**2 / 180)
    assert plain.p_value == pytest.approx(stats.chi2.sf(62**2 / 180, 1))
    corrected = mcnemar_test(cand, base)
    assert corrected.statistic == pytest.approx(61**2 / 180)
    exact = mcnemar_test(cand, base, exact=True)
    assert exact.p_value == pytest.approx(stats.binomtest(59, 180).pvalue)


def test_mcnemar_rejects_non_binary():
    with pytest.raises(StatsInputError, match="pass/fail"):
        mcnemar_test([1, 2], [0, 1])


def test_noninferiority_t_matches_a_one_sided_t_test():
    rng = np.random.default_rng(0)
    base = rng.normal(5, 1, size=80)
    cand = base + rng.normal(-0.05, 0.4, size=80)
    r = noninferiority_test(cand, base, margin=0.2)
    ref = stats.ttest_1samp(cand - base + 0.2, 0.0, alternative="greater")
    assert r.p_value == pytest.approx(ref.pvalue)
    d = cand - base
    se = d.std(ddof=1) / np.sqrt(80)
    assert r.lower_bound == pytest.approx(d.mean() - stats.t.ppf(0.95, 79) * se)
    assert r.non_inferior == (r.lower_bound > -0.2) == (r.p_value < 0.05)


def test_noninferiority_orientation_for_lower_is_better():
    base = np.linspace(1.0, 2.0, 200)
    slower = base + 0.5 + np.sin(np.arange(200)) * 0.05  # latency up by 0.5 s
    r = noninferiority_test(slower, base, margin=0.1, higher_is_better=False)
    assert r.estimate == pytest.approx(-0.5, abs=0.01) and not r.non_inferior
    ok = noninferiority_test(slower, base, margin=1.0, higher_is_better=False)
    assert ok.non_inferior and ok.threshold == -1.0


def test_noninferiority_bootstrap_agrees_with_t_on_a_large_sample():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, 1000)
    cand = base + rng.normal(0, 0.5, 1000)
    t = noninferiority_test(cand, base, margin=0.05)
    b = noninferiority_test(cand, base, margin=0.05, method="bootstrap", n_resamples=2000)
    assert b.lower_bound == pytest.approx(t.lower_bound, abs=0.01)
    assert b.non_inferior == t.non_inferior


def test_win_rate_noninferiority_equal_models_with_enough_items():
    scores = np.r_[np.ones(150), np.zeros(150), np.full(100, 0.5)]  # 400 items, exactly even
    r = win_rate_noninferiority(scores, margin=0.05)
    assert r.estimate == 0.5 and r.threshold == 0.45 and r.non_inferior
    worse = np.r_[np.ones(100), np.zeros(250), np.full(50, 0.5)]
    assert not win_rate_noninferiority(worse, margin=0.05).non_inferior


def test_win_rate_noninferiority_tiny_sample_is_not_conclusive():
    r = win_rate_noninferiority([1, 0, 1, 0, 0.5, 1, 0, 0.5], margin=0.1)
    assert not r.non_inferior and r.lower_bound < 0.4


def test_identical_values_are_handled_without_division_by_zero():
    r = win_rate_noninferiority([1.0] * 10, margin=0.1)
    assert r.lower_bound == 1.0 and r.p_value == 0.0


@pytest.mark.parametrize("margin", [-0.1, float("nan"), 0.5])
def test_bad_margin_raises(margin):
    with pytest.raises(StatsInputError, match="margin"):
        win_rate_noninferiority([1, 0, 1], margin=margin)


def test_the_closed_form_sign_test_equals_scipys_binomtest_everywhere():
    """The tail formula at p = 1/2 gives binomtest's p for every k at n = 0..60 and at a few large n,
    for all three alternatives (to 1e-12), including k = n/2 and the extremes."""
    from scipy import stats as sps

    from workbench.stats.paired_tests import _binom_p

    cases = [(k, n) for n in range(1, 61) for k in range(n + 1)] + [(k, 20000) for k in (0, 9800, 10000, 10150, 20000)]
    for k, n in cases:
        for alternative in ("two-sided", "greater", "less"):
            expected = sps.binomtest(k, n, 0.5, alternative=alternative).pvalue
            assert abs(_binom_p(k, n, alternative) - expected) <= 1e-12 * max(1.0, expected), (k, n, alternative)
    assert _binom_p(0, 0, "two-sided") == 1.0
