"""pair_by_item: aligned arrays plus an honest account of what was dropped."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.stats import StatsInputError, pair_by_item


def test_pairs_sorted_by_item_and_reports_drops():
    a = pd.DataFrame({"item_id": ["q3", "q1", "q2", "q9"], "value": [3.0, 1.0, 2.0, 9.0]})
    b = pd.DataFrame({"item_id": ["q2", "q1", "q3", "q7"], "value": [20.0, 10.0, np.nan, 70.0]})
    p = pair_by_item(a, b)
    assert p.item_ids.tolist() == ["q1", "q2"]
    np.testing.assert_array_equal(p.a, [1.0, 2.0])
    np.testing.assert_array_equal(p.b, [10.0, 20.0])
    assert (p.only_in_a, p.only_in_b, p.missing_value) == (["q9"], ["q7"], ["q3"])
    assert p.n == 2 and p.dropped == ["q3", "q7", "q9"]
    assert p.summary() == "used 2 of 5 items; dropped: 1 only in A, 1 only in B, 1 missing value"


def test_row_order_does_not_change_the_pairing():
    a = pd.DataFrame({"item_id": list("abc"), "score": [1.0, 2.0, 3.0]})
    b = pd.DataFrame({"item_id": list("cab"), "bleu": [30.0, 10.0, 20.0]})
    p = pair_by_item(a.iloc[::-1], b, value=("score", "bleu"))
    np.testing.assert_array_equal(p.b - 10 * p.a, [0.0, 0.0, 0.0])
    assert p.summary() == "used 3 of 3 items"


def test_nullable_integers_become_floats():
    a = pd.DataFrame({"item_id": ["x", "y"], "value": pd.array([1, None], dtype="Int64")})
    p = pair_by_item(a, a)
    assert p.a.dtype == np.float64 and p.missing_value == ["y"]


def test_duplicates_and_missing_columns_raise():
    dup = pd.DataFrame({"item_id": ["x", "x"], "value": [1.0, 2.0]})
    with pytest.raises(StatsInputError, match="more than once"):
        pair_by_item(dup, dup)
    with pytest.raises(StatsInputError, match="missing column 'value'"):
        pair_by_item(pd.DataFrame({"item_id": ["x"]}), dup)


def _reference(df_a, df_b, value="value"):
    """The pandas .loc pairing pair_by_item replaced (issue 25): the same ids, order and values."""
    sa, sb = df_a.set_index("item_id")[value], df_b.set_index("item_id")[value]
    common = sorted(set(sa.index) & set(sb.index), key=str)
    va = sa.loc[common].to_numpy(dtype=np.float64, na_value=np.nan) if common else np.array([])
    vb = sb.loc[common].to_numpy(dtype=np.float64, na_value=np.nan) if common else np.array([])
    keep = ~(np.isnan(va) | np.isnan(vb))
    return [i for i, k in zip(common, keep) if k], va[keep], vb[keep], sorted(set(sa.index) - set(sb.index), key=str)


@pytest.mark.parametrize("ids", ["int", "str", "arrow"])
def test_pairing_equals_the_pandas_reference_at_scale(ids):
    rng = np.random.default_rng(7)
    n = 5000
    keys = rng.permutation(n * 2)[:n]  # ints sort by their text ("10" < "9"), as before
    col = {"int": keys, "str": [f"q{k}" for k in keys],
           "arrow": pd.array([f"q{k}" for k in keys], dtype="string[pyarrow]")}[ids]
    a = pd.DataFrame({"item_id": col, "value": np.where(rng.random(n) < 0.05, np.nan, rng.random(n))})
    b = a.sample(frac=0.9, random_state=3).assign(value=lambda f: np.where(rng.random(len(f)) < 0.05, np.nan,
                                                                          rng.random(len(f))))
    p = pair_by_item(a, b)
    item_ids, va, vb, only_a = _reference(a, b)
    assert p.item_ids.tolist() == item_ids and p.only_in_a == only_a and p.only_in_b == []
    np.testing.assert_array_equal(p.a, va)
    np.testing.assert_array_equal(p.b, vb)
    assert p.n + len(p.dropped) == n


def test_a_missing_item_id_raises():
    with pytest.raises(StatsInputError, match="missing 'item_id'"):
        pair_by_item(pd.DataFrame({"item_id": ["x", None], "value": [1.0, 2.0]}),
                     pd.DataFrame({"item_id": ["x"], "value": [1.0]}))


@pytest.mark.parametrize("dtype", ["str", "string[python]", "string[pyarrow]"])
def test_text_ids_pair_as_the_dict_route_does(dtype):
    """Text ids take pandas' hash tables and sort (issue 25); the ids, their order (code points, as
    `sorted`), the values and the drops equal the dict route's, which object ids still take."""
    rng = np.random.default_rng(3)
    words = ["Zeta", "alpha", "Ålborg", "é", "z", "日本", "🙂", "a b", "", "10", "9", "item-1", "ITEM-1"]
    ids = words + [f"q{k}" for k in rng.permutation(3000)]
    a = pd.DataFrame({"item_id": ids, "value": np.where(rng.random(len(ids)) < 0.05, np.nan, rng.random(len(ids)))})
    b = a.sample(frac=0.8, random_state=5).assign(value=lambda f: rng.random(len(f)))
    b = pd.concat([b, pd.DataFrame({"item_id": ["only-b", "Ωmega"], "value": [1.0, 2.0]})])
    as_text = [frame.astype({"item_id": dtype}) for frame in (a, b)]
    as_objects = [frame.astype({"item_id": object}) for frame in (a, b)]
    got, expected = pair_by_item(*as_text), pair_by_item(*as_objects)
    assert got.item_ids.tolist() == expected.item_ids.tolist() and all(type(i) is str for i in got.item_ids.tolist())
    np.testing.assert_array_equal(got.a, expected.a)
    np.testing.assert_array_equal(got.b, expected.b)
    assert (got.only_in_a, got.only_in_b, got.missing_value) == (
        expected.only_in_a, expected.only_in_b, expected.missing_value)
    assert got.only_in_b == ["only-b", "Ωmega"] and got.item_ids.tolist() == sorted(got.item_ids.tolist())
    disjoint = pair_by_item(as_text[0].iloc[:5], as_text[0].iloc[5:10])
    assert disjoint.n == 0 and disjoint.a.size == 0 and len(disjoint.only_in_b) == 5


