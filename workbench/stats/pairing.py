"""Align two models' per-item values so paired statistics compare like with like.

Every paired function takes aligned arrays; this is where they come from. Items present for one model
only, or with a missing value on either side, are dropped *and listed*, so a report can say exactly
how many items a number rests on.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from workbench.stats._validate import StatsInputError


@dataclass(frozen=True)
class Paired:
    """Aligned values, sorted by item id (so results do not depend on row order). `item_ids` is the
    ids' own index (text or coded ids: no Python string made for 100,000 ids, 7 MiB)."""

    item_ids: pd.Index
    a: np.ndarray
    b: np.ndarray
    only_in_a: list = field(default_factory=list)
    only_in_b: list = field(default_factory=list)
    missing_value: list = field(default_factory=list)  # in both, but NaN/None on at least one side

    @property
    def n(self) -> int:
        return len(self.item_ids)

    @property
    def dropped(self) -> list:
        return sorted(self.only_in_a + self.only_in_b + self.missing_value, key=str)

    def summary(self) -> str:
        """One line for a report, e.g. 'used 398 of 401 items; dropped: 2 only in A, 1 missing value'."""
        total = self.n + len(self.dropped)
        parts = [f"{len(self.only_in_a)} only in A", f"{len(self.only_in_b)} only in B",
                 f"{len(self.missing_value)} missing value"]
        return f"used {self.n} of {total} items" + (
            "; dropped: " + ", ".join(p for p in parts if not p.startswith("0 ")) if self.dropped else "")


def distinct_count(values: pd.Series | pd.Index) -> int:
    """`nunique()` (missing values left out); ids sorted and unique already (`increasing_ids`, the
    usual frame of one answer per item) are counted without the hash table of a Python string per
    value that pandas makes (18 MiB at 100,000 ids)."""
    return len(values) if increasing_ids(values) else int(values.nunique())


@dataclass(frozen=True)
class IdOverlap:
    """How two collections of ids meet: how many are in both, and which are in one only (sorted)."""

    both: int
    only_a: list
    only_b: list


def id_overlap(ids_a: pd.Series, ids_b: pd.Series) -> IdOverlap:
    """The distinct ids of a and b compared (missing ids left out). The same sorted, unique ids on both
    sides (every item answered by both models) are seen by one comparison (`_same_sorted_ids`); coded
    ids (`sorted_codes`) are compared by their codes; other ids go through Python sets (22 MiB at
    100,000 ids)."""
    if _same_sorted_ids(ids_a, ids_b):
        return IdOverlap(len(ids_a), [], [])
    codes_a, codes_b = sorted_codes(ids_a.dropna()), sorted_codes(ids_b.dropna())
    if codes_a is not None and codes_b is not None and ids_a.dtype == ids_b.dtype:
        codes_a, codes_b = np.unique(codes_a), np.unique(codes_b)  # sorted codes: the ids' own order
        named = ids_a.dtype.categories
        return IdOverlap(len(np.intersect1d(codes_a, codes_b, assume_unique=True)),
                         named.take(np.setdiff1d(codes_a, codes_b, assume_unique=True)).tolist(),
                         named.take(np.setdiff1d(codes_b, codes_a, assume_unique=True)).tolist())
    set_a, set_b = set(ids_a.dropna().tolist()), set(ids_b.dropna().tolist())
    return IdOverlap(len(set_a & set_b), sorted(set_a - set_b), sorted(set_b - set_a))


def _indexed(df: pd.DataFrame, key: str, value: str, side: str) -> pd.Series:
    for col in (key, value):
        if col not in df.columns:
            raise StatsInputError(f"{side}: missing column {col!r}; has {list(df.columns)}")
    if df[key].isna().any():
        raise StatsInputError(f"{side}: {int(df[key].isna().sum())} row(s) with a missing {key!r}")
    indexed = df.set_index(key)[value]
    if not (increasing_ids(indexed.index) or indexed.index.is_unique):  # `duplicated` only to name offenders
        dup = df[key].duplicated(keep=False)
        examples = sorted(map(str, df.loc[dup, key].unique()))[:5]
        raise StatsInputError(
            f"{side}: {int(df.loc[dup, key].nunique())} item id(s) appear more than once in {key!r} "
            f"(e.g. {examples}); aggregate repeated samples per item first (e.g. mean over sample_index)"
        )
    return indexed


