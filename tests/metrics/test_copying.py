"""copy_checks computes every metric's CIs with one draw of resample indices per item count (issue 25):
each number must still equal the single paired_delta_ci on the same items, bit for bit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import stats
from workbench.items.codes import ItemCodes
from workbench.metrics.copying import copied_items, copy_checks, copy_checks_paired, delta_without_copies


def _long_frames(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"i{k:05d}" for k in range(n)]
    rows = []
    for metric, scale in (("chrf", 100.0), ("length_chars", 400.0), ("exact", 1.0)):
        for model, shift in (("base", 0.0), ("cand", 0.05)):
            value = np.clip(rng.normal(0.5 + shift, 0.2, n), 0, 1) * scale
            if metric == "exact":
                value = (value > 0.5) * 1.0
            if metric == "length_chars" and model == "cand":
                value[rng.random(n) < 0.1] = np.nan  # a metric with fewer scored items: another n
            rows.append(pd.DataFrame({"item_id": ids, "model": model, "metric": metric, "value": value}))
    copies = pd.DataFrame({"item_id": ids * 2, "model": ["base"] * n + ["cand"] * n,
                           "copied_input": list(rng.random(n) < 0.2) + list(rng.random(n) < 0.1)})
    return pd.concat(rows, ignore_index=True), copies


def test_copy_checks_equal_one_paired_delta_ci_per_metric_and_part_bit_for_bit():
    scores, copies = _long_frames(3000)
    table = copy_checks(scores, copies, "base", "cand", n_resamples=200, seed=5).set_index("metric")
    copied = copies.pivot(index="item_id", columns="model", values="copied_input").any(axis=1)
    for metric, group in scores.groupby("metric"):
        wide = group.pivot(index="item_id", columns="model", values="value").dropna()
        c, b = wide["cand"].to_numpy(), wide["base"].to_numpy()
        kept = ~copied.reindex(wide.index).to_numpy()
        full_ci = stats.paired_delta_ci(c, b, n_resamples=200, seed=5)
        kept_ci = stats.paired_delta_ci(c[kept], b[kept], n_resamples=200, seed=5)
        row = table.loc[metric]
        assert (row["n"], row["n_kept"]) == (len(c), int(kept.sum()))
        assert (row["delta"], row["ci_low"], row["ci_high"]) == (full_ci.estimate, full_ci.low, full_ci.high)
        assert (row["delta_kept"], row["ci_low_kept"], row["ci_high_kept"]) == (kept_ci.estimate, kept_ci.low,
                                                                                 kept_ci.high)


def test_delta_without_copies_edges_two_items_equal_scores_and_nothing_copied():
    two = pd.DataFrame({"baseline": [0.2, 0.4], "candidate": [0.5, 0.9], "baseline_copied": [False, False],
                        "candidate_copied": [pd.NA, False]})
    row = delta_without_copies(two, n_resamples=50)
    ci = stats.paired_delta_ci([0.5, 0.9], [0.2, 0.4], n_resamples=50)
    assert (row["delta"], row["ci_low"], row["ci_high"]) == (ci.estimate, ci.low, ci.high)
    assert (row["delta_kept"], row["ci_low_kept"]) == (ci.estimate, ci.low)  # nothing copied: the same items
    equal = two.assign(candidate=[0.2, 0.4])
    row = delta_without_copies(equal, n_resamples=50)
    assert (row["delta"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0) and row["reading"] == "no lead on all items"
    one_left = two.assign(baseline_copied=[True, False])
    row = delta_without_copies(one_left, n_resamples=50)
    assert row["n_kept"] == 1 and np.isnan(row["delta_kept"])


def test_copied_items_any_answer_over_models_and_samples_and_na_is_not_copied():
    ids = pd.Series(["a", "a", "b", "b", "c"], dtype="str")
    flags = pd.Series([False, True, pd.NA, False, pd.NA], dtype="boolean")
    assert copied_items(ids, flags).to_dict() == {"a": True, "b": False, "c": False}
    one_row_each = pd.Series(["x", "y", "z"], dtype="str")
    base = pd.Series([True, pd.NA, False], dtype="boolean")
    cand = pd.Series([False, True, pd.NA], dtype="boolean")
    assert copied_items(one_row_each, base, cand).to_dict() == {"x": True, "y": True, "z": False}
    assert copied_items(pd.Series([], dtype="str"), pd.Series([], dtype="boolean")).empty


@pytest.mark.parametrize("samples", [1, 2])
def test_a_comparison_s_copy_checks_on_its_pairs_equal_copy_checks_on_the_long_frames(samples):
    scores, copies = _long_frames(400, seed=samples)
    if samples == 2:  # a second sample of every answer: means per item, a copy by any sample counts
        shifted = scores.assign(value=scores["value"] * 0.9, sample_index=1)
        scores = pd.concat([scores.assign(sample_index=0), shifted], ignore_index=True)
        second = copies.assign(copied_input=copies["item_id"].isin(["i00001", "i00002"]))
        copies = pd.concat([copies, second], ignore_index=True)
    scores = scores.sample(frac=1.0, random_state=3).reset_index(drop=True)  # row order must not matter
    expected = copy_checks(scores, copies, "base", "cand", n_resamples=150, seed=2)
    copied = copied_items(copies["item_id"], copies["copied_input"])
    got = copy_checks_paired(stats.metric_pairs(scores, "base", "cand"), copied, n_resamples=150, seed=2)
    pd.testing.assert_frame_equal(got, expected)
    assert got["n_copied"].gt(0).all() and got["n_kept"].gt(200).all()  # both parts of every metric drawn


def test_copy_checks_paired_edges_no_pairs_one_item_and_no_copies():
    assert copy_checks_paired({}, pd.Series(dtype=bool)).empty
    one = stats.Paired(pd.Index(["a"]), np.array([0.1]), np.array([0.9]))
    row = copy_checks_paired({"m": one}, pd.Series({"a": True})).iloc[0]
    assert (row["n"], row["n_copied"], row["n_kept"]) == (1, 1, 0) and row["reading"] == "too few items"
    three = stats.Paired(pd.Index(["a", "b", "c"]), np.array([0.1, 0.2, 0.3]), np.array([0.9, 0.8, 0.95]))
    row = copy_checks_paired({"m": three}, pd.Series(dtype=bool), n_resamples=50).iloc[0]  # no flags: none copied
    assert row["n_copied"] == 0 and (row["delta"], row["ci_low"]) == (row["delta_kept"], row["ci_low_kept"])


def test_copy_flags_of_coded_ids_are_read_by_position_as_the_text_ids_give():
    """A read in chunks codes every id over one dictionary: the flags are then taken by position, not by
    a hash table of every id; any id the flags lack (never measured, or missing) counts as not copied."""
    codes = ItemCodes.of(pd.Series(["d", "a", "c", "b", "e"], dtype="str"))
    behaviour_ids = pd.Series(["c", "a", "a", "d"], dtype="str")  # a repeated id (two samples), b and e unmeasured
    flags = pd.Series([True, False, pd.NA, False], dtype="boolean")
    as_text = copied_items(behaviour_ids, flags)
    as_codes = copied_items(pd.Series(pd.Categorical(behaviour_ids, dtype=codes.dtype)), flags)
    paired_text = {"m": stats.Paired(pd.Index(["a", "b", "c", "d", "e"]), np.arange(5.0), np.arange(5.0) + [1, 0, 2, 0, 1])}
    coded_ids = pd.CategoricalIndex(["a", "b", "c", "d", "e"], dtype=codes.dtype)
    paired_codes = {"m": stats.Paired(coded_ids, *(paired_text["m"].a, paired_text["m"].b))}
    expected = copy_checks_paired(paired_text, as_text, n_resamples=50, seed=1)
    got = copy_checks_paired(paired_codes, as_codes, n_resamples=50, seed=1)
    pd.testing.assert_frame_equal(got, expected)
    assert got.loc[0, "n_copied"] == 1  # c alone: a's copy was <NA>, b and e were never measured
    missing = pd.CategoricalIndex(["a", None, "c"], dtype=codes.dtype)  # a missing id: not copied
    row = copy_checks_paired({"m": stats.Paired(missing, np.zeros(3), np.ones(3))}, as_codes, n_resamples=50).iloc[0]
    assert (row["n"], row["n_copied"]) == (3, 1)
    assert copy_checks_paired(paired_codes, as_codes.iloc[:0], n_resamples=50).loc[0, "n_copied"] == 0
