"""`score_responses`: items x responses x metrics -> the long scores frame.

Missing inputs become NaN with a `note`, never 0:
- no response (the call failed: `response` is None/NaN): every metric is NaN, note
  "no_response". A failure is counted by the error rate; scoring it 0 as well would count it
  twice and mix reliability into quality. An EMPTY string is a real answer and is scored.
- no reference (missing, NaN or blank) for a metric that needs one: NaN, note "no_reference",
  and one `MetricWarning` per metric naming the items.
- a response or reference that is not text (a number, a dict...): `InputError` naming the row,
  because it means the data were loaded wrongly and any number would be misleading.
- a metric that does not apply to a row (a tool metric on an item without expected calls): NaN with
  the metric's `na_note` ("no_expected_calls"), never 0.

Metrics that read more than text (`Metric.columns`) get those columns row-aligned: `tool_calls` from
the responses (none when the frame has no such column: text answers), item fields by item id.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from workbench.errors import InputError, Problem
from workbench.metrics.base import RESPONSE_COLUMNS, Metric, warn_unscored
from workbench.metrics.reference import corpus_score
from workbench.metrics.registry import get_metric
from workbench.metrics.score_cache import cached_compute
from workbench.metrics.text import normalize_language, resolve_language
from workbench.task.dataset import require_columns
from workbench.values import is_missing

KEY_COLUMNS: tuple[str, ...] = ("item_id", "model", "prompt_version", "sample_index")
SCORE_COLUMNS: tuple[str, ...] = ("metric", "value", "note")
NO_RESPONSE = "no_response"
NO_REFERENCE = "no_reference"


def _text_or_none(value: Any, source: str, row: int, field: str, problems: list[Problem],
                  blank_is_missing: bool) -> str | None:
    if type(value) is str:  # the usual value first: nothing else to check
        return None if blank_is_missing and not value.strip() else value
    if is_missing(value):
        return None
    if not isinstance(value, str):
        problems.append(Problem(source, row, field, f"expected text, got {type(value).__name__} {value!r:.60}"))
        return None
    if blank_is_missing and not value.strip():
        return None
    return value


@dataclass
class _Rows:
    """Responses joined to their items, validated: one entry per response row."""

    keys: pd.DataFrame  # key columns of the responses, item_id as str
    item_ids: list[str]
    texts: list[str | None]  # None: no response (failed call)
    refs: list[str | None]  # None: no reference
    langs: list[str]
    item_index: list[int]  # each response's row in the items
    items: pd.DataFrame
    responses: pd.DataFrame

    def column(self, name: str, rows: Sequence[int]) -> list[Any]:
        """A metric's extra column for the given response rows (None where there is none)."""
        if name == "reference":
            return [self.refs[i] for i in rows]
        if name in RESPONSE_COLUMNS:
            if name not in self.responses.columns:
                return [None] * len(rows)
            values = self.responses[name].tolist()
            return [None if isinstance(values[i], float) and math.isnan(values[i]) else values[i] for i in rows]
        if name not in self.items.columns:
            return [None] * len(rows)
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in self.items[name].tolist()]
        return [values[self.item_index[i]] for i in rows]


def _prepare(items_df: pd.DataFrame, responses_df: pd.DataFrame) -> _Rows:
    require_columns(items_df, "items", ["item_id"])
    require_columns(responses_df, "responses", ["item_id", "model", "response"])
    item_ids = items_df["item_id"].astype(str)
    dupes = item_ids[item_ids.duplicated()].unique().tolist()
    if dupes:
        raise InputError(Problem("items", None, "item_id", f"duplicate item ids: {dupes[:10]}"))
    item_pos = {iid: i for i, iid in enumerate(item_ids.tolist())}
    ref_col = items_df["reference"].tolist() if "reference" in items_df else [None] * len(items_df)
    lang_col = items_df["language"].tolist() if "language" in items_df else [None] * len(items_df)

    resp = responses_df.reset_index(drop=True)
    resp_ids = resp["item_id"].astype(str).tolist()
    unknown = sorted({i for i in resp_ids if i not in item_pos})
    if unknown:
        raise InputError(Problem("responses", None, "item_id", f"ids not in the items: {unknown[:10]}"))

    problems: list[Problem] = []
    texts = [_text_or_none(v, "responses", r + 1, "response", problems, blank_is_missing=False)
             for r, v in enumerate(resp["response"].tolist())]
    item_refs = [_text_or_none(v, "items", r + 1, "reference", problems, blank_is_missing=True)
                 for r, v in enumerate(ref_col)]
    if problems:
        raise InputError(problems[:50])
    positions = [item_pos[i] for i in resp_ids]
    refs = [item_refs[p] for p in positions]
    codes = {lang: normalize_language(lang) for lang in {lang for lang in lang_col if type(lang) is str}}  # a few
    declared = [codes[lang] if type(lang) is str else normalize_language(lang)  # per item; detected per response
                for lang in lang_col]                                            # where None
    langs = [declared[p] or resolve_language(None, ref, text) for p, ref, text in zip(positions, refs, texts)]
    keys = [c for c in KEY_COLUMNS if c in resp.columns]
    return _Rows(resp[keys].assign(item_id=resp_ids), resp_ids, texts, refs, langs, positions, items_df, resp)


