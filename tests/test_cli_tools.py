"""A tool-calling app through the CLI, as a user runs it: items with tools and expected calls, two models
behind a real OpenAI-compatible server on 127.0.0.1 answering with `tool_calls`, the calls stored and a
warm re-run free; a bad tool file exits 3 and writes nothing."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.fault_server import FaultServer

KEY = "sk-test-tools-0123456789abcdef"
TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Look up an order",
                                           "parameters": {"type": "object", "properties": {
                                               "order_id": {"type": "integer"}}, "required": ["order_id"]}}},
         {"type": "function", "function": {"name": "store_hours", "parameters": {"type": "object", "properties": {}}}}]
ROWS = [
    {"item_id": "order", "input": "Where is order 12?", "tools": TOOLS,
     "expected_calls": [{"name": "get_order", "arguments": {"order_id": 12}}]},
    {"item_id": "hours", "input": "When are you open?", "tools": TOOLS, "expected_calls": [{"store_hours": {}}]},
    {"item_id": "chat", "input": "Thanks!", "tools": TOOLS, "expected_calls": []},
]


def write_items(tmp_path: Path, rows=ROWS) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def script(server: FaultServer) -> None:
    """The baseline calls right; the candidate sends "12" for 12 and answers hours in text."""
    server.answer_with_calls("Where is order 12?", [{"name": "get_order", "arguments": {"order_id": 12}}], model="base")
    server.answer_with_calls("Where is order 12?", [{"name": "get_order", "arguments": {"order_id": "12"}}], model="cand")
    server.answer_with_calls("When are you open?", [{"name": "store_hours", "arguments": {}}], model="base")
    server.answer_with_text("When are you open?", "We open at 9.", model="cand")
    server.answer_with_text("Thanks!", "You're welcome.")


def test_generate_stores_each_models_calls_and_a_warm_rerun_is_free(tmp_path, monkeypatch, capsys):
    from workbench import cli

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    data, store = write_items(tmp_path), tmp_path / "s.db"
    with FaultServer() as server:
        script(server)
        args = ["generate", str(data), "--model", "openai/base", "--model", "openai/cand", "--api-base", server.url,
                "--store", str(store), "--no-progress"]
        assert cli.main(args) == 0
        assert server.total_hits() == 6
        assert all(body["tools"][0]["function"]["name"] == "get_order" for body in server.bodies)
        assert cli.main(args) == 0 and server.total_hits() == 6  # warm: tools are in the key, answers cached
    conn = sqlite3.connect(store)
    stored = {(model, json.loads(request)["request"]["messages"][-1]["content"]): calls for model, request, calls in
              conn.execute("SELECT model, request_json, tool_calls_json FROM responses")}
    assert json.loads(stored[("openai/base", "Where is order 12?")])[0]["arguments"] == {"order_id": 12}
    assert json.loads(stored[("openai/cand", "Where is order 12?")])[0]["arguments"] == {"order_id": "12"}
    assert stored[("openai/cand", "When are you open?")] is None and stored[("openai/base", "Thanks!")] is None


@pytest.mark.parametrize("bad, field", [
    ({"tools": [{"type": "function", "function": {"parameters": {}}}]}, "tools[0].name"),
    ({"expected_calls": [{"name": "cancel_order", "arguments": {}}]}, "expected_calls[0]"),
    ({"messages": [{"role": "bot", "content": "hi"}]}, "messages[0].role"),
    ({"response_format": {"type": "objekt"}}, "response_format"),
])
def test_a_bad_app_field_exits_3_naming_file_row_and_field_and_writes_nothing(tmp_path, capsys, bad, field):
    from workbench import cli

    data = write_items(tmp_path, [ROWS[0], {**ROWS[1], **bad}])
    code = cli.main(["generate", str(data), "--model", "openai/base", "--api-base", "http://127.0.0.1:9/v1",
                     "--store", str(tmp_path / "s.db"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3 and f"row 2, field '{field}'" in err and str(data) in err
    assert not (tmp_path / "s.db").exists()
