"""Agreement: Krippendorff's published example, PandaLM's published kappas, an independent alpha route."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from workbench.stats import StatsInputError, cohen_kappa, krippendorff_alpha, majority_label, reliability_matrix

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers x 12 units, with gaps.
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


@pytest.mark.parametrize(
    "level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_published_example(level, published):
    assert round(krippendorff_alpha(KRIPPENDORFF_EXAMPLE, level=level), 3) == published


def _alpha_by_value_pairs(data) -> float:
    """Nominal alpha from its definition over value pairs (no coincidence matrix): 1 - D_o / D_e."""
    units = [[v for v in col if v is not None] for col in zip(*data)]
    units = [u for u in units if len(u) >= 2]
    values = [v for u in units for v in u]
    n = len(values)
    d_o = sum(sum(a != b for a, b in itertools.permutations(u, 2)) / (len(u) - 1) for u in units) / n
    d_e = sum(a != b for a, b in itertools.permutations(values, 2)) / (n * (n - 1))
    return 1 - d_o / d_e


def _pandalm(shared_data):
    rows = json.loads((shared_data / "pandalm" / "testset-v1.json").read_text())
    return np.array([[int(r[f"annotator{k}"]) for k in (1, 2, 3)] for r in rows])


def test_pandalm_pairwise_kappas_match_the_published_table(shared_data):
    labels = _pandalm(shared_data)
    # PandaLM's README: Cohen's kappa 0.85 (1 vs 2), 0.88 (1 vs 3), 0.86 (2 vs 3).
    got = [round(cohen_kappa(labels[:, i], labels[:, j]), 2) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert got == [0.85, 0.88, 0.86]


def test_pandalm_majority_labels_match_the_published_distribution(shared_data):
    majority = majority_label(_pandalm(shared_data))
    assert pd.Series(majority).value_counts().to_dict() == {2: 472, 1: 422, 0: 105}


def test_pandalm_alpha_agrees_with_an_independent_computation(shared_data):
    labels = _pandalm(shared_data)[:300]  # the value-pair route is O(n^2) in Python
    data = labels.T.tolist()
    assert krippendorff_alpha(data) == pytest.approx(_alpha_by_value_pairs(data), abs=1e-12)
    rng = np.random.default_rng(0)
    gappy = [[None if rng.random() < 0.25 else v for v in row] for row in data]
    assert krippendorff_alpha(gappy) == pytest.approx(_alpha_by_value_pairs(gappy), abs=1e-12)
    full = krippendorff_alpha(_pandalm(shared_data).T)
    assert 0.8 < full < 0.95  # between the published pairwise kappas' neighbourhood


def test_cohen_kappa_textbook_value():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_scikit_learn(weights):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    a = rng.integers(1, 6, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 1, 5)
    assert cohen_kappa(a, b, weights=weights) == pytest.approx(metrics.cohen_kappa_score(a, b, weights=weights))


def test_cohen_kappa_drops_missing_pairs_and_flags_undefined():
    assert cohen_kappa(["x", None, "y", "x"], ["x", "y", "y", float("nan")]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["x", "x"], ["x", "x"]))
    with pytest.raises(StatsInputError, match="same length"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(StatsInputError, match="both raters"):
        cohen_kappa([None], [1])


def test_reliability_matrix_from_long_labels():
    long = pd.DataFrame({"item": ["a", "a", "b", "b", "c"], "rater": ["r1", "r2", "r1", "r2", "r1"],
                         "label": ["good", "good", "bad", "good", "bad"]})
    wide = reliability_matrix(long, unit="item", rater="rater", value="label")
    assert wide.shape == (2, 3) and pd.isna(wide.loc["r2", "c"])
    assert krippendorff_alpha(wide) == pytest.approx(_alpha_by_value_pairs(
        [[None if pd.isna(v) else v for v in row] for row in wide.to_numpy().tolist()]))
    with pytest.raises(StatsInputError, match="duplicate"):
        reliability_matrix(pd.concat([long, long.iloc[:1]]), unit="item", rater="rater", value="label")


def test_alpha_edge_cases():
    with pytest.raises(StatsInputError, match="pairable"):
        krippendorff_alpha([[1, None], [None, 2]])
    assert math.isnan(krippendorff_alpha([[1, 1], [1, 1]]))
    with pytest.raises(StatsInputError, match="numeric"):
        krippendorff_alpha([["a", "b"], ["a", "b"]], level="interval")
    assert krippendorff_alpha([["lo", "hi", "mid"], ["lo", "hi", "hi"]], level="ordinal",
                              value_order=["lo", "mid", "hi"]) < 1
