"""Length-controlled win rate: removes a length bias we planted, and moves the right way on AlpacaEval."""
from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.stats import StatsInputError, alpaca_eval_scores, length_controlled_win_rate


def _judge(rng, n, length_weight, mean_extra=300.0):
    base_len = rng.integers(200, 1200, n).astype(float)
    cand_len = base_len + rng.normal(mean_extra, 400.0, n)
    z = (cand_len - base_len) / (cand_len - base_len).std(ddof=1)
    p = 1 / (1 + np.exp(-length_weight * np.tanh(z)))  # equal quality: only length moves the judge
    return (rng.random(n) < p).astype(float), cand_len, base_len


def test_length_biased_judge_and_longer_candidate_gives_lc_below_raw():
    rng = np.random.default_rng(0)
    scores, cand_len, base_len = _judge(rng, 2000, length_weight=2.0)
    r = length_controlled_win_rate(scores, cand_len, base_len, n_resamples=300)
    assert r.raw_win_rate > 0.6  # the judge rewards the longer candidate
    assert r.lc_win_rate < r.raw_win_rate
    assert r.lc_win_rate == pytest.approx(0.5, abs=0.04)  # true quality is equal
    assert r.ci_low < 0.5 < r.ci_high
    assert r.length_coef == pytest.approx(2.0, abs=0.35)


def test_unbiased_judge_leaves_the_win_rate_alone():
    rng = np.random.default_rng(1)
    scores, cand_len, base_len = _judge(rng, 2000, length_weight=0.0)
    r = length_controlled_win_rate(scores, cand_len, base_len, n_resamples=0)
    assert r.lc_win_rate == pytest.approx(r.raw_win_rate, abs=0.02)
    assert abs(r.length_coef) < 0.3


def test_equal_lengths_mean_nothing_to_control():
    r = length_controlled_win_rate([1, 0, 1, 0.5], [10, 20, 30, 40], [10, 20, 30, 40])
    assert r.lc_win_rate == r.raw_win_rate == 0.625


def test_constant_length_difference_cannot_be_separated():
    with pytest.raises(StatsInputError, match="all equal"):
        length_controlled_win_rate([1, 0, 1], [20, 30, 40], [10, 20, 30])


def test_alpaca_eval_models_shorter_than_the_baseline_gain(shared_data):
    """On AlpacaEval 2 (baseline gpt4_1106_preview, long answers) every model here is shorter and
    AlpacaEval's published LC win rate exceeds its raw one; ours must move the same way."""
    checked = 0
    for path in sorted((shared_data / "alpaca_eval" / "results").glob("*/weighted_alpaca_eval_gpt4_turbo/annotations.json")):
        rows = [r for r in json.loads(path.read_text()) if r["preference"] is not None]
        scores, dropped = alpaca_eval_scores([r["preference"] for r in rows])
        assert dropped == 0
        r = length_controlled_win_rate(scores, [len(x["output_2"]) for x in rows], [len(x["output_1"]) for x in rows],
                                       n_resamples=0)
        assert r.length_coef > 0 and r.lc_win_rate > r.raw_win_rate, path.parent.parent.name
        checked += 1
    assert checked == 4


def test_covariates_are_used_and_validated():
    rng = np.random.default_rng(3)
    scores, cand_len, base_len = _judge(rng, 500, length_weight=1.0)
    r = length_controlled_win_rate(scores, cand_len, base_len, covariates=rng.normal(size=500), n_resamples=0)
    assert 0 < r.lc_win_rate < 1
    with pytest.raises(StatsInputError, match="covariates"):
        length_controlled_win_rate(scores, cand_len, base_len, covariates=np.ones(3), n_resamples=0)
