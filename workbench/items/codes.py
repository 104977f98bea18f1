"""Item ids as integer codes into one sorted dictionary of every id, for a read in chunks.

A comparison of 100,000 items keeps an id on every score, answer and behaviour row: 400,000 and more
ids, 18 bytes or more each as text, and a copy of them in every frame the statistics derive. Coded, an
id is 4 bytes and the dictionary is held once; the codes sort as the ids do (the dictionary is sorted
by code point, the order of `sorted`), so pairing, sorting and counting work on the codes
(`stats.pairing.sorted_codes`) and give what the text ids give.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ITEM_ID = "item_id"


@dataclass(frozen=True)
class ItemCodes:
    """The items' ids sorted (`dtype`: a category over them) and each item's code, in the items' order
    (`codes`). Chunks of the items are coded by position (`encode`): no table of every id is built,
    and a forked reader sends plain integers back, not the dictionary."""

    dtype: pd.CategoricalDtype
    codes: np.ndarray  # int32: the code of the item at each position of the items

    @classmethod
    def of(cls, ids: pd.Series) -> "ItemCodes":
        """The codes of unique ids (a frame of items' `item_id`)."""
        order = np.asarray(ids.argsort(kind="stable"), dtype=np.intp)
        codes = np.empty(len(ids), dtype=np.int32)
        codes[order] = np.arange(len(ids), dtype=np.int32)
        return cls(_category_of_unique(pd.Index(ids.iloc[order], name=None)), codes)

    def encode(self, frame: pd.DataFrame, chunk_ids: pd.Index, start: int) -> pd.DataFrame:
        """`frame` (rows of the items `chunk_ids`, which begin at position `start` of the items) with
        its `item_id` as codes (int32). One index of a chunk's ids serves all its frames: its hash
        table is built once."""
        at = chunk_ids.get_indexer(frame[ITEM_ID])
        if len(at) and at.min() < 0:
            raise ValueError(f"ids outside the chunk: {frame[ITEM_ID][at < 0].head(3).tolist()}")
        return frame.assign(**{ITEM_ID: self.codes[start + at]})

    def decode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with its coded `item_id` as a category over every id (`dtype`), shared by every frame
        decoded here."""
        return frame.assign(**{ITEM_ID: pd.Categorical.from_codes(frame[ITEM_ID].to_numpy(), dtype=self.dtype)})


def item_positions(item_ids: pd.Series, ids: pd.Index | pd.Series) -> np.ndarray | None:
    """The position among the items (`item_ids`, a frame of items' `item_id`) of each of `ids`, -1 for an
    id not among them; None when an item id repeats (no one position). Ids coded over the items' own
    dictionary are looked up by their codes; others by one hash table of the items' ids."""
    if isinstance(item_ids.dtype, pd.CategoricalDtype) and item_ids.dtype == getattr(ids, "dtype", None):
        item_codes = np.asarray(item_ids.cat.codes, dtype=np.intp)
        where = np.full(len(item_ids.dtype.categories) + 1, -1, dtype=np.intp)  # the last: a missing id's code, -1
        where[item_codes] = np.arange(len(item_codes), dtype=np.intp)
        if np.count_nonzero(where[:-1] >= 0) == len(item_codes):  # else an id repeats, or is missing
            codes = ids.codes if isinstance(ids, pd.CategoricalIndex) else ids.cat.codes
            return where[np.asarray(codes, dtype=np.intp)]
    index = pd.Index(item_ids)
    return index.get_indexer(ids) if index.is_unique else None


def _category_of_unique(ids: pd.Index) -> pd.CategoricalDtype:
    """A category over ids known to be unique (an items' file is checked for repeats when loaded).
    pandas' own check of them builds a hash table of a Python string per id and keeps it on the ids
    (8 MiB at 100,000 ids, for the whole comparison); its fast path, where this pandas has it, does
    not check them again."""
    fast = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    return fast(ids, False) if fast is not None else pd.CategoricalDtype(ids)
