"""Plot helpers: pandas DataFrames in, `plotly.graph_objects.Figure` out.

Why frames and not model objects: the statistics code computes estimates and CIs, the store
holds the rest, and a plot only draws; the same frame can be shown as a table in a report.

Conventions shared by every function:
* Estimates with uncertainty come as ``name, estimate, ci_low, ci_high`` (+ optional ``source``
  to draw several series side by side, e.g. human vs judge, and ``n``). ``ci_low > ci_high``
  (swapped columns) raises; NaN bounds draw no error bar.
* A frame without rows gives a figure with no traces and a centred "No data" annotation, so a
  report still renders (e.g. before any human label exists); a missing column or a wrong type
  raises `workbench.errors.InputError` naming the frame and the column.
* Every label that may come from users or models (names, model ids, categories) is passed
  through `html.escape`: plotly renders a subset of HTML in labels and hover text.
"""
from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from workbench.errors import InputError, Problem
from workbench.report.schema_import import import_jsonschema
from workbench.task.dataset import require_columns
from workbench.values import esc

import_jsonschema()  # before a figure's `show` imports plotly's renderers, which import nbformat

if TYPE_CHECKING:
    import plotly.graph_objects as go

TEMPLATE = "plotly_white"
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_CI_COLUMNS = ("name", "estimate", "ci_low", "ci_high")


def _esc(value: Any) -> str:
    return esc(value, missing="nan")


def _check_ci(df: pd.DataFrame, frame: str) -> pd.DataFrame:
    """Numeric estimate/CI columns; a lower bound above the upper one (swapped columns) is an error.
    An estimate just outside its interval (possible with percentile bootstrap CIs) is drawn with a
    zero-length bar on that side; the hover text shows the interval as given."""
    out = df.copy()
    for col in ("estimate", "ci_low", "ci_high"):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    lo, hi = out["ci_low"].to_numpy(dtype=float), out["ci_high"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(lo > hi)
    if bad.size:
        raise InputError([Problem(frame, int(r) + 1, "ci_low/ci_high", f"ci_low {lo[r]:g} is above ci_high {hi[r]:g}")
                          for r in bad[:5]])
    return out


def _error_bars(g: pd.DataFrame) -> dict[str, Any]:
    with np.errstate(invalid="ignore"):
        return {"type": "data", "symmetric": False,
                "array": np.clip((g["ci_high"] - g["estimate"]).to_numpy(dtype=float), 0, None),
                "arrayminus": np.clip((g["estimate"] - g["ci_low"]).to_numpy(dtype=float), 0, None)}


def _figure(title: str, **layout: Any) -> "go.Figure":
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title=_esc(title), **layout)
    return fig


def _empty(title: str, message: str) -> "go.Figure":
    fig = _figure(title)
    fig.add_annotation(text=_esc(message), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 14})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _sources(df: pd.DataFrame, default: str) -> list[tuple[str, pd.DataFrame]]:
    if "source" not in df.columns:
        return [(default, df)]
    return [(str(s), g) for s, g in df.groupby(df["source"].astype(str), sort=False)]


def _ci_hover(g: pd.DataFrame, source: str, digits: int = 3) -> list[str]:
    n = g["n"] if "n" in g.columns else pd.Series(np.nan, index=g.index)
    return [f"{_esc(name)} · {_esc(source)}<br>{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
            + ("" if pd.isna(k) else f"<br>n = {int(k)}")
            for name, est, lo, hi, k in zip(g["name"], g["estimate"], g["ci_low"], g["ci_high"], n)]


def _ci_height(df: pd.DataFrame) -> int:
    """Room for one dot per (category, source), so grouped dots neither overlap nor touch the frame."""
    sources = df["source"].nunique() if "source" in df.columns else 1
    return max(280, 120 + 24 * df["name"].nunique() * max(sources, 1))


def _ci_traces(fig: "go.Figure", df: pd.DataFrame, horizontal: bool, default_source: str) -> None:
    """One marker trace per source, with asymmetric error bars, grouped side by side.

    Why `orientation`: with ``scattermode="group"`` Plotly offsets each trace along the axis its
    orientation names as the position axis, and a scatter defaults to "v" (offset along x). On a
    horizontal plot that moved the dots along the value axis (two 0.5 win rates drawn at 0.3 and
    0.7); "h" puts the offset on the category axis, where side by side belongs.
    """
    import plotly.graph_objects as go

    for i, (source, g) in enumerate(_sources(df, default_source)):
        names = [_esc(v) for v in g["name"]]
        errors = _error_bars(g)
        kw = ({"x": g["estimate"].to_numpy(), "y": names, "error_x": errors, "orientation": "h"} if horizontal
              else {"x": names, "y": g["estimate"].to_numpy(), "error_y": errors, "orientation": "v"})
        fig.add_trace(go.Scatter(mode="markers", name=_esc(source), hovertext=_ci_hover(g, source), hoverinfo="text",
                                 marker={"size": 9, "color": _COLORS[i % len(_COLORS)]}, offsetgroup=str(i), **kw))
    fig.update_layout(scattermode="group", legend_title_text="source")