def increasing_ids(ids: pd.Index | pd.Series) -> bool:
    """Whether ids are sorted and unique, no id missing: text ids (a pandas string dtype) each less than
    the next by code point, the order of `sorted`, coded ids (`sorted_codes`) whose codes increase, or
    integer ids that do. Arrow-backed ids are checked by one vectorised comparison (about 1 ms at 100k
    ids, against 10-15 ms for pandas' hash-based is_unique or its sort); False for other ids, for which
    the caller takes its general route."""
    codes = sorted_codes(ids) if isinstance(ids.dtype, pd.CategoricalDtype) else (  # coded ids, or integer
        np.asarray(ids) if isinstance(ids.dtype, np.dtype) and ids.dtype.kind in "iu" else None)  # ones: codes
    if codes is not None:
        return bool(np.all(codes[1:] > codes[:-1]))
    if not isinstance(ids.dtype, pd.StringDtype) or ids.hasnans:
        return False
    if len(ids) < 2:
        return True
    if ids.dtype.storage != "pyarrow":
        return bool(ids.is_monotonic_increasing and ids.is_unique)
    import pyarrow.compute as pc  # here: only arrow-backed ids need it, and they loaded pyarrow already

    chunked = ids.array.__arrow_array__()
    return bool(pc.all(pc.less(chunked[:-1], chunked[1:])).as_py())


def sorted_codes(ids: pd.Index | pd.Series) -> np.ndarray | None:
    """The integer codes of coded ids, whose order is the ids' own: a category over sorted, unique text
    ids (`increasing_ids` of its categories: a read in chunks keeps its item ids so, 4 bytes an id
    against 18 and more as text), no id missing; None for any other ids."""
    dtype = ids.dtype
    if not isinstance(dtype, pd.CategoricalDtype) or not isinstance(dtype.categories.dtype, pd.StringDtype):
        return None  # (numbers sort otherwise than the text route's `sorted(key=str)`)
    codes = np.asarray(ids.array.codes)
    if (len(codes) and codes.min() < 0) or not increasing_ids(dtype.categories):
        return None
    return codes


def _ordered_ids(ids: pd.Index) -> bool:
    """Text ids, or coded ones (`sorted_codes`): what pandas' hash tables and sort align in the ids'
    own order (`_align_strings`)."""
    return isinstance(ids.dtype, pd.StringDtype) or sorted_codes(ids) is not None


def _same_sorted_ids(ids_a: pd.Index | pd.Series, ids_b: pd.Index | pd.Series) -> bool:
    """Whether both hold the same sorted, unique ids (`increasing_ids`), the usual case of one answer
    per item on both sides: one vectorised check and one comparison, no Python string made."""
    return (len(ids_a) == len(ids_b) and ids_a.dtype == ids_b.dtype and increasing_ids(ids_a)
            and _same_ids(ids_a, ids_b))


def _same_ids(ids_a: pd.Index | pd.Series, ids_b: pd.Index | pd.Series) -> bool:
    """The same ids in the same order; coded ids compared by their codes (pandas compares a category's
    values as Python objects: 19 MiB at 100,000 ids)."""
    codes_a, codes_b = sorted_codes(ids_a), sorted_codes(ids_b)
    if codes_a is not None and codes_b is not None and ids_a.dtype == ids_b.dtype:
        return bool(np.array_equal(codes_a, codes_b))
    return pd.Index(ids_a).equals(pd.Index(ids_b))


def _values(series: pd.Series, positions: list[int] | np.ndarray) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable ints/floats -> float64 + NaN
    else:
        values = series.to_numpy()
    return values[np.asarray(positions, dtype=np.intp)]


def pair_by_item(
    df_a: pd.DataFrame, df_b: pd.DataFrame, *, key: str = "item_id", value: str | tuple[str, str] = "value"
) -> Paired:
    """Inner-join two per-item frames on `key`; value is one column name or (column_in_a, column_in_b).

    Text ids (pandas' string dtypes) and coded ones (`sorted_codes`) are aligned by pandas' hash tables
    and sort, other ids by plain dicts and sets; either is 5x or more faster than pandas joins at 100k
    items, with the same result."""
    value_a, value_b = (value, value) if isinstance(value, str) else value
    sa = _indexed(df_a, key, value_a, "df_a")
    sb = _indexed(df_b, key, value_b, "df_b")
    if _ordered_ids(sa.index) and _ordered_ids(sb.index) and sa.index.dtype == sb.index.dtype:
        common, at_a, at_b, only_in_a, only_in_b = _align_strings(sa.index, sb.index)
    else:
        where_a = {item: i for i, item in enumerate(sa.index.tolist())}
        where_b = {item: i for i, item in enumerate(sb.index.tolist())}
        common = sorted(where_a.keys() & where_b.keys(), key=str)
        at_a, at_b = [where_a[item] for item in common], [where_b[item] for item in common]
        only_in_a = sorted(where_a.keys() - where_b.keys(), key=str)
        only_in_b = sorted(where_b.keys() - where_a.keys(), key=str)
        common = pd.Index(common, dtype=object)
    va, vb = _values(sa, at_a), _values(sb, at_b)
    keep = ~(np.asarray(pd.isna(va), dtype=bool) | np.asarray(pd.isna(vb), dtype=bool))
    complete = bool(keep.all())
    return Paired(
        item_ids=common if complete else common[keep],
        a=va[keep],
        b=vb[keep],
        only_in_a=only_in_a,
        only_in_b=only_in_b,
        missing_value=[] if complete else common[~keep].tolist(),
    )


