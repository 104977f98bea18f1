"""`openai/` and `litellm/` send tools, tool_choice, response_format and conversations with calls in
OpenAI's form, and return the calls the server made (names an API refuses mapped back), over real HTTP."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fault_server import fault_server  # noqa: E402,F401

from workbench.generation.calls import run_sync  # noqa: E402
from workbench.models import get_model  # noqa: E402
from workbench.models.base import Request, Response  # noqa: E402

TOOLS = ({"name": "math.factorial", "description": "n!", "parameters": {
    "type": "dict", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
         {"type": "function", "function": {"name": "get_order", "parameters": {"type": "object", "properties": {}}}})
HISTORY = ({"role": "user", "content": "earlier"},
           {"role": "assistant", "content": None, "tool_calls": [{"name": "math.factorial", "arguments": {"n": 3}}]},
           {"role": "tool", "content": "6"})


@pytest.mark.parametrize("model", ["openai/fault-model", "litellm/openai/fault-model"])
def test_tools_go_out_and_calls_come_back(fault_server, api_key, model):
    fault_server.answer_with_calls("what is 5!", [{"name": "math_factorial", "arguments": {"n": 5}},
                                                  {"name": "get_order", "arguments": "{broken"}])
    adapter = get_model(model, api_base=fault_server.url)
    request = Request(item_id="i", messages=HISTORY + ({"role": "user", "content": "what is 5!"},), tools=TOOLS,
                      tool_choice={"type": "function", "function": {"name": "math.factorial"}},
                      response_format={"type": "object", "properties": {"n": {"type": "integer"}}})
    response = run_sync(adapter.generate([request], 10.0))[0]
    assert isinstance(response, Response), response
    body = fault_server.bodies[-1]
    sent = [t["function"] for t in body["tools"]]
    assert [f["name"] for f in sent] == ["math_factorial", "get_order"]
    assert sent[0]["parameters"]["type"] == "object"  # BFCL's "dict" as JSON Schema
    assert body["tool_choice"] == {"type": "function", "function": {"name": "math_factorial"}}
    assert body["response_format"]["type"] == "json_schema"
    assistant = body["messages"][1]
    assert assistant["tool_calls"][0]["function"] == {"name": "math_factorial", "arguments": '{"n": 3}'}
    assert body["messages"][2]["tool_call_id"] == assistant["tool_calls"][0]["id"]
    first, second = response.tool_calls
    assert first.name == "math.factorial" and first.arguments == {"n": 5} and first.id == "call_0"
    assert second.name == "get_order" and not second.valid and second.raw_arguments == "{broken"
    assert response.finish_reason == "tool_calls"


def test_a_text_request_sends_nothing_new(fault_server):
    adapter = get_model("openai/fault-model", api_base=fault_server.url)
    run_sync(adapter.generate([Request(item_id="i", messages=({"role": "user", "content": "hi"},))], 10.0))
    assert not {"tools", "tool_choice", "response_format"} & set(fault_server.bodies[-1])
