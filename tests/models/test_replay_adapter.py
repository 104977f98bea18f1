import json

import pandas as pd
import pytest

from workbench.generation.calls import CallPolicy
from workbench.errors import InputError
from workbench.generation.runner import ModelSpec, generate


def _items():
    frame = pd.DataFrame({"item_id": ["a", "b", "c"], "input": ["same question"] * 3})
    frame.attrs["source"] = "memory"
    return frame


def test_replay_serves_recorded_answers_per_item_even_for_identical_inputs(tmp_path, store):
    log = tmp_path / "prod.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"item_id": "a", "response": "answer A", "model_version": "old-2024", "latency_s": 0.8, "cost_usd": 0.001},
        {"item_id": "b", "response": "answer B"},
    ]) + "\n", encoding="utf-8")
    frame, stats = generate(_items(), [ModelSpec(name=f"replay/{log}")], store,
                            policy=CallPolicy(max_attempts=1), progress=False)
    by_item = frame.set_index("item_id")
    assert by_item.loc["a", "response"] == "answer A" and by_item.loc["b", "response"] == "answer B"
    assert by_item.loc["a", "model_version"] == "old-2024" and by_item.loc["a", "cost_usd"] == 0.001
    assert pd.isna(by_item.loc["c", "response"]) and "no recorded response for item 'c'" in by_item.loc["c", "error"]
    assert stats.errors == 1


def test_replay_csv_and_bad_rows_are_reported_with_row_and_field(tmp_path):
    from workbench.models import get_model

    good = tmp_path / "log.csv"
    good.write_text("item_id,response,latency_s\na,hello,0.5\n", encoding="utf-8")
    assert get_model(f"replay/{good}").records[("a", 0)].latency_s == 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"item_id": "a", "response": "x"}\n{"response": "y"}\n{"item_id": "a", "response": "z"}\nnot json\n',
                   encoding="utf-8")
    with pytest.raises(InputError) as err:
        get_model(f"replay/{bad}")
    message = str(err.value)
    assert "bad.jsonl, row 2, field 'item_id': missing" in message
    assert "row 3, field 'item_id': duplicate of row 1" in message and "row 4" in message
    with pytest.raises(InputError, match="not found"):
        get_model(f"replay/{tmp_path / 'missing.jsonl'}")


def test_a_relative_recording_resolves_against_the_project_with_the_same_identity(tmp_path, monkeypatch):
    from workbench.models import get_model, make_adapter

    project, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    (project / "logs").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "logs" / "prod.jsonl").write_text('{"item_id": "a", "response": "answer A"}\n', encoding="utf-8")
    monkeypatch.chdir(project)
    from_project = get_model("replay/logs/prod.jsonl")  # before: relative to the current folder
    monkeypatch.chdir(elsewhere)
    with pytest.raises(InputError, match="not found"):
        get_model("replay/logs/prod.jsonl")  # without a project, the current folder still decides
    adapter = make_adapter("replay/logs/prod.jsonl", {}, base_dir=project)
    assert adapter.path == project / "logs" / "prod.jsonl" and adapter.name == "replay/logs/prod.jsonl"
    assert adapter.identity() == from_project.identity()
    absolute = make_adapter(f"replay/{project / 'logs' / 'prod.jsonl'}", {}, base_dir=elsewhere)
    assert absolute.path == project / "logs" / "prod.jsonl"  # an absolute path stays as it is


def test_replay_serves_recorded_tool_calls_into_the_store(tmp_path, store):
    log = tmp_path / "prod.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in [
        {"item_id": "a", "tool_calls": [{"name": "get_order", "arguments": {"order_id": 5}}]},
        {"item_id": "b", "response": "Opening hours are 9-5.",
         "tool_calls": json.dumps([{"function": {"name": "hours", "arguments": "{\"day\": \"mon\""}}])},
        {"item_id": "c", "response": "plain"},
    ]) + "\n", encoding="utf-8")
    frame, _ = generate(_items(), [ModelSpec(name=f"replay/{log}")], store, progress=False)
    calls = frame.set_index("item_id")["tool_calls"]
    assert calls["a"][0].name == "get_order" and calls["a"][0].arguments == {"order_id": 5}
    assert calls["b"][0].name == "hours" and not calls["b"][0].valid  # recorded as unparseable, never as text
    assert calls["c"] == ()


def test_replay_bad_tool_calls_are_named_by_row(tmp_path):
    from workbench.models import get_model

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"item_id": "a", "tool_calls": [{"arguments": {}}]}\n{"item_id": "b", "tool_calls": "{x"}\n',
                   encoding="utf-8")
    with pytest.raises(InputError) as info:
        get_model(f"replay/{bad}")
    assert [(p.row, p.field) for p in info.value.problems] == [(1, "tool_calls"), (2, "tool_calls")]
