"""Time windows: calendar days, ISO weeks (from Monday) in a time zone, or blocks of N rows.

A window is an integer key, so windows sort, and a missing key between the first and the last is an
empty window (a gap in the log). Labels and bounds are derived from the key.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

_ROWS = re.compile(r"^\s*(\d+)\s*(?:rows?)?\s*$")
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class WindowSpec:
    kind: str  # "day" | "week" | "rows"
    rows: int | None = None
    timezone: str = "UTC"

    @classmethod
    def parse(cls, value: str | int, timezone: str = "UTC") -> "WindowSpec":
        """'day', 'week', 'N rows' (or just N). ValueError names what is wrong."""
        text = str(value).strip().lower()
        if text in ("day", "daily", "1d"):
            spec = cls("day", None, timezone)
        elif text in ("week", "weekly", "1w"):
            spec = cls("week", None, timezone)
        else:
            match = _ROWS.match(text)
            if not match:
                raise ValueError(f"window '{value}': use 'day', 'week' or 'N rows'")
            if int(match.group(1)) < 2:
                raise ValueError(f"window '{value}': a window needs at least 2 rows")
            spec = cls("rows", int(match.group(1)), timezone)
        if spec.kind != "rows":
            try:
                pd.Timestamp("2026-01-01", tz=timezone)
            except Exception:
                raise ValueError(f"timezone '{timezone}' is not an IANA time zone name (e.g. UTC, Europe/Paris)") from None
        return spec

    @property
    def by_time(self) -> bool:
        return self.kind != "rows"

    def keys(self, timestamps: pd.Series, ordinals: np.ndarray) -> np.ndarray:
        """Window key per row: days or weeks since 1970 in the time zone, or (ordinal-1) // N."""
        if self.kind == "rows":
            return (np.asarray(ordinals, dtype=np.int64) - 1) // int(self.rows)
        local = timestamps.dt.tz_convert(self.timezone).dt.tz_localize(None)
        days = local.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
        return days if self.kind == "day" else (days + 3) // 7  # 1970-01-01 was a Thursday

    def start_date(self, key: int) -> dt.date | None:
        if self.kind == "day":
            return _EPOCH + dt.timedelta(days=int(key))
        if self.kind == "week":
            return _EPOCH + dt.timedelta(days=int(key) * 7 - 3)
        return None

    def label(self, key: int) -> str:
        if self.kind == "day":
            return self.start_date(key).isoformat()
        if self.kind == "week":
            start = self.start_date(key)
            year, week, _ = start.isocalendar()
            return f"{year}-W{week:02d} ({start.isoformat()})"
        first = int(key) * int(self.rows) + 1
        return f"rows {first}-{first + int(self.rows) - 1}"

    def describe(self) -> str:
        if self.kind == "rows":
            return f"blocks of {self.rows} rows in file order"
        unit = "calendar day" if self.kind == "day" else "ISO week (Monday to Sunday)"
        return f"{unit}, {self.timezone}"
