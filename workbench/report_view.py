"""HTML for the report's static sections. Every value that can hold model output is escaped:
model text is untrusted and the HTML report must never run it."""
from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence

import pandas as pd

VERDICT_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700", "ERROR": "#6e7781"}


def esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(value)


def table(frame: pd.DataFrame, caption: str | None = None, float_digits: int = 3, max_rows: int = 200) -> str:
    """A DataFrame as an escaped HTML table (pandas escapes cell text by default; we keep it on)."""
    if frame is None or frame.empty:
        return f"<p><em>{esc(caption or 'Nothing to show')}: no rows.</em></p>"
    shown = frame.head(max_rows)
    body = shown.to_html(index=False, escape=True, na_rep="—", float_format=lambda v: f"{v:.{float_digits}f}",
                         border=0, classes="wb-table")
    cap = f"<h4>{esc(caption)}</h4>" if caption else ""
    more = f"<p><em>{len(frame) - max_rows} more rows not shown.</em></p>" if len(frame) > max_rows else ""
    return cap + body + more


def verdict_banner(verdict: str, reasons: Sequence[tuple[str, str, str]], complete: bool) -> str:
    """reasons: (rule, status, reason) triples."""
    colour = VERDICT_COLOURS.get(verdict, "#6e7781")
    rows = "".join(
        f"<tr><td>{esc(rule)}</td><td style='color:{VERDICT_COLOURS.get(status, '#333')};font-weight:600'>{esc(status)}</td>"
        f"<td>{esc(reason)}</td></tr>" for rule, status, reason in reasons)
    warning = "" if complete else "<p style='color:#cf222e'><b>Incomplete report:</b> some model calls failed; see Errors.</p>"
    return (f"<div style='border:3px solid {colour};padding:12px;border-radius:8px'>"
            f"<div style='font-size:28px;font-weight:700;color:{colour}'>Verdict: {esc(verdict)}</div>{warning}"
            f"<table class='wb-table'><tr><th>rule</th><th>status</th><th>reason</th></tr>{rows}</table></div>")


def side_by_side(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """Items shown with their texts side by side; all text escaped, whitespace kept."""
    cells = []
    for row in rows:
        parts = "".join(
            f"<td style='vertical-align:top;white-space:pre-wrap;max-width:420px'>{esc(row.get(c))}</td>" for c in columns)
        cells.append(f"<tr>{parts}</tr>")
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    return f"<table class='wb-table'><tr>{head}</tr>{''.join(cells)}</table>"
