"""The side-by-side explorer, driven through its ipywidgets like a user would (clicks, values)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.widgets.explorer import Explorer
from workbench.widgets.explorer_data import ExplorerData, Filters
from workbench.widgets.explorer_store import store_runs

XSS_SCRIPT = '<script>alert("x")</script>'
XSS_IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
def frames():
    items = pd.DataFrame({
        "item_id": ["i1", "i2", "i3", "i4", "i5", "i6"],
        "input": ["Where is my order?", "注文をキャンセルできますか？", "Render this: <b>bold</b>",
                  "返品の送料は？", "Reset my password", "Summarise the review"],
        "reference": ["It ships today.", "はい、できます。", None, "無料です。", "Use the link.", None],
        "language": ["en", "ja", "en", "ja", "en", "en"],
        "task": ["support_reply", "support_reply", "review_summary", "support_reply", "support_reply",
                 "review_summary"],
    })
    rows = []
    for m in ("base", "cand", "cand2"):
        for i in items["item_id"]:
            rows.append({"item_id": i, "model": m, "response": f"{m} says hello about {i}", "error": None,
                         "latency_s": 0.5, "cost_usd": 0.001, "prompt_tokens": 10, "completion_tokens": 5,
                         "finish_reason": "stop"})
    responses = pd.DataFrame(rows)
    responses.loc[(responses.item_id == "i3") & (responses.model == "base"), "response"] = XSS_IMG
    responses.loc[(responses.item_id == "i3") & (responses.model == "cand"), "response"] = XSS_SCRIPT
    failed = (responses.item_id == "i5") & (responses.model == "cand")
    responses.loc[failed, "response"] = None
    responses.loc[failed, "error"] = "timeout: <b>took too long</b>"
    responses.loc[failed, "cost_usd"] = None
    scores = pd.DataFrame(
        [("i1", "base", 0.5), ("i1", "cand", 0.7), ("i2", "base", 0.5), ("i2", "cand", 0.4),
         ("i3", "base", 0.5), ("i3", "cand", 0.5), ("i4", "base", 0.5), ("i4", "cand", 0.9),
         ("i5", "base", 0.5), ("i6", "base", 0.5), ("i6", "cand", 0.45),
         ("i1", "cand2", 0.1), ("i2", "cand2", 0.8)],
        columns=["item_id", "model", "value"]).assign(metric="rouge")
    judgments = pd.DataFrame([
        ("i1", "base", "cand", "B", True, "cand is more helpful"),
        ("i2", "cand", "base", "A", True, "cand answers the question"),  # other orientation
        ("i3", "base", "cand", "tie", True, f"both odd {XSS_SCRIPT}"),
        ("i4", "base", "cand", "A", False, "orders disagreed"),
        ("i6", "base", "cand", "a", True, "base is concise"),
        ("i1", "base", "cand2", "A", True, "base better than cand2"),
    ], columns=["item_id", "model_a", "model_b", "verdict", "consistent", "rationale"])
    labels = pd.DataFrame([
        ("i1", "r1", "cand"), ("i1", "r2", "cand"), ("i2", "r1", "base"), ("i6", "r1", "base"),
        ("i3", "r1", "cand"), ("i4", "r1", None),
    ], columns=["item_id", "rater", "winner_model"]).assign(left_model="base", right_model="cand")
    return {"items_df": items, "responses_df": responses, "scores_df": scores,
            "judgments_df": judgments, "labels_df": labels}


@pytest.fixture
def ex(frames):
    return Explorer(**frames, higher_is_better={"rouge": True})


def test_opens_on_the_first_item_with_all_items(ex):
    assert ex.data.models == ["base", "cand", "cand2"]
    assert ex.data.baseline == "base" and ex.data.candidates == ["cand", "cand2"]
    assert ex.current_id == "i1"
    assert ex.filtered_ids == ["i1", "i2", "i3", "i4", "i5", "i6"]
    assert "item 1 of 6<" in ex.status.value  # no filter: no "shown (filtered from …)"
    assert ex.prev_button.disabled and not ex.next_button.disabled
    assert "Where is my order?" in ex.view.value
    assert [v for _, v in ex.item_list.options] == ex.filtered_ids
    assert ex.item_list.value == "i1"


def test_models_argument_sets_order_and_baseline(frames):
    ex = Explorer(**frames, models=["cand", "base"])
    assert ex.data.baseline == "cand" and ex.data.candidates == ["base"]
    assert ex.candidate.disabled  # a single candidate: nothing to choose
    html = ex.render_item_html("i1")
    assert html.index("cand <span") < html.index("base <span")  # baseline column first


def test_prev_next_buttons_walk_the_items(ex):
    ex.next_button.click()
    ex.next_button.click()
    assert ex.current_id == "i3"
    ex.prev_button.click()
    assert ex.current_id == "i2"
    for _ in range(10):
        ex.next_button.click()
    assert ex.current_id == "i6" and ex.next_button.disabled
    assert "item 6 of 6<" in ex.status.value


def test_go_to_box_jumps_and_reports_unknown_ids(ex):
    ex.goto_box.value = "i4"
    assert ex.current_id == "i4"
    assert "返品の送料は？" in ex.view.value
    ex.goto_box.value = "nope<script>"
    assert ex.current_id == "i4"
    assert "no item with id" in ex.status.value
    assert "<script>" not in ex.status.value


def test_item_list_selection_and_pages(frames):
    ex = Explorer(**frames, page_size=2)
    assert [v for _, v in ex.item_list.options] == ["i1", "i2"]
    assert ex.prev_page_button.disabled
    ex.next_page_button.click()
    assert ex.current_id == "i3"
    assert [v for _, v in ex.item_list.options] == ["i3", "i4"]
    ex.item_list.value = "i4"
    assert ex.current_id == "i4"
    ex.next_button.click()  # crossing the page boundary re-pages the list
    assert ex.current_id == "i5" and [v for _, v in ex.item_list.options] == ["i5", "i6"]
    assert ex.next_page_button.disabled
    ex.prev_page_button.click()
    assert ex.current_id == "i3"


def test_slice_filter_through_the_widgets(ex):
    ex.slice_column.value = "language"
    assert ("ja (2)", "ja") in ex.slice_value.options
    ex.slice_value.value = "ja"
    assert ex.filtered_ids == ["i2", "i4"]
    assert ex.current_id == "i2"  # i1 is filtered out: move to the first match
    ex.slice_column.value = "task"
    assert len(ex.filtered_ids) == 6  # changing the column resets the value
    ex.slice_value.value = "review_summary"
    assert ex.filtered_ids == ["i3", "i6"]


def test_search_is_case_insensitive_over_input_responses_and_errors(ex):
    ex.search.value = "ALERT("
    assert ex.filtered_ids == ["i3"]
    ex.search.value = "キャンセル"
    assert ex.filtered_ids == ["i2"]
    ex.search.value = "took too long"
    assert ex.filtered_ids == ["i5"]
    ex.search.value = "cand2 says hello about i6"
    assert ex.filtered_ids == ["i6"]
    ex.search.value = ""
    assert len(ex.filtered_ids) == 6


def test_error_filter(ex):
    ex.errors.value = "with_errors"
    assert ex.filtered_ids == ["i5"]
    assert "timeout: &lt;b&gt;took too long&lt;/b&gt;" in ex.view.value
    ex.errors.value = "without_errors"
    assert ex.filtered_ids == ["i1", "i2", "i3", "i4", "i6"]


def test_metric_delta_range_filter(ex):
    ex.metric.value = "rouge"
    assert not ex.delta_range.disabled
    assert ex.filtered_ids == ["i1", "i2", "i3", "i4", "i6"]  # i5 has no candidate score
    assert ex.delta_range.value == pytest.approx((-0.1, 0.4))
    ex.delta_range.value = (0.1, 0.4)
    assert ex.filtered_ids == ["i1", "i4"]
    ex.delta_range.value = (-0.1, -0.01)
    assert ex.filtered_ids == ["i2", "i6"]
    ex.candidate.value = "cand2"  # the range follows the candidate
    assert ex.delta_range.value == pytest.approx((-0.4, 0.3))
    assert ex.filtered_ids == ["i1", "i2"]


def test_judge_verdict_filter_handles_both_orientations(ex):
    ex.verdict.value = "candidate_wins"
    assert ex.filtered_ids == ["i1", "i2"]
    ex.verdict.value = "baseline_wins"
    assert ex.filtered_ids == ["i6"]
    ex.verdict.value = "tie"
    assert ex.filtered_ids == ["i3", "i4"]  # an order disagreement counts as a tie
    ex.verdict.value = "inconsistent"
    assert ex.filtered_ids == ["i4"]
    ex.candidate.value = "cand2"
    ex.verdict.value = "baseline_wins"
    assert ex.filtered_ids == ["i1"]


def test_judge_human_disagreement_filter(ex):
    ex.disagree.value = True
    # i2: judge cand, humans base; i3: judge tie, human cand. i1, i6 agree; i4 tie/tie.
    assert ex.filtered_ids == ["i2", "i3"]


def test_filters_combine_keep_the_current_item_and_reset(ex):
    ex.goto_box.value = "i3"
    ex.slice_column.value = "task"
    ex.slice_value.value = "review_summary"
    assert ex.current_id == "i3"  # still matches: stay
    ex.verdict.value = "baseline_wins"
    assert ex.filtered_ids == ["i6"] and ex.current_id == "i6"
    ex.reset_button.click()
    assert len(ex.filtered_ids) == 6 and ex.current_id == "i6"
    assert ex.slice_column.label == "(all)" and ex.verdict.label == "(any)"


def test_no_match_shows_a_message_and_disables_navigation(ex):
    ex.search.value = "no such text anywhere"
    assert ex.filtered_ids == [] and ex.current_id is None
    assert "No item matches" in ex.view.value
    assert ex.prev_button.disabled and ex.next_button.disabled
    ex.next_button.click()  # harmless
    assert ex.current_id is None
    ex.search.value = ""
    assert ex.current_id == "i1"


def test_going_outside_the_filter_then_next_continues_in_item_order(ex):
    ex.slice_column.value = "language"
    ex.slice_value.value = "ja"
    ex.goto_box.value = "i3"  # an English item
    assert ex.current_id == "i3"
    assert "outside the current filters" in ex.view.value
    assert "item i3 is outside the filters (2 of 6 shown)" in ex.status.value
    ex.next_button.click()
    assert ex.current_id == "i4"
    ex.goto_box.value = "i3"
    ex.prev_button.click()
    assert ex.current_id == "i2"


def test_keys_navigate(ex):
    assert ex.handle_key("ArrowRight") and ex.current_id == "i2"
    assert ex.handle_key("j") and ex.current_id == "i3"
    assert ex.handle_key("k") and ex.current_id == "i2"
    assert not ex.handle_key("x") and ex.current_id == "i2"


def test_untrusted_text_is_escaped_everywhere(frames):
    f = dict(frames)
    f["items_df"] = frames["items_df"].assign(language=frames["items_df"]["language"].replace("en", XSS_IMG))
    f["responses_df"] = frames["responses_df"].replace({"model": {"cand2": "evil<script>m</script>"}})
    f["labels_df"] = frames["labels_df"].replace({"rater": {"r1": XSS_IMG}})
    ex = Explorer(**f)
    ex.goto_box.value = "i3"
    for diff in (True, False):
        ex.diff_toggle.value = diff
        html = ex.view.value
        assert "<script" not in html and "<img" not in html and "<b>bold" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html.replace('<ins class="wb-ins">', "").replace("</ins>", "")
        assert "&lt;img src=x onerror=alert(1)&gt;" in html  # baseline response, rater, slice value
        assert "evil&lt;script&gt;m&lt;/script&gt;" in html
        assert "&lt;b&gt;bold&lt;/b&gt;" in html  # the input
    assert "<script" not in ex.static_html()


def test_diff_highlighting_toggles(ex):
    assert '<ins class="wb-ins">cand</ins>' in ex.view.value
    assert '<del class="wb-del">base</del>' in ex.view.value
    ex.diff_toggle.value = False
    assert "wb-ins" not in ex.view.value.split("</style>")[1]


def test_view_shows_badges_latency_cost_verdict_and_labels(ex):
    html = ex.view.value
    assert "rouge: 0.7 (+0.2)" in html and "wb-good" in html
    assert "0.50 s" in html and "$0.001000" in html and "10→5 tok" in html
    assert "cand wins" in html and "cand is more helpful" in html
    assert "human labels" in html and "r2: cand" in html
    ex.goto_box.value = "i2"
    assert "rouge: 0.4 (-0.1)" in ex.view.value and "wb-bad" in ex.view.value
    ex.goto_box.value = "i4"
    assert "orders disagree" in ex.view.value
    ex.goto_box.value = "i5"
    assert "cost unknown" in ex.view.value and "no response" not in ex.view.value.split("timeout")[0][-200:]


def test_samples_can_be_switched(frames):
    extra = frames["responses_df"].assign(sample_index=1, response=lambda d: d["response"] + " (second sample)")
    ex = Explorer(frames["items_df"], pd.concat([frames["responses_df"].assign(sample_index=0), extra]))
    assert not ex.sample.disabled and list(ex.sample.options) == [0, 1]
    assert "second sample" not in ex.view.value
    ex.sample.value = 1
    assert "second sample" in ex.view.value and "sample 1" in ex.view.value


def test_static_fallback_is_displayed_beside_the_widget(ex, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    ex.next_button.click()
    ex._ipython_display_()
    assert shown[0] is ex.widget
    fallback = shown[1].data
    assert fallback.startswith('<div class="wb-static-fallback">')
    assert "注文をキャンセルできますか？" in fallback  # the current item, i2
    # the live widget carries the CSS that hides the fallback while widgets render
    assert any(".wb-static-fallback{display:none}" in getattr(c, "value", "") for c in ex.widget.children)
    assert ex._repr_html_() == ex.static_html()


def test_render_item_html_works_without_widgets(frames):
    data = ExplorerData(**frames)
    html = data.render_item_html("i2", diff=False)
    assert "cand says hello about i2" in html and "base says hello about i2" in html
    assert data.filter_ids(Filters(slices={"language": ["ja"]}, verdict="candidate_wins")) == ["i2"]
    with pytest.raises(InputError, match="no item with id 'zz'"):
        data.render_item_html("zz")


def test_raw_label_log_is_folded(frames):
    log = pd.DataFrame({
        "label_id": [1, 2, 3], "item_id": ["i1", "i1", "i1"], "rater": ["r1"] * 3,
        "left_model": ["base"] * 3, "right_model": ["cand"] * 3, "action": ["right", "undo", "left"],
        "winner_model": ["cand", None, "base"], "undoes_label_id": [None, 1, None]})
    ex = Explorer(**{**frames, "labels_df": log})
    assert "r1: base" in ex.view.value and "r1: cand" not in ex.view.value
    ex.disagree.value = True
    assert ex.filtered_ids == ["i1"]  # judge says cand, the folded label says base


@pytest.mark.parametrize("change,match", [
    (lambda f: f.update(items_df=f["items_df"].drop(columns="input")), "items_df, field 'input': missing column"),
    (lambda f: f.update(items_df=pd.concat([f["items_df"], f["items_df"].head(1)])), "duplicate key item_id='i1'"),
    (lambda f: f.update(responses_df=pd.concat([f["responses_df"], f["responses_df"].head(1)])), "duplicate key"),
    (lambda f: f.update(models=["base", "ghost"]), "no responses for model"),
    (lambda f: f.update(judgments_df=f["judgments_df"].assign(verdict="maybe")), "is not A, B or tie"),
    (lambda f: f.update(scores_df=f["scores_df"].drop(columns="metric")), "scores_df, field 'metric'"),
])
def test_bad_input_raises_input_error_naming_the_field(frames, change, match):
    f = dict(frames)
    change(f)
    with pytest.raises(InputError, match=match):
        Explorer(**f)


def test_bad_filters_are_rejected(frames):
    data = ExplorerData(**frames)
    with pytest.raises(InputError) as err:
        data.mask(Filters(candidate="ghost", slices={"nope": [1]}, metric="bleu", verdict="yes", errors="some"))
    assert len(err.value.problems) == 5


def _synthetic(n: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ids = [f"it{i:05d}" for i in range(n)]
    items = pd.DataFrame({"item_id": ids, "input": [f"question {i}" for i in range(n)],
                          "language": rng.choice(["en", "ja"], n)})
    responses = pd.concat([pd.DataFrame({"item_id": ids, "model": m, "response": [f"{m} answer {i}" for i in range(n)],
                                         "latency_s": rng.random(n), "cost_usd": 0.001}) for m in ("a", "b")])
    scores = pd.DataFrame({"item_id": ids * 2, "model": ["a"] * n + ["b"] * n, "metric": "m", "value": rng.random(2 * n)})
    return items, responses, scores


def test_ten_thousand_items_open_fast_and_steps_stay_fast():
    items, responses, scores = _synthetic(10_000)
    start = time.perf_counter()
    ex = Explorer(items, responses, scores)
    opened = time.perf_counter() - start
    start = time.perf_counter()
    ex.next_button.click()
    ex.search.value = "answer 9999"
    step = (time.perf_counter() - start) / 2
    assert ex.filtered_ids == ["it09999"]
    # generous bounds for a shared 2-core CI box; docs/bench/explorer.md has the measured numbers
    assert opened < 3.0, opened
    assert step < 0.5, step


# ---- the explore notebook: runs on a missing store and degrades to static HTML when exported ----
NOTEBOOK = __import__("workbench.project.lookup", fromlist=["bundled"]).bundled("notebooks/explore.ipynb")


def _outputs(nb) -> str:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            texts.append(out.get("text", "") + str(out.get("data", {}).get("text/html", "")))
    return "\n".join(texts)


@pytest.mark.slow
def test_explore_notebook_on_missing_and_real_store(tmp_path):
    """The notebook as users open it: in a project without a store it says so and creates none; with
    the report's runs in the store it shows them, escaped, and a static fallback for the HTML export."""
    import papermill as pm
    from nbconvert import HTMLExporter

    from workbench.task.config import build_config
    from workbench.pipeline import run_pipeline

    rows = [{"item_id": "q1", "input": f"Where is my parcel? {XSS_SCRIPT}", "language": "en"},
            {"item_id": "q2", "input": "返品できますか？", "language": "ja"}]
    (tmp_path / "items.jsonl").write_text("".join(__import__("json").dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                          encoding="utf-8")
    (tmp_path / "params.toml").write_text(
        'dataset = "items.jsonl"\nbaseline = "fake/base"\nbaseline_prompt = ""\ncandidates = ["fake/cand"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["length_chars"]\nbootstrap_resamples = 100\n'
        'gate = { max_error_rate = 0.5 }\n', encoding="utf-8")
    params = {"params_file": str(tmp_path / "params.toml")}
    missing = pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "missing.ipynb"), kernel_name="python3",
                                  parameters=params, progress_bar=False, cwd=str(tmp_path))
    assert "Nothing to explore yet" in _outputs(missing) and "store not found" in _outputs(missing)
    assert not (tmp_path / ".workbench").exists()  # looking must not create an empty store

    run_pipeline(build_config(tmp_path / "params.toml"))
    nb = pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3",
                             parameters=params, progress_bar=False, cwd=str(tmp_path))
    text = _outputs(nb)
    assert "2 items; baseline fake/base; candidates fake/cand; 0 human labels" in text
    assert '<div class="wb-static-fallback">' in text and "Where is my parcel?" in text
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert "wb-static-fallback" in html and "Where is my parcel?" in html
    # model text is escaped everywhere it is shown; nbconvert's own widget-state JSON block carries the
    # raw text as JSON data (not shown, not run), so it is left out of this check
    shown = __import__("re").sub(r'<script type="application/vnd.jupyter.widget-state\+json">.*?</script>\s*</html>',
                                 "", html, flags=__import__("re").S)
    assert "&lt;script&gt;alert(" in shown and "<script>alert" not in shown


