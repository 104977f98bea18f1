"""JSON answers: schema-valid against the item's response_format, field-by-field agreement."""
from __future__ import annotations

import math

import pandas as pd

from workbench.metrics import score_responses
from workbench.metrics.json_answers import field_agreement, leaves, schema_valid

SCHEMA = {"type": "object", "properties": {"intent": {"type": "string", "enum": ["refund", "status"]},
                                           "order_id": {"type": "string"}},
          "required": ["intent"], "additionalProperties": False}


def test_schema_valid_reads_the_answer_as_an_app_would():
    assert schema_valid('{"intent": "refund", "order_id": "A1"}', SCHEMA)
    assert not schema_valid('{"intent": "cancel"}', SCHEMA)
    assert not schema_valid('```json\n{"intent": "refund"}\n```', SCHEMA)  # json.loads fails on a fence
    assert not schema_valid("Sure! Here is the JSON", SCHEMA)
    wrapped = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
    assert schema_valid('{"intent": "status"}', wrapped)
    assert schema_valid('{"anything": 1}', {"type": "json_object"}) and not schema_valid("[1]", {"type": "json_object"})


def test_field_agreement_over_the_union_of_leaves():
    reference = {"intent": "refund", "order": {"id": "A1", "items": [1, 2]}}
    assert field_agreement(reference, reference) == 1.0
    assert dict(leaves(reference)) == {"intent": "refund", "order.id": "A1", "order.items[0]": 1, "order.items[1]": 2}
    assert field_agreement({"intent": "REFUND ", "order": {"id": "A1", "items": [1.0, 2]}}, reference) == 1.0
    assert field_agreement({"intent": "refund", "order": {"id": "A1", "items": [1]}}, reference) == 0.75
    # an invented field counts against, "1" is not 1, true is not 1
    assert field_agreement({**reference, "extra": True}, reference) == 4 / 5
    assert field_agreement({"a": "1"}, {"a": 1}) == 0.0 and field_agreement({"a": True}, {"a": 1}) == 0.0
    assert field_agreement({"名前": "ｶﾀｶﾅ"}, {"名前": "カタカナ"}) == 1.0  # NFKC


def test_metrics_through_score_responses():
    items = pd.DataFrame({"item_id": ["j", "t"], "input": ["q", "q"],
                          "response_format": [SCHEMA, float("nan")],
                          "reference": ['{"intent": "refund", "order_id": "A1"}', "plain text answer"]})
    responses = pd.DataFrame({"item_id": ["j", "t", "j"], "model": ["a", "a", "b"],
                              "response": ['{"intent": "refund", "order_id": "B2"}', "text", "not json"]})
    scores = score_responses(items, responses, ["json_schema_valid", "json_field_agreement"])
    s = scores.set_index(["item_id", "model", "metric"])
    assert s.loc[("j", "a", "json_schema_valid"), "value"] == 1.0
    assert s.loc[("j", "b", "json_schema_valid"), "value"] == 0.0
    assert s.loc[("j", "a", "json_field_agreement"), "value"] == 0.5
    assert s.loc[("j", "b", "json_field_agreement"), "value"] == 0.0
    no_format = s.loc[("t", "a", "json_schema_valid")]
    assert math.isnan(no_format["value"]) and no_format["note"] == "no_response_format"
    assert s.loc[("t", "a", "json_field_agreement"), "note"] == "no_json_reference"
