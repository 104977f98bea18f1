"""Judge reliability on constructed verdicts and on PandaLM's gpt-3.5 verdicts vs its human labels."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from workbench.stats import (
    StatsInputError,
    combine_orders,
    human_agreement,
    length_preference,
    majority_label,
    position_consistency,
)


def test_position_consistency_counts_agreeing_orders():
    cand_first = [1, 1, 0, 0.5, 1, 0]
    cand_second = [1, 0, 0, 0.5, 0.5, 1]
    r = position_consistency(cand_first, cand_second)
    assert (r.n, r.n_consistent) == (6, 3) and r.consistency == 0.5
    assert r.ci_low < 0.5 < r.ci_high


def test_a_judge_that_always_picks_the_first_answer_is_caught():
    n = 50
    r = position_consistency(np.ones(n), np.zeros(n))  # first shown always wins
    assert r.consistency == 0.0 and r.prefers_first == 1.0 and r.n_decisive == 2 * n


def test_an_unbiased_consistent_judge():
    s = np.r_[np.ones(30), np.zeros(30)]
    r = position_consistency(s, s)
    assert r.consistency == 1.0 and r.prefers_first == 0.5


def test_combine_orders():
    got = combine_orders([1, 1, 0, 0.5], [1, 0, 0, 1])
    np.testing.assert_array_equal(got, [1, 0.5, 0, 0.5])
    np.testing.assert_array_equal(combine_orders([1, 0.5], [0, 1], rule="mean"), [0.5, 0.75])


def test_length_preference_excludes_ties_and_equal_lengths():
    scores = [1, 1, 0, 0.5, 1, 0]
    cand = [200, 300, 100, 500, 100, 100]
    base = [100, 100, 200, 100, 100, 50]
    r = length_preference(scores, cand, base)
    # usable: rows 0,1,2,5 (row 3 tie, row 4 equal length); longer preferred in rows 0,1,2 -> 3/4
    assert (r.n, r.rate, r.n_excluded) == (4, 0.75, 2)
    assert r.ci_low < 0.75 < r.ci_high and r.p_value == pytest.approx(0.625)


def test_length_preference_without_usable_pairs_raises():
    with pytest.raises(StatsInputError, match="no decisive"):
        length_preference([0.5, 0.5], [1, 2], [2, 1])


def test_majority_label_needs_a_strict_majority():
    assert majority_label([[1, 1, 2], [1, 2, None], [0, 0, None], [None, None, None]]) == [1, None, 0, None]


def test_pandalm_gpt35_agreement_with_human_majority(shared_data):
    base = shared_data / "pandalm"
    humans = json.loads((base / "testset-v1.json").read_text())
    gpt = json.loads((base / "gpt-3.5-turbo-testset-v1.json").read_text())
    assert [h["idx"] for h in humans] == [g["idx"] for g in gpt]
    human = majority_label([[int(h[f"annotator{k}"]) for k in (1, 2, 3)] for h in humans])
    mapping = {"1": 1, "2": 2, "Tie": 0}  # 'garbage' (unparseable verdicts) become missing, not ties
    judge = [mapping.get(str(g["gpt_result"])) for g in gpt]
    r = human_agreement(judge, human, labels=[0, 1, 2])
    assert r.n_dropped == 25 and r.n == 974
    manual_acc = np.mean([j == h for j, h in zip(judge, human) if j is not None])
    assert r.accuracy == pytest.approx(manual_acc)
    assert 0.3 < r.kappa < r.accuracy < 0.9  # far from the humans' own ~0.86 agreement


def test_human_agreement_input_checks():
    with pytest.raises(StatsInputError, match="same length"):
        human_agreement([1, 2], [1])
    assert math.isclose(human_agreement([1, None, 2], [1, 2, 2]).accuracy, 1.0)
