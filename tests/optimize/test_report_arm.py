"""Part 3 of issue 12: "model + re-tuned prompt" is one more candidate arm (same model, another
prompt version); the report shows baseline, candidate as-is and candidate re-tuned side by side,
each candidate with its own gate verdict."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workbench.task.config import MigrationConfig
from workbench.pipeline import run_pipeline

REPO = Path(__file__).resolve().parents[2]
GATE = {"min_items": 5, "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True}}, "max_error_rate": 0.05}
ARMS = ["fake/cand [support_chat@v1]", "fake/cand [support_chat@v2]"]


def _params(tmp_path: Path) -> dict:
    items = pd.read_json(REPO / "data" / "support_reviews.jsonl", lines=True).groupby(["language", "task"]).head(3)
    data = tmp_path / "items.jsonl"
    items.to_json(data, orient="records", lines=True, force_ascii=False)
    return {"dataset": str(data), "baseline": "fake/base", "baseline_prompt": "support_fewshot@v1",
            "candidates": ["fake/cand", "fake/cand"], "candidate_prompts": ["support_chat@v1", "support_chat@v2"],
            "judge": None, "metrics": ["chrf", "length_chars"], "gate": GATE, "bootstrap_resamples": 100,
            "store": str(tmp_path / "store.db"), "report_name": "retuned", "sample_size": None}


def test_the_retuned_prompt_is_a_third_arm_with_its_own_verdict(tmp_path):
    config = MigrationConfig(**_params(tmp_path), project_dir=str(tmp_path))
    result = run_pipeline(config)
    assert result.baseline == "fake/base" and result.candidates == ARMS
    assert list(result.comparisons) == ARMS
    verdicts = result.verdict_json()["candidates"]
    for name in ARMS:
        assert verdicts[name]["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") and verdicts[name]["n_paired"] == 12
        assert {r["metric"] for r in verdicts[name]["metric_deltas"]} >= {"chrf"}
    prompts = result.responses.groupby("model")["prompt_version"].first().to_dict()
    assert prompts == {"fake/base": "support_fewshot@v1", ARMS[0]: "support_chat@v1", ARMS[1]: "support_chat@v2"}


@pytest.mark.slow
def test_the_report_shows_the_three_arms_side_by_side(tmp_path):
    params_file = tmp_path / "params.json"
    params_file.write_text(json.dumps(_params(tmp_path)), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "report", "--params", str(params_file),
                           "--reports-dir", str(tmp_path / "reports"), "-q"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    out = tmp_path / "reports" / "retuned"
    verdict = json.loads((out / "verdict.json").read_text())
    assert proc.returncode == {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 2}[verdict["verdict"]], proc.stderr[-2000:]
    assert list(verdict["candidates"]) == ARMS and all(verdict["candidates"][n]["verdict"] for n in ARMS)
    html = (out / "report.html").read_text(encoding="utf-8")
    for name in ARMS:  # a section per candidate arm, each opening with its own verdict banner
        header = f"<h3>fake/base → {name}</h3>"
        assert header in html
        after = html[html.index(header):]
        assert after.index(f"Verdict: {verdict['candidates'][name]['verdict']}") < after.index("</table>")
    assert html.index(f"→ {ARMS[0]}</h3>") < html.index(f"→ {ARMS[1]}</h3>")
