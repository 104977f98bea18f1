from __future__ import annotations

import math

import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.metrics import MetricWarning, corpus_scores, metric_info, score_responses


@pytest.fixture
def items():
    return pd.DataFrame({
        "item_id": ["ja1", "en1", "noref", "nolang"],
        "input": ["q"] * 4,
        "reference": ["返金は五営業日以内に処理されます。", "Refunds are processed within five business days.",
                      float("nan"), "ご注文の商品は明日発送される予定です。"],
        "language": ["ja", "en", "en", None],
    })


def _responses(rows):
    return pd.DataFrame(rows, columns=["item_id", "model", "prompt_version", "sample_index", "response", "error"])


def test_long_frame_with_keys_values_and_notes(items):
    responses = _responses([
        ("ja1", "a", "v1", 0, "返金の処理は五営業日以内に行われます。", None),
        ("en1", "a", "v1", 0, "Your refund is processed within five business days.", None),
        ("noref", "a", "v1", 0, "Some answer.", None),
        ("nolang", "a", "v1", 0, "ご注文いただいた商品は明日発送する予定です。", None),
        ("ja1", "b", "v1", 0, None, "timeout: no answer"),
        ("en1", "b", "v1", 0, "", None),
    ])
    with pytest.warns(MetricWarning) as record:
        scores = score_responses(items, responses, ["bleu", "rouge_l", "length_chars"])
    assert list(scores.columns) == ["item_id", "model", "prompt_version", "sample_index", "metric", "value", "note"]
    assert len(scores) == 6 * 3
    s = scores.set_index(["item_id", "model", "metric"])
    assert s.loc[("ja1", "a", "rouge_l"), "value"] > 0.35  # Japanese scored with MeCab
    assert s.loc[("nolang", "a", "rouge_l"), "value"] > 0.35  # language detected from the reference
    # no reference: NaN + note, never 0, and only for metrics that need one
    assert math.isnan(s.loc[("noref", "a", "bleu"), "value"]) and s.loc[("noref", "a", "bleu"), "note"] == "no_reference"
    assert s.loc[("noref", "a", "length_chars"), "value"] == len("Some answer.")
    # failed call: NaN for every metric, noted
    assert scores[(scores.item_id == "ja1") & (scores.model == "b")]["value"].isna().all()
    assert set(scores[(scores.item_id == "ja1") & (scores.model == "b")]["note"]) == {"no_response"}
    # empty answer: a real, bad answer -> 0, not NaN
    assert s.loc[("en1", "b", "bleu"), "value"] == 0.0 and s.loc[("en1", "b", "length_chars"), "value"] == 0.0
    messages = [str(w.message) for w in record]
    assert any("'bleu': 1 of 6 rows have no reference" in m and "noref" in m for m in messages)
    assert any("no response (failed call)" in m and "ja1" in m for m in messages)
    assert scores["note"].isna().sum() == 18 - 2 - 3  # 2 no_reference, 3 no_response


def test_metric_info_joins_onto_scores(items):
    responses = _responses([("en1", "a", "v1", 0, "Refunds take five days.", None)])
    scores = score_responses(items, responses, ["chrf", "contains:five"])
    joined = scores.merge(metric_info(scores["metric"].unique()), on="metric")
    assert joined["higher_is_better"].tolist() == [True, True]
    assert joined["aggregation"].tolist() == ["mean", "rate"]


def test_non_text_response_is_an_input_error_naming_the_row(items):
    responses = _responses([("en1", "a", "v1", 0, "ok", None), ("ja1", "a", "v1", 0, 42, None)])
    with pytest.raises(InputError, match=r"responses, row 2, field 'response': expected text, got int"):
        score_responses(items, responses, ["bleu"])


def test_non_text_reference_is_an_input_error():
    items = pd.DataFrame({"item_id": ["x"], "reference": [{"answer": 1}]})
    with pytest.raises(InputError, match="field 'reference'"):
        score_responses(items, _responses([("x", "a", "v", 0, "t", None)]), ["bleu"])


