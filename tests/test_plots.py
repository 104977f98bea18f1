"""Plot helpers: right traces and points, empty-state figures, escaping, offline HTML."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from workbench import plots
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