# ---- issue 11: readable diff, reset to "(all)", position label ------------------------------------
def test_reset_puts_every_dropdown_back_on_its_all_choice_not_blank(ex):
    ex.slice_column.value = "task"
    ex.slice_value.value = "review_summary"
    ex.metric.value = "rouge"
    ex.verdict.value = "baseline_wins"
    ex.errors.value = "without_errors"
    ex.search.value = "review"
    ex.reset_button.click()
    labels = [d.label for d in (ex.slice_column, ex.slice_value, ex.metric, ex.verdict, ex.errors)]
    assert labels == ["(all)", "(all)", "(none)", "(any)", "(all)"]
    assert ex.search.value == "" and ex.delta_range.disabled and ex.slice_value.disabled
    assert len(ex.filtered_ids) == 6 and "item 6 of 6<" in ex.status.value
    ex.slice_column.value = "language"  # a slice column chosen after a reset offers "(all)" again
    assert ex.slice_value.label == "(all)" and len(ex.filtered_ids) == 6
    ex.slice_value.value = "ja"
    assert ex.filtered_ids == ["i2", "i4"]
    ex.slice_value.value = None  # "nothing selected" (code, or an old notebook) shows "(all)", not a blank
    assert ex.slice_value.label == "(all)" and len(ex.filtered_ids) == 6