def test_unknown_items_duplicates_and_missing_columns_are_input_errors(items):
    with pytest.raises(InputError, match="ids not in the items"):
        score_responses(items, _responses([("zzz", "a", "v1", 0, "t", None)]), ["bleu"])
    with pytest.raises(InputError, match="duplicate item ids"):
        score_responses(pd.concat([items, items]), _responses([]), ["bleu"])
    with pytest.raises(InputError, match="field 'response': missing column"):
        score_responses(items, pd.DataFrame({"item_id": ["en1"], "model": ["a"]}), ["bleu"])
    with pytest.raises(InputError, match="repeat"):
        score_responses(items, _responses([]), ["bleu", "bleu"])


def test_items_without_reference_column_score_nan_with_warning():
    items = pd.DataFrame({"item_id": ["x"], "language": ["en"]})
    with pytest.warns(MetricWarning, match="no reference"):
        scores = score_responses(items, _responses([("x", "a", "v", 0, "t", None)]), ["bleu", "json_valid"])
    assert math.isnan(scores.loc[scores.metric == "bleu", "value"].item())
    assert scores.loc[scores.metric == "json_valid", "value"].item() == 0.0


def test_empty_responses_frame_gives_empty_scores(items):
    scores = score_responses(items, _responses([]), ["bleu"])
    assert scores.empty and {"metric", "value", "note"} <= set(scores.columns)


def test_corpus_scores_per_model_and_language(items):
    responses = _responses([
        ("ja1", "a", "v1", 0, "返金の処理は五営業日以内に行われます。", None),
        ("nolang", "a", "v1", 0, "ご注文いただいた商品は明日発送する予定です。", None),
        ("en1", "a", "v1", 0, "Your refund is processed within five business days.", None),
        ("noref", "a", "v1", 0, "x", None),
        ("en1", "b", "v1", 0, None, "server: 500"),
    ])
    out = corpus_scores(items, responses).set_index(["model", "language", "metric"])
    assert out.loc[("a", "ja", "bleu"), "n"] == 2 and "ja-mecab" in out.loc[("a", "ja", "bleu"), "signature"]
    assert out.loc[("a", "en", "bleu"), "n_skipped"] == 1 and out.loc[("a", "en", "chrf"), "score"] > 50
    assert out.loc[("b", "en", "bleu"), "n"] == 0 and out.loc[("b", "en", "bleu"), "n_skipped"] == 1


def test_metrics_that_read_item_and_response_columns():
    """A metric declares the columns it reads; scoring passes them row-aligned (None where a row has none),
    and its NaN rows carry its na_note."""
    from workbench.metrics import Metric

    def cites_context(responses, _refs, _langs, *, context, tool_calls):
        return [float("nan") if ctx is None else float(ctx.split()[0] in text) + 0 * len(calls or ())
                for text, ctx, calls in zip(responses, context, tool_calls)]

    metric = Metric(name="cites_context", fn=cites_context, higher_is_better=True, aggregation="rate",
                    needs_reference=False, description="test", columns=("context", "tool_calls"),
                    na_note="no_context")
    items = pd.DataFrame({"item_id": ["a", "b"], "context": ["Refunds take five days.", None]})
    responses = pd.DataFrame({"item_id": ["a", "b", "a"], "model": ["m", "m", "n"],
                              "response": ["Refunds are quick.", "x", "No idea."]})
    scores = score_responses(items, responses, [metric]).set_index(["item_id", "model"])
    assert scores.loc[("a", "m"), "value"] == 1.0 and scores.loc[("a", "n"), "value"] == 0.0
    assert math.isnan(scores.loc[("b", "m"), "value"]) and scores.loc[("b", "m"), "note"] == "no_context"
    with pytest.raises(ValueError, match="reads columns"):
        metric.compute(["text"])
    with pytest.raises(ValueError, match="unknown column"):
        Metric(name="bad", fn=cites_context, higher_is_better=True, aggregation="rate", needs_reference=False,
               description="", columns=("secret",))