# ---- estimates with CIs ----------------------------------------------------------------------------
def plot_win_rates(df: pd.DataFrame, title: str = "Win rate (ties count ½)") -> "go.Figure":
    """Win rates with CIs, e.g. humans and the judge side by side, with the 0.5 (no difference) line.

    Columns: ``name`` (what is compared, e.g. "candidate vs baseline" or a slice), ``estimate``,
    ``ci_low``, ``ci_high`` (fractions in [0, 1]); optional ``source`` (e.g. human | judge: one
    trace each), ``n`` and ``judge_check`` (non-empty: the judge failed its checks, and its trace is
    named UNTRUSTED).
    """
    require_columns(df, "win_rates", _CI_COLUMNS)
    df = _check_ci(df, "win_rates").dropna(subset=["estimate"])
    if df.empty:
        return _empty(title, "No win rates yet")
    if "judge_check" in df.columns:  # a judge that failed its checks: its dots say so in the legend
        untrusted = df["judge_check"].fillna("").astype(str).str.len() > 0
        source = df["source"].astype(str) if "source" in df.columns else pd.Series("win rate", index=df.index)
        df = df.assign(source=source.where(~untrusted, source + " (UNTRUSTED judge)"))
    fig = _figure(title, xaxis_title="win rate of the candidate", height=_ci_height(df))
    _ci_traces(fig, df, horizontal=True, default_source="win rate")
    fig.add_vline(x=0.5, line_dash="dash", line_color="gray", annotation_text="0.5", annotation_position="top")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(autorange="reversed")
    return fig


def plot_metric_deltas(df: pd.DataFrame, title: str = "Metric delta (candidate − baseline)",
                       margin_line: float | None = None) -> "go.Figure":
    """Forest plot of paired metric deltas with CIs per slice, with the zero line.

    Columns: ``name`` (the slice, e.g. "all", "language=ja"), ``estimate``, ``ci_low``, ``ci_high``;
    optional ``source`` (e.g. the metric: one trace each) and ``n``. `margin_line` draws the
    non-inferiority margin at that x (e.g. -0.02 for "at most 0.02 worse").
    """
    require_columns(df, "metric_deltas", _CI_COLUMNS)
    df = _check_ci(df, "metric_deltas").dropna(subset=["estimate"])
    if df.empty:
        return _empty(title, "No metric deltas yet")
    fig = _figure(title, xaxis_title="delta", height=_ci_height(df))
    _ci_traces(fig, df, horizontal=True, default_source="delta")
    fig.add_vline(x=0, line_color="gray")
    if margin_line is not None:
        fig.add_vline(x=float(margin_line), line_dash="dot", line_color="firebrick",
                      annotation_text="margin", annotation_position="bottom")
    fig.update_yaxes(autorange="reversed")
    return fig


def plot_position_consistency(df: pd.DataFrame, title: str = "Judge position consistency",
                              threshold: float | None = None, threshold_label: str = "gate minimum") -> "go.Figure":
    """Share of pairwise verdicts that survive swapping the two answers, per judge (bar).

    Columns: ``name`` (the judge), ``estimate`` (fraction in [0, 1]); optional ``ci_low``,
    ``ci_high`` (drawn as error bars when both are present) and ``n``. `threshold` draws a
    labelled reference line at that share (e.g. the gate's minimum position consistency), so a
    reader sees at once whether the judge is consistent enough to count.
    """
    import plotly.graph_objects as go

    require_columns(df, "position_consistency", ("name", "estimate"))
    has_ci = {"ci_low", "ci_high"} <= set(df.columns)
    df = _check_ci(df, "position_consistency") if has_ci else df.assign(
        estimate=pd.to_numeric(df["estimate"], errors="coerce"), ci_low=np.nan, ci_high=np.nan)
    df = df.dropna(subset=["estimate"])
    if df.empty:
        return _empty(title, "No pairwise judgments yet")
    fig = _figure(title, yaxis_title="consistent verdicts (share)")
    errors = _error_bars(df) if has_ci else None
    fig.add_trace(go.Bar(x=[_esc(v) for v in df["name"]], y=df["estimate"].to_numpy(), error_y=errors,
                         name="consistent", hovertext=_ci_hover(df, "consistency") if has_ci else None,
                         marker_color=_COLORS[0]))
    fig.update_yaxes(range=[0, 1.05])
    if threshold is not None:
        fig.add_hline(y=float(threshold), line_dash="dash", line_color="firebrick",
                      annotation_text=_esc(f"{threshold_label} {float(threshold):.2f}"),
                      annotation_position="top right")
    return fig


