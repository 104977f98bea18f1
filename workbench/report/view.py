"""HTML for the report's static sections. Every value that can hold model output is escaped:
model text is untrusted and the HTML report must never run it."""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import pandas as pd

from workbench import values
from workbench.items.display import task_text
from workbench.items.tool_calls import expected_call
from workbench.metrics.tool_calls import verdict_frame
from workbench.widgets.app_html import calls_html

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


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def _cell(value: Any, digits: int, tag: str = "td", numeric_column: bool = False) -> str:
    """One cell: numbers rounded and right-aligned (digits line up), everything else escaped and
    left-aligned (notebook CSS right-aligns every cell, which makes text hard to read); a missing
    value sits where its column's values sit."""
    if _is_number(value) or (numeric_column and values.is_missing(value)):
        return f"<{tag} style='text-align:right;white-space:nowrap'>{fmt(value, digits)}</{tag}>"
    return f"<{tag} style='text-align:left'>{esc(value)}</{tag}>"


def table(frame: pd.DataFrame, caption: str | None = None, float_digits: int = 3, max_rows: int = 200,
          transpose_wider_than: int = 8) -> str:
    """A DataFrame as an escaped HTML table, rounded for reading, text left and numbers right. A
    single-row table wider than `transpose_wider_than` columns is shown as name/value rows, so
    nothing sits off-screen; other wide tables scroll inside their own box."""
    if frame is None or frame.empty:
        return f"<p><em>{esc(caption or 'Nothing to show')}: no rows.</em></p>"
    shown = frame.head(max_rows)
    if len(shown) == 1 and shown.shape[1] > transpose_wider_than:
        shown = pd.DataFrame({"measure": [str(c) for c in shown.columns], "value": list(shown.iloc[0])})
    rows = shown.astype(object).where(shown.notna(), None).itertuples(index=False, name=None)
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])
               for c in shown.columns]
    head = "".join(f"<th style='text-align:{'right' if num else 'left'}'>{esc(c)}</th>"
                   for c, num in zip(shown.columns, numeric))
    body = "".join("<tr>" + "".join(_cell(v, float_digits, numeric_column=num) for v, num in zip(row, numeric))
                   + "</tr>" for row in rows)
    cap = f"<h4>{esc(caption)}</h4>" if caption else ""
    more = f"<p><em>{len(frame) - max_rows} more rows not shown.</em></p>" if len(frame) > max_rows else ""
    return (f"{cap}<div style='overflow-x:auto;max-width:100%'><table class='wb-table' border='0'>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}")


# The columns that explain a changed-behaviour row, by the flag that selected it (the flags first).
CHANGE_FLAGS = ("format_changed", "became_refusal", "language_changed")
CHANGE_EXPLAINED_BY = {
    "format_changed": ("baseline_format", "candidate_format"),
    "became_refusal": ("candidate_refusal_phrase",),
    "language_changed": ("baseline_language_detected", "candidate_language_detected"),
}


def changed_examples(behaviour: pd.DataFrame, limit: int = 8) -> pd.DataFrame:
    """Rows where the candidate's behaviour changed, narrowed to what explains each: the flag that
    selected it first ("changed"), the item, then only the columns of the flags that fired."""
    flags = [c for c in CHANGE_FLAGS if c in behaviour.columns]
    if not flags:
        return behaviour.head(0)
    fired = behaviour[flags].fillna(False).astype(bool)
    rows = behaviour[fired.any(axis=1)].head(limit)
    if rows.empty:
        return rows
    fired = fired.loc[rows.index]
    used = [f for f in flags if fired[f].any()]
    explain = [c for f in used for c in CHANGE_EXPLAINED_BY[f] if c in rows.columns]
    out = pd.DataFrame({"changed": [", ".join(f.replace("_", " ") for f in used if fired.at[i, f]) for i in rows.index]},
                       index=rows.index)
    keep = [c for c in ("item_id", "language") if c in rows.columns] + explain
    return pd.concat([out, rows[keep]], axis=1).reset_index(drop=True)


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
    left = "text-align:left;vertical-align:top"
    rows = "".join(
        f"<tr><td style='{left}'>{esc(rule)}</td><td style='{left};color:{VERDICT_COLOURS.get(status, '#333')};"
        f"font-weight:600'>{esc(status)}</td><td style='{left}'>{esc(reason)}</td></tr>" for rule, status, reason in reasons)
    warning = "" if complete else "<p style='color:#cf222e'><b>Incomplete report:</b> some model calls failed; see Errors.</p>"
    return (f"<div style='border:3px solid {colour};padding:12px;border-radius:8px'>"
            f"<div style='font-size:28px;font-weight:700;color:{colour}'>Verdict: {esc(verdict)}</div>{warning}"
            f"<table class='wb-table'><tr><th style='{left}'>rule</th><th style='{left}'>status</th>"
            f"<th style='{left}'>reason</th></tr>{rows}</table></div>")


