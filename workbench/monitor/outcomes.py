"""Business outcomes beside the model scores: any numeric column of the production log (a
satisfaction score, an escalation flag, a thumbs-up as true/false) tracked per window.

Per window and outcome: rows with a value, the mean with a 95% t-interval, and a change test (Welch's
t-test from the window's sums) against the first window with at least `min_rows` values, the
period the log starts from. The p-values are adjusted across every (window, outcome) test with the
same correction as the drift tests; a window whose adjusted p-value is at or below alpha is marked
changed. Thresholds on the means (`quality_alerts`, e.g. {"escalated": {"max": 0.1}}) are alerts.
Only sums are kept per window, so memory does not grow with the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.monitor import multitest

COLUMNS = ["window", "outcome", "rows", "mean", "ci_low", "ci_high", "baseline_window", "baseline_mean",
           "difference", "p_value", "q_value", "changed"]


@dataclass
class Running:
    """Count, sum and sum of squares of one outcome in one window."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        self.n += int(values.size)
        self.total += float(values.sum())
        self.squares += float((values * values).sum())

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    @property
    def sd(self) -> float:
        if self.n < 2:
            return float("nan")
        variance = (self.squares - self.n * self.mean ** 2) / (self.n - 1)
        return float(np.sqrt(max(variance, 0.0)))


def interval(stats: Running, confidence: float = 0.95) -> tuple[float, float]:
    from scipy import stats as st

    if stats.n < 2:
        return float("nan"), float("nan")
    half = st.t.ppf(0.5 + confidence / 2, stats.n - 1) * stats.sd / np.sqrt(stats.n)
    return stats.mean - half, stats.mean + half


def change_p_value(window: Running, baseline: Running) -> float:
    """Welch's t-test of the two means; 1.0 when both are constant and equal, NaN when too few rows."""
    from scipy import stats as st

    if window.n < 2 or baseline.n < 2:
        return float("nan")
    if window.sd == 0 and baseline.sd == 0:
        return 1.0 if window.mean == baseline.mean else 0.0
    return float(st.ttest_ind_from_stats(window.mean, window.sd, window.n, baseline.mean, baseline.sd, baseline.n,
                                         equal_var=False).pvalue)


def outcome_frame(by_window: list[tuple[str, dict[str, Running]]], names: list[str], correction: str,
                  alpha: float, min_rows: int) -> pd.DataFrame:
    """One row per (window, outcome), windows in log order; the first well-filled window is the baseline."""
    rows: list[dict[str, Any]] = []
    for name in names:
        base_label, base = next(((label, s[name]) for label, s in by_window if name in s and s[name].n >= min_rows),
                                (None, None))
        for label, stats in by_window:
            run = stats.get(name, Running())
            low, high = interval(run)
            tested = base is not None and label != base_label and run.n >= min_rows
            rows.append({"window": label, "outcome": name, "rows": run.n, "mean": run.mean, "ci_low": low,
                         "ci_high": high, "baseline_window": base_label,
                         "baseline_mean": base.mean if base is not None else float("nan"),
                         "difference": run.mean - base.mean if base is not None else float("nan"),
                         "p_value": change_p_value(run, base) if tested else float("nan")})
    frame = pd.DataFrame(rows, columns=COLUMNS[:-2])
    q = np.full(len(frame), np.nan)
    tested = frame["p_value"].notna().to_numpy()
    if tested.any():
        q[tested] = multitest.adjust(frame.loc[tested, "p_value"].to_numpy(dtype=float), correction)
    frame["q_value"] = q
    frame["changed"] = frame["q_value"] <= alpha
    return frame


def outcome_alerts(frame: pd.DataFrame, thresholds: dict[str, dict[str, float]], min_rows: int) -> list[dict[str, Any]]:
    """Threshold alerts on per-window outcome means (windows with fewer than min_rows values skipped)."""
    alerts = []
    for row in frame.itertuples(index=False):
        bounds = thresholds.get(row.outcome)
        if not bounds or row.rows < min_rows:
            continue
        for side, limit in bounds.items():
            if (row.mean > limit) if side == "max" else (row.mean < limit):
                word = "above" if side == "max" else "below"
                alerts.append({"window": row.window, "kind": "outcome", "metric": row.outcome, "value": float(row.mean),
                               "threshold": f"{side} {limit:g}",
                               "message": f"{row.outcome} {row.mean:.3g} (95% CI {row.ci_low:.3g} to {row.ci_high:.3g}) "
                                          f"is {word} the {side} of {limit:g}"})
    return alerts
