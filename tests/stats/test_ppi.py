"""PPI++ human win rates: exact formulas, the ppi_py oracle, bad input, and coverage on PandaLM's
real human labels (three annotators, majority as truth; PandaLM-7B and gpt-3.5 as judges)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.real_parts import need_module
from workbench.stats import StatsInputError
from workbench.stats.ppi import PPIWinRate, labels_needed, ppi_batch, ppi_win_rate
from workbench.stats.proportions import floor_half_width

Z95 = 1.959963984540054
REPS = 1000  # label subsets per n; the issue asks for >= 500


# ---- PandaLM as one comparison (response1 = baseline, response2 = candidate) -----------------
def load_pandalm(base: Path) -> dict[str, np.ndarray]:
    """Human majority (candidate side) and both judges' scores for the 999 PandaLM test pairs.

    Labels: 0 = tie, 1 = response1 (baseline) better, 2 = response2 (candidate) better. gpt-3.5's
    25 'garbage' verdicts are judge failures (NaN), not ties."""
    humans = json.loads((base / "testset-v1.json").read_text())
    pandalm = json.loads((base / "pandalm-7b-testset-v1.json").read_text())
    gpt = json.loads((base / "gpt-3.5-turbo-testset-v1.json").read_text())
    assert [h["idx"] for h in humans] == [p["idx"] for p in pandalm] == [g["idx"] for g in gpt]
    side = {"0": 0.5, "1": 0.0, "2": 1.0, "Tie": 0.5}
    raters = np.array([[side[str(h[f"annotator{k}"])] for k in (1, 2, 3)] for h in humans])
    a, b, c = raters.T
    majority = np.where((a == b) | (a == c), a, np.where(b == c, b, 0.5))
    return {
        "ids": np.array([str(h["idx"]) for h in humans]),
        "raters": raters,
        "human": majority,
        "slice": np.array([h["cmp_key"] for h in humans]),
        "pandalm": np.array([side[str(p["pandalm_result"])] for p in pandalm]),
        "gpt": np.array([side.get(str(g["gpt_result"]), np.nan) for g in gpt]),
    }


def uniform_masks(n_total: int, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """reps x n_total boolean masks, each a uniformly random n-subset (the labeler's default order)."""
    keys = rng.random((reps, n_total))
    return keys <= np.partition(keys, n - 1, axis=1)[:, [n - 1]]


@pytest.fixture(scope="module")
def pandalm() -> dict[str, np.ndarray]:
    from tests.conftest import SHARED_DATA

    base = SHARED_DATA / "pandalm"
    if not base.is_dir():
        from tests.real_parts import missing

        missing(f"shared data not found at {base} (CI clones it beside the repo as ../shared)")
    return load_pandalm(base)


# ---- exact formulas ----------------------------------------------------------------------------
def _toy(seed: int = 0, n_total: int = 400, n: int = 60):
    rng = np.random.default_rng(seed)
    f = rng.choice([0.0, 0.5, 1.0], n_total)
    y = np.clip(f + rng.choice([-1.0, -0.5, 0.0, 0.0, 0.0, 0.5], n_total), 0, 1)
    lab = rng.choice(n_total, n, replace=False)
    judge = pd.Series(f, index=[f"item{i}" for i in range(n_total)])
    human = pd.Series(y[lab], index=judge.index[lab])
    return f, y, lab, judge, human


def test_plain_ppi_matches_the_textbook_formula():
    f, y, lab, judge, human = _toy()
    mask = np.zeros(f.size, bool)
    mask[lab] = True
    r = ppi_win_rate(judge, human, lam=1.0)
    est = f[~mask].mean() + (y[mask] - f[mask]).mean()
    se = math.sqrt(f[~mask].var() / (~mask).sum() + (y[mask] - f[mask]).var() / mask.sum())
    assert r.estimate == pytest.approx(est, abs=1e-12)
    assert r.standard_error == pytest.approx(se, rel=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((est - Z95 * se, est + Z95 * se), abs=1e-12)
    assert (r.n_labeled, r.n_total, r.method) == (60, 400, "ppi++")


def test_power_tuned_lambda_is_the_ppi_plus_plus_formula_clipped():
    f, y, lab, judge, human = _toy(seed=3)
    mask = np.zeros(f.size, bool)
    mask[lab] = True
    n, n_u = mask.sum(), (~mask).sum()
    cov = np.mean((y[mask] - y[mask].mean()) * (f[mask] - f[mask].mean()))
    lam = cov / ((1 + n / n_u) * f.var(ddof=1))
    r = ppi_win_rate(judge, human)
    assert 0 < lam < 1 and r.lam == pytest.approx(lam, rel=1e-12)
    assert r.estimate == pytest.approx(lam * f[~mask].mean() + (y[mask] - lam * f[mask]).mean(), abs=1e-12)
    # A judge anti-correlated with the humans gets lam = 0 (clipped), i.e. exactly human-only.
    anti = ppi_win_rate(1 - judge, human)
    assert anti.lam == 0.0 and anti.estimate == pytest.approx(anti.human_estimate, abs=1e-15)


def test_lambda_zero_is_exactly_human_only():
    f, y, lab, judge, human = _toy(seed=1)
    r = ppi_win_rate(judge, human, lam=0.0)
    se = y[lab].std() / math.sqrt(lab.size)
    assert r.estimate == r.human_estimate == pytest.approx(y[lab].mean(), abs=1e-15)
    assert (r.ci_low, r.ci_high) == pytest.approx((r.human_ci_low, r.human_ci_high), abs=1e-15)
    assert r.human_standard_error == pytest.approx(se, rel=1e-12)


def test_all_items_labelled_gives_the_human_only_answer():
    rng = np.random.default_rng(2)
    f = rng.choice([0.0, 0.5, 1.0], 80)
    y = rng.choice([0.0, 0.5, 1.0], 80)
    ids = [f"i{i}" for i in range(80)]
    r = ppi_win_rate(dict(zip(ids, f)), dict(zip(ids, y)))
    assert r.lam == 0.0 and r.n_labeled == r.n_total == 80
    assert r.estimate == pytest.approx(y.mean(), abs=1e-15) and r.width == pytest.approx(r.human_width, abs=1e-15)
    with pytest.raises(StatsInputError, match="lam must be 0 when every item is labelled"):
        ppi_win_rate(dict(zip(ids, f)), dict(zip(ids, y)), lam=1.0)


def test_a_perfect_judge_shrinks_the_interval_and_a_useless_one_does_no_harm():
    rng = np.random.default_rng(4)
    n_total, n = 2000, 200
    y = rng.choice([0.0, 0.5, 1.0], n_total, p=[0.4, 0.1, 0.5])
    lab = rng.choice(n_total, n, replace=False)
    ids = np.array([f"i{i}" for i in range(n_total)])
    human = pd.Series(y[lab], index=ids[lab])
    perfect = ppi_win_rate(pd.Series(y, index=ids), human)
    assert perfect.lam > 0.6 and perfect.width < 0.35 * perfect.human_width
    # 50 labels that all agree with the judge cannot prove it perfect: the small-sample floor holds
    few = ppi_win_rate(pd.Series(y, index=ids), human.iloc[:50])
    assert few.width == pytest.approx(2 * floor_half_width(50, span=2.0), abs=1e-9) and few.width < few.human_width
    noise = ppi_win_rate(pd.Series(rng.choice([0.0, 0.5, 1.0], n_total), index=ids), human)
    assert noise.lam < 0.2 and noise.width <= 1.01 * noise.human_width


# ---- input forms -------------------------------------------------------------------------------
def test_several_raters_combine_by_majority_or_mean():
    judge = {"a": 1.0, "b": 0.0, "c": 0.5, "d": 1.0}
    frame = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b", "c", "c"],
                          "score": [1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.5]})
    by_majority = ppi_win_rate(judge, frame, lam=0.0)
    assert by_majority.human_estimate == pytest.approx((1.0 + 0.5 + 0.5) / 3)  # b: split panel = tie
    by_mean = ppi_win_rate(judge, frame, lam=0.0, rater_rule="mean")
    assert by_mean.human_estimate == pytest.approx((2 / 3 + 0.5 + 0.5) / 3)
    as_series = pd.Series(frame["score"].to_numpy(), index=frame["item_id"])
    as_dict = {"a": [1.0, 1.0, 0.0], "b": [0.0, 1.0], "c": [0.5, 0.5]}
    for other in (as_series, as_dict):
        assert ppi_win_rate(judge, other, lam=0.0).human_estimate == by_majority.human_estimate
    assert by_majority.n_labeled == 3


