"""Plot helpers: right traces and points, empty-state figures, escaping, offline HTML."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench.report import plots
from workbench.errors import InputError

EVIL = "<b onmouseover=alert(1)>m</b>"


def _ci(names, est, lo, hi, **extra):
    return pd.DataFrame({"name": names, "estimate": est, "ci_low": lo, "ci_high": hi, **extra})


@pytest.fixture
def win_rates():
    return _ci(["all", "ja", "all", "ja"], [0.56, 0.61, 0.52, 0.58], [0.5, 0.5, 0.45, 0.47], [0.62, 0.7, 0.6, 0.69],
               source=["judge", "judge", "human", "human"], n=[200, 80, 60, 25])


def test_win_rates_one_trace_per_source_with_the_half_line(win_rates):
    fig = plots.plot_win_rates(win_rates)
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["judge", "human"]
    assert [len(t.x) for t in fig.data] == [2, 2]
    judge = fig.data[0]
    assert list(judge.x) == [0.56, 0.61]
    assert list(judge.error_x.array) == pytest.approx([0.06, 0.09])
    assert list(judge.error_x.arrayminus) == pytest.approx([0.06, 0.11])
    assert any(s.type == "line" and s.x0 == 0.5 == s.x1 for s in fig.layout.shapes)
    assert "n = 200" in judge.hovertext[0]


def test_metric_deltas_forest_with_zero_and_margin_lines():
    df = _ci(["all", "language=ja", "language=en"], [0.01, -0.03, 0.02], [-0.01, -0.06, 0.0], [0.03, 0.0, 0.04])
    fig = plots.plot_metric_deltas(df, margin_line=-0.02)
    assert len(fig.data) == 1 and len(fig.data[0].y) == 3
    xs = sorted(s.x0 for s in fig.layout.shapes)
    assert xs == [-0.02, 0]
    by_metric = pd.concat([df.assign(source="rougeL"), df.assign(source="bertscore")])
    assert len(plots.plot_metric_deltas(by_metric).data) == 2


def test_swapped_ci_bounds_are_rejected():
    with pytest.raises(InputError, match="row 2, field 'ci_low/ci_high'"):
        plots.plot_win_rates(_ci(["a", "b"], [0.5, 0.5], [0.4, 0.7], [0.6, 0.6]))


def test_an_estimate_outside_its_interval_gets_a_zero_length_side():
    fig = plots.plot_metric_deltas(_ci(["a"], [0.5], [0.52], [0.6]))  # percentile CIs can do this
    assert list(fig.data[0].error_x.arrayminus) == [0.0]
    assert list(fig.data[0].error_x.array) == pytest.approx([0.1])
    assert "[0.520, 0.600]" in fig.data[0].hovertext[0]


def test_nan_bounds_are_allowed():
    fig = plots.plot_metric_deltas(_ci(["a"], [0.1], [np.nan], [np.nan]))
    assert len(fig.data[0].x) == 1


def test_score_distributions_box_and_histogram():
    scores = pd.DataFrame({"model": ["a"] * 5 + ["b"] * 4, "value": [1, 2, 3, 4, 5, 2, 3, 3, np.nan],
                           "metric": "judge_score"})
    box = plots.plot_score_distributions(scores, models=["b", "a"])
    assert [t.name for t in box.data] == ["b", "a"] and [len(t.y) for t in box.data] == [3, 5]
    hist = plots.plot_score_distributions(scores, kind="histogram")
    assert all(isinstance(t, go.Histogram) for t in hist.data) and len(hist.data) == 2
    two = pd.concat([scores, scores.assign(metric="other")])
    with pytest.raises(InputError, match="several metrics"):
        plots.plot_score_distributions(two)
    assert len(plots.plot_score_distributions(two, metric="other").data) == 2
    with pytest.raises(InputError, match="kind"):
        plots.plot_score_distributions(scores, kind="violin")


def test_pareto_front():
    df = pd.DataFrame({"model": list("abcde"), "quality": [0.5, 0.7, 0.6, 0.7, 0.9],
                       "cost_usd": [1.0, 2.0, 3.0, 2.5, np.nan]})
    # c is dominated by b (cheaper, better); d ties b on quality but costs more; e has no cost
    assert list(plots.pareto_front(df, "cost_usd", "quality")) == [True, True, False, False, False]
    lower = pd.DataFrame({"x": [1, 2, 3], "err": [0.3, 0.1, 0.2]})
    assert list(plots.pareto_front(lower, "x", "err", higher_is_better=False)) == [True, True, False]


def test_quality_vs_cost_and_latency_highlight_the_front_and_name_unknowns():
    df = pd.DataFrame({"model": ["a", "b", "c", EVIL], "quality": [0.5, 0.7, 0.6, 0.8],
                       "cost_usd": [1.0, 2.0, 3.0, np.nan], "latency_s": [0.4, 0.3, 0.9, 1.0]})
    fig = plots.plot_quality_vs_cost(df)
    assert [t.name for t in fig.data] == ["models", "Pareto front"]
    assert len(fig.data[0].x) == 3 and list(fig.data[1].x) == [1.0, 2.0]
    note = fig.layout.annotations[0].text
    assert "&lt;b onmouseover=alert(1)&gt;" in note and EVIL not in note
    lat = plots.plot_quality_vs_latency(df)
    assert len(lat.data[0].x) == 4
    assert list(lat.data[1].x) == [0.3, 1.0]  # b dominates a and c; the evil model is best on quality
    assert "&lt;b" in lat.data[0].text[3] and "<b" not in "".join(lat.data[0].text)


def test_confusion_matrix_counts_and_order():
    df = pd.DataFrame({"judge": ["A", "B", "tie", "A", "A", None], "human": ["A", "A", "tie", "A", "B", "A"]})
    fig = plots.plot_judge_human_confusion(df)
    hm = fig.data[0]
    assert list(hm.x) == ["A", "B", "tie"] and list(hm.y) == ["A", "B", "tie"]
    assert np.asarray(hm.z).tolist() == [[2, 1, 0], [1, 0, 0], [0, 0, 1]]  # rows: human
    assert "agreement 60% of 5" in fig.layout.title.text
    agg = pd.DataFrame({"judge": ["A", "B"], "human": ["A", "A"], "count": [10, 5]})
    assert np.asarray(plots.plot_judge_human_confusion(agg, labels=["A", "B"]).data[0].z).tolist() == [[10, 5], [0, 0]]


def test_position_consistency_bars():
    fig = plots.plot_position_consistency(_ci(["judge-1", EVIL], [0.9, 0.7], [0.85, 0.6], [0.95, 0.8]))
    bar = fig.data[0]
    assert isinstance(bar, go.Bar) and list(bar.y) == [0.9, 0.7]
    assert bar.x[1] == "&lt;b onmouseover=alert(1)&gt;m&lt;/b&gt;"
    no_ci = plots.plot_position_consistency(pd.DataFrame({"name": ["j"], "estimate": [0.8]}))
    assert no_ci.data[0].error_y.array is None


def test_labeling_progress_from_the_labels_progress_shape():
    df = pd.DataFrame({"rater": ["ann", "bob"], "assigned": [10, 8], "labeled": [6, 8], "skipped": [1, 0]})
    fig = plots.plot_labeling_progress(df)
    assert [t.name for t in fig.data] == ["labeled", "skipped", "remaining"]
    assert list(fig.data[2].x) == [3, 0]
    assert fig.layout.barmode == "stack"
    assert [t.name for t in plots.plot_labeling_progress(df[["rater", "labeled"]]).data] == ["labeled"]


EMPTY_CASES = [
    (plots.plot_win_rates, _ci([], [], [], [])),
    (plots.plot_metric_deltas, _ci([], [], [], [])),
    (plots.plot_position_consistency, pd.DataFrame({"name": [], "estimate": []})),
    (plots.plot_score_distributions, pd.DataFrame({"model": [], "value": []})),
    (plots.plot_quality_vs_cost, pd.DataFrame({"model": [], "quality": [], "cost_usd": []})),
    (plots.plot_judge_human_confusion, pd.DataFrame({"judge": [], "human": []})),
    (plots.plot_labeling_progress, pd.DataFrame({"rater": [], "labeled": []})),
]


@pytest.mark.parametrize("fn,empty", EMPTY_CASES, ids=[f.__name__ for f, _ in EMPTY_CASES])
def test_empty_input_gives_an_empty_state_figure(fn, empty):
    fig = fn(empty)
    assert len(fig.data) == 0
    assert len(fig.layout.annotations) == 1 and fig.layout.annotations[0].text.startswith("No ")


@pytest.mark.parametrize("fn,empty", EMPTY_CASES, ids=[f.__name__ for f, _ in EMPTY_CASES])
def test_missing_columns_raise_input_error(fn, empty):
    with pytest.raises(InputError, match="missing column"):
        fn(empty.drop(columns=empty.columns[-1]))
    with pytest.raises(InputError, match="expected a pandas DataFrame"):
        fn([{"name": "x"}])


def test_all_unknown_costs_give_an_empty_state():
    fig = plots.plot_quality_vs_cost(pd.DataFrame({"model": ["a"], "quality": [0.5], "cost_usd": [None]}))
    assert len(fig.data) == 0 and "both values known" in fig.layout.annotations[0].text


def test_figures_export_to_self_contained_html(win_rates):
    fig = plots.plot_win_rates(win_rates.assign(name=[EVIL, "ja", EVIL, "ja"]))
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    assert '<script src="http' not in html  # no CDN: plotly.js is inlined
    assert len(html) > 1_000_000  # the bundle itself
    assert "onmouseover=alert(1)>" not in html
    assert "&lt;b onmouseover=alert(1)&gt;" in html


# ---- plotted positions equal the input numbers (figure JSON as the browser receives it) ----------
def _decode(value):
    """A figure-JSON array: plain list or plotly's typed array ({"dtype", "bdata"[, "shape"]})."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return arr.reshape([int(s) for s in str(value["shape"]).split(",")]) if "shape" in value else arr
    return np.asarray(value, dtype=object)