# ---- distributions ------------------------------------------------------------------------------
def plot_score_distributions(scores: pd.DataFrame, metric: str | None = None, kind: str = "box",
                             models: Sequence[str] | None = None, title: str | None = None) -> "go.Figure":
    """Distribution of one metric's per-item values, one trace per model.

    Columns: ``model``, ``value``; optional ``metric`` (then pass `metric=` when it holds
    several). `kind` is "box" (continuous scores) or "histogram" (e.g. 1–5 judge ratings).
    `models` fixes the order (baseline first); by default, order of first appearance.
    """
    import plotly.graph_objects as go

    require_columns(scores, "scores", ("model", "value"))
    if kind not in ("box", "histogram"):
        raise InputError(Problem("plot_score_distributions", None, "kind", f"{kind!r} is not 'box' or 'histogram'"))
    if "metric" in scores.columns:
        metrics = list(dict.fromkeys(scores["metric"].dropna().astype(str)))
        if metric is None and len(metrics) > 1:
            raise InputError(Problem("scores", None, "metric", f"several metrics {metrics}: pass metric=…"))
        metric = metric if metric is not None else (metrics[0] if metrics else None)
        if metric is not None:
            scores = scores[scores["metric"].astype(str) == metric]
    title = title or f"Distribution of {metric or 'scores'} per model"
    values = scores.assign(value=pd.to_numeric(scores["value"], errors="coerce")).dropna(subset=["value"])
    if values.empty:
        return _empty(title, f"No {metric or 'score'} values")
    order = list(models) if models is not None else list(dict.fromkeys(values["model"].astype(str)))
    fig = _figure(title, **({"barmode": "overlay"} if kind == "histogram" else {}))
    for i, model in enumerate(order):
        v = values.loc[values["model"].astype(str) == model, "value"].to_numpy()
        style = {"name": _esc(model), "marker_color": _COLORS[i % len(_COLORS)]}
        if kind == "box":
            fig.add_trace(go.Box(y=v, boxmean=True, boxpoints=False, **style))
        else:
            fig.add_trace(go.Histogram(x=v, opacity=0.6, **style))
    fig.update_layout(yaxis_title=_esc(metric or "value") if kind == "box" else "items",
                      xaxis_title=_esc(metric or "value") if kind == "histogram" else None)
    return fig


# ---- quality vs cost / latency ------------------------------------------------------------------
def pareto_front(df: pd.DataFrame, x: str, y: str, higher_is_better: bool = True) -> pd.Series:
    """True for rows no other row dominates: lower-or-equal `x` and better-or-equal `y`, one strictly.
    Rows with a missing value are never on the front."""
    require_columns(df, "tradeoff", (x, y))
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    if not higher_is_better:
        ys = -ys
    ok = ~(np.isnan(xs) | np.isnan(ys))
    xo, yo = xs[:, None], ys[:, None]  # row i against every j
    dominated = ((xs[None, :] <= xo) & (ys[None, :] >= yo) & ((xs[None, :] < xo) | (ys[None, :] > yo))
                 & ok[None, :]).any(axis=1)
    return pd.Series(ok & ~dominated, index=df.index, name="pareto")