def test_status_reads_as_a_position_among_the_shown_items(ex):
    ex.slice_column.value = "language"
    ex.slice_value.value = "ja"
    assert "item 1 of 2 shown (filtered from 6)" in ex.status.value
    ex.next_button.click()
    assert ex.current_id == "i4" and "item 2 of 2 shown (filtered from 6)" in ex.status.value
    ex.search.value = "nothing matches this"
    assert "no item matches the filters (0 of 6 shown)" in ex.status.value
    assert ex.position_text() == "no item matches the filters (0 of 6 shown)"


def _two_answers(base: str, cand: str) -> Explorer:
    items = pd.DataFrame({"item_id": ["q"], "input": ["Where is my refund?"]})
    responses = pd.DataFrame({"item_id": ["q", "q"], "model": ["base", "cand"], "response": [base, cand]})
    return Explorer(items, responses)


def _after_style(html: str) -> str:
    return html.split("</style>", 1)[1]


def test_related_answers_are_diffed_word_by_word_with_a_legend():
    ex = _two_answers("Your refund was issued and arrives in five business days.",
                      "Your refund was issued today and arrives in three business days.")
    view = _after_style(ex.view.value)
    assert "added by the candidate" in view and "baseline text the candidate dropped" in view
    assert '<del class="wb-del">five</del><ins class="wb-ins">three</ins>' in view
    assert '<ins class="wb-ins">today </ins>' in view  # the space stays with the added word
    assert "without diff marks" not in view


