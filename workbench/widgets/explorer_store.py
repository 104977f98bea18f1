"""The explorer's responses read from a store's runs, lazily: one item's rows when it is shown.

Why: a 100k-item run of two models is 200k response rows; reading and indexing all of them before
the first item shows costs seconds of CPU and hundreds of MB. Navigation needs only the item ids,
so responses are fetched per item (primary-key lookups), the failed items with one query when the
error filter is first used, and every text once, on the first search.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from workbench.errors import InputError
from workbench.store.base import latest_common_runs

__all__ = ["StoreResponses", "store_runs"]


class StoreResponses:
    """Responses of one run per model label (baseline first), read from `store` on demand.
    `rows_loaded` counts the response rows read so far."""

    def __init__(self, store: Any, runs: Mapping[str, int]):
        if not runs:
            raise InputError("no run to explore: name at least one model")
        self.store = store
        self.runs = {str(label): int(run_id) for label, run_id in runs.items()}
        self._label = {run_id: label for label, run_id in self.runs.items()}
        self.rows_loaded = 0

    @property
    def models(self) -> list[str]:
        return list(self.runs)

    def dataset_id(self) -> str:
        """The one dataset every run was made on (runs on different datasets cannot be paired)."""
        runs = self.store.runs_frame().set_index("run_id")
        datasets = {str(runs.loc[run_id, "dataset_id"]) for run_id in self.runs.values()}
        if len(datasets) != 1:
            raise InputError(f"runs {sorted(self.runs.values())} were made on different datasets "
                             f"({', '.join(sorted(datasets))}): explore runs of one dataset")
        return datasets.pop()

    def sample_indexes(self) -> list[int]:
        samples = max(int(self.store.run_spec(run_id)[0].get("samples", 1)) for run_id in self.runs.values())
        return list(range(samples))

    def rows(self, item_id: str) -> list[dict[str, Any]]:
        """The item's rows in every run, `model` set to the run's label."""
        rows = self.store.run_item_rows(list(self.runs.values()), item_id)
        for row in rows:
            row["model"] = self._label[int(row["run_id"])]
        self.rows_loaded += len(rows)
        return rows

    def failed_items(self) -> list[str]:
        return self.store.run_failed_items(list(self.runs.values()))

    def texts(self) -> pd.DataFrame:
        """item_id, response and error of every row (for search): read once, when first needed."""
        frames = [self.store.run_frame(run_id)[["item_id", "response", "error"]] for run_id in self.runs.values()]
        texts = pd.concat(frames, ignore_index=True)
        self.rows_loaded += len(texts)
        return texts


def store_runs(store: Any, models: Sequence[str] | None = None, runs: Mapping[str, int] | None = None) -> dict[str, int]:
    """{label: run id}: the given runs, or each model's latest run on the newest dataset that every
    model ran on (baseline first): runs on different items cannot be paired."""
    if (models is None) == (runs is None):
        raise InputError("give the models to explore (their latest runs) or runs={label: run_id}, not both")
    if runs is not None:
        return {str(k): int(v) for k, v in runs.items()}
    if not models:
        return {}
    frame = store.runs_frame()
    missing = [str(m) for m in models if not (frame["model"] == m).any()]
    if missing:
        raise InputError(f"no run of model {', '.join(repr(m) for m in missing)} in store {store.path} "
                         f"(runs exist for: {', '.join(store.run_models()) or 'none'})")
    chosen = latest_common_runs({str(m): frame[frame["model"] == m] for m in models})
    if chosen is None:
        raise InputError(f"models {', '.join(map(str, models))} have no dataset they all ran on in store "
                         f"{store.path}: give runs={{label: run_id}}")
    return chosen

