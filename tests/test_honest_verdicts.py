"""Never more confident than the data, through the CLI as a user meets it: a judge that cannot judge,
a pointwise judge, the gate given on the command line, rules a sample cannot meet, labels counted as
labels, retirement in the verdict, and the `workbench init` project passing when nothing regressed."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_report import _dataset, _fake_params, _report
from workbench.stats.proportions import floor_half_width

CLI = [sys.executable, "-m", "workbench.cli"]


def _replays(tmp_path: Path, rows: list[dict], good: dict[str, object]) -> dict[str, str]:
    """replay/ files answering each item; `good[name](k)` says which answers contain GOOD."""
    out = {}
    for name, is_good in good.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"item_id": r["item_id"], "response": f"reply {k}"
                                            + (" GOOD" if is_good(k) else "")}) + "\n"
                                for k, r in enumerate(rows)), encoding="utf-8")
        out[name] = f"replay/{path}"
    return out


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=dict(os.environ))


# ---- a judge that is 0% position-consistent ----------------------------------------------------
def test_a_judge_that_cannot_judge_is_marked_untrusted_everywhere_and_three_labels_decide_nothing(tmp_path):
    from tests.judge_server import FirstShownJudgeServer
    from workbench import labels as lab

    params = _fake_params(tmp_path)  # (writes a 12-item dataset: the 40 items below replace it)
    rows = [json.loads(line) for line in _dataset(tmp_path, 40).read_text().splitlines()]
    replay = _replays(tmp_path, rows, {"base": lambda k: k % 4 == 0, "cand": lambda k: k % 4 != 0})
    with FirstShownJudgeServer() as server:
        params.update(baseline=replay["base"], candidates=[replay["cand"]], baseline_prompt=None,
                      candidate_prompts=[None], judge="openai/judge", judge_template="chat-v1", api_base=server.url,
                      sample_size=None, gate={"min_items": 30, "win_rate": {"noninferiority_margin": 0.1},
                                              "min_position_consistency": 0.6, "max_error_rate": 0.05})
        proc = _report(tmp_path, params)
        # then three labels from one rater, read with the prediction-powered source (same judge endpoint)
        names = [replay["base"], replay["cand"]]
        log = lab.LabelLog(tmp_path / "store.db", f"{names[0]} vs {names[1]}")
        for item in ("it00", "it01", "it02"):
            log.record(item, "ann", names[0], names[1], "left", 0, "")
        log.close()
        params_file = tmp_path / "ppi.json"
        params_file.write_text(json.dumps({**params, "gate": {"min_items": 30, "win_rate": {
            "noninferiority_margin": 0.1, "source": "ppi"}}}), encoding="utf-8")
        ppi = _run(["compare", "--params", str(params_file), "--json", str(tmp_path / "cmp.json")], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]  # the judge decides nothing: INCONCLUSIVE, not a verdict
    # before any call: the error-rate rule cannot pass at 40 items, and says how many it needs
    assert "warning: gate rule out of reach: max_error_rate = 0.05 cannot pass with 40 calls" in proc.stderr
    assert "at least 73 items" in proc.stderr
    out = tmp_path / "reports" / "t"
    verdict = json.loads((out / "verdict.json").read_text())
    cand = verdict["candidates"][replay["cand"]]
    judge_rows = [w for w in cand["win_rates"] if w["source"].startswith("judge")]
    assert judge_rows and all("untrusted judge" in (w.get("judge_check") or "") for w in judge_rows)
    raw = next(w for w in judge_rows if w["source"] == "judge")
    # 40 ties (the orders never agree) are not proof of exactly 0.5: no zero-width interval
    assert raw["win_rate"] == 0.5 and raw["ci_high"] - raw["ci_low"] >= 2 * floor_half_width(40) - 1e-9 > 0.08
    readings = {r["measure"]: r["reading"] for r in cand["judge_reliability"]}
    assert readings["judge check"].startswith("UNTRUSTED")
    assert "every verdict a tie" not in json.dumps(readings) and "never agreed" in readings[
        "P(judge prefers the longer answer)"]
    nb = json.loads((out / "report.ipynb").read_text())
    figures = [o["data"]["application/vnd.plotly.v1+json"] for c in nb["cells"] for o in c.get("outputs", [])
               if "application/vnd.plotly.v1+json" in o.get("data", {})]
    win_plot = next(f for f in figures if "Win rate" in json.dumps(f.get("layout", {}).get("title", "")))
    names = [t.get("name", "") for t in win_plot["data"]]
    assert names and all("UNTRUSTED" in n for n in names if n.startswith("judge"))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "untrusted judge" in html  # the slice rows of the judge's win rate say so
    assert verdict["gate"]["source"] == "inline gate of the parameters"

    # the three labels are counted as 3 (not the 40 judged items) against min_items
    assert ppi.returncode == 2, ppi.stderr[-3000:]
    rule = json.loads((tmp_path / "cmp.json").read_text())["candidates"][replay["cand"]]["rules"][0]
    assert rule["status"] == "INCONCLUSIVE" and rule["numbers"]["n"] == 3 and "only 3 items" in rule["reason"]
    assert "at least 30 are needed" in ppi.stderr  # the stopping advice waits for enough labels


# ---- pointwise judging end to end ------------------------------------------------------------------
def test_pointwise_judge_through_workbench_report(tmp_path):
    from tests.judge_server import PointwiseJudgeServer

    params = _fake_params(tmp_path)  # (writes a 12-item dataset: the 40 items below replace it)
    rows = [json.loads(line) for line in _dataset(tmp_path, 40).read_text().splitlines()]
    replay = _replays(tmp_path, rows, {"base": lambda k: k % 4 == 0, "cand": lambda k: k % 4 != 0})
    with PointwiseJudgeServer() as server:
        params.update(baseline=replay["base"], candidates=[replay["cand"]], baseline_prompt=None,
                      candidate_prompts=[None], judge="openai/judge", judge_template="chat-v1", api_base=server.url,
                      judge_mode="pointwise", judge_criterion=["correctness", "fluency"], sample_size=None,
                      gate={"min_items": 30, "metrics": {"judge:correctness": {"max_drop": 0.5,
                                                                               "higher_is_better": True}}})
        proc = _report(tmp_path, params)
    assert proc.returncode == 0, proc.stderr[-3000:]  # the candidate scores better: PASS
    out = tmp_path / "reports" / "t"
    verdict = json.loads((out / "verdict.json").read_text())
    cand = verdict["candidates"][replay["cand"]]
    deltas = {d["metric"]: d for d in cand["metric_deltas"]}
    assert deltas["judge:correctness"]["delta"] == pytest.approx(1.0)  # (3/4 - 1/4) x (4 - 2)
    assert deltas["judge:correctness"]["ci_low"] > 0 and "judge:fluency" in deltas
    assert cand["rules"][0]["name"] == "metric:judge:correctness" and cand["rules"][0]["status"] == "PASS"
    measures = {r["measure"]: r for r in cand["judge_reliability"]}
    assert measures[f"[correctness] score spread: {replay['cand']}"]["ci_low"] == 2.0
    assert "judged once" in measures["[correctness] repeatability"]["reading"]
    assert verdict["gate"]["rules"]["metrics"]["judge:correctness"]["max_drop"] == 0.5


def test_a_pointwise_judge_that_gives_one_score_says_so():
    import pandas as pd

    from workbench.comparison.compare import pointwise_reliability

    scores = pd.DataFrame({"item_id": [f"i{k}" for k in range(6)] * 2, "model": ["a"] * 6 + ["b"] * 6,
                           "criterion": "correctness", "score": 4.0, "score_std": [0.0] * 12, "n_samples": 3})
    human = pd.DataFrame({"item_id": ["i0", "i1"], "rater": "ann", "choice": ["B", "tie"]})
    rows = {r["measure"]: r for r in pointwise_reliability(scores, "a", "b", human)}
    assert "UNINFORMATIVE" in rows["[correctness] score spread: b"]["reading"]
    assert rows["[correctness] agreement with human labels"]["n"] == 2
    assert rows["[correctness] repeatability (sd of the judge's samples of one answer)"]["value"] == 0.0


# ---- the gate given is the gate used, retirement, self-judging -----------------------------------
from tests.test_cli_compare import project  # noqa: E402,F401  (the fixture: 60 items in a store, fake models)


def test_gate_file_on_the_command_line_overrides_an_inline_gate(project):
    params = project / "params.toml"
    text = params.read_text().replace('gate_file = "gate.toml"\n', "")
    params.write_text(text + "\n[gate]\nmin_items = 30\n[gate.metrics.exact_match]\nmax_drop = 0.05\n"
                      "higher_is_better = true\n", encoding="utf-8")
    (project / "lenient.toml").write_text("min_items = 30\n[metrics.chrf]\nmax_drop = 100.0\nhigher_is_better = true\n",
                                          encoding="utf-8")
    inline = _run(["compare", "--params", str(params)], project)
    assert inline.returncode == 1  # the inline gate: exact match drops from 1 to 0
    given = _run(["compare", "--params", str(params), "--gate", "lenient.toml", "--json", "cmp.json"], project)
    assert given.returncode == 0, given.stderr
    record = json.loads((project / "cmp.json").read_text())
    assert record["gate"]["source"].startswith("gate_file") and "lenient.toml" in record["gate"]["source"]
    assert list(record["gate"]["rules"]["metrics"]) == ["chrf"]
    assert [r["name"] for r in record["candidates"]["fake/cand"]["rules"]] == ["metric:chrf"]
    assert "gate rules used (gate_file" in given.stderr


def test_retirement_in_the_verdict_and_a_gate_rule_on_it(project):
    soon = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    (project / "life.toml").write_text(f'[models."fake/cand"]\nretires = {soon}\n', encoding="utf-8")
    (project / "gate.toml").write_text("min_days_to_retirement = 30\n", encoding="utf-8")
    proc = _run(["compare", "--params", str(project / "params.toml"), "-p", "lifecycle_file", "life.toml",
                 "--json", "cmp.json"], project)
    assert proc.returncode == 1, proc.stderr
    record = json.loads((project / "cmp.json").read_text())
    assert record["lifecycle"]["fake/cand"] == {"retires": soon, "days_left": 10, "status": "RETIRES SOON: in 10 days",
                                                "source": str(project / "life.toml")}
    assert record["lifecycle"]["fake/base"]["days_left"] is None
    rule = record["candidates"]["fake/cand"]["rules"][0]
    assert rule["name"] == "min_days_to_retirement" and rule["status"] == "FAIL" and "in 10 days" in rule["reason"]


def test_rules_out_of_reach_are_named_with_the_items_they_need(project):
    (project / "gate.toml").write_text("min_items = 100\nmax_error_rate = 0.05\n[metrics.exact_match]\n"
                                       "max_drop = 0.02\nhigher_is_better = true\n", encoding="utf-8")
    proc = _run(["compare", "--params", str(project / "params.toml")], project)
    assert proc.returncode != 3, proc.stderr
    assert "min_items = 100, but the sample has 60 items" in proc.stderr
    assert "max_error_rate = 0.05 cannot pass with 60 calls even with no error" in proc.stderr
    assert "metrics.exact_match: max_drop = 0.02 cannot pass with 60 items" in proc.stderr


def test_a_judge_that_is_one_of_the_compared_models_is_flagged():
    import pandas as pd

    from workbench.comparison.compare import compare

    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(10)], "input": "q"})
    resp = [pd.DataFrame({"item_id": items["item_id"], "model": m, "sample_index": 0, "response": f"{m} says",
                          "error": None, "latency_s": 0.1, "cost_usd": None, "prompt_tokens": 1,
                          "completion_tokens": 1}) for m in ("hf/a", "hf/b")]
    result = compare(items, resp[0], resp[1], judge="hf/b", n_resamples=100)
    assert any("is the candidate, one of the two models compared" in n for n in result.notes)
    assert "judge is a compared model" in set(result.judge_reliability["measure"])
    assert not any("one of the two" in n for n in compare(items, resp[0], resp[1], judge="hf/c",
                                                            n_resamples=100).notes)


# ---- the `workbench init` project passes when nothing regressed ------------------------------------
def test_the_init_project_passes_when_the_candidate_changes_nothing(tmp_path):
    from tests.judge_server import JudgeServer

    assert _run(["init", "proj"], tmp_path).returncode == 0
    project = tmp_path / "proj"
    rows = [json.loads(line) for line in (project / "data" / "sample.jsonl").read_text().splitlines()]
    same = {"item_id": None}
    for name in ("base", "cand"):  # the candidate answers exactly as the baseline does
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({**same, "item_id": r["item_id"],
                                                                   "response": r["reference"]}) + "\n"
                                                        for r in rows), encoding="utf-8")
    with JudgeServer() as server:
        proc = _run(["report", "--params", str(project / "params.toml"), "--reports-dir", str(tmp_path / "reports"),
                     "-p", "baseline", f"replay/{tmp_path / 'base.jsonl'}",
                     "-p", "candidates", json.dumps([f"replay/{tmp_path / 'cand.jsonl'}"]),
                     "-p", "baseline_prompt", "", "-p", "candidate_prompts", '[""]', "-p", "judge", "openai/judge",
                     "-p", "judge_template", "chat-v1", "-p", "api_base", server.url], project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "out of reach" not in proc.stderr
    verdict = json.loads((tmp_path / "reports" / "migration" / "verdict.json").read_text())
    assert verdict["verdict"] == "PASS"
    rules = verdict["candidates"][f"replay/{tmp_path / 'cand.jsonl'}"]["rules"]
    assert {r["name"] for r in rules} >= {"max_error_rate", "win_rate_noninferiority", "min_position_consistency"}
    assert verdict["gate"]["source"] == "gate_file gate.toml"