def test_unrelated_answers_are_shown_side_by_side_without_marks_and_say_so():
    script = "<script>window.x=1</script> I cannot help with that request, sorry."
    ex = _two_answers("Your refund was issued and arrives in five business days.", script)
    view = _after_style(ex.view.value)
    assert "wb-ins" not in view and "wb-del" not in view and "added by the candidate" not in view
    assert "in common with the baseline (under 30%): shown side by side without diff marks" in view
    assert "<script" not in view and "&lt;script&gt;window.x=1&lt;/script&gt; I cannot help" in view
    assert "Your refund was issued and arrives in five business days." in view
    ex.diff_toggle.value = False
    assert "without diff marks" not in ex.view.value


# ---- over a store's runs, read lazily -----------------------------------------------------------
@pytest.fixture
def generated(tmp_path):
    """A store with two fake models' runs over 40 items (one call failed), and the run frames."""
    from workbench.generation.calls import CallPolicy
    from workbench.generation.runner import ModelSpec, generate
    from workbench.store import Store

    items = pd.DataFrame({"item_id": [f"it{k:02d}" for k in range(40)], "input": [f"Question {k}?" for k in range(40)],
                          "language": ["en", "ja"] * 20})
    models = [ModelSpec(name="fake/base"), ModelSpec(name="fake/cand", options={"fail_items": ["it07"]})]
    policy = CallPolicy(max_attempts=1)
    with Store(tmp_path / "store.db") as store:
        frame, _ = generate(items, models, store, policy=policy, progress=False)
        yield store, frame


