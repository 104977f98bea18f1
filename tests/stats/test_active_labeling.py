"""Active labelling: proposed probabilities, the seeded queue, the weighted estimator, and its
coverage on PandaLM's real human labels when items are drawn by judge uncertainty."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.stats.test_ppi import REPS, Z95, load_pandalm, uniform_masks  # noqa: F401  (fixture below)
from workbench.stats import StatsInputError
from workbench.stats.active_labeling import (
    active_batch,
    active_win_rate,
    propose_probabilities,
    sample_queue,
    uncertainty_class,
)
from workbench.stats.ppi import ppi_batch, ppi_win_rate


@pytest.fixture(scope="module")
def pandalm() -> dict[str, np.ndarray]:
    from tests.conftest import SHARED_DATA

    base = SHARED_DATA / "pandalm"
    if not base.is_dir():
        from tests.real_parts import missing

        missing(f"shared data not found at {base} (CI clones it beside the repo as ../shared)")
    return load_pandalm(base)


def active_masks(pi: np.ndarray, n: int, reps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What `sample_queue` + "label the first n of the queue" does, for `reps` seeds at once.
    Returns (labelled masks, effective probabilities pi * k / m)."""
    queued = rng.random((reps, pi.size)) < pi
    keys = np.where(queued, rng.random((reps, pi.size)), 2.0)  # random queue order
    labeled = queued & (keys <= np.partition(keys, n - 1, axis=1)[:, [n - 1]])
    k = labeled.sum(1, keepdims=True)
    m = queued.sum(1, keepdims=True)
    return labeled, pi * k / m


# ---- proposing probabilities -------------------------------------------------------------------
def _judges(n_total: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"i{i}" for i in range(n_total)]
    first = rng.choice([0.0, 0.5, 1.0], n_total, p=[0.45, 0.1, 0.45])
    second = np.where(rng.random(n_total) < 0.75, first, rng.choice([0.0, 0.5, 1.0], n_total))
    first[:5] = np.nan
    return ids, pd.Series(first, index=ids), pd.Series(second, index=ids)


def test_probabilities_follow_uncertainty_sum_to_the_budget_and_respect_the_floor():
    ids, first, second = _judges()
    pi = propose_probabilities(first, second, budget=40, floor=0.25)
    assert list(pi.index) == ids and pi.sum() == pytest.approx(40, abs=1e-6)
    assert pi.min() >= 0.25 * 40 / 200 - 1e-12 and pi.max() <= 1
    cls = uncertainty_class(first.to_numpy(), second.to_numpy())
    mean = {c: pi[cls == c].mean() for c in ("decisive", "tie", "inconsistent", "failed")}
    assert mean["decisive"] < mean["tie"] < mean["inconsistent"] == pytest.approx(mean["failed"])
    assert mean["inconsistent"] / mean["decisive"] == pytest.approx(1.5)
    assert (propose_probabilities(first, second, budget=200) == 1).all()
    # A large budget saturates the most uncertain items at 1 and still sums to the budget.
    big = propose_probabilities(first, second, budget=150, weights={"inconsistent": 10.0})
    assert big.max() == 1.0 and big.sum() == pytest.approx(150, abs=1e-6)


def test_small_slices_are_raised_to_the_minimum_expected_labels():
    ids, first, _ = _judges(seed=1)
    slices = pd.Series(["big"] * 190 + ["small"] * 10, index=ids)
    pi = propose_probabilities(first, budget=20, slices=slices, min_per_slice=3)
    assert pi[slices == "small"].sum() >= 2.5  # about 1 label without the boost
    plain = propose_probabilities(first, budget=20)
    assert plain[slices == "small"].sum() < 1.5
    # Slices that already have their labels are not raised.
    done = propose_probabilities(first, budget=20, slices=slices, min_per_slice=3, labeled=ids[190:193])
    assert done[slices == "small"].sum() == pytest.approx(plain[slices == "small"].sum(), rel=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"budget": 0}, r"budget must be a number of labels in \(0, 200\]"),
    ({"budget": 201}, "budget"),
    ({"budget": 10, "floor": 0}, "floor"),
    ({"budget": 10, "weights": {"unsure": 2.0}}, "weights"),
    ({"budget": 10, "weights": {"tie": 0.0}}, "weights"),
    ({"budget": 10, "slices": {"i0": "a"}}, "no slice for 199 item"),
])
def test_bad_proposal_parameters(kwargs, message):
    _, first, _ = _judges()
    with pytest.raises(StatsInputError, match=message):
        propose_probabilities(first, **kwargs)


def test_second_order_must_cover_the_same_items():
    _, first, second = _judges()
    with pytest.raises(StatsInputError, match="same items"):
        propose_probabilities(first, second.iloc[:-1], budget=10)


