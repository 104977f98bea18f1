"""ItemCodes: item ids as 4-byte codes whose order is the ids' own, so the statistics give what text ids give."""
from __future__ import annotations

import gc
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from workbench.items.codes import ItemCodes
from workbench.stats import id_overlap
from workbench.stats.pairing import increasing_ids, pair_by_item, sorted_codes

IDS = ["q10", "q9", "Zeta", "alpha", "Ålborg", "é", "日本", "🙂", "a b", "ITEM-1", "item-1"]


def test_codes_sort_as_the_ids_do_by_code_point():
    codes = ItemCodes.of(pd.Series(IDS, dtype="str"))
    assert codes.dtype.categories.tolist() == sorted(IDS)
    assert [sorted(IDS)[c] for c in codes.codes] == IDS  # each item's code names its own id
    assert codes.codes.dtype == np.int32 and increasing_ids(codes.dtype.categories)


def test_a_chunk_is_coded_by_position_and_decoded_to_its_ids():
    items = pd.DataFrame({"item_id": pd.array(IDS, dtype="str")})
    codes = ItemCodes.of(items["item_id"])
    start, chunk = 4, items.iloc[4:8]
    rows = pd.DataFrame({"item_id": pd.array(["日本", "é", "日本", "Ålborg"], dtype="str"), "value": [1.0, 2.0, 3.0, 4.0]})
    coded = codes.encode(rows, pd.Index(chunk["item_id"]), start)
    assert coded["item_id"].dtype == np.int32 and coded["value"].tolist() == [1.0, 2.0, 3.0, 4.0]
    back = codes.decode(coded)
    assert back["item_id"].tolist() == rows["item_id"].tolist() and back["item_id"].dtype == codes.dtype
    with pytest.raises(ValueError, match="outside the chunk"):
        codes.encode(pd.DataFrame({"item_id": ["q9"]}), pd.Index(chunk["item_id"]), start)
    empty = codes.decode(codes.encode(rows.iloc[:0], pd.Index(chunk["item_id"]), start))
    assert len(empty) == 0 and empty["item_id"].dtype == codes.dtype


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_small_item_counts(n):
    ids = pd.Series([f"i{k}" for k in range(n)][::-1], dtype="str")
    codes = ItemCodes.of(ids)
    assert len(codes.codes) == n and codes.dtype.categories.tolist() == sorted(ids.tolist())
    decoded = codes.decode(pd.DataFrame({"item_id": codes.codes}))["item_id"]
    assert decoded.tolist() == ids.tolist() and sorted_codes(decoded) is not None


def test_codes_of_unsorted_or_missing_ids_are_not_sorted_codes():
    """Only a category over sorted text ids, with no id missing, is read by its codes."""
    by_code_point = pd.Series(pd.Categorical(["b", "a"], categories=["a", "b"]))
    assert sorted_codes(by_code_point).tolist() == [1, 0]
    assert sorted_codes(pd.Series(pd.Categorical(["b", "a"], categories=["b", "a"]))) is None  # not sorted
    assert sorted_codes(pd.Series(pd.Categorical(["a", None], categories=["a", "b"]))) is None  # a missing id
    assert sorted_codes(pd.Series(["a", "b"], dtype="str")) is None
    assert sorted_codes(pd.Series(pd.Categorical([1, 2]))) is None  # numeric categories


def test_100k_ids_are_coded_and_compared_without_a_python_string_per_id():
    """pandas checks a category's values by a hash table of Python strings, kept on them (8 MiB at
    100,000 ids), and compares two categories' values as objects (19 MiB): neither happens here.
    Python objects are counted by the interpreter's allocated blocks (an array's data is not one)."""
    ids = pd.Series([f"item-{k:06d}" for k in range(100_000)], dtype="str")
    gc.collect()
    before = sys.getallocatedblocks()
    codes = ItemCodes.of(ids)
    coded = codes.decode(pd.DataFrame({"item_id": codes.codes[::-1].copy()}))["item_id"]
    assert id_overlap(coded, coded.copy()).both == 100_000
    in_order = pd.DataFrame({"item_id": coded.sort_values(), "value": 1.0})
    paired = pair_by_item(in_order, in_order.copy())
    assert paired.n == 100_000 and paired.item_ids.dtype == codes.dtype
    gc.collect()
    assert sys.getallocatedblocks() - before < 10_000, "a Python object per id was made and kept"
    fresh = ItemCodes.of(ids)  # (pandas keeps what one comparison by values made, on the category)
    every = [fresh.decode(pd.DataFrame({"item_id": np.arange(100_000)}))["item_id"] for _ in range(2)]
    tracemalloc.start()
    try:
        assert id_overlap(*every).both == 100_000  # the codes compared
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{peak / 2**20:.1f} MiB to compare 100,000 coded ids"


def test_item_positions_by_codes_and_by_text():
    from workbench.items.codes import item_positions

    ids = pd.Series(["b", "a", "c"], dtype="string[pyarrow]")
    codes = ItemCodes.of(ids)
    coded_items = codes.decode(pd.DataFrame({"item_id": codes.codes}))["item_id"]
    wanted = codes.decode(pd.DataFrame({"item_id": np.array([2, 0, 0, 1], dtype=np.int32)}))["item_id"]
    assert item_positions(coded_items, wanted).tolist() == [2, 1, 1, 0]  # "c", "a", "a", "b"
    assert item_positions(coded_items, pd.Index(wanted)).tolist() == [2, 1, 1, 0]
    assert item_positions(ids, pd.Index(["c", "x", "b"])).tolist() == [2, -1, 0]  # text: one hash table
    assert item_positions(coded_items, pd.Series(["a", "zz"])).tolist() == [1, -1]  # text against codes
    assert item_positions(ids.iloc[:0], pd.Index([], dtype=object)).tolist() == []
    assert item_positions(pd.Series(["a", "a"]), pd.Index(["a"])) is None  # an id repeats: no one position
    repeated = pd.Series(pd.Categorical(["a", "a"]))
    assert item_positions(repeated, repeated) is None