def test_from_store_reads_only_the_item_on_screen(generated):
    store, _frame = generated
    ex = Explorer.from_store(store, ["fake/base", "fake/cand"])
    assert ex.data.n_items == 40 and ex.data.models == ["fake/base", "fake/cand"] and ex.current_id == "it00"
    assert ex.data.rows_loaded == 2  # the first item's two responses, not 80 rows
    ex.next()
    ex.go_to("it30")
    assert ex.data.rows_loaded == 6 and "Question 30?" in ex.view.value
    assert ex.position_text() == "item 31 of 40"


def test_from_store_shows_what_the_frame_explorer_shows(generated):
    store, frame = generated
    lazy = Explorer.from_store(store, ["fake/base", "fake/cand"])
    eager = Explorer(store.items_frame(frame["dataset_id"].iloc[0]), frame)
    for item in ("it00", "it07", "it39"):
        assert lazy.data.render_item_html(item) == eager.data.render_item_html(item)
    assert "error: server: injected failure for it07" in lazy.data.render_item_html("it07")
    for filters in (Filters(errors="with_errors"), Filters(errors="without_errors"), Filters(search="question 1"),
                    Filters(search="FAKE/CAND: QUESTION 3"), Filters(slices={"language": ["ja"]})):
        assert lazy.data.filter_ids(filters) == eager.data.filter_ids(filters)
    assert lazy.data.filter_ids(Filters(errors="with_errors")) == ["it07"]