# ---- the queue ---------------------------------------------------------------------------------
def test_queue_is_seeded_and_includes_each_item_with_its_probability():
    ids, first, second = _judges()
    pi = propose_probabilities(first, second, budget=50)
    q = sample_queue(pi, seed=3)
    assert q == sample_queue(pi, seed=3) and q != sample_queue(pi, seed=4)
    assert q.queue_size == len(q.item_ids) and q.n_total == 200
    assert list(q.probabilities) == [pi[i] for i in q.item_ids]
    frame = q.to_frame()
    assert list(frame.columns) == ["position", "item_id", "probability", "queue_size"]
    counts = pd.Series(0, index=ids)
    draws = 2000
    for seed in range(draws):
        counts[list(sample_queue(pi, seed=seed).item_ids)] += 1
    freq = counts / draws
    z = (freq - pi) / np.sqrt(pi * (1 - pi) / draws)
    assert np.abs(z).max() < 4.5  # 200 items, each within sampling error of its probability


@pytest.mark.parametrize("bad", [0.0, 1.2, np.nan, -0.1])
def test_queue_refuses_impossible_probabilities(bad):
    with pytest.raises(StatsInputError, match=r"probabilities must lie in \(0, 1\]"):
        sample_queue({"a": 0.5, "b": bad}, seed=0)


# ---- the estimator -----------------------------------------------------------------------------
def test_weighted_human_mean_and_uniform_case_are_the_textbook_formulas():
    rng = np.random.default_rng(5)
    n_total = 300
    ids = np.array([f"i{i}" for i in range(n_total)])
    f = rng.choice([0.0, 0.5, 1.0], n_total)
    y = np.clip(f + rng.choice([-1.0, -0.5, 0.0, 0.0, 0.5], n_total), 0, 1)
    lab = rng.choice(n_total, 60, replace=False)
    pi = rng.uniform(0.1, 0.9, n_total)
    judge, human = pd.Series(f, index=ids), pd.Series(y[lab], index=ids[lab])
    r = active_win_rate(judge, human, pd.Series(pi, index=ids), queue_size=80, lam=0.0)
    w = 1 / pi[lab]
    assert r.estimate == r.human_estimate == pytest.approx((w * y[lab]).sum() / w.sum(), abs=1e-12)
    lam_fixed = active_win_rate(judge, human, pd.Series(pi, index=ids), queue_size=80, lam=0.4)
    assert lam_fixed.estimate == pytest.approx(0.4 * f.mean() + (w * (y[lab] - 0.4 * f[lab])).sum() / w.sum())
    # Everyone queued (pi = 1), the first 60 labelled: PPI with the judge mean over all items.
    ones = pd.Series(1.0, index=ids)
    u = active_win_rate(judge, human, ones, queue_size=n_total)
    assert u.estimate == pytest.approx(u.lam * f.mean() + (y[lab] - u.lam * f[lab]).mean(), abs=1e-12)
    ppi = ppi_win_rate(judge, human)
    assert u.estimate == pytest.approx(ppi.estimate, abs=0.01) and u.width == pytest.approx(ppi.width, rel=0.05)
    assert u.method == "active" and u.n_labeled == 60 and 0 < u.lam <= 1


def test_horvitz_thompson_form_is_unbiased_and_the_default_is_nearly_so():
    rng = np.random.default_rng(8)
    n_total = 300
    f = rng.choice([0.0, 0.5, 1.0], n_total)
    y = np.clip(f + rng.choice([-1.0, -0.5, 0.0, 0.0, 0.5], n_total), 0, 1)
    pi = np.where(f == 0.5, 0.3, 0.08)
    reps = 10000
    labeled = rng.random((reps, n_total)) < pi  # the whole queue labelled: pi_eff = pi
    ht = active_batch(y, f, labeled, pi, lam=0.5, weighting="ht")["estimate"]
    hajek = active_batch(y, f, labeled, pi)["estimate"]
    assert abs(ht.mean() - y.mean()) < 3 * ht.std() / np.sqrt(reps)
    assert abs(hajek.mean() - y.mean()) < 0.1 * hajek.std()  # O(1/n) bias, small beside the SE
    assert hajek.std() < ht.std()


def test_all_labelled_is_human_only():
    ids = [f"i{i}" for i in range(50)]
    rng = np.random.default_rng(0)
    y = rng.choice([0.0, 1.0], 50)
    r = active_win_rate(dict(zip(ids, rng.random(50))), dict(zip(ids, y)), dict.fromkeys(ids, 1.0))
    assert r.lam == 0.0 and r.estimate == pytest.approx(y.mean()) and r.width == pytest.approx(r.human_width)


@pytest.mark.parametrize("probabilities, queue_size, message", [
    ({"a": 0.5}, None, "none recorded for 1 labelled item"),
    ({"a": 0.5, "b": 0.0}, None, r"must lie in \(0, 1\].*b=0.0"),
    ({"a": 0.5, "b": 1.5}, None, r"must lie in \(0, 1\]"),
    ({"a": 0.5, "b": np.nan}, None, r"must lie in \(0, 1\]"),
    ({"a": 0.5, "b": 0.5}, 1, "queue_size must be an integer >= the 2 labelled"),
    ({"a": 0.5, "b": 0.5}, 2.5, "queue_size"),
    ([("a", 0.5), ("a", 0.4), ("b", 0.5)], None, "unique"),
])
def test_bad_probabilities_are_refused(probabilities, queue_size, message):
    judge = {"a": 1.0, "b": 0.0, "c": 0.5}
    with pytest.raises(StatsInputError, match=message):
        active_win_rate(judge, {"a": 1.0, "b": 0.0}, probabilities, queue_size=queue_size)


