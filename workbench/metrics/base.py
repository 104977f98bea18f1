"""The `Metric` record every scorer is, and how its values aggregate.

A metric is batch-first: it receives clean lists (text responses, text references or None,
language codes) and returns one float per row. Everything messy (missing responses, missing
references, non-text values) is handled once, in `workbench.metrics.scoring`, so each metric
stays a small pure function and can never silently turn a missing input into a 0.

A metric that needs more than text (the calls a model made, the calls an item expects, its tools,
its response_format) declares those columns in `columns`; scoring passes each as a keyword list
(row-aligned, None where the row has none). Such a metric may answer NaN for rows it does not apply
to (an item with no expected calls); `na_note` says why, and lands in the scores frame's `note`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Sequence

from workbench.metrics.text import normalize_language, resolve_language

Aggregation = Literal["mean", "rate", "median"]
AGGREGATIONS: tuple[str, ...] = ("mean", "rate", "median")

# fn(responses, references, languages) -> one float per row. references is a list of str when
# the metric needs a reference, otherwise a list of None.
# A metric with `columns` also receives each of them as a keyword argument: fn(..., tool_calls=[...]).
BatchFn = Callable[..., Sequence[float]]
# The columns a metric may ask for: from the responses, then from the items.
RESPONSE_COLUMNS: tuple[str, ...] = ("tool_calls",)
ITEM_COLUMNS: tuple[str, ...] = ("expected_calls", "tools", "response_format", "reference", "messages", "context")


class MetricWarning(UserWarning):
    """Rows a metric could not score (no reference, no response): their value is NaN, not 0."""


@dataclass(frozen=True)
class Metric:
    """A named scorer with the metadata statistics and gates need to use it correctly.

    higher_is_better: True/False for quality metrics; None for descriptive measures such as
        length, where neither direction is better and a gate must not assume one.
    aggregation: "mean" (continuous scores), "rate" (0/1 outcomes: the mean is a proportion),
        "median" (skewed descriptive measures such as length).
    needs_reference: rows whose item has no reference get NaN plus a `MetricWarning`.
    value_range: the scale, e.g. (0, 100) for sacrebleu's BLEU/chrF, (0, 1) for ROUGE-L.
    params: what a factory was built with (pattern, schema...), recorded for reports.
    columns: response/item columns the metric reads besides the text (`RESPONSE_COLUMNS`,
        `ITEM_COLUMNS`), passed to `fn` as keyword lists.
    na_note: the note of the rows the metric returns NaN for (it does not apply to them), e.g.
        "no_expected_calls".
    version: the scorer's code version. A metric with one keeps its scores in the store, keyed by
        this version, a hash of `params` and a hash of what it read (`workbench.metrics.score_cache`),
        so a warm compare reads them; change it whenever the code (or a library it relies on)
        changes. None, the default: scored every time (cheap or non-deterministic metrics, and
        custom ones until they declare a version).
    """

    name: str
    fn: BatchFn = field(repr=False, compare=False)
    higher_is_better: bool | None
    aggregation: Aggregation
    needs_reference: bool
    description: str
    value_range: tuple[float, float] | None = None
    params: Mapping[str, object] = field(default_factory=dict, compare=False)
    columns: tuple[str, ...] = ()
    na_note: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"metric {self.name!r}: aggregation must be one of {AGGREGATIONS}")
        unknown = [c for c in self.columns if c not in RESPONSE_COLUMNS + ITEM_COLUMNS]
        if unknown:
            raise ValueError(f"metric {self.name!r}: unknown column(s) {unknown}; a metric may read "
                             f"{', '.join(RESPONSE_COLUMNS + ITEM_COLUMNS)}")

    def compute(
        self,
        responses: Sequence[str],
        references: Sequence[str | None] | None = None,
        languages: Sequence[str] | str | None = None,
        **columns: Sequence[object],
    ) -> list[float]:
        """Score already-clean text rows (no None responses). For DataFrames use `score_responses`.

        languages: one code for all rows, one per row, or None to detect each row's language
        from its reference (then its response), as `score_responses` does for items without one.
        columns: the row-aligned lists the metric declares in `columns` (None where a row has none).
        """
        n = len(responses)
        refs = list(references) if references is not None else [None] * n
        if languages is None:
            langs = [resolve_language(None, r, h) for r, h in zip(refs, responses)]
        elif isinstance(languages, str):
            langs = [resolve_language(languages)] * n
        else:
            langs = [normalize_language(lang) or "en" for lang in languages]
        if len(refs) != n or len(langs) != n:
            raise ValueError(f"metric {self.name!r}: responses, references and languages differ in length")
        if self.needs_reference and any(r is None for r in refs):
            raise ValueError(f"metric {self.name!r} needs a reference for every row")
        missing = sorted(set(self.columns) - set(columns))
        if missing or set(columns) - set(self.columns):
            raise ValueError(f"metric {self.name!r} reads columns {list(self.columns)}, got {sorted(columns)}")
        if any(len(values) != n for values in columns.values()):
            raise ValueError(f"metric {self.name!r}: a column differs in length from the responses")
        if n == 0:
            return []
        extra = {name: list(values) for name, values in columns.items()}
        values = [float(v) for v in self.fn(list(responses), refs, langs, **extra)]
        if len(values) != n:
            raise RuntimeError(f"metric {self.name!r} returned {len(values)} values for {n} rows")
        return values

    def info(self) -> dict[str, object]:
        """Metadata as a flat dict (one row of `metric_info`)."""
        return {
            "metric": self.name,
            "higher_is_better": self.higher_is_better,
            "aggregation": self.aggregation,
            "needs_reference": self.needs_reference,
            "value_range": self.value_range,
            "description": self.description,
        }


def aggregate(values: Sequence[float], how: Aggregation) -> float:
    """Summarise one metric's values; NaN rows (unscorable) are excluded, never counted as 0."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return math.nan
    if how in ("mean", "rate"):
        return float(arr.mean())
    if how == "median":
        return float(np.median(arr))
    raise ValueError(f"unknown aggregation {how!r}; expected one of {AGGREGATIONS}")


def warn_unscored(subject: str, reason: str, item_ids: Sequence[str], total: int) -> None:
    """One warning per metric and reason, naming a few items so the user can find them. The warning
    carries its parts (`unscored`: subject, reason, item ids, rows), so a read in chunks can add its
    chunks' up into one (`pipeline.read_in_chunks`)."""
    ids = list(item_ids)
    shown = ", ".join(map(str, ids[:5])) + (" ..." if len(ids) > 5 else "")
    warning = MetricWarning(f"{subject}: {len(ids)} of {total} rows have {reason}; their value is NaN (items: {shown})")
    warning.unscored = (subject, reason, ids, total)
    warnings.warn(warning, stacklevel=3)
