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


def _one_draw_per_slice(groups, min_items, n_resamples, seed):
    """The per-slice route (`bootstrap_distribution` for each slice in turn) the shared draws replaced."""
    from workbench.stats import bootstrap_distribution
    return [bootstrap_distribution(v, "mean", n_resamples, seed) if v.size >= min_items else None for v in groups]


@pytest.mark.parametrize("seed", [0, 17])
def test_slices_of_equal_size_share_one_draw_with_the_same_numbers(seed, monkeypatch):
    """Slices of equal size draw their resample indices once (issue 25): a fresh default_rng(seed)
    gives them the same indices anyway, so every number equals one draw per slice."""
    from workbench.stats import bootstrap as bootstrap_module, slices as slices_module

    rng = np.random.default_rng(seed)
    n = 240
    frame = pd.DataFrame({"lang": np.repeat(["en", "ja", "de", "fr"], [60, 60, 100, 20]),  # en, ja: equal size
                          "task": rng.choice(["a", "b"], n), "baseline": rng.random(n)})
    frame["candidate"] = frame["baseline"] + rng.normal(-0.05, 0.1, n)
    monkeypatch.setattr(bootstrap_module, "_memo", type(bootstrap_module._memo)())
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", 1000)  # several chunks per slice
    draws = []
    real = bootstrap_module._index_chunks
    monkeypatch.setattr(bootstrap_module, "_index_chunks", lambda *a: draws.append(a[0]) or real(*a))
    kw = dict(n_resamples=300, seed=seed, min_items=30, value_range=(0.0, 1.0))
    scores = frame.assign(score=(frame["candidate"] > frame["baseline"]) * 1.0)
    shared = slice_deltas(frame, ["lang", "task"], **kw)
    assert sorted(draws) == sorted(set(draws))  # one draw per distinct slice size
    assert draws.count(60) == 1 and 20 not in draws  # fr is too small: no draw
    shared_wins = slice_win_rates(scores, ["lang"], n_resamples=300, seed=seed, min_items=30)
    monkeypatch.setattr(slices_module, "_distributions", _one_draw_per_slice)
    bootstrap_module._memo.clear()
    pd.testing.assert_frame_equal(shared, slice_deltas(frame, ["lang", "task"], **kw), check_exact=True)
    pd.testing.assert_frame_equal(shared_wins, slice_win_rates(scores, ["lang"], n_resamples=300, seed=seed,
                                                               min_items=30), check_exact=True)


def test_slices_with_a_generator_or_no_seed_still_draw_per_slice():
    frame = _frame()
    gen = slice_deltas(frame, ["language"], min_items=20, n_resamples=200, seed=np.random.default_rng(3))
    again = slice_deltas(frame, ["language"], min_items=20, n_resamples=200, seed=np.random.default_rng(3))
    pd.testing.assert_frame_equal(gen, again, check_exact=True)
    fresh = slice_deltas(frame, ["language"], min_items=20, n_resamples=200, seed=None)
    assert list(fresh["n"]) == list(gen["n"]) and fresh["ci_low"].notna().sum() == gen["ci_low"].notna().sum()


def _groups_of_every_row(frame: pd.DataFrame, column: str) -> list:
    """The slices as a groupby of every row's value as an object gives them (the definition)."""
    keys = frame[column].astype(object).where(frame[column].notna(), "(missing)")
    return [(value, positions.tolist()) for value, positions in keys.groupby(keys, sort=True).indices.items()]


_COLUMN_KINDS = {
    "category": pd.Categorical(["en", "ja", "de", "en", "ja", "en"]),
    "category with missing": pd.Categorical(["en", None, "de", None, "ja", "en"]),
    "arrow text with missing and a '(missing)' value": pd.array(["b", None, "(missing)", "a", None, "b"],
                                                                 dtype="string[pyarrow]"),
    "objects with None": pd.Series(["x", None, "y", "x", None, "y"], dtype=object),
    "integers": np.array([3, 1, 2, 1, 3, 0]),
    "floats with NaN": np.array([2.0, np.nan, 1.0, 2.0, np.nan, 0.5]),
    "booleans": np.array([True, False, False, True, True, False]),
    "numbers and text": pd.Series([1, "a", 2, None, "b", 1], dtype=object),
    "all missing": pd.Series([None] * 6, dtype=object),
    "one value": ["z"] * 6,
}


@pytest.mark.parametrize("kind", list(_COLUMN_KINDS))
@pytest.mark.parametrize("n", [0, 1, 2, 3, 6])
def test_slices_are_those_of_a_groupby_of_every_row(kind, n):
    """The slices, their order, their labels' types (numpy scalars for numbers) and their rows are
    those of a groupby of every row's value: grouping the distinct values instead keeps each slice's
    numbers unchanged."""
    from workbench.stats.slices import _groups

    frame = pd.DataFrame({"c": _COLUMN_KINDS[kind]}).iloc[:n]
    got = [(value, positions.tolist()) for _, value, positions in _groups(frame, "c", include_all=False)]
    expected = _groups_of_every_row(frame, "c")
    assert got == expected
    assert [type(value) for value, _ in got] == [type(value) for value, _ in expected]


def test_slices_of_100k_items_hold_no_python_object_per_row():
    import tracemalloc

    from workbench.stats.slices import _groups

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"language": pd.Categorical(rng.choice(["en", "ja", "de", "fr"], 100_000)),
                          "task": pd.Categorical(rng.choice(["support", "code", None], 100_000))})
    tracemalloc.start()
    try:
        groups = list(_groups(frame, ["language", "task"], include_all=False))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(column, value) for column, value, _ in groups] == [
        ("language", "de"), ("language", "en"), ("language", "fr"), ("language", "ja"),
        ("task", "(missing)"), ("task", "code"), ("task", "support")]
    assert sum(len(positions) for _, _, positions in groups) == 200_000
    assert peak < 6 * 2**20  # a groupby of 100,000 objects per column peaked at 12 MiB
