"""Items of real applications load from every format and bad shapes are named by file, row and field."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.task.dataset import load_items
from workbench.errors import InputError

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Look up an order",
                                           "parameters": {"type": "object", "properties": {
                                               "order_id": {"type": "integer"}}, "required": ["order_id"]}}},
         {"name": "math.factorial", "parameters": {"type": "dict", "properties": {"n": {"type": "integer"}}}}]
CONVERSATION = [{"role": "system", "content": "You are a support bot."},
                {"role": "user", "content": "Where is order 5?"},
                {"role": "assistant", "content": None, "tool_calls": [{"name": "get_order", "arguments": {"order_id": 5}}]},
                {"role": "tool", "content": "{\"status\": \"shipped\"}"},
                {"role": "user", "content": "And when does it arrive?"}]
ROW = {"item_id": "a", "messages": CONVERSATION, "tools": TOOLS, "tool_choice": "auto",
       "response_format": {"type": "object", "properties": {"answer": {"type": "string"}}},
       "context": ["Orders ship in 2 days.", "Returns take 14 days."],
       "expected_calls": [{"get_order": {"order_id": [5], "verbose": ["", False]}}]}


def _write(tmp_path, rows, kind):
    path = tmp_path / f"items.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif kind == "csv":
        pd.DataFrame([{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in r.items()} for r in rows]
                     ).to_csv(path, index=False)
    else:
        pd.DataFrame([{k: (v if isinstance(v, str) else json.dumps(v)) for k, v in r.items()} for r in rows]
                     ).to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_every_format_loads_the_same_app_fields(tmp_path, kind):
    frame = load_items(_write(tmp_path, [ROW], kind))
    row = frame.iloc[0]
    assert row["input"] == "And when does it arrive?"  # a conversation's input is its last user turn
    assert row["messages"] == CONVERSATION and row["tools"] == TOOLS and row["tool_choice"] == "auto"
    assert row["context"] == ROW["context"] and row["expected_calls"] == ROW["expected_calls"]
    assert row["response_format"]["properties"]["answer"] == {"type": "string"}


def test_a_datasets_folder_loads_them_too(tmp_path):
    import datasets

    folder = tmp_path / "ds"
    datasets.Dataset.from_list([{k: json.dumps(v) if not isinstance(v, str) else v for k, v in ROW.items()}]
                               ).save_to_disk(str(folder))
    assert load_items(folder).iloc[0]["expected_calls"] == ROW["expected_calls"]


@pytest.mark.parametrize("change, field, words", [
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].name", "needs a name"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "unknown role 'robot'"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]},
     "messages[1].role", "last turn"),
    ({"response_format": {"type": "object", "properties": {"a": {"type": "strng"}}}}, "response_format",
     "not a valid JSON Schema"),
    ({"expected_calls": [{"name": "refund", "arguments": {}}]}, "expected_calls[0]", "not a declared tool"),
    ({"tool_choice": "always"}, "tool_choice", "must be one of"),
    ({"tools": "[{bad json"}, "tools", "not valid JSON"),
    ({"context": {"passage": 1}}, "context", "string or a list of strings"),
    ({"tools": [{"name": "f", "parameters": {"type": "object", "properties": 5}}]}, "tools[0].parameters",
     "not a valid JSON Schema"),
])
def test_a_bad_shape_names_file_row_and_field(tmp_path, change, field, words):
    path = _write(tmp_path, [{"item_id": "ok", "input": "fine"}, {**ROW, "item_id": "bad", **change}], "jsonl")
    with pytest.raises(InputError) as info:
        load_items(path)
    problem = next(p for p in info.value.problems if p.field == field)
    assert problem.row == 2 and problem.file == str(path) and words in problem.message


def test_irrelevance_and_relevance_expectations_are_accepted(tmp_path):
    rows = [{"item_id": "none", "input": "hi", "tools": TOOLS, "expected_calls": []},
            {"item_id": "some", "input": "fact 5", "tools": TOOLS, "expected_calls": "any"}]
    frame = load_items(_write(tmp_path, rows, "csv")).set_index("item_id")
    assert frame.loc["none", "expected_calls"] == [] and frame.loc["some", "expected_calls"] == "any"


def test_plain_items_are_unchanged(tmp_path):
    path = _write(tmp_path, [{"item_id": "a", "input": "x", "reference": "y"}], "jsonl")
    assert list(load_items(path).columns) == ["item_id", "input", "reference"]
