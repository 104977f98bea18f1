"""Plotly time series for the drift report: DataFrames from `DriftResult` in, figures out.

Every figure has one point or bar per window, in time order, so a reader sees when things changed.
Flagged windows are marked in red on every input-drift plot.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

FLAG = "#cf222e"
SIGNAL_COLOURS = {"length": "#0969da", "language": "#8250df", "vocabulary": "#bf8700", "embedding": "#1a7f37"}
_LAYOUT = dict(template="plotly_white", height=360, margin=dict(l=60, r=20, t=50, b=60),
               legend=dict(orientation="h", y=-0.25), xaxis=dict(type="category"))


def rows_per_window(windows: pd.DataFrame) -> go.Figure:
    colours = [FLAG if f else "#8c959f" for f in windows["flagged"]]
    fig = go.Figure(go.Bar(x=windows["window"], y=windows["rows"], marker_color=colours,
                           customdata=windows[["flagged_signals"]].fillna(""),
                           hovertemplate="%{x}<br>%{y} rows<br>drift: %{customdata[0]}<extra></extra>"))
    fig.update_layout(title="Rows per window (red: input drift flagged)", yaxis_title="rows", **_LAYOUT)
    return fig


def signal_strength(tests: pd.DataFrame, alpha: float) -> go.Figure:
    """-log10 of the adjusted p-value per signal and window; above the line = significant."""
    fig = go.Figure()
    for signal, part in tests.groupby("signal", sort=False):
        q = part["q_value"].clip(lower=1e-300)
        fig.add_trace(go.Scatter(
            x=part["window"], y=-np.log10(q), mode="lines+markers", name=signal,
            line=dict(color=SIGNAL_COLOURS.get(signal)),
            marker=dict(size=[12 if f else 7 for f in part["flagged"]], symbol=["diamond" if f else "circle" for f in part["flagged"]],
                        line=dict(color=[FLAG if f else "white" for f in part["flagged"]], width=2)),
            customdata=np.stack([part["p_value"], part["q_value"], part["effect"]], axis=1),
            hovertemplate="%{x}<br>p %{customdata[0]:.2g}, adjusted %{customdata[1]:.2g}<br>effect %{customdata[2]:.3f}<extra>"
                          + signal + "</extra>"))
    fig.add_hline(y=-math.log10(alpha), line_dash="dash", line_color=FLAG, annotation_text=f"alpha {alpha:g}")
    fig.update_layout(title="Drift evidence per window: -log10(adjusted p) (diamonds: flagged)",
                      yaxis_title="-log10 adjusted p", **_LAYOUT)
    return fig


def input_length(windows: pd.DataFrame, reference: dict) -> go.Figure:
    tested = windows.dropna(subset=["median_chars"])
    fig = go.Figure()
    fig.add_hrect(y0=reference["p10_chars"], y1=reference["p90_chars"], fillcolor="#8c959f", opacity=0.15, line_width=0,
                  annotation_text="reference 10-90%", annotation_position="top left")
    fig.add_hline(y=reference["median_chars"], line_dash="dot", line_color="#57606a", annotation_text="reference median")
    fig.add_trace(go.Scatter(x=tested["window"], y=tested["p90_chars"], mode="lines", name="90th percentile",
                             line=dict(color="#54aeff", dash="dash")))
    fig.add_trace(go.Scatter(x=tested["window"], y=tested["median_chars"], mode="lines+markers", name="median",
                             line=dict(color="#0969da"),
                             marker=dict(color=[FLAG if "length" in str(s) else "#0969da" for s in tested["flagged_signals"]],
                                         size=9)))
    fig.add_trace(go.Scatter(x=tested["window"], y=tested["p10_chars"], mode="lines", name="10th percentile",
                             line=dict(color="#54aeff", dash="dash")))
    fig.update_layout(title="Input length (characters) per window", yaxis_title="characters", **_LAYOUT)
    return fig


def language_mix(languages: pd.DataFrame, top: int = 6) -> go.Figure:
    """Stacked shares per window, the reference first; languages beyond the top few pooled as other."""
    totals = languages[languages["window"] != "reference"].groupby("language")["inputs"].sum()
    totals = totals.add(languages[languages["window"] == "reference"].set_index("language")["inputs"], fill_value=0)
    keep = list(totals.sort_values(ascending=False).index[:top])
    frame = languages.assign(language=languages["language"].where(languages["language"].isin(keep), "other"))
    shares = frame.groupby(["window", "language"], sort=False)["share"].sum().unstack(fill_value=0.0)
    order = ["reference"] + [w for w in dict.fromkeys(languages["window"]) if w != "reference"]
    shares = shares.reindex(order).fillna(0.0)
    fig = go.Figure()
    for lang in [*keep, "other"]:
        if lang in shares.columns and shares[lang].any():
            fig.add_trace(go.Bar(x=shares.index, y=shares[lang], name=lang,
                                 hovertemplate="%{x}<br>" + lang + " %{y:.1%}<extra></extra>"))
    fig.update_layout(barmode="stack", title="Language mix per window (first bar: the reference)",
                      yaxis=dict(tickformat=".0%", title="share of inputs"), **_LAYOUT)
    return fig


def quality_rates(quality: pd.DataFrame, thresholds: dict[str, dict[str, float]]) -> go.Figure:
    fig = go.Figure()
    colours = {"empty_response_rate": "#6e7781", "refusal_rate": FLAG, "wrong_language_rate": "#8250df",
               "format_mismatch_rate": "#bf8700"}
    for i, (metric, colour) in enumerate(colours.items()):
        if metric in quality.columns and quality[metric].notna().any():
            fig.add_trace(go.Scatter(x=quality["window"], y=quality[metric], mode="lines+markers", name=metric,
                                     line=dict(color=colour)))
            limit = thresholds.get(metric, {}).get("max")
            if limit is not None:
                fig.add_hline(y=limit, line_dash="dot", line_color=colour, annotation_text=f"{metric} max {limit:.0%}",
                              annotation_font_color=colour,
                              annotation_position="top left" if i % 2 else "top right")
    fig.update_layout(title="Response quality per window (dotted: alert thresholds)",
                      yaxis=dict(tickformat=".0%", title="share of responses", rangemode="tozero"), **_LAYOUT)
    return fig


def judge_scores(quality: pd.DataFrame, judge_fields: list[str], thresholds: dict[str, dict[str, float]]) -> go.Figure:
    fig = go.Figure()
    for name in judge_fields:
        if name in quality.columns:
            fig.add_trace(go.Scatter(x=quality["window"], y=quality[name], mode="lines+markers", name=name))
            for side, limit in thresholds.get(name, {}).items():
                fig.add_hline(y=limit, line_dash="dot", line_color=FLAG, annotation_text=f"{name} {side} {limit:g}")
    fig.update_layout(title="Mean judge score per window (dotted: alert thresholds)", yaxis_title="mean score", **_LAYOUT)
    return fig


def response_length(quality: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for column, dash in (("median_response_chars", None), ("p90_response_chars", "dash")):
        fig.add_trace(go.Scatter(x=quality["window"], y=quality[column], mode="lines+markers", name=column,
                                 line=dict(dash=dash, color="#0969da")))
    fig.update_layout(title="Response length (characters) per window", yaxis_title="characters", **_LAYOUT)
    return fig


def models_in_use(models: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for model, part in models.groupby("model", sort=False):
        fig.add_trace(go.Bar(x=part["window"], y=part["rows"], name=model))
    fig.update_layout(barmode="stack", title="Requests per model per window", yaxis_title="rows", **_LAYOUT)
    return fig


def outcomes(frame: pd.DataFrame, thresholds: dict[str, dict[str, float]]) -> go.Figure:
    """Mean of each outcome column per window with its 95% CI; changed windows (adjusted p <= alpha) in red."""
    fig = go.Figure()
    for name, part in frame.groupby("outcome", sort=False):
        colours = [FLAG if changed else "#0969da" for changed in part["changed"]]
        fig.add_trace(go.Scatter(
            x=part["window"], y=part["mean"], mode="lines+markers", name=name, marker=dict(color=colours, size=9),
            error_y=dict(type="data", symmetric=False, array=part["ci_high"] - part["mean"],
                         arrayminus=part["mean"] - part["ci_low"])))
        for side, limit in thresholds.get(name, {}).items():
            fig.add_hline(y=limit, line_dash="dot", line_color=FLAG, annotation_text=f"{name} {side} {limit:g}")
    fig.update_layout(title="Business outcomes per window: mean with 95% CI (red: changed against the first window)",
                      yaxis_title="mean", **_LAYOUT)
    return fig
