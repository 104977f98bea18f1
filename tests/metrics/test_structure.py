from __future__ import annotations

import pytest

from workbench.metrics import contains, get_metric, json_schema, json_valid, regex
from workbench.metrics.structure import strip_code_fence

REPLY_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}


def test_contains_case_sensitive_and_insensitive():
    assert contains("refund").compute(["Your Refund is on its way", "a refund"]) == [0.0, 1.0]
    loose = contains("refund", case_sensitive=False)
    assert loose.compute(["Your REFUND", "ＲＥＦＵＮＤ issued", "no money back"]) == [1.0, 1.0, 0.0]
    assert contains("返金").compute(["返金いたします。", "交換いたします。"]) == [1.0, 0.0]
    assert contains("refund").name == "contains:refund" and contains("x", case_sensitive=False).name == "icontains:x"
    with pytest.raises(ValueError):
        contains("")


def test_regex_searches_and_rejects_bad_patterns_early():
    order_id = regex(r"\bORD-\d{6}\b")
    assert order_id.compute(["see ORD-123456.", "ORD-12345", "注文番号はORD-654321です"]) == [1.0, 0.0, 0.0]
    assert regex(r"ORD-\d{6}").compute(["注文番号はORD-654321です"]) == [1.0]
    with pytest.raises(Exception):
        regex("(unclosed")


def test_json_valid_strict_and_lenient():
    texts = ['{"a": 1}', ' [1, 2] ', '```json\n{"a": 1}\n```', "{'a': 1}", "Sure! {\"a\": 1}", ""]
    assert json_valid().compute(texts) == [1, 1, 0, 0, 0, 0]
    assert json_valid(lenient=True).compute(texts) == [1, 1, 1, 0, 0, 0]


def test_json_schema_conformance():
    metric = json_schema(REPLY_SCHEMA)
    texts = [
        '{"answer": "明日発送します", "confidence": 0.9}',
        '{"answer": "yes", "confidence": 1.5}',  # out of range
        '{"answer": "yes"}',  # missing field
        '{"answer": "yes", "confidence": 0.5, "extra": true}',
        "not json",
    ]
    assert metric.compute(texts) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert metric.name.startswith("json_schema:") and metric.aggregation == "rate"
    assert json_schema(REPLY_SCHEMA, lenient=True).compute(['```json\n{"answer": "a", "confidence": 0}\n```']) == [1.0]


def test_json_schema_rejects_an_invalid_schema_at_construction():
    import jsonschema

    with pytest.raises(jsonschema.SchemaError):
        json_schema({"type": "no-such-type"})


def test_strip_code_fence_only_strips_one_enclosing_block():
    assert strip_code_fence("```python\nprint(1)\n```") == "print(1)"
    assert strip_code_fence("text\n```\ncode\n```") == "text\n```\ncode\n```"


def test_lengths_are_descriptive_and_language_aware():
    chars, words = get_metric("length_chars"), get_metric("length_words")
    assert chars.higher_is_better is None and chars.aggregation == "median"
    assert chars.compute(["  abc  ", "返金します。"]) == [3.0, 6.0]
    assert words.compute(["Refunds take five days.", "返金は五営業日以内に処理されます。"], None, ["en", "ja"]) == [4.0, 11.0]
    assert words.compute([""]) == [0.0]
