"""The `Metric` record every scorer is, and how its values aggregate.

A metric is batch-first: it receives clean lists (text responses, text references or None,
language codes) and returns one float per row. Everything messy (missing responses, missing
references, non-text values) is handled once, in `workbench.metrics.scoring`, so each metric
stays a small pure function and can never silently turn a missing input into a 0.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Sequence

Aggregation = Literal["mean", "rate", "median"]
AGGREGATIONS: tuple[str, ...] = ("mean", "rate", "median")

# fn(responses, references, languages) -> one float per row. references is a list of str when
# the metric needs a reference, otherwise a list of None.
BatchFn = Callable[[Sequence[str], Sequence["str | None"], Sequence[str]], Sequence[float]]


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
    """

    name: str
    fn: BatchFn = field(repr=False, compare=False)
    higher_is_better: bool | None
    aggregation: Aggregation
    needs_reference: bool
    description: str
    value_range: tuple[float, float] | None = None
    params: Mapping[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"metric {self.name!r}: aggregation must be one of {AGGREGATIONS}")

    def compute(
        self,
        responses: Sequence[str],
        references: Sequence[str | None] | None = None,
        languages: Sequence[str] | str | None = None,
    ) -> list[float]:
        """Score already-clean text rows (no None responses). For DataFrames use `score_responses`.

        languages: one code for all rows, one per row, or None to detect each row's language
        from its reference (then its response), as `score_responses` does for items without one.
        """
        from workbench.metrics.text import normalize_language, resolve_language

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
        if n == 0:
            return []
        values = [float(v) for v in self.fn(list(responses), refs, langs)]
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
    """One warning per metric and reason, naming a few items so the user can find them."""
    shown = ", ".join(map(str, list(item_ids)[:5])) + (" ..." if len(item_ids) > 5 else "")
    warnings.warn(
        f"{subject}: {len(item_ids)} of {total} rows have {reason}; "
        f"their value is NaN (items: {shown})",
        MetricWarning,
        stacklevel=3,
    )
