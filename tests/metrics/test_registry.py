from __future__ import annotations

import json

import pytest

from workbench.errors import InputError
from workbench.metrics import (
    AGGREGATIONS,
    Metric,
    aggregate,
    available_metrics,
    get_metric,
    metric_info,
    register_metric,
    unregister_metric,
)


def test_builtins_are_registered_with_declared_metadata():
    names = set(available_metrics())
    assert {"bleu", "chrf", "rouge_l", "exact_match", "json_valid", "json_valid_lenient", "length_chars",
            "length_words", "semantic_similarity"} <= names
    info = metric_info().set_index("metric")
    assert info.loc["bleu", "higher_is_better"] == True  # noqa: E712 (numpy bool)
    assert info.loc["bleu", "value_range"] == (0.0, 100.0) and info.loc["rouge_l", "value_range"] == (0.0, 1.0)
    assert info.loc["exact_match", "aggregation"] == "rate"
    assert info.loc["length_words", "higher_is_better"] is None
    assert bool(info.loc["semantic_similarity", "needs_reference"])
    assert "Japanese" in info.loc["semantic_similarity", "description"]
    assert set(info["aggregation"]) <= set(AGGREGATIONS)


def test_factory_specs(tmp_path):
    assert get_metric("contains:返金").compute(["返金します"]) == [1.0]
    assert get_metric("icontains:Refund").compute(["REFUND"]) == [1.0]
    assert get_metric(r"regex:^\d+$").compute(["123", "12a"]) == [1.0, 0.0]
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "required": ["a"]}))
    metric = get_metric(f"json_schema:{schema}")
    assert metric.name == f"json_schema:{schema}" and metric.compute(['{"a": 1}', "{}"]) == [1.0, 0.0]


@pytest.mark.parametrize("spec, match", [
    ("blue", "unknown metric 'blue'"),
    ("contains:", "nothing after"),
    ("regex:(", "regex:\\("),
    ("json_schema:/no/such/file.json", "cannot read JSON schema"),
    ("json_schema:{bad}", "SchemaError"),
])
def test_bad_specs_raise_input_errors(spec, match, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "no-such-type"}')
    with pytest.raises(InputError, match=match):
        get_metric(spec.replace("{bad}", str(bad)))


def test_register_custom_metric():
    metric = Metric(name="mentions_order_id", fn=lambda rs, _r, _l: [float("ORD-" in r) for r in rs],
                    higher_is_better=True, aggregation="rate", needs_reference=False, description="test")
    try:
        register_metric(metric)
        assert get_metric("mentions_order_id") is metric
        with pytest.raises(ValueError, match="already registered"):
            register_metric(metric)
        with pytest.raises(ValueError, match="shadow"):
            register_metric(Metric(name="contains:x", fn=metric.fn, higher_is_better=True, aggregation="rate",
                                   needs_reference=False, description=""))
    finally:
        unregister_metric("mentions_order_id")
    assert "mentions_order_id" not in available_metrics()


def test_metric_validates_aggregation_and_lengths():
    with pytest.raises(ValueError):
        Metric(name="x", fn=lambda *a: [], higher_is_better=True, aggregation="sum", needs_reference=False,
               description="")
    with pytest.raises(ValueError, match="differ in length"):
        get_metric("bleu").compute(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="needs a reference"):
        get_metric("bleu").compute(["a"], [None])


def test_aggregate_ignores_nan():
    nan = float("nan")
    assert aggregate([1.0, nan, 0.0, 1.0], "rate") == pytest.approx(2 / 3)
    assert aggregate([1.0, 10.0, 2.0, nan], "median") == 2.0
    assert aggregate([nan], "mean") != aggregate([nan], "mean")  # NaN, not 0


def test_compute_detects_language_when_not_given():
    from workbench.metrics.text import normalize_language

    ref, hyp = "返金は五営業日以内に処理されます。", "返金の処理は五営業日以内に行われます。"
    rouge = get_metric("rouge_l")
    assert rouge.compute([hyp], [ref]) == rouge.compute([hyp], [ref], "ja") != rouge.compute([hyp], [ref], "en")
    assert rouge.compute([hyp], [ref], ["Japanese"]) == rouge.compute([hyp], [ref], "ja")
    assert normalize_language("ja-JP") == "ja"


def test_metrics_are_hashable_and_compare_by_metadata():
    assert len({get_metric("bleu"), get_metric("bleu"), get_metric("chrf")}) == 2
    assert get_metric("contains:x") == get_metric("contains:x")
