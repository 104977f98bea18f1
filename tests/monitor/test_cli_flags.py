"""Every `workbench drift` flag through the real entry point (`workbench.cli.main`), each checked by
its effect on drift.json: renamed columns are read, the time zone moves the day boundaries, the
correction and alpha are the ones applied, alerts fire on the named columns, and so on."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.monitor._data import write_reference
from workbench.cli import main
from workbench.monitor import synthetic as syn

FAST = ["--signals", "length", "language", "vocabulary"]
RENAMES = {"timestamp": "ts", "input": "q", "response": "a", "model": "m", "request_id": "rid", "judge_score": "score"}
LIFECYCLE = '[models."litellm/openai/old-model"]\nreleased = 2024-01-01\nretires = 2026-12-01\n'


def drift(*args: str) -> int:
    return main(["drift", *args])


def record(folder: Path) -> dict:
    return json.loads((folder / "drift.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drift-flags")
    reference = write_reference(tmp, n=300)
    rows = syn.production_log(300, seed=3, days=3, drifts=[syn.Drift("product", 0.66, 0.4)])
    renamed = syn.write_jsonl(rows.rename(columns=RENAMES), tmp / "renamed.jsonl")
    stamps = pd.to_datetime(rows["timestamp"], utc=True)
    gapped = syn.write_jsonl(rows[stamps.dt.day != stamps.dt.day.min() + 1], tmp / "gapped.jsonl")  # no middle day
    (tmp / "lifecycle.toml").write_text(LIFECYCLE, encoding="utf-8")
    return tmp, reference, renamed, gapped


def all_flags(files, out: Path, *extra: str) -> list[str]:
    tmp, reference, renamed, _ = files
    return [str(renamed), "--reference", str(reference), "--timestamp-field", "ts", "--input-field", "q",
            "--response-field", "a", "--model-field", "m", "--id-field", "rid", "--judge-field", "score",
            "--window", "day", "--timezone", "Asia/Tokyo", *FAST, "--alpha", "0.01", "--correction", "holm",
            "--min-window-rows", "5", "--alert", "score:min=4.5", "--expected-format", "json",
            "--model", "litellm/openai/old-model", "--lifecycle-file", str(tmp / "lifecycle.toml"),
            "--warn-days", "400", "--today", "2026-10-01", "--export-per-window", "3", "--reports-dir", str(out),
            "--no-report", *extra]


@pytest.fixture(scope="module")
def flagged(files):
    tmp = files[0]
    code = drift(*all_flags(files, tmp / "reports", "--name", "all-flags", "--chunk-rows", "100", "--seed", "7"))
    return code, tmp / "reports" / "all-flags"


def test_renamed_columns_are_read_and_ids_exported(flagged):
    code, folder = flagged
    assert code == 1  # drift and alerts
    result = record(folder)
    assert result["rows_read"] == 300 and result["config"]["id_field"] == "rid"
    exported = pd.read_json(folder / "drifted_items.jsonl", lines=True)
    assert exported["item_id"].str.startswith("req-").all()  # --id-field: the log's request ids
    flagged_windows = len(result["flagged_windows"])
    assert 1 <= flagged_windows and len(exported) <= 3 * flagged_windows  # --export-per-window 3
    assert set(result["quality"][0]) >= {"score", "format_mismatch_rate"}  # --judge-field, --response-field


def test_time_zone_window_correction_and_alpha_are_applied(flagged):
    result = record(flagged[1])
    # --timezone, --window day: each window is a Tokyo calendar day (its first row, in Tokyo, is on that
    # day), so three UTC days of traffic touch four of them
    firsts = [pd.Timestamp(w["start"]).tz_convert("Asia/Tokyo").strftime("%Y-%m-%d") for w in result["windows"]]
    assert firsts == [w["window"] for w in result["windows"]] and len(firsts) == 4
    assert "Holm" in result["method"] and "alpha = 0.01" in result["method"]  # --correction, --alpha
    assert {t["signal"] for t in result["tests"]} == {"length", "language", "vocabulary"}  # --signals
    assert all(w["tested"] for w in result["windows"] if w["rows"] >= 5)  # --min-window-rows 5


def test_alerts_format_and_retirement_watch(flagged):
    result = record(flagged[1])
    messages = " ".join(a["message"] for a in result["alerts"])
    assert "score" in messages  # --alert score:min=4.5 (the synthetic judge averages about 4.2)
    assert all(q["format_mismatch_rate"] == 1.0 for q in result["quality"])  # --expected-format json: all plain
    [old] = [r for r in result["retirement"] if r["model"] == "litellm/openai/old-model"]  # --model, --lifecycle-file
    assert old["days_left"] == 61  # --today 2026-10-01 to 2026-12-01
    assert "old-model" in messages  # within --warn-days 400


def test_chunking_changes_nothing_and_the_seed_picks_the_export(files, flagged):
    _, first = flagged
    out = files[0] / "reports"
    assert drift(*all_flags(files, out, "--name", "other-seed", "--seed", "8")) == 1  # default chunks of 10000
    a, b = record(first), record(out / "other-seed")
    assert a["tests"] == b["tests"] and a["windows"] == b["windows"]  # --chunk-rows 100 read the same log
    ids = [set(pd.read_json(f / "drifted_items.jsonl", lines=True)["item_id"]) for f in (first, out / "other-seed")]
    assert ids[0] != ids[1]  # --seed: another uniform sample of the drifted items
    assert not (first / "report.html").exists()  # --no-report


def test_gaps_responses_embeddings_params_and_p(files, tmp_path, capsys):
    _, reference, _, gapped = files
    params = tmp_path / "drift.toml"
    params.write_text(f'reference = "{reference}"\nalpha = 0.2\nwindow = "day"\n', encoding="utf-8")
    common = [str(gapped), "--params", str(params), "-p", "alpha", "0.02", "--reports-dir", str(tmp_path),
              "--no-report", "--no-responses", "--no-embeddings"]
    assert drift(*common, "--name", "gaps") == 3  # an empty day between the first and the last
    assert "empty" in capsys.readouterr().err
    assert drift(*common, "--name", "gaps", "--allow-gaps") in (0, 1)
    result = record(tmp_path / "gaps")
    assert "alpha = 0.02" in result["method"]  # -p over the file
    assert {t["signal"] for t in result["tests"]} == {"length", "language", "vocabulary"}  # --no-embeddings
    assert result["config"]["response_field"] is None and not any(q.get("responses") for q in result["quality"])
    assert [w["window"] for w in result["windows"]] == ["2026-10-05", "2026-10-07"]  # went on over the gap


def test_row_windows_smaller_than_min_window_rows_are_shown_not_tested(files, tmp_path):
    _, reference, _, gapped = files
    code = drift(str(gapped), "--reference", str(reference), "--window", "100", "--min-window-rows", "150",
                 *FAST, "--reports-dir", str(tmp_path), "--name", "rows", "--no-report")
    result = record(tmp_path / "rows")
    assert result["windows"] and all(w["rows"] <= 100 and not w["tested"] for w in result["windows"])
    assert result["tests"] == [] or all(not t["flagged"] for t in result["tests"])
    assert code == 0 and result["drift"] is False
