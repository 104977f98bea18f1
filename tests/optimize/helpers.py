"""Helpers for the optimizer tests: rule-driven items, a plain starting prompt, parameters."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


WORDS = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta", "iota kappa", "lambda mu", "nu xi", "omicron pi",
         "rho sigma", "tau upsilon", "phi chi", "psi omega", "red green", "blue yellow", "cat dog", "sun moon",
         "north south", "east west", "up down", "left right"]
PLAIN = 'description = "plain"\nmode = "chat"\nsystem = "You are a helpful assistant."\nuser = "{input}"\n'


def write_items(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rule_items(reference=lambda word, i: word.upper() + ".") -> list[dict[str, Any]]:
    """Items whose right answer is `upper(input) + "."` (by default), in two slices."""
    return [{"item_id": f"i{i:02d}", "input": w, "reference": reference(w, i), "group": "ab"[i % 2]}
            for i, w in enumerate(WORDS)]




def params(project: Path, url: str, **extra: Any) -> dict[str, Any]:
    """Optimizer parameters for the rule target (what a params file or the notebook would hold)."""
    return {"dataset": str(project / "items.jsonl"), "target": "openai/rule-target", "start_prompt": "plain@v1",
            "objective": "reference", "baseline": None, "baseline_prompt": None, "dev_size": 8, "test_size": 8,
            "strata": ["group"], "moves": ["instructions"], "optimizer_model": "openai/rule-optimizer",
            "api_base": url, "store": str(project / "store.db"), "prompts_dir": str(project / "prompts"),
            "project_dir": str(project), "max_calls": 200, "bootstrap_resamples": 200, "concurrency": 2, **extra}