def test_labels_for_unjudged_items_are_refused():
    with pytest.raises(StatsInputError, match="judge never saw: z"):
        active_win_rate({"a": 1.0, "b": 0.0}, {"a": 1.0, "z": 0.0}, {"a": 0.5, "z": 0.5})


# ---- real human labels -------------------------------------------------------------------------
@pytest.mark.parametrize("judge", ["pandalm", "gpt"])
@pytest.mark.parametrize("n", [50, 100, 200])
def test_active_order_covers_the_full_data_human_win_rate_and_is_narrower(pandalm, judge, n):
    y = pandalm["human"]
    raw = pandalm[judge]
    f = np.where(np.isnan(raw), 0.5, raw)
    truth = y.mean()
    pi = propose_probabilities(pd.Series(raw, index=pandalm["ids"]), budget=2 * n).to_numpy()
    rng = np.random.default_rng(100 + n)
    labeled, pi_eff = active_masks(pi, n, REPS, rng)
    assert (labeled.sum(1) == n).all()
    r = active_batch(y, f, labeled, pi_eff)
    coverage = np.mean((r["ci_low"] <= truth) & (truth <= r["ci_high"]))
    width = np.mean(r["ci_high"] - r["ci_low"])
    uniform = ppi_batch(y, f, uniform_masks(y.size, n, REPS, rng))
    human_width = np.mean(2 * Z95 * uniform["human_standard_error"])
    ppi_width = np.mean(uniform["ci_high"] - uniform["ci_low"])
    print(f"\n{judge} n={n} active: coverage {coverage:.3f}, width / human-only {width / human_width:.3f}, "
          f"width / uniform PPI {width / ppi_width:.3f}")
    assert coverage >= 0.93
    assert width < 0.95 * human_width


@pytest.mark.parametrize("n", [50, 100, 200])
def test_two_views_disagreeing_drive_the_queue_and_coverage_holds(pandalm, n):
    """PandaLM has one order per judge; its two judges stand in for the two orders, so 'inconsistent'
    (32% of items) is exercised on real labels. The combined score counts a disagreement as a tie."""
    y, ids = pandalm["human"], pandalm["ids"]
    first, second = pandalm["pandalm"], pandalm["gpt"]
    combined = np.where(first == second, first, 0.5)
    pi = propose_probabilities(pd.Series(first, index=ids), pd.Series(second, index=ids), budget=2 * n).to_numpy()
    assert pi.max() / pi.min() == pytest.approx(1.5)
    rng = np.random.default_rng(200 + n)
    labeled, pi_eff = active_masks(pi, n, REPS, rng)
    r = active_batch(y, combined, labeled, pi_eff)
    coverage = np.mean((r["ci_low"] <= y.mean()) & (y.mean() <= r["ci_high"]))
    human_width = 2 * Z95 * y.std() / np.sqrt(n)
    width = np.mean(r["ci_high"] - r["ci_low"])
    print(f"\ntwo views n={n} active: coverage {coverage:.3f}, width / human-only {width / human_width:.3f}")
    assert coverage >= 0.93
    assert width < 0.9 * human_width


def test_end_to_end_on_pandalm_through_the_public_functions(pandalm):
    """propose -> queue -> label the first 100 (human majority) -> estimate, as the labeler would."""
    ids, raw, y = pandalm["ids"], pandalm["gpt"], pandalm["human"]
    judge = pd.Series(raw, index=ids)
    pi = propose_probabilities(judge, budget=200, slices=pd.Series(pandalm["slice"], index=ids))
    queue = sample_queue(pi, seed=13)
    shown = list(queue.item_ids[:100])
    truth = pd.Series(y, index=ids)
    raters = pd.DataFrame(pandalm["raters"], index=ids)
    labels = raters.loc[shown].stack().rename("score").reset_index().rename(columns={"level_0": "item_id"})
    labels = labels[["item_id", "score"]]
    r = active_win_rate(judge, labels, dict(zip(queue.item_ids, queue.probabilities)), queue_size=queue.queue_size)
    assert r.n_labeled == 100 and r.n_total == 999 and r.n_judge_missing == 25
    assert r.ci_low < truth.mean() < r.ci_high and r.width < r.human_width
    same = active_win_rate(judge, truth[shown], queue.to_frame().set_index("item_id")["probability"],
                           queue_size=queue.queue_size)
    assert same.estimate == pytest.approx(r.estimate, abs=1e-12)  # majority of the raters = the truth column
