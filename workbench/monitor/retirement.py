"""Retirement watch: the models production uses, with their retirement dates from the same lifecycle
data as the migration report (workbench.models.lifecycle: the lifecycle file, then litellm's model map).

A model is "in use" when the log's latest window names it, or the user lists it (`models`). An
alert fires for a model in use that retired already or retires within `warn_days`: time to run the
migration report for its successor.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.models.lifecycle import lookup

COLUMNS = ["model", "in_use", "rows", "first_seen", "last_seen", "released", "retires", "days_left", "status",
           "source", "note"]


def watch(seen: dict[str, dict[str, Any]], listed: list[str], lifecycle_file: Path | None, today: dt.date,
          warn_days: int) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(one row per model, alerts). `seen`: model -> {rows, first_seen, last_seen, in_last_window}."""
    names = list(dict.fromkeys([*listed, *sorted(seen, key=lambda m: -seen[m]["rows"])]))
    if not names:
        return pd.DataFrame(columns=COLUMNS), []
    rows, alerts = [], []
    for entry in lookup(names, lifecycle_file):
        info = seen.get(entry.model, {})
        in_use = entry.model in listed or bool(info.get("in_last_window"))
        left = entry.days_left(today)
        rows.append({"model": entry.model, "in_use": in_use, "rows": int(info.get("rows", 0)),
                     "first_seen": info.get("first_seen"), "last_seen": info.get("last_seen"),
                     "released": entry.released, "retires": entry.retires, "days_left": left,
                     "status": entry.status(today, warn_days), "source": entry.source, "note": entry.note})
        if in_use and left is not None and left <= warn_days:
            alerts.append({"window": None, "kind": "retirement", "metric": "days_left", "value": float(left),
                           "threshold": f"max {warn_days}",
                           "message": f"{entry.model} is in use and {entry.status(today, warn_days).lower()} "
                                      f"(retires {entry.retires.isoformat()}): run the migration report for its successor"})
    return pd.DataFrame(rows, columns=COLUMNS), alerts