def test_failed_judge_items_count_as_ties_everywhere_and_are_reported():
    f, y, lab, judge, human = _toy(seed=5)
    broken = judge.copy()
    broken.iloc[[0, 1, int(lab[0])]] = np.nan
    r = ppi_win_rate(broken, human)
    as_ties = ppi_win_rate(broken.fillna(0.5), human)
    assert r.estimate == as_ties.estimate and r.n_judge_missing == 3 and r.n_labeled == lab.size
    assert r.judge_estimate == pytest.approx(np.nanmean(broken.to_numpy()))


def test_batch_rows_equal_single_calls():
    f, y, lab, judge, human = _toy(seed=6)
    rng = np.random.default_rng(0)
    masks = uniform_masks(f.size, 40, 5, rng)
    out = ppi_batch(y, f, masks, confidence=0.9)
    for row in range(5):
        ids = judge.index[masks[row]]
        r = ppi_win_rate(judge, pd.Series(y[masks[row]], index=ids), confidence=0.9)
        assert (r.estimate, r.ci_low, r.ci_high, r.lam) == pytest.approx(
            (out["estimate"][row], out["ci_low"][row], out["ci_high"][row], out["lam"][row]), abs=1e-12)


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("judge, human, message", [
    ({"a": 1, "b": 0, "c": 1}, {"a": 1, "x": 0, "y": 1}, "2 label.*judge never saw: x, y"),
    ({"a": 1, "b": 0, "c": 1}, {"a": 1}, "1 labelled item.*at least 2"),
    ({"a": 1, "b": 0, "c": 1}, {"a": 1, "b": np.nan}, "missing or infinite"),
    ({"a": 1, "b": 0, "c": 1}, {"a": 1, "b": 2}, r"must lie in \[0, 1\]"),
    ({"a": 1, "b": 7, "c": 1}, {"a": 1, "b": 0}, r"judge: scores must lie in \[0, 1\]"),
    ({"a": 1, "b": np.inf, "c": 1}, {"a": 1, "b": 0}, "infinite"),
    ({"a": 1}, {"a": 1}, "at least 2"),
    ([("a", 1), ("a", 0), ("b", 1)], {"a": 1, "b": 0}, "unique, repeated: a"),
    ({"a": 1, "b": 0, "c": 1}, {"a": [1, 0.3, 1], "b": 0}, "rule='mean' for graded"),
    ({"a": 1, "b": 0, "c": 1}, pd.DataFrame({"item": ["a"], "score": [1]}), "columns item_id and score"),
    ({"a": 1, "b": 0, "c": "x"}, {"a": 1, "b": 0}, "numeric"),
    (42, {"a": 1, "b": 0}, "expected a pandas Series"),
])
def test_bad_input_is_refused_with_a_clear_message(judge, human, message):
    with pytest.raises(StatsInputError, match=message):
        ppi_win_rate(judge, human)


