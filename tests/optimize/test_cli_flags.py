"""Every `workbench optimize` flag through the real entry point (`workbench.cli.main`), without a
parameters file, each checked by its effect: the models the rule server was asked, the splits'
sizes, the budget, the store and the prompt file written."""
from __future__ import annotations

import json
from pathlib import Path

from tests.optimize.helpers import rule_items, write_items
from workbench.cli import main
from workbench.store import Store


def asked(server) -> dict[str, int]:
    """How many requests each model got."""
    counts: dict[str, int] = {}
    for body in server.bodies:
        counts[body["model"]] = counts.get(body["model"], 0) + 1
    return counts


def common(url: str) -> list[str]:
    return ["optimize", "--dataset", "items.jsonl", "--target", "openai/rule-target", "--start-prompt", "plain@v1",
            "--store", "opt.db", "--prompts-dir", "prompts", "--api-base", url, "-p", "bootstrap_resamples", "200", "-q"]


def test_reference_objective_with_rewrites_budget_and_output(project, rule_server, capsys, monkeypatch):
    monkeypatch.chdir(project)
    code = main([*common(rule_server.url), "--objective", "reference", "--metric", "chrf", "--moves", "instructions",
                 "--optimizer-model", "openai/rule-optimizer", "--dev-size", "8", "--test-size", "6",
                 "--max-calls", "150", "--max-cost", "5", "--max-wall-s", "600", "--output-prompt", "plain@tuned",
                 "--json", "out/result.json"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    full = json.loads((project / "out" / "result.json").read_text())  # --json, with the trials
    assert full["run_id"] == summary["run_id"] and full["trials"]
    assert set(asked(rule_server)) == {"rule-target", "rule-optimizer"}  # --target, --optimizer-model
    assert summary["budget"]["calls"] <= 150  # --max-calls
    assert "chrf" in full["objective"]  # --objective reference, --metric chrf
    assert summary["saved"] == "plain@tuned" and (project / "prompts" / "plain" / "tuned.toml").is_file()  # --output-prompt
    with Store(project / "opt.db") as store:  # --store
        assert store.optimize_run(summary["run_id"])["status"] == "done"
    assert summary["dev"]["n"] == 8 and summary["test"]["n"] == 6  # --dev-size, --test-size
    budget = summary["budget"]  # --max-calls, --max-cost, --max-wall-s are the run's limits
    assert (budget["max_calls"], budget["max_cost_usd"], budget["max_wall_s"]) == (150, 5.0, 600.0)



def test_judge_objective_with_demonstrations_and_a_split_column(project, rule_server, capsys, monkeypatch):
    rows = rule_items()
    for i, row in enumerate(rows):
        row["fold"] = "test" if i % 4 == 0 else "dev"  # 15 dev, 5 test
    write_items(project / "items.jsonl", rows)
    monkeypatch.chdir(project)
    code = main([*common(rule_server.url), "--objective", "judge", "--judge", "openai/rule-judge", "--moves", "fewshot",
                 "--split-column", "fold"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["dev"]["n"] == 15  # --split-column's dev rows (the default sizes, 32 + 32, exceed the 20 items)
    assert summary["test"] is None or summary["test"]["n"] == 5  # scored on test only after a dev gain
    assert set(asked(rule_server)) == {"rule-target", "rule-judge"}  # --judge; demonstrations need no optimizer


def test_source_objective_against_the_baseline_and_its_prompt(project, rule_server, capsys, monkeypatch):
    (project / "prompts" / "loud").mkdir()
    (project / "prompts" / "loud" / "v1.toml").write_text(
        'description = "loud"\nmode = "chat"\nsystem = "Answer in uppercase, end with a period."\nuser = "{input}"\n',
        encoding="utf-8")
    monkeypatch.chdir(project)
    code = main([*common(rule_server.url), "--objective", "source", "--baseline", "openai/rule-base",
                 "--baseline-prompt", "loud@v1", "--moves", "fewshot", "--dev-size", "8", "--test-size", "8"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(asked(rule_server)) == {"rule-target", "rule-base"}  # --baseline answers are the references
    systems = {b["messages"][0]["content"] for b in rule_server.bodies if b["model"] == "rule-base"}
    assert systems == {"Answer in uppercase, end with a period."}  # --baseline-prompt
    assert summary["dev"]["start_score"] < summary["dev"]["best_score"]  # plain answers differ from the loud baseline
