"""The scipy.special closed forms equal scipy.stats bit for bit, and the compare path never imports
scipy.stats (whose import alone took longer than the rest of a warm compare's statistics)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from workbench.stats import _distributions as dist

_NS = [1, 2, 3, 4, 5, 9, 10, 24, 25, 26, 99, 100, 101, 1000, 1001, 20_000, 100_000]


def _ks(n: int) -> list[int]:
    picked = set(range(0, min(n, 40) + 1)) | set(range(max(0, n - 40), n + 1)) | {n // 2 - 1, n // 2, n // 2 + 1}
    picked |= set(np.random.default_rng(n).integers(0, n + 1, 60).tolist())
    return sorted(k for k in picked if 0 <= k <= n)


@pytest.mark.parametrize("n", _NS)
def test_binomial_tails_and_pmf_equal_scipy_stats(n):
    for k in _ks(n):
        for p in (0.5, 0.3):
            assert dist.binom_cdf(k, n, p) == stats.binom.cdf(k, n, p), (k, n, p)
            assert dist.binom_sf(k - 1, n, p) == stats.binom.sf(k - 1, n, p), (k, n, p)
            assert dist.binom_pmf(k, n, p) == stats.binom.pmf(k, n, p), (k, n, p)
    assert dist.binom_cdf(-1, n, 0.5) == stats.binom.cdf(-1, n, 0.5) == 0.0
    assert dist.binom_sf(n, n, 0.5) == stats.binom.sf(n, n, 0.5) == 0.0


@pytest.mark.parametrize("n", [1, 2, 3, 7, 24, 25, 60, 101, 2000, 20_001])
def test_binomtest_p_equals_scipy_binomtest(n):
    for k in _ks(n):
        for alternative in ("two-sided", "greater", "less"):
            for p in (0.5, 0.2):
                assert dist.binomtest_p(k, n, p, alternative) == stats.binomtest(k, n, p, alternative).pvalue, \
                    (k, n, p, alternative)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 30, 97, 1000])
def test_exact_interval_equals_scipy_binomtest(n):
    for k in _ks(n)[:25] + _ks(n)[-5:]:
        for confidence in (0.95, 0.9):
            ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
            assert dist.binom_exact_ci(k, n, confidence) == (ci.low, ci.high), (k, n, confidence)


def test_continuous_quantiles_and_tails_equal_scipy_stats():
    rng = np.random.default_rng(0)
    qs = np.r_[0.5 + np.array([0.8, 0.9, 0.95, 0.99, 0.999]) / 2, 0.95, 0.975, 0.025, rng.random(50)]
    for q in qs:
        assert dist.norm_ppf(q) == stats.norm.ppf(q)
        for df in (1, 2, 3, 9, 99, 99_999):
            assert dist.t_ppf(q, df) == stats.t.ppf(q, df), (q, df)
    for x in np.r_[0.0, -0.0, 1e-9, 0.5, -2.5, 3.84, 40.0, rng.normal(0, 5, 50)]:
        for df in (1, 2, 3, 9, 99, 99_999):
            assert dist.t_sf(x, df) == stats.t.sf(x, df), (x, df)
    for x in np.r_[0.0, 1e-12, 0.5, 3.84, 10.0, 100.0, 2000.0, rng.exponential(5, 50)]:
        assert dist.chi2_sf(x, 1) == stats.chi2.sf(x, 1), x


def test_beta_quantile_equals_scipy_stats_with_fractional_shapes():
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 5, 40, 1000, 100_000):
        for successes in {0.5, 1.0, 2.5, 3.0, n - 0.5, float(rng.uniform(0, n))}:
            if not 0 < successes < n:
                continue
            for q in (0.025, 0.975, 0.05, 0.95):
                assert dist.beta_ppf(q, successes, n - successes + 1) == stats.beta.ppf(q, successes, n - successes + 1)
                assert dist.beta_ppf(q, successes + 1, n - successes) == stats.beta.ppf(q, successes + 1, n - successes)


def test_importing_the_pipeline_and_the_comparison_statistics_leaves_scipy_stats_out():
    code = ("import sys, numpy as np, pandas as pd, workbench.pipeline, workbench.comparison.compare\n"
            "from workbench import stats\n"
            "from workbench.metrics import copying\n"
            "rng = np.random.default_rng(0); c, b = rng.random(200), rng.random(200)\n"
            "stats.sign_test(c, b); stats.noninferiority_test(c, b, margin=0.1)\n"
            "stats.mcnemar_test(c > 0.5, b > 0.5); stats.mcnemar_test(c > 0.9, b > 0.9)\n"
            "stats.proportion_ci(3, 40); stats.proportion_ci(20, 40, method='exact')\n"
            "stats.paired_delta_ci(c > 0.5, b > 0.5, value_range=(0, 1), n_resamples=50)\n"
            "stats.length_preference(np.where(c > b, 1.0, 0.0), c * 100, b * 100)\n"
            "assert 'scipy.stats' not in sys.modules, sorted(m for m in sys.modules if m.startswith('scipy.stats'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