def _json_traces(fig):
    import json

    return json.loads(fig.to_json())["data"]


def _plotted_ci(fig) -> pd.DataFrame:
    """(source, name, estimate, ci_low, ci_high) as drawn, via `plots.drawn_points`."""
    return plots.drawn_points(fig).rename(columns={"trace": "source", "category": "name", "value": "estimate"})


CI_FRAME = _ci(["all", "ja", "en", "all", "ja", "en", "all", "ja", "en"],
               [0.5, 0.61, 0.3, 0.5, 0.58, 0.2, 0.45, 0.7, 0.33],
               [0.5, 0.5, 0.2, 0.5, 0.47, 0.1, 0.4, 0.6, 0.3],
               [0.5, 0.7, 0.4, 0.5, 0.69, 0.3, 0.5, 0.8, 0.36],
               source=["judge"] * 3 + ["judge (length-controlled)"] * 3 + ["human"] * 3)


@pytest.mark.parametrize("fn", [plots.plot_win_rates, plots.plot_metric_deltas])
def test_ci_plots_draw_every_estimate_and_interval_at_its_value(fn):
    drawn = _plotted_ci(fn(CI_FRAME)).sort_values(["source", "name"]).reset_index(drop=True)
    expected = CI_FRAME.sort_values(["source", "name"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(drawn[expected.columns], expected, check_exact=False, atol=1e-12)


@pytest.mark.parametrize("fn", [plots.plot_win_rates, plots.plot_metric_deltas])
def test_grouped_ci_traces_are_offset_along_the_category_axis(fn):
    """With scattermode "group", Plotly offsets traces along the axis their orientation names; a
    vertical (default) orientation on a horizontal plot moves the dots off their values."""
    fig = fn(CI_FRAME)
    assert fig.layout.scattermode == "group"
    for t in _json_traces(fig):
        assert isinstance(t["y"], list) and all(isinstance(v, str) for v in t["y"]), "categories on y"
        assert t["orientation"] == "h", t["name"]


def test_position_consistency_bars_are_drawn_at_their_values_with_a_threshold_line():
    frame = _ci(["judge-1", "judge-2"], [0.9, 0.62], [0.85, 0.5], [0.95, 0.7])
    fig = plots.plot_position_consistency(frame, threshold=0.8)
    drawn = plots.drawn_points(fig.to_dict())  # a figure dict, as in a notebook output, works too
    assert drawn[["category", "value", "ci_low", "ci_high"]].values.tolist() == [
        ["judge-1", 0.9, pytest.approx(0.85), pytest.approx(0.95)], ["judge-2", 0.62, pytest.approx(0.5), pytest.approx(0.7)]]
    (bar,) = _json_traces(fig)
    assert list(_decode(bar["x"])) == ["judge-1", "judge-2"]
    assert _decode(bar["y"]).astype(float).tolist() == [0.9, 0.62]
    assert (_decode(bar["y"]) + _decode(bar["error_y"]["array"])).tolist() == pytest.approx([0.95, 0.7])
    assert (_decode(bar["y"]) - _decode(bar["error_y"]["arrayminus"])).tolist() == pytest.approx([0.85, 0.5])
    (line,) = fig.layout.shapes
    assert (line.y0, line.y1, line.yref) == (0.8, 0.8, "y")
    assert [a.text for a in fig.layout.annotations] == ["gate minimum 0.80"]
    labelled = plots.plot_position_consistency(frame, threshold=0.75, threshold_label="<min>")
    assert labelled.layout.annotations[0].text == "&lt;min&gt; 0.75"
    assert not plots.plot_position_consistency(frame).layout.shapes


def test_score_distributions_draw_each_models_values():
    scores = pd.DataFrame({"model": ["a", "b", "a", "b", "a"], "value": [0.1, 0.9, 0.3, 0.7, 0.2]})
    for kind, axis in (("box", "y"), ("histogram", "x")):
        traces = _json_traces(plots.plot_score_distributions(scores, kind=kind, models=["b", "a"]))
        assert [t["name"] for t in traces] == ["b", "a"]
        assert [_decode(t[axis]).astype(float).tolist() for t in traces] == [[0.9, 0.7], [0.1, 0.3, 0.2]]


def test_quality_tradeoff_points_are_the_frames_numbers():
    df = pd.DataFrame({"model": ["a", "b", "c"], "quality": [0.5, 0.7, 0.6], "cost_usd": [1.0, 2.0, 3.0],
                       "ci_low": [0.4, 0.65, 0.5], "ci_high": [0.55, 0.8, 0.7]})
    models, front = _json_traces(plots.plot_quality_vs_cost(df))
    assert list(models["text"]) == ["a", "b", "c"]
    assert _decode(models["x"]).tolist() == [1.0, 2.0, 3.0] and _decode(models["y"]).tolist() == [0.5, 0.7, 0.6]
    assert (_decode(models["y"]) + _decode(models["error_y"]["array"])).tolist() == pytest.approx([0.55, 0.8, 0.7])
    assert (_decode(models["y"]) - _decode(models["error_y"]["arrayminus"])).tolist() == pytest.approx([0.4, 0.65, 0.5])
    assert _decode(front["x"]).tolist() == [1.0, 2.0] and _decode(front["y"]).tolist() == [0.5, 0.7]


def test_confusion_and_progress_draw_the_counts():
    df = pd.DataFrame({"judge": ["A", "B", "A"], "human": ["A", "A", "tie"], "count": [4, 2, 1]})
    (heat,) = _json_traces(plots.plot_judge_human_confusion(df, labels=["A", "B", "tie"]))
    assert _decode(heat["z"]).tolist() == [[4, 2, 0], [0, 0, 0], [1, 0, 0]]
    progress = pd.DataFrame({"rater": ["ann", "bob"], "labeled": [6, 8], "skipped": [1, 0], "remaining": [3, 0]})
    traces = _json_traces(plots.plot_labeling_progress(progress))
    assert {t["name"]: _decode(t["x"]).tolist() for t in traces} == {"labeled": [6, 8], "skipped": [1, 0],
                                                                      "remaining": [3, 0]}
    assert all(t["orientation"] == "h" and list(t["y"]) == ["ann", "bob"] for t in traces)


# ---- in a real browser: where the dots land on screen --------------------------------------------
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Rendered positions from the DOM, in page pixels: every marker/bar of every trace, and the tick
# labels of the value axis (text and centre), so values are read off the axis as a person would.
_RENDERED_JS = """(axis) => {
  const gd = document.querySelector('.js-plotly-plot');
  const centre = (el) => { const r = el.getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2, top: r.y}; };
  const traces = Array.from(gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace')).map(t =>
    Array.from(t.querySelectorAll('path.point, g.point > path')).map(centre));
  const ticks = Array.from(gd.querySelectorAll('g.' + axis + 'tick text')).map(el => ({label: el.textContent, ...centre(el)}));
  const shapes = Array.from(gd.querySelectorAll('.shapelayer path')).map(centre);
  return {traces, ticks, shapes};
}"""


@pytest.fixture(scope="module")
def chromium():
    from pathlib import Path

    from tests.real_parts import missing, need_module

    if not Path(CHROMIUM_PATH).exists():
        missing("browser plot checks need /usr/bin/chromium: run scripts/setup_browser.sh")
    sync_api = need_module("playwright.sync_api", "browser plot checks need playwright: run scripts/setup_browser.sh")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


def _render(chromium, fig, path, axis: str):
    fig.write_html(str(path), include_plotlyjs="directory", full_html=True)  # plotly.min.js beside it, offline
    page = chromium.new_page(viewport={"width": 1000, "height": 700})
    try:
        page.goto(path.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .point').length > 0")
        page.screenshot(path=str(path.with_suffix(".png")))
        return page.evaluate(_RENDERED_JS, axis)
    finally:
        page.close()


def _axis_map(ticks, coord: str):
    """Pixel -> value from the numeric tick labels (least squares over all ticks)."""
    pts = [(t[coord], float(t["label"].replace("−", "-"))) for t in ticks if t["label"].strip()]
    assert len(pts) >= 3, ticks
    px, val = np.array(pts).T
    slope, intercept = np.polyfit(px, val, 1)
    return lambda p: slope * p + intercept, abs(slope)


@pytest.mark.browser
@pytest.mark.parametrize("fn", [plots.plot_win_rates, plots.plot_metric_deltas])
def test_browser_draws_grouped_ci_dots_at_their_values(fn, chromium, tmp_path):
    fig = fn(CI_FRAME)
    shown = _render(chromium, fig, tmp_path / f"{fn.__name__}.html", axis="x")
    to_value, per_px = _axis_map(shown["ticks"], "x")
    sources = list(dict.fromkeys(CI_FRAME["source"]))
    assert [len(t) for t in shown["traces"]] == [3, 3, 3]
    for source, points in zip(sources, shown["traces"]):
        expected = CI_FRAME.loc[CI_FRAME["source"] == source, "estimate"].tolist()
        assert [to_value(p["x"]) for p in points] == pytest.approx(expected, abs=2 * per_px), source
    # side by side on the category axis: each category's three dots are at three different heights
    for i in range(3):
        ys = sorted(points[i]["y"] for points in shown["traces"])
        assert ys[0] < ys[1] < ys[2] and ys[2] - ys[0] < 60


@pytest.mark.browser
def test_browser_draws_consistency_bars_and_the_threshold_at_their_values(chromium, tmp_path):
    fig = plots.plot_position_consistency(_ci(["judge-1", "judge-2"], [0.9, 0.62], [0.85, 0.5], [0.95, 0.7]),
                                          threshold=0.8)
    shown = _render(chromium, fig, tmp_path / "consistency.html", axis="y")
    to_value, per_px = _axis_map(shown["ticks"], "y")
    (bars,) = shown["traces"]
    assert [to_value(b["top"]) for b in bars] == pytest.approx([0.9, 0.62], abs=2 * per_px)
    (line,) = shown["shapes"]
    assert to_value(line["y"]) == pytest.approx(0.8, abs=2 * per_px)


def test_tradeoff_labels_stay_inside_the_plot():
    """A model name centred on the rightmost point was clipped at the plot's edge."""
    df = pd.DataFrame({"model": ["hf/gemma3-270m", "hf/smollm2-135m-instruct", "mid"], "quality": [30.0, 20.0, 25.0],
                       "latency_s": [0.4, 2.0, 1.0]})
    fig = plots.plot_quality_vs_latency(df)
    points = fig.data[0]
    assert list(points.textposition) == ["top right", "top left", "top center"]  # labels grow inwards at the ends
    assert points.cliponaxis is False
    x_low, x_high = fig.layout.xaxis.range
    y_low, y_high = fig.layout.yaxis.range
    assert x_low < 0.4 and x_high > 2.0 and y_high > 30.0 + 0.2 * 10  # room above the highest label
