"""Proportion CIs: Wilson and Clopper-Pearson against known values."""
from __future__ import annotations

import pytest

from workbench.stats import StatsInputError, proportion_ci


def test_wilson_zero_successes_known_value():
    ci = proportion_ci(0, 10)
    assert ci.low == 0.0
    assert ci.high == pytest.approx(0.2775, abs=1e-4)  # 1.96^2 / (10 + 1.96^2)


def test_wilson_symmetric_case():
    ci = proportion_ci(50, 100)
    assert (ci.low, ci.high) == pytest.approx((0.4038, 0.5962), abs=1e-4)


def test_exact_zero_successes_is_rule_of_three_ish():
    ci = proportion_ci(0, 100, method="exact")
    assert ci.high == pytest.approx(1 - 0.025 ** (1 / 100))


@pytest.mark.parametrize("k, n", [(3, 2), (-1, 5), (0, 0), (1.5, 3)])
def test_bad_counts_raise(k, n):
    with pytest.raises(StatsInputError):
        proportion_ci(k, n)


def test_wilson_bounds_are_exact_at_zero_and_all_successes() -> None:
    for n in (1, 7, 96, 10_000):
        none, every = proportion_ci(0, n), proportion_ci(n, n)
        assert none.low == 0.0 and none.high > 0 and every.high == 1.0 and every.low < 1
