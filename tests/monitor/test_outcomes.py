"""Business outcomes per window: the interval and the change test match scipy on the raw values, a
shift injected on the last day is found (and only there), a threshold is an alert, a bad value is
located by row and field."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.monitor._data import config, write_log, write_reference
from workbench.errors import InputError
from workbench.monitor.outcomes import Running, change_p_value, interval
from workbench.monitor.run import run_for_report


def test_running_sums_match_scipy_on_the_raw_values():
    rng = np.random.default_rng(0)
    a, b = rng.normal(4.2, 0.6, 150), rng.normal(4.0, 0.9, 80)
    ra, rb = Running(), Running()
    ra.add(np.concatenate([a[:50], [np.nan]]))
    ra.add(a[50:])
    rb.add(b)
    assert ra.n == 150 and ra.mean == pytest.approx(a.mean()) and ra.sd == pytest.approx(a.std(ddof=1))
    low, high = interval(ra)
    expected = stats.t.interval(0.95, 149, loc=a.mean(), scale=stats.sem(a))
    assert (low, high) == pytest.approx(expected)
    assert change_p_value(ra, rb) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    constant = Running()
    constant.add(np.ones(10))
    assert change_p_value(constant, constant) == 1.0 and np.isnan(change_p_value(Running(), constant))


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outcomes")
    reference = write_reference(tmp, n=300)
    path = write_log(tmp, n=900, days=3, seed=5)
    frame = pd.read_json(path, lines=True, dtype=False)
    rng = np.random.default_rng(1)
    last_day = frame["timestamp"].astype(str) >= "2026-10-07"
    frame["csat"] = np.where(last_day, rng.normal(3.6, 0.7, len(frame)), rng.normal(4.4, 0.7, len(frame))).round(1)
    frame["escalated"] = rng.random(len(frame)) < np.where(last_day, 0.25, 0.05)  # a true/false flag
    frame.to_json(path, orient="records", lines=True, force_ascii=False)
    return tmp, reference, path, frame


def test_a_shift_on_the_last_day_is_found_and_a_threshold_alerts(logged):
    tmp, reference, path, frame = logged
    cfg = config(tmp, reference, path, outcome_fields=["csat", "escalated"], judge_fields=[],
                 quality_alerts={"escalated": {"max": 0.15}}, output_dir=str(tmp / "out"))
    result = run_for_report(cfg)
    out = result.outcomes.set_index(["window", "outcome"])
    assert list(result.outcomes["window"].unique()) == ["2026-10-05", "2026-10-06", "2026-10-07"]
    day3 = frame[frame["timestamp"].astype(str) >= "2026-10-07"]
    assert out.loc[("2026-10-07", "csat"), "mean"] == pytest.approx(day3["csat"].mean())
    assert out.loc[("2026-10-07", "escalated"), "mean"] == pytest.approx(day3["escalated"].mean())
    assert out.loc[("2026-10-07", "csat"), "changed"] and out.loc[("2026-10-07", "escalated"), "changed"]
    assert not out.loc[("2026-10-06", "csat"), "changed"] and np.isnan(out.loc[("2026-10-05", "csat"), "p_value"])
    assert (out["baseline_window"] == "2026-10-05").all()
    assert out.loc[("2026-10-07", "csat"), "ci_low"] < out.loc[("2026-10-07", "csat"), "mean"] < \
        out.loc[("2026-10-07", "csat"), "ci_high"]
    outcome_alerts = result.alerts[result.alerts["kind"] == "outcome"]
    assert outcome_alerts["window"].tolist() == ["2026-10-07"] and outcome_alerts["metric"].tolist() == ["escalated"]
    assert result.exit_code == 1 and any(line.startswith("OUTCOME 2026-10-07: csat") for line in result.summary_lines())
    written = json.loads((tmp / "out" / "drift.json").read_text(encoding="utf-8"))
    assert {o["outcome"] for o in written["outcomes"]} == {"csat", "escalated"}


def test_a_value_that_is_not_a_number_is_located(logged, tmp_path):
    tmp, reference, path, frame = logged
    bad = frame.copy()
    bad["csat"] = bad["csat"].astype(object)
    bad.loc[7, "csat"] = "great"
    broken = tmp_path / "broken.jsonl"
    bad.to_json(broken, orient="records", lines=True, force_ascii=False)
    with pytest.raises(InputError, match=r"row 8, field 'csat': outcome must be a number or true/false, got 'great'"):
        run_for_report(config(tmp, reference, broken, outcome_fields=["csat"]))
    with pytest.raises(InputError, match="unknown metric 'nps'"):
        config(tmp, reference, path, quality_alerts={"nps": {"min": 1}})