def _align_strings(ids_a: pd.Index, ids_b: pd.Index) -> tuple[pd.Index, np.ndarray, np.ndarray, list, list]:
    """(common ids sorted, their positions in a and in b, ids only in a, only in b, both sorted) for
    unique text or coded ids of one type (`_ordered_ids`), by pandas' hash tables and sort instead of
    Python dicts: 3-4x faster at 100k items. A string sort orders by code point, as `sorted` does, and
    coded ids sort by codes in that order, so the ids and the values come out in the order of the dict
    route."""
    if _same_sorted_ids(ids_a, ids_b):  # per_item's usual output
        at = np.arange(len(ids_a), dtype=np.intp)
        return ids_a, at, at, [], []
    in_b = ids_b.get_indexer(ids_a)  # -1: not in b
    shared = np.flatnonzero(in_b >= 0)
    order = np.asarray(ids_a[shared].argsort(), dtype=np.intp)
    at_a = shared[order]
    only_b = ids_b[~ids_b.isin(ids_a)] if shared.size < len(ids_b) else ids_b[:0]
    return ids_a[at_a], at_a, in_b[at_a], sorted(ids_a[in_b < 0].tolist()), sorted(only_b.tolist())


def per_item(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """One value per item: the mean over samples (paired statistics need exactly one). A column of
    objects (cost_usd is all None without a price) is made numeric first: pandas would average it
    in Python, half a second per 20k rows. Text ids that occur once each (one sample per item, the
    usual case) skip the groupby (5-10x faster at 100k rows) for the frame it gives, bit for bit:
    the rows sorted by id, each value as float64 plus 0.0, which is what pandas' compensated mean
    of one value is (-0.0 becomes 0.0; NaN stays NaN). Coded ids (`sorted_codes`) stay coded."""
    numbers = pd.to_numeric(frame[value])
    ids = frame["item_id"]
    if _ordered_ids(ids) and isinstance(numbers.dtype, np.dtype) and numbers.dtype.kind in "fiu":
        if increasing_ids(ids):  # sorted already (rows in item order): no sort
            return pd.DataFrame({"item_id": ids.reset_index(drop=True),
                                 value: numbers.to_numpy(dtype=np.float64) + 0.0})
        if ids.is_unique and not ids.hasnans:
            order = np.asarray(ids.argsort(), dtype=np.intp)
            return pd.DataFrame({"item_id": ids.iloc[order].reset_index(drop=True),
                                 value: numbers.to_numpy(dtype=np.float64)[order] + 0.0})
    numeric = frame[["item_id"]].assign(**{value: numbers})
    return numeric.groupby("item_id", as_index=False, observed=True)[value].mean()


def metric_pairs(scores: pd.DataFrame | None, baseline: str, candidate: str) -> dict[Any, Paired]:
    """Each metric's scores paired by item (`pair_by_item`; the mean over samples), the baseline's
    as `a`, the candidate's as `b`: made once, read by the deltas and by the copy checks. Each side's
    rows are taken by position (no copy of every score), and metrics scored on the same items share
    one index of ids."""
    if scores is None or scores.empty:
        return {}
    scored = scores["value"].notna().to_numpy()
    sides = [(scores["model"] == model).to_numpy() & scored for model in (baseline, candidate)]
    ids_values = scores[["item_id", "value"]]
    pairs: dict[Any, Paired] = {}
    for metric, rows in scores.groupby("metric", sort=False).indices.items():
        a, b = (per_item(ids_values.iloc[rows[side[rows]]], "value") for side in sides)
        paired = pair_by_item(a, b, value="value")
        shared = next((p.item_ids for p in pairs.values() if _same_ids(p.item_ids, paired.item_ids)), None)
        if shared is not None:
            paired = replace(paired, item_ids=shared)
        pairs[metric] = paired
    return pairs
