"""The optimizer end to end against a real HTTP server with a rule-driven target and optimizer model."""
from __future__ import annotations

import json
import time
import tomllib

import pandas as pd
import pytest

from tests.optimize.helpers import params, rule_items, write_items
from tests.optimize.rule_server import PERIOD, UPPER
from workbench.optimize import OptimizeConfig, optimize
from workbench.task.prompts import load_prompt
from workbench.store import Store


def run(project, url, **extra):
    return optimize(OptimizeConfig(**params(project, url, **extra)))


def test_the_loop_finds_the_instruction_the_target_needs(project, rule_server):
    shown = []
    result = optimize(OptimizeConfig(**params(project, rule_server.url)), on_trial=shown.append)
    best = result.best_prompt
    assert UPPER in best.system and PERIOD in best.system  # two rewrites, each read off the worst example
    assert result.status == "confirmed" and result.dev["best_score"] == 100.0 and result.dev["start_score"] == 0.0
    assert result.test["delta_low"] > 0 and result.test["n"] == 8
    trials = result.trials
    assert trials["move"].tolist()[0] == "start" and (trials["move"] == "instruction").sum() >= 2
    assert trials[trials["split"] == "test"]["move"].tolist() == ["start", "confirm"]
    assert [r["trial"] for r in shown] == trials["trial"].tolist()  # the live table saw every trial as it came
    # the trial table is in the store, with each trial's prompt
    with Store(project / "store.db") as store:
        stored = store.trials_frame(result.run_id)
        assert stored["prompt_version"].tolist() == trials["prompt_version"].tolist()
        assert stored["score"].round(6).tolist() == trials["score"].round(6).tolist()
        assert tomllib.loads(stored["prompt_toml"].iloc[-1])["system"] == best.system
        assert store.optimize_run(result.run_id)["status"] == "done"
    # the result is a new prompt version in the project's prompts/, with its history
    saved = load_prompt(result.saved, project / "prompts")
    assert saved.system == best.system and saved.parent == "plain@v1"
    assert saved.author == f"optimizer:{result.run_id}" and saved.note.startswith("confirmed:") and saved.created
    assert result.report_command.endswith(f"""'["plain@v1", "{result.saved}"]'""")


def test_demonstrations_first_then_rewrites(project, rule_server):
    result = run(project, rule_server.url, moves=["fewshot", "instructions"], fewshot_candidates=3)
    trials = result.trials
    fewshot = trials[trials["move"] == "fewshot"]
    assert len(fewshot) >= 2 and (fewshot["n_items"] < 8).all()  # demonstration items are not scored
    assert (fewshot["delta"] > 0).all()  # demonstrations ending in a period teach the target the period
    assert result.status == "confirmed" and result.dev["best_score"] == 100.0
    assert len(result.best_prompt.examples) > 0 and UPPER in result.best_prompt.system


@pytest.mark.parametrize("max_calls", [24, 31, 36, 47, 60])
def test_the_calls_budget_is_never_exceeded(project, rule_server, max_calls):
    result = run(project, rule_server.url, max_calls=max_calls, moves=["fewshot", "instructions"])
    assert rule_server.total_hits() <= max_calls
    assert result.budget["calls"] == rule_server.total_hits()  # every distinct call counted, none twice
    assert result.status in ("confirmed", "no_gain")  # the test confirmation always had its calls
    if max_calls < 60:
        assert result.stopped.startswith("budget:")


def test_the_cost_budget_is_never_exceeded(project, rule_server):
    prices = {"openai/rule-target": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002},
              "openai/rule-optimizer": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}}
    result = run(project, rule_server.url, model_options=prices, max_cost_usd=0.2)
    assert result.budget["cost_usd"] is not None and 0 < result.budget["cost_usd"] <= 0.2
    assert result.stopped.startswith("budget:") and "cost" in result.stopped


def test_the_wall_time_budget_stops_calls_in_flight(project, rule_server):
    rule_server.latency_s = 0.1  # a whole run needs well over 5 s of calls, one at a time
    started = time.perf_counter()
    result = run(project, rule_server.url, max_wall_s=2.5, concurrency=1)
    # stopped by the clock: one call at a time of at least 0.1 s each, so at most 25 answered in 2.5 s and
    # one in flight (a count a loaded machine cannot break); seconds only with a 10x margin
    assert rule_server.total_hits() <= 2.5 / 0.1 + 1
    assert time.perf_counter() - started < 10 * 2.5
    assert "wall-time" in result.stopped and result.saved is None
    # wherever the clock stopped it, no dev gain is reported as a result without its test confirmation
    assert result.status in ("stopped", "no_gain", "unconfirmed")
    if result.status == "unconfirmed":
        assert "not a result" in result.message


