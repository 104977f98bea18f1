"""Reference metrics, response checks and the behavioural diff.

    from workbench.metrics import score_responses, metric_info
    scores = score_responses(items, responses, ["bleu", "chrf", "rouge_l", "contains:返金"])
    scores.merge(metric_info(scores["metric"].unique()), on="metric")

Importing this package is cheap: sacrebleu, rouge-score, MeCab, jsonschema and
sentence-transformers are imported by the first metric call that needs them.
"""
from workbench.metrics.base import AGGREGATIONS, Metric, MetricWarning, aggregate
from workbench.metrics.behaviour import (
    FORMATS,
    SUMMARIZED,
    behaviour_diff,
    detect_format,
    detect_refusal,
    format_transitions,
    summarize_behaviour,
)
from workbench.metrics.reference import CorpusScore, corpus_score
from workbench.metrics.registry import (
    APP_METRICS,
    FACTORIES,
    app_metrics,
    available_metrics,
    get_metric,
    metric_info,
    register_metric,
    unregister_metric,
    with_app_metrics,
)
from workbench.metrics.scoring import corpus_scores, score_responses
from workbench.metrics.semantic import semantic_similarity
from workbench.metrics.structure import contains, json_schema, json_valid, regex
from workbench.metrics.text import detect_language
from workbench.metrics.tool_calls import ERROR_KINDS, check_item

__all__ = [
    "AGGREGATIONS", "APP_METRICS", "ERROR_KINDS", "FACTORIES", "FORMATS", "Metric", "MetricWarning", "aggregate", "app_metrics",
    "available_metrics", "check_item",
    "behaviour_diff", "contains", "CorpusScore", "corpus_score", "corpus_scores", "detect_format", "detect_language",
    "detect_refusal", "format_transitions", "get_metric", "json_schema", "json_valid", "metric_info",
    "regex", "register_metric", "score_responses", "semantic_similarity", "SUMMARIZED", "summarize_behaviour",
    "unregister_metric", "with_app_metrics",
]