def test_from_store_names_runs_and_refuses_what_it_cannot_pair(generated):
    store, frame = generated
    runs = {"base run": int(store.latest_run_id("fake/base")), "cand run": int(store.latest_run_id("fake/cand"))}
    ex = Explorer.from_store(store, runs=runs)
    assert ex.data.baseline == "base run" and "cand run" in ex.view.value
    with pytest.raises(InputError, match="no run of model 'fake/other'.*fake/base, fake/cand"):
        Explorer.from_store(store, ["fake/base", "fake/other"])
    with pytest.raises(InputError, match="not both"):
        Explorer.from_store(store, ["fake/base"], runs=runs)
    store.save_items("d2", "mem", pd.DataFrame({"item_id": ["x"], "input": ["x"]}))
    elsewhere = store.create_run("fake/x", None, "d2", {"samples": 1}, [("x", 0, "kx")])
    with pytest.raises(InputError, match="different datasets"):
        Explorer.from_store(store, runs={"a": runs["base run"], "b": elsewhere})
    with pytest.raises(InputError, match="models fake/base, fake/x have no dataset they all ran on"):
        Explorer.from_store(store, ["fake/base", "fake/x"])
    later = store.create_run("fake/base", None, "d2", {"samples": 1}, [("x", 0, "kx")])  # newest, other items
    assert Explorer.from_store(store, ["fake/base", "fake/cand"]).data.n_items == 40  # still the pair's dataset
    assert store_runs(store, ["fake/base", "fake/x"]) == {"fake/base": later, "fake/x": elsewhere}