def test_bad_parameters_are_refused():
    judge, human = {"a": 1, "b": 0, "c": 1}, {"a": 1, "b": 0}
    with pytest.raises(StatsInputError, match="confidence"):
        ppi_win_rate(judge, human, confidence=1.5)
    with pytest.raises(StatsInputError, match="lam must be a finite"):
        ppi_win_rate(judge, human, lam=float("nan"))
    with pytest.raises(StatsInputError, match="rater rule"):
        ppi_win_rate(judge, human, rater_rule="median")


# ---- stopping rule -----------------------------------------------------------------------------
def _result(estimate: float, se_lab: float, se_fix: float, n: int = 100, n_total: int = 1000) -> PPIWinRate:
    se = math.sqrt(se_lab ** 2 + se_fix ** 2)
    return PPIWinRate(estimate, estimate - Z95 * se, estimate + Z95 * se, se, n, n_total, 0.5, estimate,
                      0.0, 1.0, 0.1, estimate, 0, 0.95, "ppi++", se_lab ** 2, se_fix ** 2)


def _project(r: PPIWinRate, n_new: int) -> PPIWinRate:
    se = math.sqrt(r.variance_labeled * r.n_labeled / n_new + r.variance_fixed)
    return dataclasses.replace(r, n_labeled=n_new, standard_error=se, ci_low=r.estimate - Z95 * se,
                               ci_high=r.estimate + Z95 * se, variance_labeled=r.variance_labeled * r.n_labeled / n_new)


def test_stopping_rule_says_decided_when_the_interval_clears():
    above = labels_needed(_result(0.60, 0.02, 0.01), 0.45)
    assert (above.decided, above.more_labels, above.side) == (True, 0, "above") and "lies above 0.450" in above.reason
    below = labels_needed(_result(0.30, 0.02, 0.01), 0.45)
    assert (below.decided, below.side) == (True, "below")