def test_a_budget_too_small_for_the_start_stops_without_a_result(project, rule_server):
    rule_server.latency_s = 0.2
    result = run(project, rule_server.url, max_wall_s=0.3, concurrency=1)
    assert result.status == "stopped" and result.trials.empty and result.saved is None
    assert "re-run with a larger budget to resume" in result.message


def test_a_dev_gain_the_test_split_does_not_confirm_is_overfitting(project, rule_server):
    # dev items want UPPERCASE, held-out test items want lowercase: the rewrite only fits dev
    rows = rule_items(lambda w, i: (w.upper() if i < 10 else w) + ".")
    for i, row in enumerate(rows):
        row["split"] = "dev" if i < 10 else "test"
    write_items(project / "items.jsonl", rows)
    result = run(project, rule_server.url, split_column="split")
    assert result.dev["delta_low"] > 0  # a real gain on dev...
    assert result.test["delta"] < 0 and result.status == "overfitting"  # ...that test does not confirm
    assert "overfitting" in result.message and "not a win" in result.message
    assert result.saved is None and result.report_command is None  # not a usable prompt version by default
    assert "save_unconfirmed" in result.message
    kept = run(project, rule_server.url, split_column="split", save_unconfirmed=True)
    assert kept.status == "overfitting" and kept.saved.endswith("-unconfirmed") and kept.report_command is None
    assert load_prompt(kept.saved, project / "prompts").note.startswith("overfitting:")


def test_demonstration_trials_are_compared_with_the_start_on_the_same_items(project, rule_server):
    result = run(project, rule_server.url, moves=["fewshot"], fewshot_candidates=3)
    trials = result.trials
    best = trials[trials["prompt_version"] == result.best].iloc[0]
    start = trials[(trials["move"] == "start") & (trials["split"] == "dev")].iloc[0]
    assert best["move"] == "fewshot" and best["n_items"] < start["n_items"]  # its demonstrations are not scored
    assert result.dev["n"] == best["n_items"] and "start re-scored on the same items" in result.dev["items"]
    assert result.dev["start_score_all_dev"] == pytest.approx(start["score"])
    # the summary's start and best are on the same items, so their difference is the paired delta
    assert result.dev["best_score"] - result.dev["start_score"] == pytest.approx(result.dev["delta"])


def test_source_model_mode_needs_no_references(project, rule_server):
    write_items(project / "items.jsonl", [{k: v for k, v in r.items() if k != "reference"} for r in rule_items()])
    shouty = 'description = "the old prompt"\nmode = "chat"\nsystem = "Use uppercase and end with a period."\n' \
             'user = "{input}"\n'
    (project / "prompts" / "old").mkdir()
    (project / "prompts" / "old" / "v1.toml").write_text(shouty, encoding="utf-8")
    result = run(project, rule_server.url, objective="source", baseline="openai/rule-target", baseline_prompt="old@v1")
    assert result.objective.startswith("chrf vs openai/rule-target against the baseline model's outputs")
    assert result.status == "confirmed" and result.dev["best_score"] == 100.0


def test_a_rerun_repeats_no_call_and_gives_the_same_result(project, rule_server):
    first = run(project, rule_server.url, moves=["fewshot", "instructions"])
    hits = rule_server.total_hits()
    again = run(project, rule_server.url, moves=["fewshot", "instructions"])
    assert rule_server.total_hits() == hits
    assert (again.trials["calls_made"] == 0).all() and again.trials["calls"].sum() == first.trials["calls"].sum()
    pd.testing.assert_frame_equal(again.trials.drop(columns=["calls_made", "wall_s"]),
                                  first.trials.drop(columns=["calls_made", "wall_s"]))
    assert (again.saved, again.status) == (first.saved, first.status)


def test_result_json_and_trial_rows_are_plain_json(project, rule_server):
    result = run(project, rule_server.url)
    text = json.dumps(result.to_dict())
    assert '"status": "confirmed"' in text and "NaN" not in text


def test_judge_objective_scores_with_the_judge_and_counts_its_calls(project, rule_server):
    result = run(project, rule_server.url, objective="judge", judge="openai/rule-judge", judge_criterion="correctness",
                 moves=["fewshot", "instructions"])
    assert result.objective == "pointwise judge score (judge:correctness)"
    assert result.dev["start_score"] == 1.0 and result.dev["best_score"] > 1.0  # the judge's 1-5 scale
    assert result.status == "confirmed" and PERIOD in result.best_prompt.system
    assert not (result.trials["move"] == "fewshot").any()  # no start answer the judge liked: no demonstrations
    assert rule_server.total_hits() <= result.budget["calls"] <= 200  # judge calls are in the budget


