"""The score cache: a metric's value kept in the store under what it read, so a warm compare reads it.

A score is keyed by (metric name, metric version, response key, reference key):
- metric version: the metric's declared `version` (its code, and the libraries it relies on) and a
  hash of its `params` (a factory's pattern or schema), so changed code or parameters never reuse an
  old value. A metric without a version (cheap, non-deterministic, or custom and unversioned) is
  scored every time.
- response key: a hash of what the metric reads of the answer: its text, and its tool calls when the
  metric reads them. Not the response's cache key: the stored answer under one key can be replaced.
- reference key: a hash of what it reads of the item: the language it scores in, the reference when it
  needs one, and every item column it declares (expected calls, tools, response_format...).

Values are stored as the metric computed them (REAL / DOUBLE PRECISION hold a Python float exactly);
NaN (the metric does not apply) is stored as NULL. A store opened read-only is read but never written:
what is missing is computed and not kept, without a word.
"""
from __future__ import annotations

import functools
import gc
import hashlib
import json
import math
import os
from contextlib import contextmanager
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) writes a string as
from typing import Any, Callable, Iterator, Sequence

from workbench.hashing import canonical_json, content_hash, json_safe
from workbench.items.tool_calls import calls_to_json
from workbench.metrics.base import Metric

SCORE_CACHE_ENV = "WORKBENCH_SCORE_CACHE"  # "0" / "off": score everything, read and write nothing (benchmarks)


def cache_enabled() -> bool:
    """False when the environment turns the score cache off (the benchmark's "today's behaviour")."""
    return os.environ.get(SCORE_CACHE_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block, as it was after it. For reading a chunk's kept
    measures: tens of thousands of rows, records and tuples, none of them in a cycle, whose allocation
    otherwise sets off collections that walk the whole heap (a fifth of the behaviour diff's CPU at
    100k items). Another thread's cycles wait for the block's end, nothing more."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def metric_version(metric: Metric) -> str | None:
    """The version a metric's scores are stored under; None for a metric that is not cached."""
    if metric.version is None:
        return None
    return f"{metric.version}#{content_hash(json_safe(dict(metric.params)))[:16]}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def response_key(text: str, tool_calls: Any = None, reads_calls: bool = False) -> str:
    """What a metric reads of one answer: its text, plus its tool calls for a metric that reads them."""
    if not reads_calls:
        return _text_key(text)
    return _digest("c" + canonical_json([text, _calls_form(tool_calls)]))


@functools.lru_cache(maxsize=1 << 15)
def _text_key(text: str) -> str:
    """An answer's key for what reads its text alone: the text metrics of its scoring and the behaviour
    diff of its chunk ask for it in turn, so it is hashed once (the latest 32k answers are remembered)."""
    return _digest("t" + text)


def forget_answers() -> None:
    """Drop the remembered answer keys (and the answers' texts they hold): a read in chunks calls it
    after each chunk, whose answers are never asked for again, so memory stays that of one chunk."""
    _text_key.cache_clear()


def _calls_form(calls: Any) -> Any:
    """Tool calls as JSON values: None (no calls column) stays apart from no call made ([])."""
    if calls is None:
        return None
    try:
        return calls_to_json(calls) or "[]"
    except AttributeError:  # not ToolCall records (a frame built by hand): their JSON form
        return json_safe(list(calls))


def reference_key(language: str, reference: str | None, columns: dict[str, Any]) -> str:
    """What a metric reads of one item: the language it scores in, the reference, its declared columns."""
    if not columns and type(language) is str and (reference is None or type(reference) is str):
        # a text metric's key (one per item): the bytes canonical_json writes, without its per-call cost
        text = "null" if reference is None else encode_basestring(reference)
        return _digest(f'{{"language":{encode_basestring(language)},"reference":{text}}}')
    return _digest(canonical_json({"language": language, "reference": reference, **json_safe(columns)}))


def cached_compute(store: Any, metric: Metric, texts: Sequence[str], refs: Sequence[str | None] | None,
                   langs: Sequence[str], columns: dict[str, list[Any]],
                   compute: Callable[[list[int]], list[float]]) -> list[float]:
    """`metric`'s values for these rows: those the store holds are read, the rest are computed with
    `compute(row positions)` and stored (unless the store is read-only). `columns` are the metric's
    extra columns, row-aligned with `texts`."""
    version = metric_version(metric)
    if store is None or version is None:
        return compute(list(range(len(texts))))
    reads_calls = "tool_calls" in metric.columns
    calls = columns.get("tool_calls") or [None] * len(texts)
    item_columns = {name: values for name, values in columns.items() if name != "tool_calls"}
    try:
        if item_columns:
            references = [reference_key(lang, refs[i] if refs is not None else None,
                                        {name: values[i] for name, values in item_columns.items()})
                          for i, lang in enumerate(langs)]
        else:  # text metrics: one key per (language, reference), shared by every model's answer to the item
            memo: dict[tuple[str, str | None], str] = {}
            references = [memo.get(pair) or memo.setdefault(pair, reference_key(*pair, {}))
                          for pair in zip(langs, refs if refs is not None else [None] * len(texts))]
        if reads_calls:
            keys = [(response_key(text, call, True), reference) for text, call, reference in zip(texts, calls, references)]
        else:
            keys = [(_text_key(text), reference) for text, reference in zip(texts, references)]
    except (TypeError, ValueError):  # an item field JSON cannot represent: score without the cache
        return compute(list(range(len(texts))))
    stored = store.stored_scores(metric.name, version, keys)
    values = [math.nan] * len(texts)
    for i, value in stored.items():
        if value is not None:
            values[i] = float(value)
    if len(stored) == len(keys):
        return values
    missing = [i for i in range(len(keys)) if i not in stored]
    computed = compute(missing)
    new: dict[tuple[str, str], float | None] = {}
    for i, value in zip(missing, computed):
        values[i] = value
        new.setdefault(keys[i], None if value != value else value)
    if not getattr(store, "read_only", False):
        store.put_scores([(metric.name, version, response, reference, value, None)
                          for (response, reference), value in new.items()])
    return values


def record_key(value: Any) -> str:
    """A key for anything a cached record was computed from (JSON values)."""
    if type(value) is str:  # an item's input: the bytes canonical_json writes, without its per-call cost
        return _digest(encode_basestring(value))
    return _digest(canonical_json(json_safe(value)))


def cached_records(store: Any, name: str, version: str, keys: Sequence[tuple[str, str]],
                   compute: Callable[[list[int]], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Like `cached_compute` for measures that are a record rather than one number (the behaviour diff's
    per-answer description): each key's JSON record is kept in the scores table's `detail_json`, under
    `name` and `version`. `compute(positions)` gives the records of the keys the store lacks."""
    if store is None:
        return compute(list(range(len(keys))))
    stored = store.stored_details(name, version, keys)
    # every stored record parsed as one JSON array: a tenth less CPU than a `json.loads` each
    records: list[dict[str, Any] | None] = [None] * len(keys)
    for i, record in zip(stored, json.loads("[" + ",".join(stored.values()) + "]")):
        records[i] = record
    missing = [i for i in range(len(keys)) if i not in stored] if len(stored) < len(keys) else []
    if missing:
        new: dict[tuple[str, str], str] = {}
        for i, record in zip(missing, compute(missing)):
            records[i] = record
            new.setdefault(keys[i], json.dumps(record, sort_keys=True, ensure_ascii=False))  # NaN kept as NaN
        if not getattr(store, "read_only", False):
            store.put_scores([(name, version, response, reference, None, detail)
                              for (response, reference), detail in new.items()])
    return records  # type: ignore[return-value]