@pytest.mark.parametrize("estimate", [0.52, 0.38])
def test_stopping_rule_count_is_the_smallest_that_clears(estimate):
    r = _result(estimate, 0.04, 0.01)
    advice = labels_needed(r, 0.45)
    assert not advice.decided and advice.more_labels > 0 and advice.side == ("above" if estimate > 0.45 else "below")
    enough = labels_needed(_project(r, r.n_labeled + advice.more_labels), 0.45)
    not_enough = labels_needed(_project(r, r.n_labeled + advice.more_labels - 1), 0.45)
    assert enough.decided and enough.side == advice.side and not not_enough.decided
    assert f"{advice.more_labels} more label" in advice.reason


def test_stopping_rule_says_when_no_number_of_labels_will_do():
    on_threshold = labels_needed(_result(0.45, 0.04, 0.01), 0.45)
    assert on_threshold.more_labels is None and "sits on the threshold" in on_threshold.reason
    judge_noise = labels_needed(_result(0.46, 0.04, 0.01), 0.45)  # gap 0.01 < 1.96 * judge-only SE 0.01
    assert judge_noise.more_labels is None and "judge-only part" in judge_noise.reason
    capped = labels_needed(_result(0.47, 0.04, 0.0), 0.45, max_labels=500)
    assert capped.more_labels is None and "within 500 labels" in capped.reason
    with pytest.raises(StatsInputError, match="threshold"):
        labels_needed(_result(0.5, 0.04, 0.01), float("nan"))


def test_stopping_rule_projection_matches_the_real_width_on_pandalm(pandalm):
    """From 50 labels, the projected SE at 200 labels is what 200 labels actually give (on average)."""
    y, f = pandalm["human"], pandalm["gpt"]
    f = np.where(np.isnan(f), 0.5, f)
    rng = np.random.default_rng(11)
    at50 = ppi_batch(y, f, uniform_masks(y.size, 50, REPS, rng))
    at200 = ppi_batch(y, f, uniform_masks(y.size, 200, REPS, rng))
    projected = np.sqrt(at50["variance_labeled"] * 50 / 200 + at50["variance_fixed"])
    ratio = np.median(projected) / np.median(at200["standard_error"])
    print(f"\nprojected/actual SE at 200 labels from 50: {ratio:.3f}")
    assert 0.9 < ratio < 1.1


# ---- real human labels: coverage and width -----------------------------------------------------
def test_pandalm_loader_matches_the_published_label_counts(pandalm):
    y = pandalm["human"]
    assert y.size == 999 and [int((y == v).sum()) for v in (0.5, 0.0, 1.0)] == [105, 422, 472]
    assert int(np.isnan(pandalm["gpt"]).sum()) == 25


@pytest.mark.parametrize("judge", ["pandalm", "gpt"])
@pytest.mark.parametrize("n", [50, 100, 200])
def test_ppi_covers_the_full_data_human_win_rate_and_is_narrower(pandalm, judge, n):
    y = pandalm["human"]
    f = np.where(np.isnan(pandalm[judge]), 0.5, pandalm[judge])
    truth = y.mean()
    masks = uniform_masks(y.size, n, REPS, np.random.default_rng(n))
    r = ppi_batch(y, f, masks)
    coverage = np.mean((r["ci_low"] <= truth) & (truth <= r["ci_high"]))
    width = np.mean(r["ci_high"] - r["ci_low"])
    human_width = np.mean(2 * Z95 * r["human_standard_error"])
    print(f"\n{judge} n={n}: coverage {coverage:.3f}, width ratio PPI/human-only {width / human_width:.3f}")
    assert coverage >= 0.93
    assert width < 0.95 * human_width


# ---- the authors' package as an oracle (skipped where ppi_py is not installed) -----------------
def test_matches_ppi_py_the_authors_implementation():
    ppi_py = need_module("ppi_py", "the authors' PPI package as reference; pip install ppi-python")
    f, y, lab, judge, human = _toy(seed=7, n_total=700, n=90)
    mask = np.zeros(f.size, bool)
    mask[lab] = True
    for lam in (None, 0.0, 0.3, 1.0):
        ours = ppi_win_rate(judge, human, lam=lam, confidence=0.9)
        point = ppi_py.ppi_mean_pointestimate(y[mask], f[mask], f[~mask], lam=lam)
        low, high = ppi_py.ppi_mean_ci(y[mask], f[mask], f[~mask], alpha=0.1, lam=lam)
        assert (ours.estimate, ours.ci_low, ours.ci_high) == pytest.approx(
            (float(np.squeeze(point)), float(np.squeeze(low)), float(np.squeeze(high))), abs=1e-12)
    low, high = ppi_py.classical_mean_ci(y[mask], alpha=0.1)
    assert (ours.human_ci_low, ours.human_ci_high) == pytest.approx((low, high), abs=1e-12)
