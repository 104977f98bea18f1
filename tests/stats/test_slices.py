"""Slices: a planted regression in one language is flagged, tiny slices get no verdict."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.stats import StatsInputError, slice_deltas, slice_win_rates


def _frame(seed=0):
    rng = np.random.default_rng(seed)
    n_en, n_ja, n_tiny = 200, 200, 5
    lang = ["en"] * n_en + ["ja"] * n_ja + ["de"] * n_tiny
    base = rng.normal(0.7, 0.1, len(lang))
    drop = np.r_[np.zeros(n_en), np.full(n_ja, -0.15), np.full(n_tiny, -0.5)]
    cand = base + drop + rng.normal(0, 0.05, len(lang))
    task = rng.choice(["support_reply", "review_summary"], len(lang))
    return pd.DataFrame({"language": lang, "task": task, "candidate": cand, "baseline": base})


def test_planted_regression_is_flagged_and_clean_slice_is_not():
    t = slice_deltas(_frame(), ["language", "task"], min_items=20, n_resamples=500).set_index(["column", "slice"])
    assert t.loc[("language", "ja"), "verdict"] == "regression"
    assert t.loc[("language", "ja"), "ci_high"] < 0
    assert t.loc[("language", "en"), "verdict"] == "no significant change"
    assert t.loc[("language", "de"), "verdict"] == "too few items"
    assert t.loc[("language", "de"), "n"] == 5 and np.isnan(t.loc[("language", "de"), "ci_low"])
    assert t.loc[("(all)", "(all)"), "n"] == 405
    assert set(t.loc["task"].index) == {"support_reply", "review_summary"}
    assert t.loc[("language", "ja"), "estimate"] == pytest.approx(-0.15, abs=0.02)


def test_direction_for_lower_is_better_metrics():
    f = _frame()
    f[["candidate", "baseline"]] = -f[["candidate", "baseline"]]  # e.g. an error metric: now ja went UP
    t = slice_deltas(f, "language", higher_is_better=False, n_resamples=300).set_index("slice")
    assert t.loc["ja", "verdict"] == "regression" and t.loc["ja", "ci_low"] > 0


def test_win_rate_slices_and_missing_metadata():
    scores = np.r_[np.ones(40), np.zeros(10), np.zeros(40), np.full(10, 0.5), np.ones(3)]
    lang = ["en"] * 50 + ["ja"] * 50 + [None] * 3
    t = slice_win_rates(pd.DataFrame({"score": scores, "language": lang}), "language",
                        min_items=10, n_resamples=300).set_index("slice")
    assert t.loc["en", "verdict"] == "improvement" and t.loc["en", "estimate"] == 0.8
    assert t.loc["ja", "verdict"] == "regression" and t.loc["ja", "ci_high"] < 0.5
    assert t.loc["(missing)", "verdict"] == "too few items"


def test_bad_slice_input():
    f = _frame()
    with pytest.raises(StatsInputError, match="no metadata column"):
        slice_deltas(f, "country")
    f.loc[3, "candidate"] = np.nan
    with pytest.raises(StatsInputError, match="NaN"):
        slice_deltas(f, "language")
    with pytest.raises(StatsInputError, match="min_items"):
        slice_deltas(_frame(), "language", min_items=1)


def test_holm_adjusts_step_down_and_skips_untested():
    from workbench.stats.slices import holm

    adjusted = holm([0.01, np.nan, 0.04, 0.03])
    assert np.isnan(adjusted[1])
    assert adjusted[[0, 3, 2]] == pytest.approx([0.03, 0.06, 0.06])  # 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)


def test_many_slices_are_corrected_for_and_say_how():
    """20 slices of pure noise: uncorrected, about one would be flagged at 95%; Holm flags none,
    while a real regression in one slice still stands out."""
    rng = np.random.default_rng(17)
    n = 20 * 30
    slice_of = np.repeat([f"s{k:02d}" for k in range(20)], 30)
    base = rng.normal(0.6, 0.1, n)
    cand = base + rng.normal(0, 0.1, n)
    cand[slice_of == "s07"] -= 0.3
    t = slice_deltas(pd.DataFrame({"slice_col": slice_of, "candidate": cand, "baseline": base}), "slice_col",
                     include_all=False, min_items=10, n_resamples=2000).set_index("slice")
    assert list(t.index[t["verdict"] == "regression"]) == ["s07"]
    assert (t["p_adjusted"] >= t["p_value"]).all() and set(t["correction"]) == {"Holm over 20 slices"}
    naive = (t["ci_high"] < 0) | (t["ci_low"] > 0)
    assert naive.sum() == 3  # the uncorrected CIs alone flag two noise slices besides the planted one


def test_slices_on_a_bounded_scale_keep_the_small_sample_floor():
    f = pd.DataFrame({"g": ["a"] * 12, "candidate": np.ones(12), "baseline": np.ones(12)})
    t = slice_deltas(f, "g", include_all=False, min_items=10, value_range=(0.0, 1.0)).iloc[0]
    assert t["estimate"] == 0 and t["ci_low"] < -0.15 and t["ci_high"] > 0.15 and t["verdict"] == "no significant change"
    w = slice_win_rates(pd.DataFrame({"g": ["a"] * 10, "score": np.full(10, 0.5)}), "g", include_all=False,
                        min_items=10).iloc[0]
    assert w["ci_low"] < 0.45 < 0.55 < w["ci_high"]