def test_increasing_ids_is_sorted_and_unique_by_code_point():
    from workbench.stats import increasing_ids

    for dtype in ("str", "string[python]", "string[pyarrow]"):
        ids = pd.Series(["10", "9", "A", "a", "é", "日本", "🙂"], dtype=dtype)
        assert sorted(ids.tolist()) == ids.tolist() and increasing_ids(ids)
        assert increasing_ids(pd.Index(ids)) and increasing_ids(ids[:1]) and increasing_ids(ids[:0])
        assert not increasing_ids(ids[::-1]) and not increasing_ids(pd.concat([ids[:3], ids[2:]]))  # a repeat
        assert not increasing_ids(pd.Series(["a", None, "c"], dtype=dtype))  # a missing id
    several_chunks = pd.concat([pd.Series(["a", "b"], dtype="str"), pd.Series(["c", "d"], dtype="str")],
                               ignore_index=True)
    assert increasing_ids(several_chunks) and not increasing_ids(several_chunks[::-1].reset_index(drop=True))
    assert not increasing_ids(pd.Series(["a", "b"], dtype=object))  # objects: the general route
    assert increasing_ids(pd.Series([1, 2])) and not increasing_ids(pd.Series([2, 1]))  # integers (codes)
    assert not increasing_ids(pd.Series([1, 1])) and increasing_ids(pd.Series([], dtype=int))
    assert not increasing_ids(pd.Series([1, None], dtype="Int64"))  # a missing id: the general route


@pytest.mark.parametrize("dtype", ["str", "string[python]"])
def test_sorted_equal_text_ids_pair_in_place(dtype):
    ids = [f"q{k:04d}" for k in range(300)]
    a = pd.DataFrame({"item_id": pd.array(ids, dtype=dtype), "value": np.arange(300.0)})
    b = a.assign(value=np.where(np.arange(300) % 7 == 0, np.nan, -np.arange(300.0)))
    got, expected = pair_by_item(a, b), pair_by_item(a.astype({"item_id": object}), b.astype({"item_id": object}))
    assert got.item_ids.tolist() == expected.item_ids.tolist() and got.missing_value == expected.missing_value
    np.testing.assert_array_equal(got.a, expected.a)
    np.testing.assert_array_equal(got.b, expected.b)
    repeated = pd.concat([a, a.iloc[[5]]]).sort_values("item_id")
    with pytest.raises(StatsInputError, match="more than once"):
        pair_by_item(repeated, b)


TEXT_DTYPES = ["str", "string[python]", object]


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_id_overlap_equals_the_sets_in_every_case(dtype):
    from workbench.stats import id_overlap

    def sets(a, b):
        sa, sb = set(a) - {None}, set(b) - {None}
        return len(sa & sb), sorted(sa - sb), sorted(sb - sa)

    cases = [([], []), (["a"], []), ([], ["b"]), (["a"], ["a"]), (["a", "b", "c"], ["a", "b", "c"]),
             (["a", "b", "c"], ["a", "c"]), (["c", "a", "b"], ["b", "a", "c"]), (["a", "a", "b"], ["a", "b"]),
             (["a", None, "b"], ["a", "b"]), (["x", "Ωmega", "b"], ["b", "x"]), (["q1", "q2"], ["q1", "q3"])]
    for a, b in cases:
        got = id_overlap(pd.Series(a, dtype=dtype), pd.Series(b, dtype=dtype))
        assert (got.both, got.only_a, got.only_b) == sets(a, b), (a, b)
        assert all(type(i) is str for i in got.only_a + got.only_b)


