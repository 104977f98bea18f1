"""A report that fails never leaves the previous run's verdict in place: its outputs are removed
before the run starts, and the failure writes an ERROR verdict.json (bad data, Ctrl-C during
generation, a failed call). A first report that fails on bad input writes nothing."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.fault_server import FaultServer, hang
from tests.interrupts import sigint_as_usual
from tests.test_report import _dataset, _fake_params, _report

GATE = {"min_items": 5, "metrics": {"chrf": {"max_drop": 100.0, "higher_is_better": True}}}
OUTPUTS = ("verdict.json", "manifest.json", "report.html", "report.ipynb")


def _complete_report(tmp_path: Path) -> Path:
    proc = _report(tmp_path, _fake_params(tmp_path, gate=GATE, metrics=["chrf"]))
    assert proc.returncode in (0, 1, 2), proc.stderr[-3000:]
    out = tmp_path / "reports" / "t"
    assert json.loads((out / "verdict.json").read_text())["complete"] is True
    return out


def test_bad_data_after_a_complete_report_leaves_an_error_verdict_and_nothing_stale(tmp_path):
    out = _complete_report(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_dataset(tmp_path).read_text() + json.dumps({"item_id": "x1", "reference": "r"}) + "\n",
                   encoding="utf-8")
    proc = _report(tmp_path, _fake_params(tmp_path, dataset=str(bad), gate=GATE, metrics=["chrf"]))
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "bad.jsonl" in proc.stderr and "row 13" in proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR" and verdict["complete"] is False and "bad.jsonl" in verdict["error"]
    assert sorted(p.name for p in out.iterdir()) == ["verdict.json"]  # no stale manifest, HTML or notebook


def test_a_first_report_on_bad_input_writes_nothing(tmp_path):
    proc = _report(tmp_path, _fake_params(tmp_path, dataset="missing.jsonl"))
    assert proc.returncode == 3 and "missing.jsonl" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_ctrl_c_during_generation_replaces_the_previous_verdict_with_error(tmp_path):
    out = _complete_report(tmp_path)
    with FaultServer() as server:
        for k in range(12):
            server.always(f"customer message {k}", hang(), times=5)
        params = _fake_params(tmp_path, candidates=["openai/slow"], candidate_prompts=[None], api_base=server.url,
                              gate=GATE, metrics=["chrf"])
        (tmp_path / "params.json").write_text(json.dumps(params), encoding="utf-8")
        proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "report", "--params", "params.json",
                                 "--reports-dir", str(tmp_path / "reports"), "-q"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OPENAI_API_KEY": "not-used"}, preexec_fn=sigint_as_usual)
        deadline = time.monotonic() + 120
        while server.total_hits() == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert server.total_hits() > 0, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR" and "interrupted" in verdict["error"]
    assert not any((out / name).exists() for name in OUTPUTS[1:])
