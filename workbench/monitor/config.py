"""`DriftConfig`: every parameter of a drift run, equal to the drift notebook's parameters.

The CLI (`workbench drift`), the notebook and a user in JupyterLab build this one object, so there is
one set of defaults. Relative paths resolve against `project_dir` (the CLI's current folder, or the
project root found upwards from a notebook); `bundled:NAME` names a data file shipped in the package.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, field_validator, model_validator

from workbench.errors import InputError
from workbench.project.params import ProjectParameters, build

SIGNALS = ("length", "language", "vocabulary", "embedding")
DEFAULT_MIN_EFFECT: dict[str, float] = {"length": 0.1, "language": 0.05, "vocabulary": 0.02, "embedding": 0.0}
# Quality metrics a threshold can name; judge fields are added by name (their mean per window).
QUALITY_METRICS = ("empty_response_rate", "refusal_rate", "wrong_language_rate", "format_mismatch_rate",
                   "median_response_chars", "p90_response_chars")
DEFAULT_QUALITY_ALERTS: dict[str, dict[str, float]] = {
    "empty_response_rate": {"max": 0.02},
    "refusal_rate": {"max": 0.10},
    "wrong_language_rate": {"max": 0.10},
}
REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")



def iso_date(value: str | None) -> str | None:
    """A `today` parameter: None, or a date written YYYY-MM-DD (else a ValueError naming it)."""
    if value is not None:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a date (YYYY-MM-DD)") from None
    return value

class DriftConfig(ProjectParameters):
    """Everything a drift run depends on. Unknown fields and wrong types are errors."""

    report_name: str = Field("drift", description="folder name under reports/")
    reference: str = Field("bundled:support_reviews.jsonl", description="the dataset the migration was validated on "
                           "(jsonl, csv, parquet or a datasets folder with item_id and input)")
    production: str = Field("bundled:drift_demo_production.jsonl.gz", description="production log: .jsonl, .csv "
                            "(optionally .gz) or .parquet, one row per request, with a timestamp")
    reference_input_field: str = Field("input", description="the reference dataset's input column")
    timestamp_field: str = Field("timestamp", description="the log's timestamp column: ISO 8601 (no zone means UTC), "
                                 "epoch seconds or milliseconds, or a parquet timestamp")
    input_field: str = Field("input", description="the log's input column: text, or a chat message list "
                             "(the last user message is used)")
    response_field: str | None = Field("response", description="the log's response column (None: no quality checks; "
                                       "a column the log lacks is a warning)")
    model_field: str | None = Field("model", description="the log's model column (models in use, retirement watch)")
    id_field: str | None = Field(None, description="the log's request id column (exported items keep it as item_id)")
    judge_fields: list[str] = Field(default_factory=lambda: ["judge_score"], description="numeric judge-score "
                                    "columns, averaged per window (a column the log lacks is a warning)")
    outcome_fields: list[str] = Field(default_factory=list, description="numeric business-outcome columns (a "
                                      "satisfaction score, an escalation flag, thumbs-up as true/false): per-window "
                                      "mean, 95% CI and a change test against the first window; name one in "
                                      "quality_alerts to alert on it")
    window: str = Field("week", description="'day', 'week' or 'N rows' (a week evens out weekday patterns)")
    timezone: str = Field("UTC", description="where days and weeks begin (IANA name)")
    signals: list[str] = Field(default_factory=lambda: list(SIGNALS), description="input drift tests to run")
    alpha: float = Field(0.05, description="error rate controlled across all windows and tests")
    correction: Literal["bh", "holm"] = Field("bh", description="bh: Benjamini-Hochberg (false discovery rate); "
                                              "holm: Holm (family-wise error rate)")
    min_effect: dict[str, float] = Field(default_factory=dict, description="smallest effect that counts as drift, "
                                         "per signal (merged over the defaults)")
    min_window_rows: int = Field(30, description="windows with fewer rows are shown but not tested")
    allow_gaps: bool = Field(False, description="False: a window with no rows between the first and last is an error")
    min_term_count: int = Field(5, description="a new term must appear in at least this many items of a window")
    embedding_sample: int = Field(200, description="items embedded per window (uniform sample)")
    embedding_reference_sample: int = Field(500, description="reference items embedded")
    permutations: int = Field(500, description="permutations for the embedding test's p-value")
    quality_alerts: dict[str, dict[str, float] | None] = Field(default_factory=dict, description="quality thresholds "
                                                               "{metric: {'max': x} or {'min': y}}, merged over the "
                                                               "defaults; None switches one off")
    expected_format: str | None = Field(None, description="the response format the application expects "
                                        "(json, plain, bullet_list, ...); None: format not checked")
    models: list[str] = Field(default_factory=list, description="models in use besides those the log names")
    lifecycle_file: str | None = Field("bundled:model_lifecycle.toml", description="release and retirement dates")
    retirement_warn_days: int = Field(90, description="alert when a model in use retires within this many days")
    today: str | None = Field(None, description="YYYY-MM-DD for the retirement watch (None: today)")
    export_per_window: int = Field(100, description="drifted items exported per flagged window (uniform sample)")
    chunk_rows: int = Field(10000, description="rows read at a time (memory does not grow with the log)")
    seed: int = Field(0, description="fixes every sample and permutation")
    project_dir: str | None = Field(None, description="folder relative paths resolve against (None: the project root)")
    output_dir: str | None = Field(None, description="where drift.json and drifted_items.jsonl go (None: not written)")

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        from workbench.monitor.windows import WindowSpec  # heavy (pandas): `workbench --help` imports this module

        WindowSpec.parse(value)  # ValueError names what is wrong
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from workbench.monitor.windows import WindowSpec  # heavy (pandas), as above

        WindowSpec.parse("day", value)
        return value

    @field_validator("signals")
    @classmethod
    def _signals(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in SIGNALS]
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {list(SIGNALS)}")
        return list(dict.fromkeys(value))

    @field_validator("min_effect")
    @classmethod
    def _min_effect(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {list(SIGNALS)}")
        return value

    @field_validator("today")
    @classmethod
    def _today(cls, value: str | None) -> str | None:
        return iso_date(value)

    @model_validator(mode="after")
    def _check(self) -> "DriftConfig":
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")
        for name, low in (("min_window_rows", 2), ("min_term_count", 1), ("embedding_sample", 10),
                          ("embedding_reference_sample", 10), ("permutations", 19), ("chunk_rows", 100),
                          ("export_per_window", 0), ("retirement_warn_days", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}")
        if not REPORT_NAME.fullmatch(self.report_name):
            raise ValueError(f"report_name '{self.report_name}' must be letters, digits, '.', '_' or '-'")
        self.alert_thresholds()  # ValueError on an unknown metric or a bad bound
        return self

    # ---- derived values --------------------------------------------------------------------------
    def effect_floor(self, signal: str) -> float:
        return float({**DEFAULT_MIN_EFFECT, **self.min_effect}[signal])

    def window_spec(self):
        from workbench.monitor.windows import WindowSpec  # heavy (pandas), as above

        return WindowSpec.parse(self.window, self.timezone)

    def today_date(self) -> dt.date:
        return dt.date.fromisoformat(self.today) if self.today else dt.date.today()

    def alert_thresholds(self) -> dict[str, dict[str, float]]:
        """{metric: {"min": x, "max": y}} after merging over the defaults (None entries removed)."""
        merged: dict[str, Any] = {**DEFAULT_QUALITY_ALERTS, **self.quality_alerts}
        known = set(QUALITY_METRICS) | set(self.judge_fields) | set(self.outcome_fields)
        out: dict[str, dict[str, float]] = {}
        for metric, bounds in merged.items():
            if bounds is None:
                continue
            if metric not in known:
                raise ValueError(f"quality_alerts: unknown metric '{metric}'; known: "
                                 f"{', '.join(sorted(known))} (judge and outcome fields count once listed in judge_fields or outcome_fields)")
            if not bounds or set(bounds) - {"min", "max"}:
                raise ValueError(f"quality_alerts.{metric}: give {{'max': x}} and/or {{'min': y}}, got {bounds}")
            if metric == "format_mismatch_rate" and not self.expected_format:
                raise ValueError("quality_alerts.format_mismatch_rate needs expected_format")
            out[metric] = {k: float(v) for k, v in bounds.items()}
        if self.expected_format and "format_mismatch_rate" not in merged:
            out["format_mismatch_rate"] = {"max": 0.05}
        return out

    def preflight(self) -> None:
        """Cheap checks before anything is read or a kernel starts: the files exist."""
        problems = []
        for name in ("reference", "production"):
            value = getattr(self, name)
            if not self.path(value).exists():
                problems.append(f"parameter '{name}': {value} not found (looked in {self.base_dir})")
        if self.lifecycle_file and not self.path(self.lifecycle_file).is_file():
            problems.append(f"parameter 'lifecycle_file': {self.lifecycle_file} not found")
        if problems:
            raise InputError(problems)


def build_config(params_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                 base: str | Path | None = None) -> DriftConfig:
    """Defaults, then the parameters file, then overrides (`-p` and flags); see `params.build`."""
    return build(DriftConfig, params_file, overrides, base)
