"""Pointwise judging: a 1-5 rubric score with a rationale, per response and criterion.

With `spec.samples` > 1 each score is the mean of the judge's samples, with their spread.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from workbench.generation import calls
from workbench.judges.criteria import Criterion, resolve_criteria
from workbench.judges.engine import JudgeStats, JudgeTask, arun_tasks, judge_key, resolve_adapter
from workbench.judges.frames import (items_by_id, missing, response_error, response_key, response_records,
                                     text_or_empty)
from workbench.judges.spec import JudgeSpec
from workbench.items.display import answer_text, task_text
from workbench.judges.templates import render
from workbench.models.base import Adapter
from workbench.progress import PhaseReporter
from workbench.store import Store

SCORE_COLUMNS = ["item_id", "model", "sample_index", "criterion", "score", "score_std", "n_samples", "n_errors",
                 "rationale", "error"]
SAMPLE_COLUMNS = ["item_id", "model", "sample_index", "criterion", "judge_sample", "score", "rationale", "error",
                  "cached", "judge_key"]
UNMATCHED_COLUMNS = ["item_id", "model", "sample_index", "reason"]


@dataclass(frozen=True)
class PointwiseResult:
    """`scores`: one row per judged response and criterion (SCORE_COLUMNS):
        item_id, model, sample_index (the response's), criterion,
        score (mean of the judge samples that parsed, 1..5; NaN when none did),
        score_std (sample standard deviation over them; NaN when fewer than 2),
        n_samples (judge samples that gave a score), n_errors (judge samples that ended as judge errors),
        rationale (of the first judge sample that parsed; NA in completion mode),
        error (why there is no score; NA when there is one).
    Missing values are NA (pandas may show None or NaN depending on the column's dtype).
    `samples`: one row per judge sample (SAMPLE_COLUMNS), `judge_sample` being its index.
    `unmatched`: responses that could not be judged for lack of an item, and items some model did
        not answer (UNMATCHED_COLUMNS; `sample_index` is NA for the latter).
    `stats`: tasks, cached verdicts, model calls made, re-asks, judge errors, wall time.
    """

    scores: pd.DataFrame
    samples: pd.DataFrame
    unmatched: pd.DataFrame
    stats: JudgeStats


async def ajudge_pointwise(store: Store, spec: JudgeSpec, items: pd.DataFrame, responses: pd.DataFrame,
                           criteria: str | Criterion | Sequence[str | Criterion], policy: calls.CallPolicy | None = None,
                           adapter: Adapter | None = None, progress: PhaseReporter | None = None,
                           cache_only: bool = False) -> PointwiseResult:
    """Score every response in `responses` (long frame, any number of models) on every criterion."""
    item_map = items_by_id(items)
    records = response_records(responses, "responses")
    criteria_list = resolve_criteria(criteria)
    adapter, owned = resolve_adapter(spec, adapter)
    try:
        identity = adapter.identity()
        template = spec.template_set()
        rows: list[tuple[dict[str, Any], list[JudgeTask], str | None]] = []
        unmatched: list[dict[str, Any]] = []
        for record in records:
            item = item_map.get(record["item_id"])
            where = {"item_id": record["item_id"], "model": str(record["model"]), "sample_index": record["sample_index"]}
            if item is None:
                unmatched.append({**where, "reason": "item_id not found in items"})
                continue
            for criterion in criteria_list:
                base = {**where, "criterion": criterion.name}
                if missing(record["response"]):
                    rows.append((base, [], response_error(record)))
                    continue
                reference = text_or_empty(item.get("reference"))
                lacking = criterion.missing_evidence(item, reference)
                if lacking:
                    rows.append((base, [], lacking))
                    continue
                fields = {"input": task_text(item), "reference": reference,
                          "response": answer_text(record["response"], record.get("tool_calls"))}
                rendered = render(template, "pointwise", criterion, fields)
                tasks = [JudgeTask(judge_key(spec, identity, "pointwise", criterion, fields, None, s), "pointwise",
                                   criterion.name, record["item_id"], response_key(record), None, None, s, rendered)
                         for s in range(spec.samples)]
                rows.append((base, tasks, None))
        unmatched.extend(_unanswered(records, item_map))
        outcomes, stats = await arun_tasks(store, spec, adapter, [t for _, ts, _ in rows for t in ts], policy, progress,
                                           cache_only)
    finally:
        if owned:
            await adapter.aclose()

    scores, samples = [], []
    for base, tasks, error in rows:
        results = [outcomes[t.judge_key] for t in tasks]
        for task, result in zip(tasks, results):
            samples.append({**base, "judge_sample": task.sample_index, "score": result.score,
                            "rationale": result.rationale, "error": result.error, "cached": result.cached,
                            "judge_key": task.judge_key})
        valid = [r for r in results if r.score is not None]
        values = [r.score for r in valid]
        failures = [r.error for r in results if r.error is not None]
        scores.append({**base,
                       "score": statistics.fmean(values) if values else float("nan"),
                       "score_std": statistics.stdev(values) if len(values) >= 2 else float("nan"),
                       "n_samples": len(values), "n_errors": len(failures),
                       "rationale": valid[0].rationale if valid else None,
                       "error": None if values else (error or (failures[0] if failures else "not judged"))})
    return PointwiseResult(pd.DataFrame(scores, columns=SCORE_COLUMNS), pd.DataFrame(samples, columns=SAMPLE_COLUMNS),
                           pd.DataFrame(unmatched, columns=UNMATCHED_COLUMNS), stats)


def judge_pointwise(store: Store, spec: JudgeSpec, items: pd.DataFrame, responses: pd.DataFrame,
                    criteria: str | Criterion | Sequence[str | Criterion], policy: calls.CallPolicy | None = None,
                    adapter: Adapter | None = None, progress: PhaseReporter | None = None,
                    cache_only: bool = False) -> PointwiseResult:
    """Sync `ajudge_pointwise` (also inside a running Jupyter loop)."""
    return calls.run_sync(ajudge_pointwise(store, spec, items, responses, criteria, policy, adapter, progress,
                                          cache_only))


def _unanswered(records: list[dict[str, Any]], item_map: dict[str, Any]) -> list[dict[str, Any]]:
    """Items that some model in the frame answered and another did not: scores are not paired there."""
    by_model: dict[str, set[str]] = {}
    for record in records:
        if record["item_id"] in item_map:
            by_model.setdefault(str(record["model"]), set()).add(record["item_id"])
    everyone = set().union(*by_model.values()) if by_model else set()
    return [{"item_id": item_id, "model": model, "sample_index": None, "reason": "no response from this model"}
            for model, seen in sorted(by_model.items()) for item_id in sorted(everyone - seen)]
