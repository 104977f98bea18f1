"""The tool-calling example (`workbench init --example tools`) with a candidate that breaks some calls:
a replay log written from the recorded baseline's, for tests that compare a tool-calling app."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CANDIDATE = "replay/data/cand.jsonl"


def tools_project_with_broken_candidate(folder: Path, *, text_every: int, drop_arguments_every: int) -> Any:
    """The example initialised in `folder`, its candidate answering in text every `text_every`th item
    and dropping the arguments of its calls every `drop_arguments_every`th; returns (config, rows of
    the candidate's log). Metrics: tool_call_accuracy and length_chars, 200 resamples."""
    from workbench.project.scaffold import init_project
    from workbench.task.config import build_config

    folder = init_project(folder, "tools")  # items, tools, the recorded baseline log
    log = folder / "data" / "support_tools_baseline.jsonl"
    cand = []
    for k, line in enumerate(log.read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        if k % text_every == 0:
            row.update(response="Let me check that for you.", tool_calls=[])
        elif k % drop_arguments_every == 0 and row.get("tool_calls"):
            row["tool_calls"] = [{"name": c["name"], "arguments": {}} for c in row["tool_calls"]]
        cand.append(row)
    (folder / "data" / "cand.jsonl").write_text("".join(json.dumps(r) + "\n" for r in cand), encoding="utf-8")
    config = build_config(folder / "params.toml", {"candidates": [CANDIDATE],
                                                   "metrics": ["tool_call_accuracy", "length_chars"],
                                                   "bootstrap_resamples": 200})
    return config, cand