def test_a_prompt_without_a_system_message_gets_one(project, rule_server):
    (project / "prompts" / "bare").mkdir()
    (project / "prompts" / "bare" / "v1.toml").write_text('description = "bare"\nmode = "chat"\nuser = "{input}"\n')
    result = run(project, rule_server.url, start_prompt="bare@v1")
    assert result.trials["move"].tolist()[:2] == ["start", "instruction"]  # GEPA's seed is the start itself
    assert result.best_prompt.system == f"{UPPER} {PERIOD}" and result.status == "confirmed"


def test_a_team_store_on_postgresql_keeps_the_trials_and_the_cache(project, rule_server, pg_url):
    from workbench.store import open_store

    first = run(project, rule_server.url, store=pg_url)
    hits = rule_server.total_hits()
    again = run(project, rule_server.url, store=pg_url)
    assert rule_server.total_hits() == hits and again.status == first.status == "confirmed"
    with open_store(pg_url, create=False) as store:
        assert store.trials_frame(first.run_id)["prompt_version"].tolist() == first.trials["prompt_version"].tolist()
        assert store.optimize_run(first.run_id)["status"] == "done"
    assert list((project / ".workbench" / "optimize" / first.run_id / "prompts").glob("plain/*.toml"))


def test_bad_model_options_stop_before_anything_is_written(project, rule_server):
    from workbench.errors import InputError

    options = {"openai/rule-target": {"api_key": "sk-inline-0123456789abcdef"}, "openai/nowhere": {}}
    with pytest.raises(InputError) as caught:
        run(project, rule_server.url, model_options=options)
    text = str(caught.value)
    assert 'model_options."openai/rule-target".api_key' in text and 'model_options."openai/nowhere"' in text
    assert "0123456789abcdef" not in text
    assert not (project / "store.db").exists() and rule_server.total_hits() == 0


def test_the_tools_objective_learns_from_demonstrations_that_call_tools(project, rule_server):
    """A target offered tools calls only when a demonstration shows it how: the fewshot move, with
    demonstrations taken from the items' expected calls, lifts tool_call_accuracy from 0 to 1."""
    tool = {"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]}}}
    (project / "prompts" / "tools").mkdir()
    (project / "prompts" / "tools" / "v1.toml").write_text(
        'description = "with tools"\nmode = "chat"\nuser = "{input}"\n\n'
        '[[tools]]\ntype = "function"\n\n[tools.function]\nname = "get_order"\n\n'
        '[tools.function.parameters]\ntype = "object"\nrequired = ["order_id"]\n\n'
        '[tools.function.parameters.properties.order_id]\ntype = "integer"\n', encoding="utf-8")
    rows = [{"item_id": f"o{i:02d}", "input": f"Where is order {1000 + i}?", "group": "ab"[i % 2],
             "expected_calls": [{"get_order": {"order_id": [1000 + i]}}]} for i in range(20)]
    write_items(project / "items.jsonl", rows)
    result = run(project, rule_server.url, target="openai/rule-tool-target", start_prompt="tools@v1",
                 objective="tools", metric="tool_call_accuracy", moves=["fewshot"], optimizer_model=None)
    assert result.objective == "tool_call_accuracy against the items' expected calls"
    assert result.dev["start_score"] == 0.0 and result.dev["best_score"] == 1.0
    assert result.status == "confirmed" and result.test["delta_low"] > 0
    demos = [e for e in result.best_prompt.examples if e.tool_calls]
    assert demos and demos[0].tool_calls[0]["name"] == "get_order" and demos[0].output == ""
    assert [t["function"]["name"] for t in result.best_prompt.tools] == ["get_order"]  # the tool set is kept
    sent = [b for b in rule_server.bodies if b.get("model") == "rule-tool-target" and any(
        m.get("role") == "tool" for m in b["messages"])]
    assert sent and all(m.get("tool_call_id") for b in sent for m in b["messages"] if m["role"] == "tool")


def test_the_tools_objective_needs_a_tool_metric_and_expected_calls(project, rule_server):
    from workbench.errors import InputError

    with pytest.raises(InputError, match="objective 'tools' needs a metric scored against expected calls"):
        run(project, rule_server.url, objective="tools", metric="chrf")
    with pytest.raises(InputError, match="objective 'tools' needs items with expected_calls"):
        run(project, rule_server.url, objective="tools", metric="tool_call_accuracy")
