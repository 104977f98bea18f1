"""Agreement: Krippendorff's published example, PandaLM's published kappas, an independent alpha route."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from tests.real_parts import need_module
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
    metrics = need_module("sklearn.metrics", "the independent kappa reference; pip install scikit-learn")
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


# ---- agreement_table: what the labeling panel and the report show --------------------------------
from workbench.stats.agreement import AGREEMENT_COLUMNS, agreement_table  # noqa: E402


def _long(**raters):
    return pd.DataFrame([{"item_id": f"i{k}", "rater": name, "choice": v}
                         for name, values in raters.items() for k, v in enumerate(values) if v is not None])


def test_alice_and_bob_agree_on_3_of_5_and_kappa_0_is_flagged_degenerate():
    table = agreement_table(_long(alice=list("AAAAA"), bob=["A", "A", "A", "B", "tie"]))
    assert list(table.columns) == list(AGREEMENT_COLUMNS)
    (row,) = table.to_dict("records")
    assert (row["comparison"], row["kind"], row["n"], row["agreed"]) == ("alice vs bob", "pair", 5, 3)
    assert row["agreement"] == pytest.approx(0.6)
    assert row["kappa"] == pytest.approx(0.0)
    assert row["degenerate"] and "alice used one label only ('A')" in row["reason"]
    assert row["reading"] == ("agreed on 3 of 5 (60%); Cohen's kappa 0.00 (not meaningful: alice used one label only "
                              "('A'): kappa cannot exceed 0 whatever the raw agreement)")


def test_alice_and_bob_with_varied_labels_give_a_meaningful_kappa():
    # agree on i0, i1, i4; alice A2 B2 tie1, bob A2 B3: p_o = 0.6, p_e = (2*2 + 2*3) / 25 = 0.4
    (row,) = agreement_table(_long(alice=["A", "B", "A", "tie", "B"], bob=["A", "B", "B", "A", "B"])).to_dict("records")
    assert (row["n"], row["agreed"], row["agreement"]) == (5, 3, pytest.approx(0.6))
    assert row["kappa"] == pytest.approx((0.6 - 0.4) / (1 - 0.4))
    assert not row["degenerate"] and row["reason"] is None
    assert row["reading"] == "agreed on 3 of 5 (60%); Cohen's kappa 0.33"


@pytest.mark.parametrize("alice, bob, kappa_nan, reason", [
    (list("AAA"), list("AAA"), True, "both used one label only ('A'): kappa is undefined"),
    (list("AAA"), list("BBB"), False, "alice used only 'A', bob only 'B'"),
    (["A", "B", "A"], list("BBB"), False, "bob used one label only ('B')"),
])
def test_degenerate_kappa_says_why(alice, bob, kappa_nan, reason):
    (row,) = agreement_table(_long(alice=alice, bob=bob)).to_dict("records")
    assert row["degenerate"] and reason in row["reason"]
    assert math.isnan(row["kappa"]) == kappa_nan


def test_only_shared_items_count_and_no_shared_item_is_degenerate():
    table = agreement_table(_long(alice=["A", "B", None, "A"], bob=[None, "B", "A", "B"], carol=[None, None, "A", None]))
    rows = table.set_index("comparison")
    assert rows.loc["alice vs bob", ["n", "agreed"]].tolist() == [2, 1]
    assert rows.loc["alice vs carol", "n"] == 0 and rows.loc["alice vs carol", "reason"] == "no item labelled by both"
    assert math.isnan(rows.loc["alice vs carol", "agreement"])


def test_rater_vs_majority_of_the_other_raters():
    table = agreement_table(_long(alice=["A", "B", "A", "tie", "B", "A"], bob=["A", "B", "B", "A", "B", "A"],
                                  carol=["A", "B", "A", "A", "tie", "B"]))
    majority = table[table["kind"] == "vs majority"].set_index("rater_a")
    assert list(majority.index) == ["alice", "bob", "carol"] and set(majority["rater_b"]) == {"majority"}
    # alice vs majority(bob, carol): they agree on i0 A, i1 B, i3 A; split on i2, i4, i5 -> left out
    assert majority.loc["alice", ["n", "agreed"]].tolist() == [3, 2]
    # carol vs majority(alice, bob): i0 A, i1 B, i4 B, i5 A agreed by both; carol matches i0, i1
    assert majority.loc["carol", ["n", "agreed"]].tolist() == [4, 2]
    assert len(table[table["kind"] == "pair"]) == 3


def test_two_raters_have_no_majority_rows_but_a_non_voting_judge_does():
    humans = _long(alice=["A", "B", "A", "B"], bob=["A", "B", "B", "B"])
    assert set(agreement_table(humans)["kind"]) == {"pair"}
    judge = _long(judge=["A", "B", "A", "A"])
    table = agreement_table(pd.concat([humans, judge]), non_voting=["judge"])
    (row,) = table[table["kind"] == "vs majority"].to_dict("records")
    # the humans' strict majority exists where they agree (i0 A, i1 B, i3 B); the judge matches i0, i1
    assert (row["comparison"], row["n"], row["agreed"]) == ("judge vs majority", 3, 2)
    with pytest.raises(StatsInputError, match="non_voting"):
        agreement_table(humans, non_voting=["judge"])


def test_agreement_table_rejects_duplicates_and_missing_columns():
    labels = _long(alice=["A", "B"], bob=["A", "A"])
    with pytest.raises(StatsInputError, match="duplicate"):
        agreement_table(pd.concat([labels, labels.iloc[:1]]))
    with pytest.raises(StatsInputError, match="missing column 'choice'"):
        agreement_table(labels.rename(columns={"choice": "label"}))
    assert agreement_table(labels.rename(columns={"choice": "label"}), label="label")["n"].tolist() == [2]


def test_agreement_table_kappa_matches_scikit_learn():
    metrics = need_module("sklearn.metrics", "the independent kappa reference; pip install scikit-learn")
    rng = np.random.default_rng(5)
    a = rng.choice(["A", "B", "tie"], 60)
    b = np.where(rng.random(60) < 0.7, a, rng.choice(["A", "B", "tie"], 60))
    (row,) = agreement_table(_long(r1=list(a), r2=list(b))).to_dict("records")
    assert row["kappa"] == pytest.approx(metrics.cohen_kappa_score(a, b))
    assert row["agreement"] == pytest.approx(float(np.mean(a == b)))
