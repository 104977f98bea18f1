"""Bradley-Terry: known order, an independent MM fit, and AlpacaEval's star design (closed form)."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd
import pytest

from workbench.stats import StatsInputError, bradley_terry
bt_module = importlib.import_module("workbench.stats.bradley_terry")  # the package re-exports a function of the same name

TRUE = {"m_a": -1.0, "m_b": -0.4, "m_c": 0.0, "m_d": 0.5, "m_e": 1.2}


def _simulate(n_items=300, seed=0, tie_share=0.1):
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    rows = []
    for item in range(n_items):
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a, b = names[i], names[j]
                if rng.random() < tie_share:
                    s = 0.5
                else:
                    s = float(rng.random() < 1 / (1 + np.exp(-(TRUE[a] - TRUE[b]))))
                rows.append({"item_id": f"q{item}", "model_a": a, "model_b": b, "score_a": s})
    return pd.DataFrame(rows)


def _mm_fit(df: pd.DataFrame) -> pd.Series:
    """Hunter's (2004) MM algorithm, an independent route to the same MLE (ties as half wins)."""
    models = sorted(set(df.model_a) | set(df.model_b))
    ix = {m: i for i, m in enumerate(models)}
    k = len(models)
    won = np.zeros((k, k))
    for a, b, s in zip(df.model_a, df.model_b, df.score_a):
        won[ix[a], ix[b]] += s
        won[ix[b], ix[a]] += 1 - s
    games = won + won.T
    p = np.ones(k)
    for _ in range(20000):
        new = won.sum(axis=1) / (games / (p[:, None] + p[None, :])).sum(axis=1)
        new /= np.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < 1e-14:
            break
        p = new
    theta = np.log(p)
    return pd.Series(theta - theta.mean(), index=models)


def test_recovers_a_known_order_with_cis_covering_the_truth():
    # No ties here: random ties (as half wins) would shrink the true log-odds the data carry.
    df = _simulate(tie_share=0.0)
    res = bradley_terry(df, n_resamples=300)
    t = res.table
    assert list(t.index) == ["m_e", "m_d", "m_c", "m_b", "m_a"]
    assert list(t["rank"]) == [1, 2, 3, 4, 5]
    truth = pd.Series(TRUE) - np.mean(list(TRUE.values()))
    covered = ((t["ci_low"] <= truth[t.index]) & (truth[t.index] <= t["ci_high"])).sum()
    assert covered >= 4
    assert (t["rating"] - truth[t.index]).abs().max() < 0.15
    assert res.win_probability("m_e", "m_a") == pytest.approx(1 / (1 + np.exp(-(t.rating["m_e"] - t.rating["m_a"]))))
    assert t.loc["m_e", "elo"] - t.loc["m_a", "elo"] == pytest.approx(
        400 / np.log(10) * (t.loc["m_e", "rating"] - t.loc["m_a", "rating"]))


def test_matches_the_mm_algorithm():
    df = _simulate(n_items=60, seed=3, tie_share=0.2)
    ours = bradley_terry(df, n_resamples=0, l2=0).table["rating"]
    mm = _mm_fit(df)
    pd.testing.assert_series_equal(ours.sort_index(), mm.sort_index(), check_names=False, atol=1e-6, rtol=0)


def test_vectorised_bootstrap_fit_equals_the_scipy_fit():
    rng = np.random.default_rng(9)
    won = rng.integers(0, 30, size=(6, 4, 4)).astype(float)
    for w in won:
        np.fill_diagonal(w, 0)
    won[0, 0, :] = 0.0  # model 0 never wins in replicate 0: the ridge must keep it finite
    many = bt_module._fit_many(won, 1e-6, np.zeros(4))
    for r in range(6):
        np.testing.assert_allclose(many[r], bt_module._fit(won[r], 1e-6, np.zeros(4)), atol=1e-5)
    assert np.isfinite(many).all()


def test_star_design_gives_logit_of_the_alpaca_eval_win_rates(shared_data):
    rows = []
    results = shared_data / "alpaca_eval" / "results"
    for path in sorted(results.glob("*/alpaca_eval_gpt4/annotations.json")):
        for r in json.loads(path.read_text()):
            p = r["preference"]
            if p is None:
                continue
            p = 1.5 if p == 0 else p
            rows.append({"item_id": r["instruction"], "model_a": r["generator_2"],
                         "model_b": r["generator_1"], "score_a": p - 1})
    df = pd.DataFrame(rows)
    assert df.model_b.nunique() == 1 and df.model_a.nunique() == 5
    res = bradley_terry(df, anchor="text_davinci_003", l2=0, n_resamples=200)
    wr = df.groupby("model_a")["score_a"].mean()
    # Every model meets only the baseline, so the MLE is closed-form: theta_m - theta_base = logit(win rate).
    np.testing.assert_allclose(res.table.loc[wr.index, "rating"], np.log(wr / (1 - wr)), atol=1e-6)
    assert res.table.loc["text_davinci_003", "elo"] == 1000.0
    assert res.table.index[0] == "gpt4"
    inside = res.table.drop("text_davinci_003")
    assert ((inside.ci_low < inside.rating) & (inside.rating < inside.ci_high)).all()


def test_bootstrap_is_deterministic_per_seed_and_resamples_items():
    df = _simulate(n_items=40, seed=1)
    a = bradley_terry(df, n_resamples=100, seed=4).table
    b = bradley_terry(df, n_resamples=100, seed=4).table
    pd.testing.assert_frame_equal(a, b)
    rows = bradley_terry(df, item=None, n_resamples=100, seed=4).table
    assert not np.allclose(rows.ci_low, a.ci_low)


def test_disconnected_models_are_refused():
    df = pd.DataFrame({"model_a": ["x", "p"], "model_b": ["y", "q"], "score_a": [1, 0]})
    with pytest.raises(StatsInputError, match="not connected"):
        bradley_terry(df, n_resamples=0)


@pytest.mark.parametrize(
    "frame, match",
    [
        (pd.DataFrame({"model_a": ["x"], "model_b": ["x"], "score_a": [1]}), "itself"),
        (pd.DataFrame({"model_a": ["x"], "model_b": ["y"], "score_a": [2]}), r"\[0, 1\]"),
        (pd.DataFrame({"model_a": ["x"], "model_b": ["y"]}), "missing column"),
        (pd.DataFrame({"model_a": [], "model_b": [], "score_a": []}), "empty"),
    ],
)
def test_bad_comparisons_raise(frame, match):
    with pytest.raises(StatsInputError, match=match):
        bradley_terry(frame, n_resamples=0)