def side_by_side(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """Items shown with their texts side by side; all text escaped, whitespace kept."""
    cells = []
    for row in rows:
        parts = "".join(
            f"<td style='vertical-align:top;text-align:right;white-space:nowrap'>{fmt(row.get(c))}</td>"
            if _is_number(row.get(c)) else
            f"<td style='vertical-align:top;text-align:left;white-space:pre-wrap;max-width:420px'>{esc(row.get(c))}</td>"
            for c in columns)
        cells.append(f"<tr>{parts}</tr>")
    head = "".join(f"<th style='text-align:left'>{esc(c)}</th>" for c in columns)
    return f"<table class='wb-table'><tr>{head}</tr>{''.join(cells)}</table>"


TOOL_METRICS_FIRST = ("tool_call_accuracy", "tool_name_match", "tool_arg_key_match", "tool_arg_value_match",
                      "tool_irrelevance", "tool_relevance", "tool_args_valid", "json_schema_valid",
                      "json_field_agreement")


def tool_use_html(items: pd.DataFrame, responses: pd.DataFrame, scores: pd.DataFrame, comparison: Any,
                  baseline: str, slices: Sequence[str] = ("intent", "category", "language", "task"),
                  examples: int = 8) -> str:
    """The tool-use section of one comparison: each tool metric's rate by slice for both models, the
    kinds of error baseline vs candidate, and the items where the candidate's calls went wrong (the
    expected calls, then each side's calls with the differences marked). Empty for an app without tools."""
    tool_metrics = [m for m in TOOL_METRICS_FIRST if len(scores) and m in set(scores["metric"])]
    if not tool_metrics:
        return ""
    candidate = comparison.candidate
    parts = [table(comparison.tool_errors, caption=f"Tool-call errors by kind: {baseline} vs {candidate}")]
    pair = scores[scores["metric"].isin(tool_metrics) & scores["model"].isin([baseline, candidate])]
    for column in [c for c in slices if c in items.columns]:
        joined = pair.merge(items[["item_id", column]].astype({"item_id": str}), on="item_id", how="left")
        rates = joined.pivot_table(index=[column, "metric"], columns="model", values="value", aggfunc="mean")
        counts = joined.dropna(subset=["value"]).groupby([column, "metric"])["item_id"].nunique().rename("items")
        shown = rates.join(counts).reset_index()
        shown = shown[[column, "metric", "items", *[m for m in (baseline, candidate) if m in shown.columns]]]
        parts.append(table(shown, caption=f"Tool metrics by {column} (share of items, paired)"))
        break  # the first slice column the items have: the task's own categories
    if "expected_calls" not in items.columns:
        return "".join(parts)
    first = responses[responses["sample_index"] == 0] if "sample_index" in responses else responses
    first = first.assign(item_id=first["item_id"].astype(str))
    verdicts = {name: verdict_frame(items, first[first["model"] == name]).set_index("item_id")
                for name in (baseline, candidate)}
    answers = {name: first[first["model"] == name].set_index("item_id") for name in (baseline, candidate)}
    broke = verdicts[candidate][verdicts[candidate]["error"].notna()].index
    broke = [i for i in broke if i in verdicts[baseline].index and pd.isna(verdicts[baseline].loc[i, "error"])]
    by_id = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id")
    rows = []
    for item_id in broke[:examples]:
        record = {**by_id.loc[item_id].to_dict(), "item_id": item_id}
        b_calls, c_calls = (answers[name].loc[item_id].get("tool_calls") for name in (baseline, candidate))
        verdict = verdicts[candidate].loc[item_id]
        cells = (esc(item_id), esc(task_text(record)), esc(_expected_text(record["expected_calls"])),
                 calls_html(b_calls) or "<em>text answer</em>",
                 f"<b>{esc(verdict['error'])}</b>: {esc(verdict['detail'])}" + (calls_html(c_calls, b_calls)
                                                                             or "<em>no call</em>"))
        rows.append("<tr>" + "".join(f"<td style='vertical-align:top;text-align:left;white-space:pre-wrap;"
                                     f"max-width:380px'>{cell}</td>" for cell in cells) + "</tr>")
    if rows:
        head = "".join(f"<th style='text-align:left'>{h}</th>"
                       for h in ("item", "task input", "expected", esc(baseline), esc(candidate)))
        parts.append(f"<h4>Where the candidate's calls went wrong and the baseline's did not (first {len(rows)})</h4>"
                     f"<div style='overflow-x:auto'><table class='wb-table'><tr>{head}</tr>{''.join(rows)}</table></div>")
    return "".join(parts)


def _expected_text(expected: Any) -> str:
    if isinstance(expected, str):
        return "some call" if expected == "any" else expected
    if not isinstance(expected, list):
        return "—"
    if not expected:
        return "no call"
    lines = []
    for entry in expected:
        call = expected_call(entry)
        args = ", ".join(f"{k}={' | '.join(map(repr, v)) or '(omit)'}{' (optional)' if k in call.optional and v else ''}"
                         for k, v in call.accepted.items())
        lines.append(f"{call.name}({args})")
    return "\n".join(lines)
