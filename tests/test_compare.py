"""compare(): evidence stays honest when the judge is useless or a model answered nothing."""
import numpy as np
import pandas as pd
import pytest

from workbench.comparison.compare import compare
from workbench.comparison.gate import GateConfig


def _frames(n=40):
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "input": ["q"] * n, "reference": ["ref"] * n,
                          "language": ["en", "ja"] * (n // 2)})
    def resp(model, text):
        return pd.DataFrame({"item_id": items["item_id"], "model": model, "sample_index": 0, "response": text,
                             "error": None, "latency_s": 0.1, "cost_usd": None, "prompt_tokens": 1,
                             "completion_tokens": 1})
    return items, resp("m/base", "short"), resp("m/cand", "a much longer answer")


def test_a_judge_that_only_ties_gives_undefined_length_bias_not_a_crash():
    items, base, cand = _frames()
    verdicts = pd.DataFrame({"item_id": items["item_id"], "verdict_ab": "A", "verdict_ba": "B", "verdict": "tie",
                             "consistent": False})
    result = compare(items, base, cand, verdicts=verdicts,
                     gate=GateConfig(min_items=10, win_rate={"noninferiority_margin": 0.1}, min_position_consistency=0.7))
    reliability = result.judge_reliability.set_index("measure")
    assert np.isnan(reliability.loc["P(judge prefers the longer answer)", "value"])
    assert reliability.loc["position consistency (same verdict in both orders)", "value"] == 0.0
    assert result.gate.verdict == "INCONCLUSIVE"  # an untrusted judge decides nothing
    # no contradictory rows: the orders never agreed, which is why no combined verdict is decisive
    assert "never agreed" in reliability.loc["P(judge prefers the longer answer)", "reading"]
    assert reliability.loc["judge check", "reading"].startswith("UNTRUSTED")
    judge = result.win_rates.set_index("source").loc["judge"]
    assert "untrusted judge" in judge["judge_check"] and judge["ci_high"] - judge["ci_low"] > 0.05
    judge_slices = result.slices[result.slices["metric"] == "judge win rate"]
    assert len(judge_slices) and set(judge_slices["verdict"]) == {"untrusted judge"}


def test_a_candidate_that_answered_nothing_is_reported_not_crashed():
    items, base, cand = _frames()
    cand = cand.assign(response=None, error="server: down")
    result = compare(items, base, cand, gate=GateConfig(min_items=10, max_error_rate=0.05))
    assert result.n_paired == 0 and len(result.errors) == 40
    assert result.gate.verdict == "FAIL"  # 100% errors on 40 items: the whole CI is above 5%


def _labels(item_ids, choice="A", rater="ann"):
    return pd.DataFrame({"item_id": list(item_ids), "rater": rater, "choice": choice})


def test_active_queue_labels_are_weighted_and_outsiders_left_out():
    from workbench import stats
    from workbench.comparison.compare import judge_item_scores, prediction_powered_win_rate

    items, base, cand = _frames()
    verdicts = pd.DataFrame({"item_id": items["item_id"], "verdict_ab": "B", "verdict_ba": "B", "verdict": "B"})
    queue = {"queue": [(f"i{k}", 0.2 if k % 2 else 0.8) for k in range(12)], "queue_size": 12}
    human = pd.concat([_labels([f"i{k}" for k in range(8)], "A"), _labels(["i30", "i31"], "B")], ignore_index=True)
    ppi, left_out = prediction_powered_win_rate(judge_item_scores(verdicts), human, queue)
    direct = stats.active_win_rate(judge_item_scores(verdicts), pd.DataFrame({"item_id": [f"i{k}" for k in range(8)],
                                                                              "score": 0.0}),
                                   dict(queue["queue"]), queue_size=12)
    assert left_out == 2 and ppi.method == "active" and ppi.estimate == direct.estimate
    result = compare(items, base, cand, verdicts=verdicts, human=human, label_queue=queue,
                     gate=GateConfig(min_items=10, win_rate={"noninferiority_margin": 0.1, "source": "human"}))
    rows = result.win_rates.set_index("source")
    assert "2 label(s) on items outside the task's queue left out" in rows.loc[
        "prediction-powered (judge on all items + human labels)", "note"]
    weighted = rows.loc["human labels (1 raters, weighted: active order)"]
    assert weighted["win_rate"] == direct.human_estimate == 0.0 and weighted["n"] == 8
    rule = result.gate.rules[0]  # the gate's human source reads the weighted estimate (on 8 labelled items)
    assert rule.status == "INCONCLUSIVE" and "human win rate" in rule.reason and "only 8 items" in rule.reason


def test_active_labels_without_judge_verdicts_are_not_averaged_plainly():
    items, base, cand = _frames()
    queue = {"queue": [(f"i{k}", 0.5) for k in range(10)], "queue_size": 10}
    result = compare(items, base, cand, human=_labels([f"i{k}" for k in range(6)], "B"), label_queue=queue,
                     gate=GateConfig(min_items=10, win_rate={"noninferiority_margin": 0.1, "source": "human"}))
    row = result.win_rates.iloc[0]
    assert np.isnan(row["win_rate"]) and "need the judge's verdicts" in row["note"]
    assert result.gate.rules[0].status == "INCONCLUSIVE"


def test_labels_on_items_the_judge_never_saw_are_left_out_and_counted():
    items, base, cand = _frames()
    verdicts = pd.DataFrame({"item_id": items["item_id"][:30], "verdict_ab": "B", "verdict_ba": "B", "verdict": "B"})
    human = _labels([f"i{k}" for k in range(25, 35)], "B")
    result = compare(items, base, cand, verdicts=verdicts, human=human)
    row = result.win_rates.set_index("source").loc["prediction-powered (judge on all items + human labels)"]
    assert row["n"] == 30 and "5 label(s) on items the judge did not judge left out" in row["note"]


def _tool_frames(n=60, candidate_right=30):
    """Items expecting one call; the baseline answers every one right, the candidate `candidate_right` of
    them, then a text answer, a wrong argument type and a wrong tool in turn."""
    from workbench.items.tool_calls import ToolCall

    tools = [{"name": "lookup_order", "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}},
                                                     "required": ["order_id"]}},
             {"name": "refund", "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}}}]
    items = pd.DataFrame({"item_id": [f"t{k}" for k in range(n)], "input": ["where is my order?"] * n,
                          "tools": [tools] * n,
                          "expected_calls": [[{"name": "lookup_order", "arguments": {"order_id": k}}] for k in range(n)]})
    right = [(ToolCall.parse("lookup_order", {"order_id": k}),) for k in range(n)]
    wrong = [(), (ToolCall.parse("lookup_order", {"order_id": "0"}),), (ToolCall.parse("refund", {"order_id": 0}),)]
    cand_calls = right[:candidate_right] + [wrong[k % 3] for k in range(n - candidate_right)]

    def resp(model, calls):
        return pd.DataFrame({"item_id": items["item_id"], "model": model, "sample_index": 0,
                             "response": ["" if c else "Your order is on its way." for c in calls], "tool_calls": calls,
                             "error": None, "latency_s": 0.1, "cost_usd": None, "prompt_tokens": 1,
                             "completion_tokens": 1})
    return items, resp("m/base", right), resp("m/cand", cand_calls)


def test_tool_call_accuracy_gets_paired_ci_mcnemar_error_kinds_and_a_gate():
    from workbench.metrics import app_metrics, score_responses

    items, base, cand = _tool_frames()
    scores = score_responses(items, pd.concat([base, cand], ignore_index=True), app_metrics(items))
    gate = GateConfig(min_items=30, metrics={"tool_call_accuracy": {"max_drop": 0.05, "higher_is_better": True}})
    result = compare(items, base, cand, scores=scores, gate=gate, n_resamples=500)
    row = result.metric_deltas.set_index("metric").loc["tool_call_accuracy"]
    assert row["baseline_mean"] == 1.0 and row["candidate_mean"] == 0.5 and row["delta"] == -0.5
    assert row["ci_high"] < 0 and row["verdict"] == "regression"
    assert row["mcnemar_p"] < 1e-6  # 30 discordant pairs, all one way
    assert result.gate.verdict == "FAIL" and result.gate.rules[0].name == "metric:tool_call_accuracy"
    errors = result.tool_errors.set_index("error")
    assert errors.loc["text instead of a call", "candidate"] == 10 and errors.loc["wrong type", "candidate"] == 10
    assert errors.loc["wrong tool", "candidate"] == 10 and errors["baseline"].sum() == 0
    checks = result.binary_checks.set_index("check")
    assert checks.loc["made a tool call", "baseline_rate"] == 1.0
    assert checks.loc["made a tool call", "candidate_rate"] == 50 / 60
    summary = result.behaviour_summary.iloc[0]
    assert summary["calls_agree_rate"] == 0.5 and summary["text_instead_of_call_rate"] == 10 / 60
    assert result.to_dict()["tool_errors"][0]["error"] == "wrong tool"


def test_equal_tool_behaviour_passes_the_gate():
    """60 items, the same calls on both sides: the paired difference is 0, and its interval (never narrower
    than 60 pass/fail pairs allow, issue 21) lies above a drop of 0.10."""
    from workbench.metrics import app_metrics, score_responses

    items, base, cand = _tool_frames(candidate_right=60)
    scores = score_responses(items, pd.concat([base, cand], ignore_index=True), app_metrics(items))
    gate = GateConfig(min_items=30, metrics={"tool_call_accuracy": {"max_drop": 0.10, "higher_is_better": True}})
    result = compare(items, base, cand, scores=scores, gate=gate, n_resamples=200)
    assert result.gate.verdict == "PASS" and result.metric_deltas.set_index("metric").loc[
        "tool_call_accuracy", "mcnemar_p"] == 1.0


def _bits(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.int64)


def test_per_item_with_one_sample_per_item_equals_the_groupby_mean_bit_for_bit():
    """Unique text ids skip the groupby (issue 25): same frame, same dtypes, same bits (-0.0 becomes
    0.0 as pandas' compensated mean makes it; NaN and inf stay), ids in the groupby's order."""
    from workbench.stats import per_item

    rng = np.random.default_rng(2)
    shuffled = ["Zeta", "alpha", "é", "日本", "🙂", "10", "9"] + [f"q{k}" for k in rng.permutation(500)]
    values = rng.normal(size=len(shuffled))
    values[:6] = [-0.0, 0.0, np.nan, np.inf, -np.inf, 1e-320]
    for dtype, ids in [(dtype, ids) for dtype in ("str", "string[python]", "string[pyarrow]")
                       for ids in (shuffled, sorted(shuffled))]:  # sorted: the rows in item order
        for column in (values, rng.integers(-5, 5, len(ids)), np.array([None] * len(ids), dtype=object)):
            frame = pd.DataFrame({"item_id": pd.array(ids, dtype=dtype), "value": column, "other": 1})
            got = per_item(frame, "value")
            numeric = frame[["item_id"]].assign(value=pd.to_numeric(frame["value"]))
            expected = numeric.groupby("item_id", as_index=False)["value"].mean()
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            np.testing.assert_array_equal(_bits(got["value"]), _bits(expected["value"]))
    repeated = pd.DataFrame({"item_id": ["b", "a", "b"], "value": [1.0, 2.0, 4.0]})  # samples: the groupby
    assert per_item(repeated, "value").to_dict(orient="list") == {"item_id": ["a", "b"], "value": [2.0, 2.5]}


def test_latency_cost_summary_of_each_arm_equals_the_summary_of_both_together():
    from workbench.comparison.compare import latency_cost_summary

    rng = np.random.default_rng(4)
    rows = []
    for model in ("base", "cand"):
        for k in range(40):
            failed = rng.random() < 0.2
            rows.append({"item_id": f"i{k:02d}", "model": model, "sample_index": 0,
                         "response": None if failed else "x" * int(rng.integers(1, 50)),
                         "error": "timeout" if failed else None, "latency_s": float(rng.random()),
                         "prompt_tokens": int(rng.integers(5, 20)), "completion_tokens": int(rng.integers(1, 9)),
                         "cost_usd": None if model == "cand" else float(rng.random() / 100)})
    both = pd.DataFrame(rows)
    together = latency_cost_summary(both)
    pd.testing.assert_frame_equal(latency_cost_summary(both[both["model"] == "base"], both[both["model"] == "cand"]),
                                  together)
    assert together["cost_usd"].isna().tolist() == [False, True] and together["errors"].sum() > 0
    assert latency_cost_summary(both.iloc[:0]).empty


def test_compact_answers_keep_nothing_of_the_frame_they_come_from_alive():
    import gc
    import weakref

    from workbench.comparison.compare import compact_responses

    class Calls(list):  # a tool call's record, which a compact frame must not keep
        pass

    calls = Calls()
    alive = weakref.ref(calls)
    responses = pd.DataFrame({"item_id": ["a", "b"], "model": "m", "sample_index": 0, "response": ["x", None],
                              "tool_calls": [calls, None], "error": [None, "timeout"], "cost_usd": [None, None],
                              "latency_s": [0.1, 0.2]})
    compact = compact_responses(responses.iloc[:1])
    del responses, calls
    gc.collect()
    assert alive() is None, "the compact answers kept the tool calls beside their columns alive"
    assert compact["answered"].tolist() == [True] and compact["response_chars"].tolist() == [1.0]


def test_slice_columns_are_taken_by_position_as_the_join_on_item_id_gives_them():
    from workbench.comparison.compare import with_slices
    from workbench.items.codes import ItemCodes

    items = pd.DataFrame({"item_id": pd.array(["c", "a", "b", "d"], dtype="string[pyarrow]"),
                          "language": pd.Categorical(["en", "ja", None, "en"]), "level": [3, 1, 2, 2]})
    codes = ItemCodes.of(items["item_id"])
    coded = codes.decode(items.assign(item_id=codes.codes))

    def joined(frame, ids, **values):
        return pd.DataFrame({"item_id": ids, **values}).merge(frame[["item_id", "language", "level"]],
                                                              on="item_id", how="left")

    for frame, ids in [(items, pd.Index(["b", "c", "a"])),  # text ids: one hash table
                       (coded, pd.Index(coded["item_id"].iloc[[2, 0, 1]])),  # coded ids: by code
                       (items, pd.Index(["b", "zz"])),  # an unknown id: the join's missing row
                       (items, pd.Index([], dtype=object))]:
        values = np.arange(len(ids), dtype=float)
        got = with_slices(frame, ["language", "level"], ids, _value=values)
        expected = joined(frame, ids, _value=values)
        pd.testing.assert_frame_equal(got[["language", "level", "_value"]], expected[["language", "level", "_value"]],
                                      check_dtype=len(ids) > 0 and "zz" not in ids)
    repeated = pd.concat([items, items.iloc[:1]], ignore_index=True)  # a repeated id: the join's rows, two for "c"
    got = with_slices(repeated, ["language"], pd.Index(["c", "a"]), _value=[1.0, 2.0])
    assert got["_value"].tolist() == [1.0, 1.0, 2.0] and got["language"].tolist() == ["en", "en", "ja"]


def test_slice_columns_named_like_the_values_they_slice_are_sliced_as_any_other():
    """Items may carry a `score`, `baseline` or `candidate` field of their own (a human rating, a
    variant): it is a slice like any other, never taken for the paired values (a join suffixed it and
    the slices stopped with a missing column)."""
    items, base, cand = _frames()
    items = items.assign(score=[1, 2] * 20, baseline=["x", "y", "y", "x"] * 10, candidate=["p"] * 20 + ["q"] * 20)
    scores = pd.concat([pd.DataFrame({"item_id": items["item_id"], "model": model, "metric": "chrf", "sample_index": 0,
                                      "value": values}) for model, values in
                        (("m/base", np.linspace(40, 60, 40)), ("m/cand", np.linspace(41, 62, 40)))], ignore_index=True)
    verdicts = pd.DataFrame({"item_id": items["item_id"], "verdict_ab": "B", "verdict_ba": "A", "verdict": "B",
                             "consistent": True})
    result = compare(items, base, cand, scores=scores, verdicts=verdicts,
                     gate=GateConfig(min_items=10, metrics={"chrf": {"max_drop": 1.0, "higher_is_better": True}}))
    for metric in ("chrf", "judge win rate"):
        table = result.slices[result.slices["metric"] == metric]
        assert {"language", "score", "baseline", "candidate"} <= set(table["column"]), metric
        assert table.set_index(["column", "slice"]).loc[("score", 1), "n"] == 20
    judge = result.slices[(result.slices["metric"] == "judge win rate") & (result.slices["column"] == "baseline")]
    assert judge["estimate"].tolist() == [1.0, 1.0]  # the judge's scores, not the items' field


def _chunks_of(frame: pd.DataFrame, *bounds: int) -> list[pd.DataFrame]:
    edges = [0, *bounds, len(frame)]
    return [frame.iloc[a:b].reset_index(drop=True).copy() for a, b in zip(edges, edges[1:])]


def test_frames_joined_a_column_at_a_time_equal_their_concat_and_are_let_go_of():
    from workbench.comparison.compare import concat_columns

    frame = pd.DataFrame({"item_id": np.arange(9, dtype=np.int32), "value": np.linspace(0, 1, 9),
                          "other": np.arange(9.0) * 2, "model": pd.Categorical(list("aab" * 3)),
                          "note": pd.Series(["x", None, "y"] * 3, dtype="str"),
                          "flag": pd.Series([True, pd.NA, False] * 3, dtype="boolean"),
                          "calls": [[1], None, [2, 3]] * 3})
    parts = _chunks_of(frame, 2, 3, 7)
    parts[1] = parts[1].astype({"model": pd.CategoricalDtype(["b", "a"])})  # another category order: as concat
    expected = pd.concat([part.copy() for part in parts], ignore_index=True)
    got = concat_columns(parts)
    pd.testing.assert_frame_equal(got, expected)
    assert parts == []  # the parts are let go of
    one = _chunks_of(frame)
    pd.testing.assert_frame_equal(concat_columns(one), frame)
    odd = [frame.iloc[:2].copy(), frame.iloc[2:][["value", "item_id"]].copy()]  # columns differ: joined whole
    pd.testing.assert_frame_equal(concat_columns(odd), pd.concat([frame.iloc[:2], frame.iloc[2:][["value", "item_id"]]],
                                                                 ignore_index=True))
    assert concat_columns([]).empty
    assert len(concat_columns([pd.DataFrame(index=range(3)), pd.DataFrame(index=range(2))])) == 5  # rows, no column


@pytest.mark.parametrize("bounds", [[(0, 3), (3, 7), (7, 8)], [(0, 8)], [(0, 1), (1, 1), (1, 8)], [(0, 0)]])
def test_rows_split_a_column_at_a_time_are_the_rows_taken_whole(bounds):
    """`split_rows` gives each span's rows as `take` gives them (dtypes, index, attrs), from columns
    it lets go of one by one."""
    from workbench.comparison.compare import split_rows

    rows = 8 if bounds[-1][1] else 0
    frame = pd.DataFrame({
        "item_id": pd.Series([f"i{k}" for k in range(rows)], dtype="str"),
        "input": pd.Series(["text é", None, "x", "y", "z", "🙂", "", "w"][:rows], dtype="str"),
        "tools": pd.Series([[{"name": "f"}], None, [], [1], None, [2], [3], [4]][:rows], dtype=object),
        "n": np.arange(rows, dtype=np.int64), "score": np.linspace(0, 1, rows),
        "flag": pd.Series([True, pd.NA, False, True, True, False, pd.NA, True][:rows], dtype="boolean"),
        "task": pd.Series(["a", "b", "a", "a", "b", "a", "b", "a"][:rows], dtype="category")})
    frame.attrs["source"] = "/data/items.jsonl"
    columns = dict(frame.items())
    parts = split_rows(columns, bounds, frame.attrs)
    assert columns == {} and len(parts) == len(bounds)
    for (start, stop), part in zip(bounds, parts):
        expected = frame.take(np.arange(start, stop))
        pd.testing.assert_frame_equal(part, expected)
        assert part.attrs == {"source": "/data/items.jsonl"}
    bare = split_rows({}, [(0, 2), (2, 5)])  # rows without columns keep their count
    assert [len(part) for part in bare] == [2, 3] and all(part.columns.empty for part in bare)


def test_a_behaviour_diff_compacted_per_chunk_joins_into_the_whole_one_compacted():
    """Each chunk's labels become categories of the values it saw; joined, they are the categories a
    whole column's compaction gives (sorted, over every value), never text again: the same frame,
    dtypes included, whatever the chunks held (a chunk with none of a label, a label of one chunk
    only, a column of lists beside labels)."""
    from workbench.comparison.compare import AnswerEvidence, compact_behaviour

    behaviour = pd.DataFrame({
        "item_id": np.arange(8, dtype=np.int32), "sample_index": np.zeros(8, dtype=np.int8),
        "language": pd.Series(["en", "de", None, None, "fr", "en", None, "ß"], dtype=object),
        "missing": pd.Series([None, None, None, None, None, None, "candidate", None], dtype=object),
        "candidate_format": pd.Series(["json", "text", pd.NA, "json", "markdown", "text", "json", pd.NA], dtype="str"),
        "never": pd.Series([None] * 8, dtype=object),
        "mixed": pd.Series(["a", None, "b", "c", ["x"], None, "a", "b"], dtype=object),  # lists in one chunk
        "baseline_chars": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0],
        "format_changed": pd.Series([True, False, pd.NA, True, False, False, True, pd.NA], dtype="boolean"),
        "same_tools": pd.Series([True, False, True, True, False, False, True, True], dtype="boolean")})
    expected = compact_behaviour(behaviour)
    assert {c for c in expected.columns if isinstance(expected[c].dtype, pd.CategoricalDtype)} == {
        "language", "missing", "candidate_format", "never"}
    assert (expected["format_changed"].dtype, expected["same_tools"].dtype) == ("boolean", bool)  # a byte where no NA
    assert expected["same_tools"].tolist() == behaviour["same_tools"].tolist()
    for bounds in [(2, 4, 6), (4,), (1, 2, 3, 4, 5, 6, 7)]:
        parts = [AnswerEvidence(compact_behaviour(chunk), pd.DataFrame()) for chunk in _chunks_of(behaviour, *bounds)]
        joined = AnswerEvidence.join(parts).behaviour
        pd.testing.assert_frame_equal(joined, expected)
        assert joined["mixed"].tolist() == behaviour["mixed"].tolist()  # None stays None where lists made it text


def test_compact_answers_keep_token_counts_in_fewer_bytes_and_the_same_numbers():
    from workbench.comparison.compare import compact_responses, latency_cost_summary

    _, base, cand = _frames()
    base = base.assign(prompt_tokens=np.arange(40) * 100_000, completion_tokens=3)  # up to 3.9 million: 4 bytes
    compact = compact_responses(pd.concat([base, cand], ignore_index=True))
    assert (compact["prompt_tokens"].dtype, compact["completion_tokens"].dtype) == (np.int32, np.int8)
    assert compact["prompt_tokens"].tolist() == [*base["prompt_tokens"], *cand["prompt_tokens"]]
    pd.testing.assert_frame_equal(latency_cost_summary(compact), latency_cost_summary(pd.concat([base, cand])))
    unknown = compact_responses(cand.assign(prompt_tokens=[np.nan] + [1.0] * 39))  # a count missing: as it was
    assert unknown["prompt_tokens"].dtype == float and np.isnan(unknown["prompt_tokens"].iloc[0])


def test_compact_answers_keep_prices_as_numbers_and_unknown_prices_unknown():
    from workbench.comparison.compare import compact_responses, latency_cost_summary

    _, base, cand = _frames()
    priced = base.assign(cost_usd=pd.Series([0.002, 1] * 20, dtype=object))  # floats and ints, as a store gives
    part = cand.assign(cost_usd=pd.Series([0.001] * 39 + [None], dtype=object))  # one price unknown
    for frame in (priced, part, cand):
        compact = compact_responses(frame)
        assert compact["cost_usd"].dtype == float
        assert compact["cost_usd"].isna().tolist() == frame["cost_usd"].isna().tolist()
        pd.testing.assert_frame_equal(latency_cost_summary(compact), latency_cost_summary(frame))
    assert latency_cost_summary(compact_responses(priced))["cost_usd"].iloc[0] == pytest.approx(20.04)
    assert latency_cost_summary(compact_responses(part))["cost_usd"].iloc[0] is None  # not a sum of the known ones
    odd = compact_responses(base.assign(cost_usd=pd.Series(["n/a"] * 40, dtype=object)))  # not numbers: as they are
    assert odd["cost_usd"].tolist() == ["n/a"] * 40


def test_compact_items_keep_few_valued_text_as_categories_and_slice_as_the_text_does():
    from workbench.comparison.compare import answer_evidence, compact_items

    items, base, cand = _frames()
    items = items.assign(tier=pd.Series(["gold", "silver", None, "bronze"] * 10, dtype="str"),
                         customer=[f"c{k}" for k in range(40)], level=[1, 2] * 20, channel="web")
    compact = compact_items(items)
    assert "input" not in compact.columns and "reference" not in compact.columns
    assert {c for c in compact.columns if isinstance(compact[c].dtype, pd.CategoricalDtype)} == {
        "language", "tier", "channel"}  # one value (never a slice) or few
    assert compact["customer"].dtype == items["customer"].dtype and compact["level"].dtype == items["level"].dtype
    assert compact["tier"].astype(object).where(compact["tier"].notna(), None).tolist() == \
        items["tier"].astype(object).where(items["tier"].notna(), None).tolist()
    scores = pd.concat([pd.DataFrame({"item_id": items["item_id"], "model": model, "metric": "chrf", "sample_index": 0,
                                      "value": values}) for model, values in
                        (("m/base", np.linspace(40, 60, 40)), ("m/cand", np.linspace(38, 62, 40)))], ignore_index=True)
    gate = GateConfig(min_items=10, metrics={"chrf": {"max_drop": 1.0, "higher_is_better": True}})
    whole = compare(items, base, cand, scores=scores, gate=gate, n_resamples=200)
    kept = compare(compact, base, cand, scores=scores, gate=gate, n_resamples=200,
                   read=answer_evidence(items, base, cand))  # the texts are gone: the diff read before
    assert whole.to_dict()["flagged_slices"] == kept.to_dict()["flagged_slices"]
    pd.testing.assert_frame_equal(whole.slices.astype({"slice": object}), kept.slices.astype({"slice": object}))
    assert set(kept.slices["column"]) == {"language", "tier", "level"}
