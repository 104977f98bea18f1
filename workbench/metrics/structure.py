"""Reference-free checks on the response itself: substring, regex, JSON, JSON schema, length.

Checks return 1.0/0.0 and aggregate as rates. Factories (`contains`, `regex`, `json_schema`)
build a Metric whose name records its argument, so two different checks never share a name in
the scores table.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Mapping, Sequence

from workbench.hashing import content_hash
from workbench.metrics.base import Metric
from workbench.metrics.text import words

_FENCE_RE = re.compile(r"^```[\w+-]*[ \t]*\n(.*?)\n?```$", re.S)


def strip_code_fence(text: str) -> str:
    """The body of a response that is exactly one fenced code block, else the stripped text."""
    text = text.strip()
    match = _FENCE_RE.match(text)
    return match.group(1).strip() if match else text


def contains(text: str, case_sensitive: bool = True, name: str | None = None) -> Metric:
    """1 when the response contains `text`.

    Case-insensitive matching also applies NFKC, so full-width "ＯＫ" matches "ok" (common in
    Japanese output); case-sensitive matching is literal.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("contains() needs a non-empty string")
    needle = _fold(text) if not case_sensitive else text

    def fn(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str]) -> list[float]:
        if case_sensitive:
            return [float(needle in r) for r in responses]
        return [float(needle in _fold(r)) for r in responses]

    prefix = "contains" if case_sensitive else "icontains"
    return Metric(
        name=name or f"{prefix}:{text}",
        fn=fn,
        higher_is_better=True,
        aggregation="rate",
        needs_reference=False,
        value_range=(0.0, 1.0),
        description=f"1 if the response contains {text!r}" + ("" if case_sensitive else " (case/width-insensitive)"),
        params={"text": text, "case_sensitive": case_sensitive},
    )


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def regex(pattern: str, flags: int = 0, name: str | None = None) -> Metric:
    """1 when `re.search(pattern, response)` finds a match (the pattern is compiled once, now,
    so a bad pattern fails before any scoring)."""
    compiled = re.compile(pattern, flags)

    def fn(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str]) -> list[float]:
        return [float(compiled.search(r) is not None) for r in responses]

    return Metric(
        name=name or f"regex:{pattern}",
        fn=fn,
        higher_is_better=True,
        aggregation="rate",
        needs_reference=False,
        value_range=(0.0, 1.0),
        description=f"1 if the response matches the regular expression {pattern!r}",
        params={"pattern": pattern, "flags": flags},
    )


def _parse_json(text: str, lenient: bool) -> tuple[bool, Any]:
    body = strip_code_fence(text) if lenient else text.strip()
    try:
        return True, json.loads(body)
    except ValueError:
        return False, None


def json_valid(lenient: bool = False) -> Metric:
    """1 when the response parses as JSON.

    Strict (default) is what an application calling `json.loads(response)` sees; lenient also
    accepts one enclosing ``` code fence, which many chat models add around JSON.
    """

    def fn(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str]) -> list[float]:
        return [float(_parse_json(r, lenient)[0]) for r in responses]

    return Metric(
        name="json_valid_lenient" if lenient else "json_valid",
        fn=fn,
        higher_is_better=True,
        aggregation="rate",
        needs_reference=False,
        value_range=(0.0, 1.0),
        description="1 if the response is valid JSON" + (" (one ``` fence allowed)" if lenient else " (as-is)"),
        params={"lenient": lenient},
    )


def json_schema(schema: Mapping[str, Any], lenient: bool = False, name: str | None = None) -> Metric:
    """1 when the response is JSON that conforms to `schema` (jsonschema, draft from `$schema`,
    else the latest). Invalid JSON scores 0. The schema itself is checked now, not per row."""
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)

    def fn(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str]) -> list[float]:
        out = []
        for r in responses:
            ok, value = _parse_json(r, lenient)
            out.append(float(ok and validator.is_valid(value)))
        return out

    digest = content_hash(schema)[:12]
    return Metric(
        name=name or f"json_schema:{digest}",
        fn=fn,
        higher_is_better=True,
        aggregation="rate",
        needs_reference=False,
        value_range=(0.0, 1.0),
        description=f"1 if the response is JSON valid against schema {digest}",
        params={"schema": dict(schema), "lenient": lenient},
        version="1",
    )


def _length_chars(responses: Sequence[str], _refs: Sequence[Any], _langs: Sequence[str]) -> list[float]:
    return [float(len(r.strip())) for r in responses]


def _length_words(responses: Sequence[str], _refs: Sequence[Any], langs: Sequence[str]) -> list[float]:
    return [float(len(words(r, lang))) for r, lang in zip(responses, langs)]


LENGTH_CHARS = Metric(
    name="length_chars",
    fn=_length_chars,
    higher_is_better=None,
    aggregation="median",
    needs_reference=False,
    description="Characters in the stripped response (descriptive: no better direction).",
)
LENGTH_WORDS = Metric(
    name="length_words",
    fn=_length_words,
    higher_is_better=None,
    aggregation="median",
    needs_reference=False,
    description="Words: whitespace tokens, or MeCab words for Japanese; punctuation not counted.",
)

METRICS: tuple[Metric, ...] = (json_valid(), json_valid(lenient=True), LENGTH_CHARS, LENGTH_WORDS)
