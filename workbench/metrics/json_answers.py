"""JSON answers: does the answer follow the item's `response_format`, and does it say what another
answer says, field by field.

An application that asks for JSON parses the answer as it comes (`json.loads(text)`), so the answer
is read as-is: a code fence around the JSON is a broken answer here (`json_valid_lenient` exists for
those who want to forgive it). Field agreement compares the leaves of two JSON values by path
(`order.items[0].sku`): values equal when they are equal as JSON (1 == 1.0, but "1" != 1) or, for
strings, after Unicode NFKC, trimming and case folding; the share is over the union of the two
values' leaf paths, so a dropped or an invented field counts against it.
"""
from __future__ import annotations

import json
import math
import unicodedata
from typing import Any, Iterator, Mapping, Sequence

from workbench.items.fields import response_schema
from workbench.metrics.base import Metric

_NO_VALUE = object()


def parse_answer(text: str | None) -> Any:
    """The JSON value of an answer, or `_NO_VALUE` when it is not JSON."""
    if text is None:
        return _NO_VALUE
    try:
        return json.loads(text)
    except ValueError:
        return _NO_VALUE


def is_json(value: Any) -> bool:
    return value is not _NO_VALUE


def _validator(response_format: Mapping[str, Any], cache: dict) -> Any:
    import jsonschema

    key = json.dumps(response_format, sort_keys=True, default=str)
    if key not in cache:
        schema = response_schema(response_format)
        if schema is None:  # json_object: any object
            schema = {"type": "object"}
        cache[key] = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)
    return cache[key]


def schema_valid(text: str, response_format: Mapping[str, Any], cache: dict | None = None) -> bool:
    """The answer is JSON and valid against the response_format's schema (any object for `json_object`)."""
    value = parse_answer(text)
    return is_json(value) and _validator(response_format, {} if cache is None else cache).is_valid(value)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs of a JSON value; an empty object or array is a leaf of its own."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a == b or _fold(a) == _fold(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def field_agreement(answer: Any, other: Any) -> float:
    """Share of leaf paths (over both values) where the two JSON values agree; 1.0 for equal values."""
    mine, theirs = dict(leaves(answer)), dict(leaves(other))
    paths = mine.keys() | theirs.keys()
    if not paths:
        return 1.0
    agree = sum(1 for p in paths if p in mine and p in theirs and _same(mine[p], theirs[p]))
    return agree / len(paths)


def _json_reference(reference: str | None) -> Any:
    value = parse_answer(reference)
    return value if isinstance(value, (dict, list)) else _NO_VALUE


# ------------------------------------------------------------------------------------ metrics


def _decoded(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return json.loads(value) if isinstance(value, str) else value


def _schema_valid(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str], *,
                  response_format: Sequence[Any]) -> list[float]:
    cache: dict = {}
    out = []
    for text, fmt in zip(responses, response_format):
        fmt = _decoded(fmt)
        out.append(math.nan if fmt is None else float(schema_valid(text, fmt, cache)))
    return out


def _agreement(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str], *,
               reference: Sequence[str | None]) -> list[float]:
    out = []
    for text, ref in zip(responses, reference):
        expected = _json_reference(ref)
        if not is_json(expected):
            out.append(math.nan)
            continue
        answer = parse_answer(text)
        out.append(field_agreement(answer, expected) if is_json(answer) else 0.0)
    return out


JSON_SCHEMA_VALID = Metric(
    name="json_schema_valid", fn=_schema_valid, higher_is_better=True, aggregation="rate", needs_reference=False,
    description="1 if the answer is JSON (as-is) valid against the item's response_format",
    value_range=(0.0, 1.0), columns=("response_format",), na_note="no_response_format", version="1")
JSON_FIELD_AGREEMENT = Metric(
    name="json_field_agreement", fn=_agreement, higher_is_better=True, aggregation="mean", needs_reference=False,
    description="share of JSON leaf fields equal to the reference's (a JSON object or array); 0 for a non-JSON answer",
    value_range=(0.0, 1.0), columns=("reference",), na_note="no_json_reference", version="1")

METRICS: tuple[Metric, ...] = (JSON_SCHEMA_VALID, JSON_FIELD_AGREEMENT)