def test_a_judge_that_fails_its_check_is_marked_untrusted_on_its_verdicts(frames):
    trusted = ExplorerData(**frames)
    assert "UNTRUSTED" not in trusted.render_item_html("i1", diff=False)
    judgments = frames["judgments_df"].copy()
    judgments.loc[judgments["model_b"].isin(["cand", "base"]) & judgments["model_a"].isin(["cand", "base"]),
                  "consistent"] = False  # its two orders never agree on base vs cand
    data = ExplorerData(**{**frames, "judgments_df": judgments})
    assert data.untrusted_judge and "position consistency 0.00" in next(iter(data.untrusted_judge.values()))
    assert "UNTRUSTED judge" in data.render_item_html("i1", diff=False)
    assert "UNTRUSTED judge" in data.render_item_html("i2", diff=False)  # the other orientation too
    shown = data.render_item_html("i1", diff=False)
    assert shown.count("UNTRUSTED") == 1  # cand2's verdict (consistent) is not marked


def test_the_go_to_box_forgets_its_id_when_the_filter_changes(ex):
    """It kept a stale id after filtering: an id that may no longer be listed."""
    ex.goto_box.value = "i4"
    assert ex.current_id == "i4"
    ex.slice_column.value = "language"
    ex.slice_value.value = "en"
    assert ex.goto_box.value == "" and "i4" not in ex.goto_box.options
    ex.goto_box.value = "i3"  # and it still goes where it is told
    assert ex.current_id == "i3"


def test_a_local_models_latency_is_marked_as_time_in_a_batch(frames):
    """An hf/ row's latency is its time inside a batch decoded with other items (65 s for one answer
    read as that answer's own latency)."""
    responses = frames["responses_df"].assign(model=lambda d: d["model"].map({"base": "hf/base", "cand": "openai/c",
                                                                             "cand2": "openai/c2"}))
    html = Explorer(frames["items_df"], responses).view.value
    assert "0.50 s in a batch" in html  # the local model's
    assert html.count("0.50 s in a batch") == 1 and "0.50 s ·" in html  # the API models' as they are
