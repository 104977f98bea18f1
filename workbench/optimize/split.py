"""A reproducible dev/test split: the search only ever sees dev; test confirms the winner once.

Stratified by the slice columns (language x task in the demo) with the pipeline's own sampler, so
both halves keep every slice; or given by a column of 'dev'/'test' labels. Pure functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from workbench.errors import InputError
from workbench.optimize.config import MIN_SPLIT_ITEMS
from workbench.pipeline import sample_items


@dataclass(frozen=True)
class Split:
    dev: pd.DataFrame
    test: pd.DataFrame
    strata: tuple[str, ...]  # the slice columns present in the data (demonstrations are matched on them)


def split_items(items: pd.DataFrame, dev_size: int, test_size: int, seed: int, strata: list[str] | tuple[str, ...],
                split_column: str | None = None) -> Split:
    """Disjoint dev and test items; test is drawn first, so a larger dev never changes the test set."""
    present = tuple(c for c in strata if c in items.columns)
    if split_column is not None:
        dev, test = _given(items, split_column)
    else:
        if dev_size + test_size > len(items):
            raise InputError(f"split: dev_size {dev_size} + test_size {test_size} exceed the {len(items)} items "
                             "of the dataset")
        test = sample_items(items, test_size, seed, present)
        rest = items[~items["item_id"].astype(str).isin(set(test["item_id"].astype(str)))]
        dev = sample_items(rest, dev_size, seed + 1, present)
    for name, part in (("dev", dev), ("test", test)):
        if len(part) < MIN_SPLIT_ITEMS:
            raise InputError(f"split: the {name} split has {len(part)} item(s); at least {MIN_SPLIT_ITEMS} are needed "
                             "for a confidence interval (use a larger dataset or split)")
    return Split(dev.reset_index(drop=True), test.reset_index(drop=True), present)


def _given(items: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if column not in items.columns:
        raise InputError(f"split_column: no column '{column}' in the dataset (columns: {', '.join(items.columns)})")
    labels = items[column].astype(str).str.strip().str.lower()
    unknown = sorted(set(labels) - {"dev", "test", "", "nan", "none"})
    if unknown:
        raise InputError(f"split_column '{column}': values must be 'dev' or 'test' (or empty to leave an item out), "
                         f"got {', '.join(unknown[:5])}")
    return items[labels == "dev"], items[labels == "test"]
