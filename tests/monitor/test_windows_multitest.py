"""Windows as integer keys (days, ISO weeks, N rows) and the multiple-testing corrections."""
import numpy as np
import pandas as pd
import pytest

from workbench.monitor import multitest
from workbench.monitor.windows import WindowSpec


def test_days_and_weeks_in_a_time_zone():
    stamps = pd.Series(pd.to_datetime(["2026-11-01T23:30:00Z", "2026-11-02T00:30:00Z", "2026-11-08T23:59:00Z",
                                       "2026-11-09T00:00:00Z"], utc=True))
    ordinals = np.arange(1, 5)
    day = WindowSpec.parse("day")
    keys = day.keys(stamps, ordinals)
    assert [day.label(k) for k in keys] == ["2026-11-01", "2026-11-02", "2026-11-08", "2026-11-09"]
    week = WindowSpec.parse("week")
    assert [week.label(k) for k in week.keys(stamps, ordinals)] == [
        "2026-W44 (2026-10-26)", "2026-W45 (2026-11-02)", "2026-W45 (2026-11-02)", "2026-W46 (2026-11-09)"]
    tokyo = WindowSpec.parse("day", "Asia/Tokyo")  # 23:30 UTC is already the next morning in Tokyo
    assert [tokyo.label(k) for k in tokyo.keys(stamps, ordinals)][:2] == ["2026-11-02", "2026-11-02"]


def test_row_windows_and_bad_specs():
    spec = WindowSpec.parse("500 rows")
    assert spec.keys(pd.Series(dtype="datetime64[ns, UTC]"), np.array([1, 500, 501, 1000, 1001])).tolist() == [0, 0, 1, 1, 2]
    assert spec.label(1) == "rows 501-1000" and WindowSpec.parse("250").rows == 250
    for bad in ("month", "1 rows", "rows"):
        with pytest.raises(ValueError, match="window"):
            WindowSpec.parse(bad)
    with pytest.raises(ValueError, match="IANA"):
        WindowSpec.parse("day", "Mars/Olympus")


def test_benjamini_hochberg_and_holm_against_hand_computed_values():
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # BH: sorted 0.005,0.01,0.03,0.04,0.5 -> *5/rank = 0.025,0.025,0.05,0.05,0.5 (monotone from the top)
    assert multitest.adjust(p, "bh") == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    # Holm: sorted *(5,4,3,2,1) = 0.025,0.04,0.09,0.08,0.5 -> running max 0.025,0.04,0.09,0.09,0.5
    assert multitest.adjust(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    assert multitest.adjust([], "bh").size == 0
    with pytest.raises(ValueError):
        multitest.adjust([0.2, 1.2], "bh")
    with pytest.raises(ValueError):
        multitest.adjust([0.2], "bonferroni-ish")


def test_bh_keeps_the_chance_of_any_false_flag_under_alpha_for_uniform_p_values():
    rng = np.random.default_rng(0)
    any_flag = np.mean([(multitest.adjust(rng.uniform(size=60), "bh") <= 0.05).any() for _ in range(2000)])
    assert any_flag <= 0.06  # exactly alpha for independent uniform p-values, up to sampling error
    holm_flag = np.mean([(multitest.adjust(rng.uniform(size=60), "holm") <= 0.05).any() for _ in range(2000)])
    assert holm_flag <= 0.06