def plot_quality_tradeoff(df: pd.DataFrame, x: str, quality: str = "quality", higher_is_better: bool = True,
                          x_title: str | None = None, title: str | None = None) -> "go.Figure":
    """Quality against a cost axis per model, with the Pareto front highlighted (2 traces:
    all models, then the front joined by a line).

    Columns: ``model``, `quality` (e.g. mean score or win rate), `x` (e.g. ``cost_usd`` per item,
    ``latency_s`` p50); optional ``ci_low``, ``ci_high`` for the quality. Models whose `x` or
    quality is unknown (NaN: an unknown price is not zero) are left out and named in a note.
    """
    import plotly.graph_objects as go

    require_columns(df, "tradeoff", ("model", quality, x))
    title = title or f"{quality} vs {x_title or x}"
    data = df.assign(**{x: pd.to_numeric(df[x], errors="coerce"), quality: pd.to_numeric(df[quality], errors="coerce")})
    unknown = data[data[x].isna() | data[quality].isna()]
    data = data.drop(unknown.index)
    if data.empty:
        return _empty(title, "No model with both values known" if len(unknown) else "No models")
    front = pareto_front(data, x, quality, higher_is_better)
    fig = _figure(title, xaxis_title=_esc(x_title or x), yaxis_title=_esc(quality))
    has_ci = {"ci_low", "ci_high"} <= set(data.columns)
    errors = None
    if has_ci:
        lo, hi = pd.to_numeric(data["ci_low"], errors="coerce"), pd.to_numeric(data["ci_high"], errors="coerce")
        errors = {"type": "data", "symmetric": False, "array": (hi - data[quality]).to_numpy(),
                  "arrayminus": (data[quality] - lo).to_numpy()}
    names = [_esc(m) for m in data["model"]]
    hover = [f"{n}<br>{_esc(quality)} = {q:.4g}<br>{_esc(x)} = {v:.4g}" + ("<br>on the Pareto front" if f else "")
             for n, q, v, f in zip(names, data[quality], data[x], front)]
    fig.add_trace(go.Scatter(x=data[x].to_numpy(), y=data[quality].to_numpy(), mode="markers+text", text=names,
                             textposition=_label_positions(data[x]), name="models", hovertext=hover,
                             hoverinfo="text", error_y=errors, marker={"size": 10, "color": _COLORS[0]},
                             cliponaxis=False))
    _pad_axes(fig, data[x], pd.concat([data[quality], lo, hi]).dropna() if has_ci else data[quality])
    fr = data[front.to_numpy()].sort_values(x)
    fig.add_trace(go.Scatter(x=fr[x].to_numpy(), y=fr[quality].to_numpy(), mode="lines+markers", name="Pareto front",
                             hoverinfo="skip", line={"color": _COLORS[1], "dash": "dash"},
                             marker={"size": 14, "symbol": "circle-open", "color": _COLORS[1], "line": {"width": 2}}))
    if len(unknown):
        fig.add_annotation(text=_esc(f"not shown ({x} or {quality} unknown): {', '.join(map(str, unknown['model']))}"),
                           x=0, y=-0.18, xref="paper", yref="paper", showarrow=False, xanchor="left")
    return fig


def _label_positions(xs: pd.Series) -> list[str]:
    """Labels grow inwards at the ends of the x range (a name centred on the last point runs off
    the plot), centred above the points between."""
    if len(xs) < 2 or xs.min() == xs.max():
        return ["top center"] * len(xs)
    return ["top right" if v == xs.min() else "top left" if v == xs.max() else "top center" for v in xs]


def _pad_axes(fig: "go.Figure", xs: pd.Series, ys: pd.Series, share: float = 0.12) -> None:
    """Room around the points for their labels: without it a label at an edge is clipped."""
    for axis, values, top in (("xaxis", xs, share), ("yaxis", ys, share * 2)):  # labels sit above the points
        low, high = float(values.min()), float(values.max())
        span = high - low or abs(high) or 1.0
        fig.update_layout({axis: {"range": [low - share * span, high + top * span]}})


def plot_quality_vs_cost(df: pd.DataFrame, quality: str = "quality", cost: str = "cost_usd",
                         higher_is_better: bool = True) -> "go.Figure":
    """`plot_quality_tradeoff` with x = ``cost_usd`` (e.g. mean cost per item in USD)."""
    return plot_quality_tradeoff(df, x=cost, quality=quality, higher_is_better=higher_is_better,
                                 x_title="cost per item (USD)", title=f"{quality} vs cost")


def plot_quality_vs_latency(df: pd.DataFrame, quality: str = "quality", latency: str = "latency_s",
                            higher_is_better: bool = True) -> "go.Figure":
    """`plot_quality_tradeoff` with x = ``latency_s`` (e.g. median latency in seconds)."""
    return plot_quality_tradeoff(df, x=latency, quality=quality, higher_is_better=higher_is_better,
                                 x_title="latency (s)", title=f"{quality} vs latency")


