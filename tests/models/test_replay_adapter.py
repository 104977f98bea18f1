import json

import pandas as pd
import pytest

from workbench.calls import CallPolicy
from workbench.errors import InputError
from workbench.runner import ModelSpec, generate


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
