"""The pipeline scores a tool-calling app as one: items with expected calls get the tool metrics
without listing them, their rates reach the comparison with paired CIs and McNemar, and a gate rule
on `tool_call_accuracy` decides (fake models answering with calls, a real SQLite store)."""
import json
from pathlib import Path

import pytest

from workbench.task.config import MigrationConfig
from workbench.items.tool_calls import ToolCall
from workbench.models.base import Response
from workbench.models.fake_adapter import FakeAdapter
from workbench.pipeline import run_pipeline

N = 40
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    items = [{"item_id": f"i{k:02d}", "input": f"Where is order A{k}?", "tools": TOOLS,
              "expected_calls": [{"name": "lookup_order", "arguments": {"order_id": f"A{k}"}}]} for k in range(N)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")

    def answer(self, request):  # the baseline always calls right; the candidate answers in text on 1 item in 2
        k = int(request.item_id[1:])
        if self.model == "cand" and k % 2:
            return Response(text="Let me check that for you.", finish_reason="stop")
        return Response(text="", finish_reason="tool_calls",
                        tool_calls=(ToolCall.parse("lookup_order", json.dumps({"order_id": f"A{k}"})),))

    monkeypatch.setattr(FakeAdapter, "_answer", answer)
    return tmp_path


def test_tool_metrics_join_the_run_and_gate_it(project):
    gate = {"min_items": 20, "metrics": {"tool_call_accuracy": {"max_drop": 0.05, "higher_is_better": True}}}
    config = MigrationConfig(project_dir=str(project), dataset="items.jsonl", baseline="fake/base",
                             baseline_prompt=None, candidates=["fake/cand"], candidate_prompts=[None], judge="",
                             metrics=["length_chars"], sample_size=None, bootstrap_resamples=200, gate=gate)
    result = run_pipeline(config)
    assert {"tool_call_accuracy", "tool_args_valid", "length_chars"} <= set(result.scores["metric"])
    comparison = next(iter(result.comparisons.values()))
    row = comparison.metric_deltas.set_index("metric").loc["tool_call_accuracy"]
    assert (row["baseline_mean"], row["candidate_mean"]) == (1.0, 0.5) and row["mcnemar_p"] < 0.001
    assert comparison.gate.verdict == "FAIL" and result.verdict == "FAIL"
    assert comparison.tool_errors.set_index("error").loc["text instead of a call", "candidate"] == N // 2
