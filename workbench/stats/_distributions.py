"""The few distribution functions the comparison needs, from `scipy.special` instead of `scipy.stats`.

Why: importing `scipy.stats` takes over a second (more than the rest of a warm compare's
statistics at 20k items), while `scipy.special` holds the very ufuncs `scipy.stats` evaluates:
`binom.cdf`/`sf`/`pmf` are `scipy.special._ufuncs._binom_cdf`/`_sf`/`_pmf` (Boost), `beta.ppf` is
`_beta_ppf`, `norm.ppf` is `ndtri`, `t.ppf`/`t.sf` are `stdtrit`/`stdtr`, `chi2.sf` is `chdtrc`.
Each function below calls the same ufunc on the same arguments, with scipy.stats' handling of the
support's edges, so every number equals scipy.stats' bit for bit (tests/stats/test_distributions.py
checks that on dense grids against scipy.stats itself). `binomtest` and its exact interval are
scipy's algorithms, step for step.
"""
from __future__ import annotations

import math

import numpy as np

# scipy.special is imported inside the functions (0.3 s), so importing workbench.stats stays cheap.


def _clip01(value: float) -> float:
    return float(np.clip(value, 0.0, 1.0))


def binom_cdf(k: float, n: int, p: float) -> float:
    """P(X <= k), X ~ Binomial(n, p) (`scipy.stats.binom.cdf`)."""
    from scipy.special import _ufuncs

    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return _clip01(_ufuncs._binom_cdf(math.floor(k), n, p))


def binom_sf(k: float, n: int, p: float) -> float:
    """P(X > k) (`scipy.stats.binom.sf`)."""
    from scipy.special import _ufuncs

    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    return _clip01(_ufuncs._binom_sf(math.floor(k), n, p))


def binom_pmf(k: float, n: int, p: float) -> float:
    """P(X = k) (`scipy.stats.binom.pmf`)."""
    from scipy.special import _ufuncs

    if k < 0 or k > n or k != math.floor(k):
        return 0.0
    return _clip01(_ufuncs._binom_pmf(k, n, p))


def _search(a, d: float, lo: float, hi: float) -> float:
    """scipy's `_binary_search_for_binom_tst`: i in [lo, hi] with a(i) <= d < a(i + 1)."""
    while lo < hi:
        mid = lo + (hi - lo) // 2
        midval = a(mid)
        if midval < d:
            lo = mid + 1
        elif midval > d:
            hi = mid - 1
        else:
            return mid
    return lo if a(lo) <= d else lo - 1


def binomtest_p(k: int, n: int, p: float = 0.5, alternative: str = "two-sided") -> float:
    """The p-value of `scipy.stats.binomtest(k, n, p, alternative)` (two-sided: the outcomes no likelier
    than k, with scipy's relative tolerance of 1e-7)."""
    if alternative == "less":
        return binom_cdf(k, n, p)
    if alternative == "greater":
        return binom_sf(k - 1, n, p)
    d = binom_pmf(k, n, p)
    rerr = 1 + 1e-7
    if k == p * n:
        return 1.0
    if k < p * n:
        ix = _search(lambda x1: -binom_pmf(x1, n, p), -d * rerr, np.ceil(p * n), n)
        y = n - ix + int(d * rerr == binom_pmf(ix, n, p))
        pval = binom_cdf(k, n, p) + binom_sf(n - y, n, p)
    else:
        ix = _search(lambda x1: binom_pmf(x1, n, p), d * rerr, 0, np.floor(p * n))
        y = ix + 1
        pval = binom_cdf(y - 1, n, p) + binom_sf(k - 1, n, p)
    return float(min(1.0, pval))


def binom_exact_ci(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval as `binomtest(k, n).proportion_ci(method='exact')` finds it
    (Brent's root of each tail)."""
    from scipy.optimize import brentq

    alpha = (1 - confidence) / 2
    low = 0.0 if k == 0 else brentq(lambda p: binom_sf(k - 1, n, p) - alpha, 0, 1)
    high = 1.0 if k == n else brentq(lambda p: binom_cdf(k, n, p) - alpha, 0, 1)
    return float(low), float(high)


def beta_ppf(q: float, a: float, b: float) -> float:
    """Quantile of Beta(a, b) (`scipy.stats.beta.ppf`), for 0 < q < 1 and a, b > 0."""
    from scipy.special import _ufuncs

    if q <= 0:
        return 0.0
    if q >= 1:
        return 1.0
    return float(_ufuncs._beta_ppf(q, a, b))


def norm_ppf(q: float) -> float:
    """Standard normal quantile (`scipy.stats.norm.ppf`)."""
    from scipy.special import ndtri

    return float(ndtri(q))


def t_ppf(q: float, df: float) -> float:
    """Student t quantile (`scipy.stats.t.ppf`), for 0 < q < 1."""
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def t_sf(x: float, df: float) -> float:
    """Student t upper tail P(T > x) (`scipy.stats.t.sf`)."""
    from scipy.special import stdtr

    return float(stdtr(df, -x))


def chi2_sf(x: float, df: float) -> float:
    """Chi-square upper tail (`scipy.stats.chi2.sf`)."""
    from scipy.special import chdtrc

    return float(chdtrc(df, x))
