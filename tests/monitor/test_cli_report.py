"""`workbench drift` through argparse + run(args) in-process and as a subprocess (`python -m
workbench.monitor`), exit codes 0 / 1 / 3, and the papermill report with its offline HTML."""
import argparse
import json
import re
import subprocess
import sys

import nbformat
import papermill
import pytest

from tests.monitor._data import write_log, write_reference
from workbench.errors import InputError
from workbench.monitor import synthetic as syn
from workbench.monitor.cli import add_parser, parse_alerts, run
from workbench.monitor.config import DriftConfig
from workbench.monitor.report import notebook_path

FAST = ["--signals", "length", "language", "vocabulary"]


def _args(*argv):
    parser = argparse.ArgumentParser(prog="workbench")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["drift", *argv])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    reference = write_reference(tmp, n=400)
    clean = write_log(tmp, n=600, days=3, name="clean.jsonl", seed=2)
    drifted = write_log(tmp, n=600, days=3, name="drifted.jsonl", drifts=[syn.Drift("product", 0.66, 0.4)], seed=3)
    return tmp, reference, clean, drifted


def test_in_process_exit_codes_and_the_json_line(files, capsys):
    tmp, reference, clean, drifted = files
    common = ["--reference", str(reference), "--window", "day", "--reports-dir", str(tmp / "reports"), "--no-report", *FAST]
    assert run(_args(str(clean), "--name", "clean", *common)) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["drift"] is False and line["alert"] is False and line["drifted_items"] is None
    assert run(_args(str(drifted), "--name", "drifted", *common)) == 1
    out = capsys.readouterr()
    line = json.loads(out.out.strip().splitlines()[-1])
    assert line["flagged_windows"] == ["2026-10-07"] and line["exit_code"] == 1
    assert "DRIFT in 1 window(s)" in out.err and "AeroKite" in out.err
    folder = tmp / "reports" / "drifted"
    assert json.loads((folder / "drift.json").read_text(encoding="utf-8"))["exit_code"] == 1
    assert (folder / "drifted_items.jsonl").stat().st_size > 0
    # an alert alone is exit 1 as well: every response over 10 characters is "too long"
    assert run(_args(str(clean), "--name", "alert", "--alert", "median_response_chars:max=10", *common)) == 1
    assert "median_response_chars" in capsys.readouterr().err


def test_flags_map_to_parameters_and_files_and_p_work_together(files, tmp_path):
    _, reference, clean, _ = files
    params = tmp_path / "drift.toml"
    params.write_text(f'reference = "{reference}"\nwindow = "week"\nalpha = 0.01\n', encoding="utf-8")
    from workbench.monitor.cli import config_from_args

    cfg = config_from_args(_args(str(clean), "--params", str(params), "-p", "alpha", "0.02", "--window", "500",
                                 "--no-embeddings", "--no-responses", "--judge-field", "rubric",
                                 "--alert", "refusal_rate:off", "--alert", "rubric:min=3.5", "--correction", "holm"))
    assert cfg.window == "500 rows" and cfg.alpha == 0.02 and cfg.correction == "holm"
    assert cfg.signals == ["length", "language", "vocabulary"] and cfg.response_field is None
    assert cfg.judge_fields == ["rubric"] and cfg.alert_thresholds()["rubric"] == {"min": 3.5}
    assert "refusal_rate" not in cfg.alert_thresholds() and cfg.project_dir == str(tmp_path)
    assert parse_alerts(["judge:min=3,max=5"]) == {"judge": {"min": 3.0, "max": 5.0}}
    for bad in (["refusal_rate"], ["refusal_rate:above=3"], ["refusal_rate:max=high"]):
        with pytest.raises(InputError, match="--alert"):
            parse_alerts(bad)
    with pytest.raises(InputError, match="unknown parameter"):
        config_from_args(_args(str(clean), "-p", "windw", "day"))


def test_bad_input_raises_input_error_in_process_and_exits_3_as_a_command(files, tmp_path):
    _, reference, _, _ = files
    log = tmp_path / "bad.csv"
    log.write_text("ts,input\n2026-10-05T10:00:00Z,hello\nnot a time,hi\n", encoding="utf-8")
    args = ["--reference", str(reference), "--reports-dir", str(tmp_path), "--no-report", *FAST]
    with pytest.raises(InputError) as err:
        run(_args(str(log), "--timestamp-field", "ts", *args))
    problem = err.value.problems[0]
    assert (problem.file, problem.row, problem.field) == (str(log), 2, "ts")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "drift", str(log), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert f"{log}, field 'timestamp': no timestamp column 'timestamp' (fields found: ts, input)" in proc.stderr
    assert proc.stdout == ""


def test_the_drift_notebook_has_one_parameters_cell_equal_to_the_config():
    path = notebook_path()
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.metadata["kernelspec"]["name"] == "python3"
    declared = papermill.inspect_notebook(str(path))
    defaults = {name: eval(spec["default"], {}) for name, spec in declared.items()}  # literals (checked below)
    import ast
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign)
        ast.literal_eval(node.value)
    assert defaults == DriftConfig().model_dump()  # same names, same defaults as the one config object


@pytest.mark.slow
def test_report_html_is_offline_with_plotly_time_series(files, tmp_path):
    tmp, reference, _, drifted = files
    args = _args(str(drifted), "--reference", str(reference), "--window", "day", "--reports-dir", str(tmp_path / "r"),
                 "--name", "nightly", *FAST)
    assert run(args) == 1
    folder = tmp_path / "r" / "nightly"
    assert {p.name for p in folder.iterdir()} >= {"report.ipynb", "report.html", "drift.json", "drifted_items.jsonl"}
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)  # nothing from the network
    assert html.count("plotly.js v") >= 1 or "Plotly.newPlot" in html
    assert html.count("Plotly.newPlot") >= 6  # rows, evidence, length, language, quality, judge, lengths, models
    assert "DRIFT in 1 of 3 windows" in html and "AeroKite" in html
    executed = nbformat.read(folder / "report.ipynb", as_version=4)
    assert executed.metadata["papermill"]["parameters"]["output_dir"] == str(folder.resolve())
    assert not any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_report_with_bad_input_raises_the_located_problem(files, tmp_path):
    _, reference, _, _ = files
    rows = syn.production_log(300, seed=4, days=3)
    rows.loc[41, "timestamp"] = "2026-13-01T00:00:00Z"
    log = syn.write_jsonl(rows, tmp_path / "bad.jsonl")
    with pytest.raises(InputError) as err:
        run(_args(str(log), "--reference", str(reference), "--reports-dir", str(tmp_path), *FAST))
    assert [(p.row, p.field) for p in err.value.problems] == [(42, "timestamp")]
    assert (tmp_path / "drift" / "report.html").is_file()  # the failed run's record is still there
