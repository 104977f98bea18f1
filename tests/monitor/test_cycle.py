"""`workbench cycle` on the bundled drift demo log, through the CLI: a drifting log refreshes the set
and runs the report (exit code of its verdict), a re-run on the same log makes no model call, a
stable log writes only the drift report (exit 0), a retiring baseline with a fixed --today reports
on its successor; bad input exits 3 with a message naming what to fix. Models are replay/ files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.monitor._project import make_project
from workbench.cli import main

RETIRING = ('checked = 2026-11-01\n\n[models."replay/baseline.jsonl"]\nreleased = 2025-01-01\nretires = 2026-12-01\n'
            'successor = "replay/successor.jsonl"\n')


def _cycle(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(["cycle", "-q", *argv])
    out = capsys.readouterr()
    return code, (json.loads(out.out.strip().splitlines()[-1]) if out.out.strip() else {}), out.err


def test_drift_refreshes_the_set_and_reports_then_a_rerun_makes_no_call(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path, cycle='target = "human"\n')  # production items go to the labelers
    monkeypatch.chdir(root)
    code, record, err = _cycle(capsys)
    assert code == 1 and record["verdict"] == "FAIL" and record["exit_code"] == 1  # the candidate answers a third
    summary = [line for line in err.splitlines() if line.startswith("cycle:")]
    assert len(summary) == 1 and "drift in 2 window(s) (language, vocabulary)" in summary[0]
    assert "data/eval.v2.jsonl (+12 production items)" in summary[0] and "FAIL (exit 1)" in summary[0]
    report = root / "reports" / "cycle"
    assert {"report.html", "report.ipynb", "verdict.json", "manifest.json", "cycle.json"} <= {p.name for p in report.iterdir()}
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["calls"]["made"] == record["calls_made"] > 0
    assert record["refresh"]["created"] and record["dataset"] == str(root / "data" / "eval.v2.jsonl")
    assert (root / "reports" / "cycle-drift" / "drift.json").is_file()
    verdict = json.loads((report / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["verdict"] == "FAIL"
    # the labeler takes the items without a reference as its task: both answers are in the store already
    from workbench.task.config import build_config
    from workbench.pipeline import label_pairs

    to_label = root / "data" / "eval.v2.to_label.jsonl"
    assert record["refresh"]["targets"] == {"reference": 48, "human": 12}
    _, pairs = label_pairs(build_config(root / "params.toml", {"dataset": str(to_label)}))
    assert len(pairs) == 12 and pairs.attrs["dropped"] == 0 and pairs["item_id"].str.startswith("req-").all()

    # the same log again: the same version, the same verdict, every answer from the store
    version = (root / "data" / "eval.v2.jsonl").read_bytes()
    code, again, err = _cycle(capsys)
    assert code == 1 and again["calls_made"] == 0 and "0 model call(s)" in err
    assert again["refresh"]["created"] is False and again["reference_is"].startswith("the parent of eval.v2.jsonl")
    assert sorted(p.name for p in (root / "data").glob("eval.v*")) == \
        ["eval.v2.jsonl", "eval.v2.refresh.json", "eval.v2.to_label.jsonl"]  # no v3
    assert (root / "data" / "eval.v2.jsonl").read_bytes() == version


def test_stable_log_writes_only_the_drift_report_and_exits_0(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path, stable=True)
    monkeypatch.chdir(root)
    code, record, err = _cycle(capsys, "-p", "drift_notebook", "true")
    assert code == 0 and record["triggers"] == [] and "nothing to run (exit 0)" in err
    assert sorted(p.name for p in (root / "reports").iterdir()) == ["cycle-drift"]
    assert {"report.html", "drift.json", "cycle.json"} <= {p.name for p in (root / "reports" / "cycle-drift").iterdir()}
    assert not list((root / "data").glob("eval.v*")) and not (root / ".workbench").exists()


def test_the_report_params_file_works_as_params_with_cycle_toml_beside_it(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path, stable=True)
    monkeypatch.chdir(tmp_path)  # from another folder: paths resolve against the file's
    code, record, err = _cycle(capsys, "--params", str(root / "params.toml"))
    assert code == 0 and record["log"] == str(root / "logs" / "stable.jsonl") and record["today"] == "2026-11-16"


def test_retirement_with_a_fixed_today_reports_on_the_successor(tmp_path, capsys, monkeypatch):
    stale = RETIRING.replace("checked = 2026-11-01", "checked = 2025-01-15")  # and the dates not checked for long
    root = make_project(tmp_path, stable=True, lifecycle=stale)
    monkeypatch.chdir(root)
    code, record, err = _cycle(capsys, "--today", "2026-08-01")  # 122 days before: nothing yet
    assert code == 0 and record["triggers"] == []
    code, record, err = _cycle(capsys, "--today", "2026-11-16")
    assert record["triggers"] == ["retirement"] and code == 0 and record["verdict"] == "PASS"
    assert record["retirement"] == {"model": "replay/baseline.jsonl", "retires": "2026-12-01", "days_left": 15,
                                    "successor": "replay/successor.jsonl"}
    assert record["candidates"] == ["replay/successor.jsonl"] and record["dataset"] == str(root / "data" / "eval.jsonl")
    assert "replay/baseline.jsonl retires 2026-12-01 (in 15 days; lifecycle.toml): report on its successor " \
           "replay/successor.jsonl" in err
    assert json.loads((root / "reports" / "cycle" / "cycle.json").read_text())["retirement"]["days_left"] == 15
    assert "warning: the lifecycle file" in err and "last checked 2025-01-15" in err
    html = (root / "reports" / "cycle" / "report.html").read_text(encoding="utf-8")
    assert "lifecycle.toml was last checked 2025-01-15" in html  # the report names it too (on its own date)


@pytest.mark.parametrize("case, expected", [
    ("no_timestamp", "field 'timestamp'"),
    ("unregistered_successor", "successor 'nosuch/model' is not a registered model"),
    ("no_successor", "no successor is named"),
    ("no_log", "no production log matches"),
    ("cycle_sets_reference", "reference set by the cycle"),
])
def test_bad_input_exits_3_with_a_message(tmp_path, capsys, monkeypatch, case, expected):
    lifecycle = {"unregistered_successor": RETIRING.replace("replay/successor.jsonl", "nosuch/model"),
                 "no_successor": RETIRING.replace('successor = "replay/successor.jsonl"\n', "")}.get(case)
    root = make_project(tmp_path, stable=True, lifecycle=lifecycle)
    monkeypatch.chdir(root)
    argv: list[str] = []
    if case == "no_timestamp":
        log = root / "logs" / "stable.jsonl"
        rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        log.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "timestamp"}) + "\n" for r in rows))
    elif case == "no_log":
        argv = ["--production", "logs/*.parquet"]
    elif case == "cycle_sets_reference":
        argv = ["-p", "drift", '{"reference": "data/eval.jsonl"}']
    code, record, err = _cycle(capsys, *argv)
    assert code == 3 and expected in err, err
    assert not (root / "reports" / "cycle").exists() and not list((root / "data").glob("eval.v*"))


def test_a_stale_lifecycle_file_is_named(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path, stable=True, lifecycle='checked = 2025-01-15\n')
    monkeypatch.chdir(root)
    code, record, err = _cycle(capsys)
    assert code == 0
    assert "lifecycle file" in err and "last checked 2025-01-15" in err and "670 days ago (more than 180)" in err
