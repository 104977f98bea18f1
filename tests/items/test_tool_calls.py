"""What a call is: parsed or kept as unparseable, expected calls in both forms, API-safe names."""
from __future__ import annotations

import pytest

from workbench.items.tool_calls import ToolCall, ToolNames, calls_from_json, calls_to_json, expected_call


def test_a_call_keeps_its_raw_arguments_and_says_when_they_do_not_parse():
    good = ToolCall.parse("f", '{"a": 1, "b": "日本"}', "c1")
    assert good.valid and good.arguments == {"a": 1, "b": "日本"} and good.raw_arguments == '{"a": 1, "b": "日本"}'
    broken = ToolCall.parse("f", '{"a": 1')
    assert not broken.valid and broken.arguments is None and "not valid JSON" in broken.error
    listed = ToolCall.parse("f", "[1, 2]")
    assert not listed.valid and "not an object" in listed.error
    assert ToolCall.parse("f", "").arguments == {} and ToolCall.parse("f", {"x": [1]}).arguments == {"x": [1]}
    assert calls_from_json(calls_to_json((good, broken))) == (good, broken)
    assert calls_to_json(()) is None and calls_from_json(None) == ()
    assert good.pretty() == 'f(a=1, b="日本")'


def test_expected_calls_in_both_forms():
    bfcl = expected_call({"get_weather": {"city": ["Paris", "paris"], "unit": ["", "C"]}})
    assert bfcl.name == "get_weather" and bfcl.accepted == {"city": ("Paris", "paris"), "unit": ("C",)}
    assert bfcl.optional == {"unit"} and bfcl.to_bfcl() == {"get_weather": {"city": ["Paris", "paris"],
                                                                              "unit": ["C", ""]}}
    plain = expected_call({"name": "refund", "arguments": {"order_id": 5}})
    assert plain.accepted == {"order_id": (5,)} and not plain.optional
    for bad in ({"a": 1, "b": 2}, {"name": "f", "args": {}}, {"f": {"x": 5}}, [1]):
        with pytest.raises(ValueError):
            expected_call(bad)


def test_names_an_api_refuses_are_mapped_reversibly():
    names = ToolNames(["math.factorial", "math_factorial", "ok_name", "x" * 70])
    assert names.to_api["ok_name"] == "ok_name" and names.changed
    mapped = set(names.to_api.values())
    assert len(mapped) == 4 and all(len(m) <= 64 and m.replace("_", "").replace("-", "").isalnum() for m in mapped)
    for original, api in names.to_api.items():
        assert names.original(api) == original