def score_responses(
    items_df: pd.DataFrame,
    responses_df: pd.DataFrame,
    metrics: Sequence[str | Metric],
    store: Any | None = None,
) -> pd.DataFrame:
    """Score every response with every metric.

    items_df: `item_id`, optional `reference` and `language` (en|ja; when absent or NaN the
        language is detected from the reference, then the response).
    responses_df: `item_id`, `model`, `response`, optional `prompt_version`, `sample_index`,
        `tool_calls` (read by the tool metrics).
    metrics: names or specs (see `get_metric`) or Metric objects.
    store: where versioned metrics keep their scores (`workbench.metrics.score_cache`): values
        stored there are read, the others computed and stored (not when it is read-only); None
        computes everything.
    Returns: one row per response x metric with the key columns present in responses_df,
        `metric`, `value` (float; NaN when unscorable) and `note` (None, "no_response",
        "no_reference" or the metric's `na_note` where it does not apply). Join `metric_info()`
        for direction and aggregation.
    """
    resolved = [get_metric(m) for m in metrics]
    names = [m.name for m in resolved]
    if len(set(names)) != len(names):
        raise InputError(f"metric names repeat: {names}")
    rows = _prepare(items_df, responses_df)
    n = len(rows.texts)
    blocks = []
    column_cache: dict[tuple[str, int], list[Any]] = {}  # one list per column: metrics share their rows
    for metric in resolved:
        values = [math.nan] * n
        notes: list[str | None] = [None] * n
        scorable, no_ref = [], []
        for i, text in enumerate(rows.texts):
            if text is None:
                notes[i] = NO_RESPONSE
            elif metric.needs_reference and rows.refs[i] is None:
                notes[i] = NO_REFERENCE
                no_ref.append(rows.item_ids[i])
            else:
                scorable.append(i)
        for name in metric.columns:
            # scorable rows are the answered ones, less those without a reference for a metric that
            # needs one: the same count means the same rows
            if (name, len(scorable)) not in column_cache:
                column_cache[(name, len(scorable))] = rows.column(name, scorable)
        columns = {name: column_cache[(name, len(scorable))] for name in metric.columns}
        texts = [rows.texts[i] for i in scorable]
        refs = [rows.refs[i] for i in scorable] if metric.needs_reference else None
        langs = [rows.langs[i] for i in scorable]

        def compute(part: list[int], metric: Metric = metric, texts: list = texts, refs: list | None = refs,
                    langs: list = langs, columns: dict = columns) -> list[float]:
            if len(part) == len(texts):
                return metric.compute(texts, refs, langs, **columns)
            return metric.compute([texts[k] for k in part], None if refs is None else [refs[k] for k in part],
                                  [langs[k] for k in part], **{n: [v[k] for k in part] for n, v in columns.items()})

        scored = cached_compute(store, metric, texts, refs, langs, columns, compute)
        for i, v in zip(scorable, scored):
            values[i] = v
            if v != v and metric.na_note:
                notes[i] = metric.na_note
        if no_ref:
            warn_unscored(f"metric {metric.name!r}", "no reference", no_ref, n)
        blocks.append(rows.keys.assign(metric=metric.name, value=pd.Series(values, dtype=float),
                                       note=pd.Series(notes, dtype=object)))
    missing = [rows.item_ids[i] for i, t in enumerate(rows.texts) if t is None]
    if missing and resolved:
        warn_unscored("all metrics", "no response (failed call)", missing, n)
    if not blocks:
        return pd.DataFrame(columns=[*rows.keys.columns, *SCORE_COLUMNS])
    return pd.concat(blocks, ignore_index=True)


def corpus_scores(
    items_df: pd.DataFrame,
    responses_df: pd.DataFrame,
    metrics: Sequence[str] = ("bleu", "chrf"),
) -> pd.DataFrame:
    """Corpus-level BLEU/chrF per model and language (and prompt_version when present).

    Rows without a response or reference are left out and counted in `n_skipped`; languages
    are never pooled (different tokenizers). Columns: model, [prompt_version], language,
    metric, score, n, n_skipped, signature.
    """
    rows = _prepare(items_df, responses_df)
    frame = rows.keys.assign(text=rows.texts, ref=rows.refs, language=rows.langs)
    groups = [c for c in ("model", "prompt_version") if c in frame.columns] + ["language"]
    out = []
    for key, g in frame.groupby(groups, sort=True, dropna=False):
        ok = g["text"].notna() & g["ref"].notna()
        for name in metrics:
            result = corpus_score(name, g.loc[ok, "text"].tolist(), g.loc[ok, "ref"].tolist(), key[-1])
            out.append({**dict(zip(groups, key)), "metric": name, "score": result.score, "n": result.n,
                        "n_skipped": int((~ok).sum()), "signature": result.signature})
    return pd.DataFrame(out, columns=[*groups, "metric", "score", "n", "n_skipped", "signature"])