def test_id_overlap_of_100k_equal_ids_takes_the_arrow_route_without_python_strings():
    from workbench.stats import id_overlap

    ids = pd.Series([f"item-{k:06d}" for k in range(100_000)], dtype="str")
    got = id_overlap(ids, ids.copy())
    assert (got.both, got.only_a, got.only_b) == (100_000, [], [])
    one_gone = id_overlap(ids, ids.drop(index=5))
    assert (one_gone.both, one_gone.only_a, one_gone.only_b) == (99_999, ["item-000005"], [])


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_distinct_count_equals_nunique(dtype):
    from workbench.stats import distinct_count

    for values in ([], ["a"], ["a", "b"], ["b", "a"], ["a", "a"], ["a", None, "b", "a"], ["a", "b", "b", "c"]):
        series = pd.Series(values, dtype=dtype)
        assert distinct_count(series) == series.nunique() == len(set(values) - {None}), values


def _coded(*columns: list) -> list[pd.Series]:
    """Each list of ids as a category over every id of them all, sorted: how a read in chunks keeps them."""
    universe = sorted({i for column in columns for i in column if i is not None})
    dtype = pd.CategoricalDtype(pd.Index(universe, dtype="str"))
    return [pd.Series(column, dtype="str").astype(dtype) for column in columns]


def test_coded_ids_pair_as_the_dict_route_does():
    """Coded ids (`sorted_codes`) are aligned by their codes; ids, order, values and drops are those of
    the dict route, and the ids come back as text."""
    rng = np.random.default_rng(4)
    words = ["Zeta", "alpha", "Ålborg", "é", "z", "日本", "🙂", "a b", "10", "9", "item-1", "ITEM-1"]
    ids = words + [f"q{k}" for k in rng.permutation(2000)]
    a = pd.DataFrame({"item_id": ids, "value": np.where(rng.random(len(ids)) < 0.05, np.nan, rng.random(len(ids)))})
    b = a.sample(frac=0.8, random_state=6).assign(value=lambda f: rng.random(len(f)))
    b = pd.concat([b, pd.DataFrame({"item_id": ["only-b", "Ωmega"], "value": [1.0, 2.0]})], ignore_index=True)
    ids_a, ids_b = _coded(a["item_id"].tolist(), b["item_id"].tolist())
    got = pair_by_item(a.assign(item_id=ids_a), b.assign(item_id=ids_b))
    expected = pair_by_item(a.astype({"item_id": object}), b.astype({"item_id": object}))
    assert got.item_ids.tolist() == expected.item_ids.tolist() and all(type(i) is str for i in got.item_ids.tolist())
    np.testing.assert_array_equal(got.a, expected.a)
    np.testing.assert_array_equal(got.b, expected.b)
    assert (got.only_in_a, got.only_in_b, got.missing_value) == (
        expected.only_in_a, expected.only_in_b, expected.missing_value)
    same = pair_by_item(a.assign(item_id=ids_a).sort_values("item_id"), a.assign(item_id=ids_a, value=1.0))
    assert same.n == a["value"].notna().sum() and same.item_ids.tolist() == sorted(same.item_ids.tolist())
    assert same.item_ids.dtype == ids_a.dtype, "coded ids stay coded: no Python string per id"


@pytest.mark.parametrize("samples", [1, 2])
def test_per_item_of_coded_ids_equals_text_ids(samples):
    from workbench.stats import per_item

    ids = ["b", "é", "a", "日本"] * samples
    values = np.arange(len(ids), dtype=float)
    values[1] = np.nan
    (coded,) = _coded(ids)
    got = per_item(pd.DataFrame({"item_id": coded, "value": values}), "value")
    expected = per_item(pd.DataFrame({"item_id": pd.array(ids, dtype="str"), "value": values}), "value")
    assert got["item_id"].tolist() == expected["item_id"].tolist() == sorted(set(ids))
    assert got["item_id"].dtype == coded.dtype
    np.testing.assert_array_equal(got["value"].to_numpy(), expected["value"].to_numpy())
    in_order = per_item(pd.DataFrame({"item_id": coded.sort_values(), "value": 1.0}), "value")
    assert in_order["item_id"].tolist() == sorted(set(ids))


def test_id_overlap_and_distinct_count_of_coded_ids_equal_the_sets():
    from workbench.stats import distinct_count, id_overlap

    cases = [([], []), (["a"], []), ([], ["b"]), (["a"], ["a"]), (["a", "b", "c"], ["a", "b", "c"]),
             (["a", "b", "c"], ["a", "c"]), (["c", "a", "b"], ["b", "a", "c"]), (["a", "a", "b"], ["a", "b"]),
             (["a", None, "b"], ["a", "b"]), (["x", "Ωmega", "b"], ["b", "x"]), (["q1", "q2"], ["q1", "q3"])]
    for a, b in cases:
        coded_a, coded_b = _coded(a, b)
        sa, sb = set(a) - {None}, set(b) - {None}
        got = id_overlap(coded_a, coded_b)
        assert (got.both, got.only_a, got.only_b) == (len(sa & sb), sorted(sa - sb), sorted(sb - sa)), (a, b)
        assert all(type(i) is str for i in got.only_a + got.only_b)
        assert distinct_count(coded_a) == len(sa) and distinct_count(coded_b) == len(sb)
