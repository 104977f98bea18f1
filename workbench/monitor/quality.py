"""Quality of production responses over time, without references: the same deterministic checks as
the migration report's behavioural diff (format, refusal phrases), language agreement between input
and response, response length, and the mean of any judge-score columns, per window.

An alert fires when a window with at least `min_rows` responses crosses a threshold: these are
operational limits the user sets (e.g. "refusals above 10%"), not tests against the reference, so
they are not part of the multiple-testing correction.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.metrics.behaviour import detect_format, detect_refusal
from workbench.monitor.sketches import hist_quantiles
from workbench.monitor.text import UNDETERMINED, language

_LETTERS = re.compile(r"[^\W\d_]")
MIN_LETTERS_FOR_LANGUAGE = 15  # shorter texts ("OK", "Yes.") are not reliably identified


@dataclass
class QualitySketch:
    responses: int = 0
    empty: int = 0
    refusals: int = 0
    formats: Counter = field(default_factory=Counter)
    language_checked: int = 0
    wrong_language: int = 0
    lengths: Counter = field(default_factory=Counter)
    judges: dict[str, list[float]] = field(default_factory=dict)  # name -> [sum, count]
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, row: int, text: str | None, text_language: str, response: str | None) -> None:
        self.responses += 1
        if response is None:
            self.empty += 1
            self._example("empty_response", row, text, "")
            return
        self.lengths[len(response)] += 1
        self.formats[detect_format(response)] += 1
        refusal = detect_refusal(response)
        if refusal:
            self.refusals += 1
            self._example("refusal", row, text, refusal)
        if (text and text_language != UNDETERMINED and len(_LETTERS.findall(text)) >= MIN_LETTERS_FOR_LANGUAGE
                and len(_LETTERS.findall(response)) >= MIN_LETTERS_FOR_LANGUAGE):
            self.language_checked += 1
            answered_in = language(response)
            if answered_in != text_language:
                self.wrong_language += 1
                self._example("wrong_language", row, text, f"[{answered_in} answer to {text_language}] {response[:200]}")

    def add_judge(self, name: str, value: float) -> None:
        if value == value:  # not NaN
            total = self.judges.setdefault(name, [0.0, 0])
            total[0] += value
            total[1] += 1

    def _example(self, kind: str, row: int, text: str | None, detail: str) -> None:
        bucket = self.examples.setdefault(kind, [])
        if len(bucket) < 3:
            bucket.append({"row": row, "input": (text or "")[:300], "detail": detail[:300]})

    def summary(self, expected_format: str | None, judge_fields: list[str]) -> dict[str, Any]:
        with_text = self.responses - self.empty
        q50, q90 = hist_quantiles(self.lengths, [0.5, 0.9])
        out: dict[str, Any] = {
            "responses": self.responses,
            "empty_response_rate": self.empty / self.responses if self.responses else np.nan,
            "refusal_rate": self.refusals / with_text if with_text else np.nan,
            "wrong_language_rate": self.wrong_language / self.language_checked if self.language_checked else np.nan,
            "format_mismatch_rate": (1 - self.formats[expected_format] / with_text
                                     if expected_format and with_text else np.nan),
            "median_response_chars": q50,
            "p90_response_chars": q90,
            "top_format": self.formats.most_common(1)[0][0] if self.formats else None,
        }
        for name in judge_fields:
            total, count = self.judges.get(name, [0.0, 0])
            out[name] = total / count if count else np.nan
            out[f"{name}_n"] = count
        return out


def check_alerts(window: str, summary: dict[str, Any], thresholds: dict[str, dict[str, float]],
                 min_rows: int) -> list[dict[str, Any]]:
    """Alerts for one window's quality summary (windows with too few responses raise none)."""
    alerts = []
    if summary.get("responses", 0) < min_rows:
        return alerts
    for metric, bounds in thresholds.items():
        value = summary.get(metric)
        if value is None or value != value:
            continue
        count = summary.get(f"{metric}_n")
        if count is not None and count < min_rows:
            continue  # a judge mean over a handful of scored rows is noise
        for side, limit in bounds.items():
            crossed = value > limit if side == "max" else value < limit
            if crossed:
                word = "above" if side == "max" else "below"
                alerts.append({"window": window, "kind": "quality", "metric": metric, "value": float(value),
                               "threshold": f"{side} {limit:g}",
                               "message": f"{metric} {_fmt(metric, value)} is {word} the {side} of {_fmt(metric, limit)}"})
    return alerts


def _fmt(metric: str, value: float) -> str:
    return f"{value:.1%}" if metric.endswith("_rate") else f"{value:.3g}"