# ---- agreement and progress ---------------------------------------------------------------------
def plot_judge_human_confusion(df: pd.DataFrame, labels: Sequence[str] | None = None,
                               title: str = "Judge vs human verdicts") -> "go.Figure":
    """Confusion matrix heatmap with counts: rows = human verdict, columns = judge verdict.

    Columns: ``judge``, ``human`` (one row per item, e.g. A | B | tie or model names; missing
    values are dropped); optional ``count`` to pass pre-aggregated cells. `labels` fixes the
    category order (default: A, B, tie first when present, then the rest sorted).
    """
    import plotly.graph_objects as go

    require_columns(df, "confusion", ("judge", "human"))
    data = df.dropna(subset=["judge", "human"])
    if data.empty:
        return _empty(title, "No item has both a judge verdict and a human label")
    counts = pd.to_numeric(data["count"], errors="coerce").fillna(0) if "count" in data.columns else pd.Series(1, index=data.index)
    judge, human = data["judge"].astype(str), data["human"].astype(str)
    if labels is None:
        seen = set(judge) | set(human)
        labels = [c for c in ("A", "B", "tie") if c in seen] + sorted(seen - {"A", "B", "tie"})
    labels = [str(c) for c in labels]
    table = (pd.DataFrame({"judge": judge, "human": human, "count": counts})
             .pivot_table(index="human", columns="judge", values="count", aggfunc="sum", fill_value=0)
             .reindex(index=labels, columns=labels, fill_value=0))
    z = table.to_numpy(dtype=float)
    total = z.sum()
    agree = np.trace(z) / total if total else float("nan")
    names = [_esc(c) for c in labels]
    fig = _figure(f"{title} — agreement {agree:.0%} of {int(total)}" if total else title,
                  xaxis_title="judge", yaxis_title="human")
    fig.add_trace(go.Heatmap(z=z, x=names, y=names, colorscale="Blues", texttemplate="%{z:d}", showscale=False,
                             hovertemplate="human %{y} · judge %{x}: %{z:d}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return fig


def plot_labeling_progress(df: pd.DataFrame, title: str = "Labeling progress per rater") -> "go.Figure":
    """Stacked horizontal bars per rater: labeled, skipped, remaining (whichever are present).

    Columns: ``rater``, ``labeled``; optional ``skipped`` and ``remaining`` (or ``assigned``,
    from which remaining = assigned - labeled - skipped). `workbench.labels.progress()` returns
    exactly this shape.
    """
    import plotly.graph_objects as go

    require_columns(df, "progress", ("rater", "labeled"))
    if df.empty:
        return _empty(title, "No raters yet")
    data = df.copy()
    if "remaining" not in data.columns and "assigned" in data.columns:
        data["remaining"] = data["assigned"] - data["labeled"] - (data["skipped"] if "skipped" in data.columns else 0)
    raters = [_esc(r) for r in data["rater"]]
    fig = _figure(title, barmode="stack", xaxis_title="items", height=max(220, 80 + 35 * len(data)))
    colors = {"labeled": _COLORS[2], "skipped": _COLORS[7], "remaining": "#d9d9d9"}
    for part in (c for c in colors if c in data.columns):
        fig.add_trace(go.Bar(y=raters, x=pd.to_numeric(data[part], errors="coerce").fillna(0).to_numpy(),
                             orientation="h", name=part, marker_color=colors[part]))
    fig.update_yaxes(autorange="reversed")
    return fig


# ---- reading a figure back ----------------------------------------------------------------------
def _array(value: Any) -> np.ndarray:
    """A figure-JSON array: a plain list or plotly's typed array ({"dtype", "bdata"[, "shape"]})."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return arr.reshape([int(x) for x in str(value["shape"]).split(",")]) if "shape" in value else arr
    return np.asarray([] if value is None else value, dtype=object)


def drawn_points(fig: "go.Figure | dict") -> pd.DataFrame:
    """Where each scatter marker and bar is drawn: one row per point with ``trace``, ``category``,
    ``value`` and, from its error bar, ``ci_low``/``ci_high`` (NaN without one).

    Why: a report test compares these with the table beside the plot. Reading the figure JSON
    (what the browser receives, e.g. a notebook output's ``application/vnd.plotly.v1+json``)
    and the trace's orientation catches plots that draw the right number at the wrong place.
    """
    data = json.loads(fig.to_json())["data"] if hasattr(fig, "to_json") else fig.get("data", [])
    rows = []
    for t in data:
        if t.get("type", "scatter") not in ("scatter", "bar"):
            continue
        horizontal = t.get("orientation") == "h"
        values = _array(t.get("x" if horizontal else "y")).astype(float)
        categories = _array(t.get("y" if horizontal else "x"))
        err = t.get("error_x" if horizontal else "error_y") or {}
        plus = _array(err["array"]).astype(float) if err.get("array") is not None else np.full(len(values), np.nan)
        minus = (_array(err["arrayminus"]).astype(float) if err.get("arrayminus") is not None
                 else plus if err.get("symmetric", True) else np.full(len(values), np.nan))
        rows += [{"trace": t.get("name"), "category": c, "value": v, "ci_low": v - m, "ci_high": v + p}
                 for c, v, p, m in zip(categories, values, plus, minus)]
    return pd.DataFrame(rows, columns=["trace", "category", "value", "ci_low", "ci_high"])

