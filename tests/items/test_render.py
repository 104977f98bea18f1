"""What a model is sent for each item shape: conversations, context, tools, with and without a prompt."""
from __future__ import annotations

import pytest

from workbench.errors import InputError
from workbench.items.render import CONTEXT_SYSTEM, render_item
from workbench.task.prompts import prompt_from_data

TOOL = {"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]}}}
REFUND = {"name": "refund", "parameters": {"type": "object", "properties": {}}}
CHAT = prompt_from_data({"description": "d", "mode": "chat", "system": "Be kind.", "user": "Customer: {input}",
                         "tools": [TOOL], "tool_choice": "auto",
                         "examples": [{"input": "hi", "output": "hello"}]}, "p", "v1")
CONVERSATION = [{"role": "system", "content": "Shop rules."}, {"role": "user", "content": "Order 5?"},
                {"role": "assistant", "content": None, "tool_calls": [{"name": "get_order", "arguments": {"order_id": 5}}]},
                {"role": "tool", "content": "shipped"}]


def test_without_a_prompt_a_conversation_goes_as_it_is_and_a_plain_item_as_one_turn():
    assert render_item({"item_id": "a", "input": "x", "messages": CONVERSATION}, None).messages == tuple(CONVERSATION)
    assert render_item({"item_id": "a", "input": "x"}, None).messages == ({"role": "user", "content": "x"},)


def test_a_chat_version_wraps_the_conversation_and_templates_its_last_user_turn():
    rendered = render_item({"item_id": "a", "input": "Order 5?", "messages": CONVERSATION}, CHAT)
    roles = [m["role"] for m in rendered.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "tool"]
    assert rendered.messages[0]["content"] == "Be kind.\n\nShop rules."  # one system turn, the version's first
    assert rendered.messages[1:3] == ({"role": "user", "content": "Customer: hi"}, {"role": "assistant", "content": "hello"})
    assert rendered.messages[3]["content"] == "Customer: Order 5?"
    assert rendered.messages[4]["tool_calls"] == CONVERSATION[2]["tool_calls"]
    assert rendered.tools == (TOOL,) and rendered.tool_choice == "auto"


def test_item_tools_join_the_versions_and_an_items_choice_and_format_win():
    own = {"type": "function", "function": {"name": "get_order", "parameters": {"type": "object", "properties": {}}}}
    rendered = render_item({"item_id": "a", "input": "x", "tools": [REFUND, own], "tool_choice": "none",
                            "response_format": {"type": "object"}}, CHAT)
    assert rendered.tools == (REFUND, own) and rendered.tool_choice == "none"
    request = rendered.to_request("a", __import__("workbench.models", fromlist=["Sampling"]).Sampling())
    assert request.payload()["tools"] == [REFUND, own] and request.payload()["response_format"] == {"type": "object"}


def test_a_text_request_keeps_the_cache_payload_it_had_before_tools_existed():
    from workbench.models import Sampling

    payload = render_item({"item_id": "a", "input": "x"}, None).to_request("a", Sampling()).payload()
    assert set(payload) == {"messages", "prompt", "sampling", "sample_index"}


def test_context_goes_where_the_prompt_names_it_or_into_the_system_turn():
    item = {"item_id": "a", "input": "When?", "context": ["Ships in 2 days.", "Returns in 14."]}
    plain = render_item(item, None)
    assert plain.messages[0] == {"role": "system", "content": CONTEXT_SYSTEM.format(
        context="[1] Ships in 2 days.\n\n[2] Returns in 14.")}
    named = prompt_from_data({"description": "d", "mode": "chat", "user": "{context}\nQ: {input}"}, "rag", "v1")
    assert render_item(item, named).messages == ({"role": "user", "content": "[1] Ships in 2 days.\n\n[2] Returns in "
                                                                              "14.\nQ: When?"},)


def test_what_cannot_be_sent_is_an_input_error_naming_the_item():
    completion = prompt_from_data({"description": "d", "mode": "completion", "template": "Q: {input}\nA:"}, "c", "v1")
    with pytest.raises(InputError, match="item 'a', prompt c@v1: a completion prompt cannot carry messages"):
        render_item({"item_id": "a", "input": "x", "messages": CONVERSATION}, completion)
    with pytest.raises(InputError, match="names 'refund', which is not a declared tool"):
        render_item({"item_id": "b", "input": "x", "expected_calls": [{"refund": {}}]}, CHAT)
    with pytest.raises(InputError, match="tool_choice names 'cancel'"):
        render_item({"item_id": "c", "input": "x", "tool_choice": {"type": "function", "function": {"name": "cancel"}}},
                    CHAT)


def test_a_version_with_bad_tools_is_refused_like_an_item():
    with pytest.raises(InputError, match="tools\\[0\\].name"):
        prompt_from_data({"description": "d", "mode": "chat", "user": "{input}", "tools": [{"parameters": {}}]}, "p", "v9")
    with pytest.raises(InputError, match="only applies to mode 'chat'"):
        prompt_from_data({"description": "d", "mode": "completion", "template": "{input}", "tools": [TOOL]}, "p", "v9")


def test_a_version_with_tools_round_trips_through_its_toml():
    import tomllib

    from workbench.task.prompts import prompt_toml

    assert prompt_from_data(tomllib.loads(prompt_toml(CHAT.data)), "p", "v1").tools == CHAT.tools


def test_a_demonstration_can_call_tools_and_the_conversation_stays_well_formed():
    version = prompt_from_data({"description": "d", "mode": "chat", "user": "{input}", "tools": [TOOL],
                                "examples": [{"input": "Order 7?", "output": "",
                                              "tool_calls": [{"name": "get_order", "arguments": {"order_id": 7}}]}]},
                               "p", "v2")
    turns = render_item({"item_id": "a", "input": "Order 9?"}, version).messages
    assert [t["role"] for t in turns] == ["user", "assistant", "tool", "user"]
    assert turns[1] == {"role": "assistant", "content": None,
                        "tool_calls": [{"name": "get_order", "arguments": {"order_id": 7}}]}
    from workbench.models.api_adapter import api_messages

    sent = api_messages(turns, None)
    assert sent[2]["tool_call_id"] == sent[1]["tool_calls"][0]["id"]  # the result answers the demo's call
    with pytest.raises(InputError, match="tool_calls must be a list"):
        prompt_from_data({"description": "d", "mode": "chat", "user": "{input}",
                          "examples": [{"input": "x", "output": "", "tool_calls": [{"arguments": {}}]}]}, "p", "v3")
    with pytest.raises(InputError, match="need a chat prompt"):
        prompt_from_data({"description": "d", "mode": "completion", "template": "{input}",
                          "examples": [{"input": "x", "output": "", "tool_calls": [{"name": "f"}]}]}, "p", "v4")


def test_a_plain_item_without_a_prompt_is_one_user_turn_whatever_its_missing_fields():
    from workbench.task.prompts import Rendered

    plain = Rendered(({"role": "user", "content": "7"},), None, (), None, tools=(), tool_choice=None,
                     response_format=None)
    for item in ({"item_id": "a", "input": 7},
                 {"item_id": "a", "input": "7", "messages": float("nan"), "tools": None, "context": None,
                  "tool_choice": float("nan"), "response_format": None, "expected_calls": float("nan")},
                 {"item_id": "a", "input": "7", "tools": [], "messages": []}):  # empty: the rules' own way
        assert render_item(item, None) == plain
    import pandas as pd

    row = pd.DataFrame([{"item_id": "a", "input": "Order 5?", "tools": [TOOL]}]).iloc[0]  # a frame's row
    assert render_item(row, None).tools == (TOOL,)
