"""Tool calls against expected calls: one item's verdict, its error kind, and the metrics through
`score_responses` (NaN with a note where an item expects nothing, never 0)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.items.tool_calls import ToolCall
from workbench.metrics import MetricWarning, app_metrics, score_responses, with_app_metrics
from workbench.metrics.tool_calls import (
    CALL_WHEN_NONE_APPLIES,
    EXTRA_CALL,
    MISSING_ARGUMENT,
    MISSING_CALL,
    TEXT_INSTEAD_OF_CALL,
    UNEXPECTED_ARGUMENT,
    UNPARSEABLE_CALL,
    WRONG_TOOL,
    WRONG_TYPE,
    WRONG_VALUE,
    check_item,
    verdict_frame,
)

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string", "enum": ["C", "F"]},
        "threshold": {"type": "number"}},
        "required": ["city"]}}}
ORDER = {"name": "lookup_order", "parameters": {"type": "dict", "properties": {
    "order_id": {"type": "string"},
    "filters": {"type": "dict", "properties": {"status": {"type": "string"}, "limit": {"type": "integer"}}},
    "items": {"type": "array", "items": {"type": "integer"}}}, "required": ["order_id"]}}
TOOLS = [WEATHER, ORDER]


def call(name, **arguments):
    return ToolCall.parse(name, arguments)


def weather_expected(**extra):
    return [{"get_weather": {"city": ["Paris", "paris, france"], "days": [3], "unit": ["", "C"], **extra}}]


def test_right_call_with_alternatives_optional_omitted_and_bfcl_string_rules():
    v = check_item([call("get_weather", city="PARIS,  France", days=3)], "", weather_expected(), TOOLS)
    assert v.correct and v.name_match and v.key_match and v.value_match and v.relevance and v.args_valid
    assert v.error is None
    # the optional unit given with an accepted value is right too; an unaccepted one is a wrong value
    assert check_item([call("get_weather", city="Paris", days=3, unit="C")], "", weather_expected(), TOOLS).correct
    wrong = check_item([call("get_weather", city="Paris", days=3, unit="F")], "", weather_expected(), TOOLS)
    assert (wrong.correct, wrong.name_match, wrong.key_match, wrong.error) == (False, True, True, WRONG_VALUE)


def test_type_aware_string_is_not_integer_but_integer_is_a_float():
    v = check_item([call("get_weather", city="Paris", days="3")], "", weather_expected(), TOOLS)
    assert not v.correct and v.error == WRONG_TYPE and v.key_match and not v.value_match
    floats = [{"get_weather": {"city": ["Paris"], "threshold": [5.0]}}]
    assert check_item([call("get_weather", city="Paris", threshold=5)], "", floats, TOOLS).correct
    assert check_item([call("get_weather", city="Paris", threshold=5.0)], "", floats, TOOLS).correct
    assert check_item([call("get_weather", city="Paris", threshold=True)], "", floats, TOOLS).error == WRONG_TYPE
    # true is not 1
    ints = [{"get_weather": {"city": ["Paris"], "days": [1]}}]
    assert check_item([call("get_weather", city="Paris", days=True)], "", ints, TOOLS).error == WRONG_TYPE


def test_missing_required_and_unexpected_arguments():
    missing = check_item([call("get_weather", days=3)], "", weather_expected(), TOOLS)
    assert (missing.correct, missing.key_match, missing.error) == (False, False, MISSING_ARGUMENT)
    # days is not optional in the accepted call (no ""), though the declaration does not require it
    assert check_item([call("get_weather", city="Paris")], "", weather_expected(), TOOLS).error == MISSING_ARGUMENT
    extra = check_item([call("get_weather", city="Paris", days=3, mood="happy")], "", weather_expected(), TOOLS)
    assert (extra.correct, extra.key_match, extra.error) == (False, False, UNEXPECTED_ARGUMENT)


def test_parallel_calls_in_any_order_and_counts():
    expected = [{"get_weather": {"city": ["Paris"], "days": [1]}}, {"get_weather": {"city": ["Tokyo"], "days": [2]}},
                {"lookup_order": {"order_id": ["A1"]}}]
    made = [call("lookup_order", order_id="A1"), call("get_weather", city="Tokyo", days=2),
            call("get_weather", city="Paris", days=1)]
    assert check_item(made, "", expected, TOOLS).correct
    assert check_item(made[::-1], "", expected, TOOLS).correct
    dropped = check_item(made[:2], "", expected, TOOLS)
    assert (dropped.correct, dropped.name_match, dropped.error) == (False, False, MISSING_CALL)
    doubled = check_item(made + made[:1], "", expected, TOOLS)
    assert (doubled.correct, doubled.error) == (False, EXTRA_CALL)
    swapped = [call("lookup_order", order_id="A1"), call("get_weather", city="Tokyo", days=1),
               call("get_weather", city="Paris", days=2)]
    v = check_item(swapped, "", expected, TOOLS)
    assert (v.correct, v.name_match, v.key_match, v.error) == (False, True, True, WRONG_VALUE)


def test_wrong_tool_text_instead_and_irrelevance_relevance():
    v = check_item([call("lookup_order", order_id="Paris")], "", weather_expected(), TOOLS)
    assert (v.correct, v.name_match, v.error) == (False, False, WRONG_TOOL)
    text = check_item([], "It is sunny in Paris.", weather_expected(), TOOLS)
    assert (text.correct, text.relevance, text.error) == (False, False, TEXT_INSTEAD_OF_CALL)
    assert check_item([], "", weather_expected(), TOOLS).error == MISSING_CALL
    none = check_item([], "I cannot look that up.", [], TOOLS)
    assert (none.correct, none.irrelevance, none.name_match, none.relevance) == (True, True, None, None)
    called = check_item([call("get_weather", city="Paris")], "", [], TOOLS)
    assert (called.correct, called.irrelevance, called.error) == (False, False, CALL_WHEN_NONE_APPLIES)
    some = check_item([call("get_weather", city="Paris")], "", "any", TOOLS)
    assert (some.correct, some.relevance, some.irrelevance) == (True, True, None)
    assert check_item([], "Sunny.", "any", TOOLS).relevance is False
    assert check_item([call("get_weather", city="Paris")], "", None, TOOLS) is None  # expects nothing


def test_unparseable_call_is_a_wrong_call_not_a_missing_one():
    broken = ToolCall.parse("get_weather", '{"city": "Paris", ')
    v = check_item([broken], "", weather_expected(), TOOLS)
    assert (v.correct, v.name_match, v.key_match, v.error, v.args_valid) == (False, True, False, UNPARSEABLE_CALL,
                                                                              False)
    assert check_item([broken], "", "any", TOOLS).error == UNPARSEABLE_CALL
    assert check_item([broken], "", [], TOOLS).error == CALL_WHEN_NONE_APPLIES


def test_nested_objects_lists_and_unicode():
    expected = [{"lookup_order": {"order_id": ["注文-０１"], "filters": [{"status": ["shipped", "sent"], "limit": [5]}],
                                  "items": [[1, 2]]}}]
    right = call("lookup_order", order_id="注文０１", filters={"status": "Shipped", "limit": 5}, items=[1, 2])
    assert check_item([right], "", expected, TOOLS).correct
    wrong_nested = call("lookup_order", order_id="注文-０１", filters={"status": "lost", "limit": 5}, items=[1, 2])
    assert check_item([wrong_nested], "", expected, TOOLS).error == WRONG_VALUE
    wrong_items = call("lookup_order", order_id="注文-０１", filters={"status": "sent", "limit": 5}, items=["1", "2"])
    assert check_item([wrong_items], "", expected, TOOLS).error == WRONG_TYPE
    other_order = call("lookup_order", order_id="注文-０２", filters={"status": "sent", "limit": 5}, items=[1, 2])
    assert check_item([other_order], "", expected, TOOLS).error == WRONG_VALUE


def test_plain_form_and_no_declared_tools():
    expected = [{"name": "lookup_order", "arguments": {"order_id": "A-17", "filters": {"status": "open"}}}]
    made = call("lookup_order", order_id="a 17", filters={"status": "OPEN"})
    assert check_item([made], "", expected, TOOLS).correct
    assert check_item([made], "", expected, None).correct  # types from the accepted values
    assert check_item([call("lookup_order", order_id=17, filters={"status": "open"})], "", expected,
                      None).error == WRONG_TYPE
    floats = [{"name": "refund", "arguments": {"amount": 12.0}}]
    assert check_item([call("refund", amount=12)], "", floats, None).correct
    assert check_item([call("refund", amount=12)], "", floats, None).args_valid is None  # no schema to check


def test_arguments_valid_against_declared_schema():
    v = check_item([call("get_weather", city="Paris", unit="K")], "", "any", TOOLS)
    assert v.correct and v.args_valid is False  # a call was made (relevance); its arguments break the enum
    assert check_item([call("undeclared_tool")], "", "any", TOOLS).args_valid is False
    assert check_item([call("lookup_order", order_id="A1", items=[1, 2])], "", "any", TOOLS).args_valid is True


def _items():
    return pd.DataFrame({
        "item_id": ["w", "none", "any", "plain"],
        "input": ["weather?", "joke?", "do something", "order?"],
        "tools": [TOOLS, TOOLS, TOOLS, float("nan")],
        "expected_calls": [weather_expected(), [], "any", float("nan")],
    })


def _responses():
    rows = [
        ("w", "a", "", (call("get_weather", city="Paris", days=3),)),
        ("none", "a", "Why did...", ()),
        ("any", "a", "", (call("lookup_order", order_id="1"),)),
        ("plain", "a", "Order A1 shipped.", ()),
        ("w", "b", "It is sunny.", ()),
        ("none", "b", "", (call("get_weather", city="Paris"),)),
        ("any", "b", None, None),  # the call failed
        ("plain", "b", "", (call("lookup_order", order_id="A1"),)),
    ]
    return pd.DataFrame(rows, columns=["item_id", "model", "response", "tool_calls"])


def test_metrics_through_score_responses_nan_with_notes():
    with pytest.warns(MetricWarning, match="no response"):
        scores = score_responses(_items(), _responses(), app_metrics(_items()))
    s = scores.set_index(["item_id", "model", "metric"])
    assert s.loc[("w", "a", "tool_call_accuracy"), "value"] == 1.0
    assert s.loc[("w", "b", "tool_call_accuracy"), "value"] == 0.0
    assert s.loc[("none", "a", "tool_irrelevance"), "value"] == 1.0
    assert s.loc[("none", "b", "tool_call_accuracy"), "value"] == 0.0
    assert s.loc[("any", "a", "tool_relevance"), "value"] == 1.0
    # no expected calls: NaN with a note, never 0
    plain = s.loc[("plain", "b", "tool_call_accuracy")]
    assert math.isnan(plain["value"]) and plain["note"] == "no_expected_calls"
    assert s.loc[("w", "a", "tool_irrelevance"), "note"] == "not_an_irrelevance_item"
    assert s.loc[("none", "a", "tool_name_match"), "note"] == "no_expected_calls"
    assert s.loc[("any", "b", "tool_call_accuracy"), "note"] == "no_response"
    assert s.loc[("w", "b", "tool_args_valid"), "note"] == "no_calls_to_check"
    assert s.loc[("none", "b", "tool_args_valid"), "value"] == 1.0


def test_app_metrics_follow_the_items_fields():
    assert app_metrics(pd.DataFrame({"item_id": ["1"], "input": ["x"]})) == []
    assert app_metrics(_items()) == ["tool_call_accuracy", "tool_name_match", "tool_arg_key_match",
                                     "tool_arg_value_match", "tool_irrelevance", "tool_relevance", "tool_args_valid"]
    only_none = pd.DataFrame({"item_id": ["1"], "expected_calls": [[]]})
    assert app_metrics(only_none) == ["tool_call_accuracy", "tool_irrelevance"]
    fmt = pd.DataFrame({"item_id": ["1", "2"], "response_format": [{"type": "object"}, None],
                        "reference": ['{"a": 1}', "text"]})
    assert app_metrics(fmt) == ["json_schema_valid", "json_field_agreement"]
    assert with_app_metrics(["chrf", "tool_call_accuracy"], only_none) == ["chrf", "tool_call_accuracy",
                                                                           "tool_irrelevance"]


def test_tool_calls_column_missing_means_text_answers():
    responses = _responses().drop(columns=["tool_calls"]).fillna({"response": "text"})
    scores = score_responses(_items(), responses, ["tool_call_accuracy"])
    assert scores.set_index(["item_id", "model"]).loc[("w", "a"), "value"] == 0.0


def test_verdict_frame_per_response():
    frame = verdict_frame(_items(), _responses())
    assert list(frame.columns) == ["item_id", "model", "correct", "error", "detail", "calls"]
    rows = frame.set_index(["item_id", "model"])
    assert len(frame) == 5  # answered rows of items with expected calls (not "plain", not the failed call)
    assert rows.loc[("w", "b"), "error"] == TEXT_INSTEAD_OF_CALL and not rows.loc[("w", "b"), "correct"]
    assert rows.loc[("none", "b"), "error"] == CALL_WHEN_NONE_APPLIES
    assert rows.loc[("none", "b"), "calls"] == 'get_weather(city="Paris")'
    assert rows.loc[("w", "a"), "correct"] and pd.isna(rows.loc[("w", "a"), "error"])


@pytest.mark.parametrize("raw", ["[]", '[{"get_weather": {"city": ["Paris"]}}]'])
def test_expected_calls_as_json_text(raw):
    items = _items().assign(expected_calls=[raw, raw, raw, raw])
    with pytest.warns(MetricWarning, match="no response"):
        scores = score_responses(items, _responses(), ["tool_call_accuracy"])
    assert scores["value"].notna().sum() == 7  # every answered row is scored
