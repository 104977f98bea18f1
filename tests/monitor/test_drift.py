"""run_drift end to end on files: injected drift is found where it is and nowhere else, flagged
windows export their drifted items as a dataset, quality alerts and the retirement watch fire, and
bad input (an empty window) names file, row and field."""
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from tests.monitor._data import config, write_log, write_reference
from workbench.task.dataset import load_items
from workbench.errors import InputError
from workbench.monitor import synthetic as syn
from workbench.monitor.run import run_drift, run_for_report

CLEAN_DAYS = ["2026-10-05", "2026-10-06", "2026-10-07"]
DRIFT_DAYS = ["2026-10-08", "2026-10-09", "2026-10-10"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return write_reference(tmp_path_factory.mktemp("ref"), n=400)


@pytest.mark.parametrize("kind, share, signal", [("language", 0.3, "language"), ("product", 0.3, "vocabulary"),
                                                 ("length", 1.0, "length")])
def test_injected_drift_is_flagged_from_its_first_day_only(tmp_path, reference, kind, share, signal):
    log = write_log(tmp_path, n=1200, days=6, drifts=[syn.Drift(kind, 0.5, share)])
    result = run_drift(config(tmp_path, reference, log))
    windows = result.windows.set_index("window")
    assert windows.loc[DRIFT_DAYS, "flagged"].all(), result.summary_lines()
    assert not windows.loc[CLEAN_DAYS, "flagged"].any(), result.summary_lines()
    for day in DRIFT_DAYS:
        assert signal in windows.loc[day, "flagged_signals"].split(",")
    assert result.exit_code == 1 and result.drift

    items = result.drifted_items  # distinct inputs: the first window may hold every drifted text
    assert set(items["window"]) <= set(DRIFT_DAYS) and items["window"].iloc[0] == DRIFT_DAYS[0]
    carrying = items[items["drift_signals"].str.contains(signal)]
    assert len(carrying) >= 0.5 * len(items)
    if kind == "language":
        assert set(carrying["language"]) <= {"fr", "de", "es", "pt"} and len(set(carrying["language"])) >= 3
        tests = result.tests.set_index(["window", "signal"])
        assert "fr" in tests.loc[(DRIFT_DAYS[0], "language"), "evidence"]
    if kind == "product":
        # most carry the new product name; a few hold another new word the drift brought ("broken")
        assert carrying["new_terms"].str.contains("AeroKite").mean() >= 0.9
        new_terms = result.new_terms[result.new_terms["window"].isin(DRIFT_DAYS)]
        assert new_terms.sort_values("items").iloc[-1]["term"] == "AeroKite"
    if kind == "length":
        length = result.windows.set_index("window")["median_chars"]
        assert length[DRIFT_DAYS].mean() >= 1.8 * result.reference["median_chars"]
        assert (carrying["input_chars"] > np.percentile([len(t) for t in load_items(reference)["input"]], 95)).all()


def test_drifted_items_are_a_dataset_for_generate(tmp_path, reference):
    log = write_log(tmp_path, n=1200, days=6, drifts=[syn.Drift("product", 0.5, 0.3), syn.Drift("language", 0.5, 0.3)])
    out = tmp_path / "reports" / "drift"
    result = run_for_report(config(tmp_path, reference, log, output_dir=str(out), export_per_window=40))
    items = load_items(out / "drifted_items.jsonl")  # the project's own dataset loader
    assert len(items) == len(result.drifted_items) and 40 <= len(items) <= 120
    assert items["item_id"].is_unique and items["input"].str.len().gt(0).all()
    assert set(items.columns) >= {"window", "drift_signals", "language", "new_terms", "source_row", "model"}
    log_rows = pd.read_json(log, lines=True)
    for _, item in items.head(10).iterrows():
        assert log_rows.iloc[int(item["source_row"]) - 1]["input"] == item["input"]  # rows are file lines
    payload = json.loads((out / "drift.json").read_text(encoding="utf-8"))
    assert payload["status"] == "ok" and payload["exit_code"] == 1 and payload["drifted_items"]["rows"] == len(items)
    assert [w["window"] for w in payload["flagged_windows"]] == DRIFT_DAYS
    assert "Benjamini-Hochberg" in payload["method"]


def test_no_drift_exits_0_and_exports_nothing(tmp_path, reference):
    log = write_log(tmp_path, n=900, days=6, seed=3)
    result = run_drift(config(tmp_path, reference, log))
    assert not result.drift and not result.alert and result.exit_code == 0
    assert result.drifted_items.empty and len(result.tests) == 6 * 3
    assert result.tests["q_value"].min() > 0.05


def test_a_reference_too_small_to_tell_is_said_beside_no_drift_found(tmp_path):
    """32 reference items against a log with a new product in a quarter of its items: whatever the
    tests say, "no input drift found" alone would be a false comfort."""
    small = write_reference(tmp_path, n=32)
    log = write_log(tmp_path, n=600, days=3, drifts=[syn.Drift("product", 0.0, 0.27)])
    result = run_drift(config(tmp_path, small, log))
    warning = next(w for w in result.warnings if "reference has only 32 inputs" in w)
    assert "too few to tell drift from chance" in warning and "at least 100 inputs" in warning
    if not result.drift:
        assert "no input drift found, but the reference (32 inputs) is too small to tell" in result.summary_lines()
    big = run_drift(config(tmp_path, write_reference(tmp_path, n=400), write_log(tmp_path, n=600, days=3, seed=3)))
    assert not any("reference has only" in w for w in big.warnings)
    assert "no input drift found" in big.summary_lines()


def test_holm_flags_a_subset_of_bh(tmp_path, reference):
    log = write_log(tmp_path, n=1200, days=6, drifts=[syn.Drift("product", 0.5, 0.08)])
    bh = run_drift(config(tmp_path, reference, log))
    holm = run_drift(config(tmp_path, reference, log, correction="holm"))
    assert set(holm.flagged_windows()["window"]) <= set(bh.flagged_windows()["window"])
    assert "Holm" in holm.method and (holm.tests["q_value"] >= bh.tests["q_value"] - 1e-12).all()


def test_quality_alerts_fire_in_the_windows_that_cross_a_threshold(tmp_path, reference):
    log = write_log(tmp_path, n=1200, days=6, drifts=[syn.Drift("refusal", 5 / 6, 0.4), syn.Drift("wrong_language", 0.5, 0.5)])
    result = run_drift(config(tmp_path, reference, log, quality_alerts={"judge_score": {"min": 3.8}}))
    alerts = result.alerts
    assert set(alerts[alerts["metric"] == "refusal_rate"]["window"]) == {"2026-10-10"}
    assert set(alerts[alerts["metric"] == "wrong_language_rate"]["window"]) == set(DRIFT_DAYS)
    assert "2026-10-10" in set(alerts[alerts["metric"] == "judge_score"]["window"])
    assert not alerts["window"].isin(CLEAN_DAYS).any()
    assert not result.drift and result.exit_code == 1  # inputs unchanged: an alert alone sets exit 1
    quality = result.quality.set_index("window")
    assert quality.loc["2026-10-10", "refusal_rate"] == pytest.approx(0.4, abs=0.12)
    assert quality.loc[CLEAN_DAYS, "refusal_rate"].max() == 0
    examples = result.quality_examples
    refusals = examples[examples["kind"] == "refusal"]["detail"]
    assert refusals.str.contains("can't help|お答えできません").all() and len(refusals) >= 1
    with pytest.raises(InputError, match="unknown metric 'toxicity'"):
        config(tmp_path, reference, log, quality_alerts={"toxicity": {"max": 0.1}})


def test_expected_format_and_missing_optional_columns(tmp_path, reference):
    log = write_log(tmp_path, n=400, days=2)
    result = run_drift(config(tmp_path, reference, log, expected_format="json", judge_fields=["judge_score", "rubric"]))
    assert (result.alerts["metric"] == "format_mismatch_rate").sum() == 2  # plain answers, JSON expected
    assert any("'rubric'" in w for w in result.warnings)
    plain = log.with_name("plain.jsonl")
    rows = pd.read_json(log, lines=True)[["timestamp", "input"]]
    syn.write_jsonl(rows, plain)
    bare = run_drift(config(tmp_path, reference, plain))
    assert bare.quality.empty and any("no 'response' field" in w for w in bare.warnings)
    assert bare.retirement.empty and any("retirement watch has no model" in w for w in bare.warnings)


def test_retirement_watch_alerts_for_models_in_use_only(tmp_path, reference):
    lifecycle = tmp_path / "lifecycle.toml"
    lifecycle.write_text('[models."api/old"]\nretires = 2026-03-31\n[models."api/new"]\nretires = 2027-01-15\n'
                         '[models."api/later"]\nretires = 2028-01-01\n', encoding="utf-8")
    log = write_log(tmp_path, n=600, days=3, models=["api/old", "api/new"], switch_at=0.5)
    result = run_drift(config(tmp_path, reference, log, lifecycle_file=str(lifecycle), today="2026-12-01",
                              models=["api/later"]))
    watch = result.retirement.set_index("model")
    assert watch.loc["api/old", "in_use"] == False and watch.loc["api/old", "status"].startswith("RETIRED")  # noqa: E712
    assert watch.loc["api/new", "in_use"] == True and watch.loc["api/new", "days_left"] == 45  # noqa: E712
    assert watch.loc["api/later", "in_use"] == True and watch.loc["api/later", "rows"] == 0  # noqa: E712
    retire = result.alerts[result.alerts["kind"] == "retirement"]
    assert retire["message"].str.contains("api/new").tolist() == [True]
    assert result.exit_code == 1
    quiet = run_drift(config(tmp_path, reference, log, lifecycle_file=str(lifecycle), today="2026-10-01",
                             retirement_warn_days=30))
    assert not (quiet.alerts["kind"] == "retirement").any()


def test_an_empty_window_names_file_row_and_field(tmp_path, reference):
    rows = syn.production_log(700, seed=4, days=7)
    stamps = pd.to_datetime(rows["timestamp"])
    rows = rows[stamps.dt.day != 8].reset_index(drop=True)  # 2026-10-08: nobody logged anything
    log = syn.write_jsonl(rows, tmp_path / "gap.jsonl")
    with pytest.raises(InputError) as err:
        run_drift(config(tmp_path, reference, log))
    problem = err.value.problems[0]
    first_after = int((pd.to_datetime(rows["timestamp"]).dt.day < 8).sum()) + 1
    assert (problem.file, problem.row, problem.field) == (str(log), first_after, "timestamp")
    assert "window 2026-10-08 is empty" in problem.message and "allow_gaps" in problem.message
    result = run_drift(config(tmp_path, reference, log, allow_gaps=True))
    assert "2026-10-08" not in set(result.windows["window"]) and len(result.windows) == 6


def test_small_windows_are_shown_not_tested_and_row_windows_work(tmp_path, reference):
    log = write_log(tmp_path, n=500, days=5, drifts=[syn.Drift("language", 0.6, 0.5)])
    result = run_drift(config(tmp_path, reference, log, window="100 rows", min_window_rows=30))
    assert result.windows["window"].tolist() == [f"rows {k}-{k + 99}" for k in range(1, 500, 100)]
    assert result.windows["flagged"].tolist() == [False, False, False, True, True]
    tiny = run_drift(config(tmp_path, reference, log, window="day", min_window_rows=150))
    assert (~tiny.windows["tested"]).all() and tiny.tests.empty and not tiny.drift
    assert any("not tested" in w for w in tiny.warnings)


def test_a_log_out_of_time_order_is_reported_not_silently_merged(tmp_path, reference):
    rows = syn.production_log(800, seed=6, days=8)
    late = rows.iloc[:20].copy()  # day-one rows appended at the end: six windows after their own
    log = syn.write_jsonl(pd.concat([rows.iloc[20:], late], ignore_index=True), tmp_path / "late.jsonl")
    result = run_drift(config(tmp_path, reference, log, chunk_rows=100))  # windows close between chunks
    assert result.windows.set_index("window").loc["2026-10-05", "late_rows"] == 20
    assert any("20 rows arrived after their window" in w for w in result.warnings)


def test_csv_log_with_other_column_names(tmp_path, reference):
    rows = syn.production_log(600, seed=8, days=3, drifts=[syn.Drift("product", 0.66, 0.4)])
    rows = rows.rename(columns={"timestamp": "ts", "input": "prompt", "response": "completion", "request_id": "id"})
    path = tmp_path / "log.csv"
    rows.to_csv(path, index=False)
    result = run_drift(config(tmp_path, reference, path, timestamp_field="ts", input_field="prompt",
                              response_field="completion", id_field="id"))
    assert result.flagged_windows()["window"].tolist() == ["2026-10-07"]
    assert result.drifted_items["item_id"].str.startswith("req-8-").all()


def test_config_errors_name_the_parameter(tmp_path):
    from workbench.monitor.config import DriftConfig

    for params, expected in (({"window": "month"}, "parameter 'window'"), ({"signals": ["tone"]}, "unknown signal"),
                             ({"today": "tomorrow"}, "not a date"), ({"alpha": 1.5}, "alpha"),
                             ({"min_effect": {"tone": 0.1}}, "unknown signal")):
        with pytest.raises(InputError, match=expected):
            DriftConfig.from_parameters(params)
    cfg = DriftConfig(reference="nope.jsonl", production="missing.jsonl", project_dir=str(tmp_path))
    with pytest.raises(InputError) as err:
        run_drift(cfg)
    assert "parameter 'reference': nope.jsonl not found" in str(err.value)
    assert "parameter 'production': missing.jsonl not found" in str(err.value)
    assert dt.date.fromisoformat(DriftConfig(today="2026-12-01").today_date().isoformat())
