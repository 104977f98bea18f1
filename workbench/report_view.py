"""HTML for the report's static sections. Every value that can hold model output is escaped:
model text is untrusted and the HTML report must never run it."""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import pandas as pd

from workbench import values

VERDICT_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700", "ERROR": "#6e7781"}


def esc(value: Any) -> str:
    return values.esc(value, missing="—")


def number(value: float, digits: int = 3) -> str:
    """For reading, not for the record (verdict.json keeps full precision): whole numbers without
    decimals, others to `digits` significant digits (at least to the unit, so -68.76 stays -68.8)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    if abs(value) < 1e-3:
        return f"{value:.2g}"
    magnitude = math.floor(math.log10(abs(value))) + 1
    return f"{value:.{max(digits - magnitude, 0 if abs(value) >= 100 else 1)}f}"


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return number(value, digits)
    return esc(value)


def table(frame: pd.DataFrame, caption: str | None = None, float_digits: int = 3, max_rows: int = 200,
          transpose_wider_than: int = 8) -> str:
    """A DataFrame as an escaped HTML table, rounded for reading. A single-row table wider than
    `transpose_wider_than` columns is shown as name/value rows, so nothing sits off-screen; other
    wide tables scroll inside their own box."""
    if frame is None or frame.empty:
        return f"<p><em>{esc(caption or 'Nothing to show')}: no rows.</em></p>"
    shown = frame.head(max_rows)
    if len(shown) == 1 and shown.shape[1] > transpose_wider_than:
        shown = pd.DataFrame({"measure": [str(c) for c in shown.columns], "value": list(shown.iloc[0])})
    shown = shown.astype(object).where(shown.notna(), None)
    body = shown.map(lambda v: v if isinstance(v, str) else fmt(v, float_digits)).to_html(
        index=False, escape=True, na_rep="—", border=0, classes="wb-table")
    cap = f"<h4>{esc(caption)}</h4>" if caption else ""
    more = f"<p><em>{len(frame) - max_rows} more rows not shown.</em></p>" if len(frame) > max_rows else ""
    return f"{cap}<div style='overflow-x:auto;max-width:100%'>{body}</div>{more}"


BEHAVIOUR_HEADLINES = (  # (summary column of the candidate, of the baseline, what it means)
    ("candidate_wrong_language_rate", "baseline_wrong_language_rate", "answers in the wrong language"),
    ("candidate_refusal_rate", "baseline_refusal_rate", "refuses"),
    ("candidate_copied_input_rate", "baseline_copied_input_rate", "copies the input instead of answering"),
)


def behaviour_headlines(summary: pd.DataFrame, candidate: str, baseline: str, limit: int = 4) -> list[str]:
    """The largest behavioural changes, in words, largest first: what a reader should see first."""
    if summary is None or summary.empty:
        return []
    row = summary.iloc[0]
    found = []
    for cand_col, base_col, what in BEHAVIOUR_HEADLINES:
        if cand_col in row.index and base_col in row.index and pd.notna(row[cand_col]) and pd.notna(row[base_col]):
            change = float(row[cand_col]) - float(row[base_col])
            if abs(change) >= 0.02:
                found.append((abs(change), f"{candidate} {what} in {row[cand_col]:.0%} of items "
                                           f"({baseline}: {row[base_col]:.0%})"))
    for column, what in (("format_changed_rate", "changes the answer's format"),
                         ("language_changed_rate", "answers in another language than the baseline")):
        if column in row.index and pd.notna(row[column]) and row[column] >= 0.05:
            found.append((float(row[column]), f"{candidate} {what} in {row[column]:.0%} of items"))
    ratio = row.get("median_length_ratio")
    if ratio is not None and pd.notna(ratio) and (ratio >= 1.5 or ratio <= 0.67):
        found.append((abs(math.log(ratio)) / 2, f"{candidate}'s answers are {ratio:.1f}x as long as {baseline}'s (median)"))
    return [text for _, text in sorted(found, key=lambda f: -f[0])[:limit]]


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
