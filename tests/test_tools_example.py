"""`workbench init --example tools`, then the whole path through the CLI as a user runs it: the recorded
baseline log (its calls included) against a candidate on a real OpenAI-compatible server on 127.0.0.1
that answers with `tool_calls`; scored with BFCL's rules, compared with paired CIs, gated, reported."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fault_server import FaultServer

KEY = "sk-test-tools-example-0123456789"


def _candidate_answers(server: FaultServer, project: Path, wrong: set[str]) -> None:
    """The candidate calls as the recorded baseline did, except on `wrong` items where it sends the
    order number as a string (a type error BFCL's checker rejects)."""
    items = {json.loads(l)["item_id"]: json.loads(l) for l in (project / "data" / "support_tools.jsonl").open()}
    for line in (project / "data" / "support_tools_baseline.jsonl").open():
        row = json.loads(line)
        text = items[row["item_id"]]["input"]
        calls = [dict(c) for c in row.get("tool_calls", [])]
        if row["item_id"] in wrong:
            calls = [{**c, "arguments": {**c["arguments"], "order_id": str(c["arguments"].get("order_id"))}}
                     for c in calls]
        if calls:
            server.answer_with_calls(text, calls, model="cand")
        else:
            server.answer_with_text(text, row["response"], model="cand")


def test_init_tools_then_compare_and_report(tmp_path, monkeypatch, capsys):
    from workbench import cli

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init", "proj", "--example", "tools"]) == 0
    project = tmp_path / "proj"
    assert {p.name for p in (project / "data").iterdir()} == {"support_tools.jsonl", "support_tools_baseline.jsonl"}
    wrong = {"order-en-1", "order-en-2", "order-en-3", "order-en-4", "refund-en-1", "refund-en-2", "refund-en-3",
             "refund-en-4", "refund-ja-1", "refund-ja-2", "refund-ja-3", "order-ja-1", "order-ja-2", "conv-en-1"}
    with FaultServer() as server:
        _candidate_answers(server, project, wrong)
        args = ["--params", str(project / "params.toml"), "-p", "candidates", '["openai/cand"]',
                "-p", "api_base", server.url, "-q"]
        code = cli.main(["report", *args])
        out = capsys.readouterr()
        assert code == 1, out.err  # FAIL: 14 of the 28 items lose their right call
        hits = server.total_hits()
        assert hits == 28
        assert all(body["tools"][0]["function"]["name"] == "get_order_status" for body in server.bodies)
        assert cli.main(["compare", *args, "--json", str(tmp_path / "c.json")]) == 1
        assert server.total_hits() == hits  # compare reads the store: no call
    record = json.loads((tmp_path / "c.json").read_text())
    deltas = {d["metric"]: d for d in record["candidates"]["openai/cand"]["metric_deltas"]}
    accuracy = deltas["tool_call_accuracy"]
    assert accuracy["candidate_mean"] < accuracy["baseline_mean"] and accuracy["ci_high"] < 0
    assert accuracy.get("mcnemar_p") is not None and accuracy["mcnemar_p"] < 0.05
    rules = {r["name"]: r for r in record["candidates"]["openai/cand"]["rules"]}
    assert rules["metric:tool_call_accuracy"]["status"] == "FAIL"
    errors = {e["error"]: e for e in record["candidates"]["openai/cand"]["tool_errors"]}
    assert errors["wrong type"]["candidate"] == 15 and errors["wrong type"]["baseline"] == 1  # order-ja-4: both
    report = (project / "reports" / "tools" / "report.html").read_text(encoding="utf-8")
    assert "Tool-call errors by kind" in report and "Where the candidate&#x27;s calls went wrong" in report \
        or "Where the candidate's calls went wrong" in report
    assert KEY not in report
