"""What the search maximises, per item, computed by the project's own scorers.

- reference: a metric (chrF by default) of the target's answer against the item's reference;
- source: the same metric against the baseline model's own answer ("source-model mode": the usual
  migration, where there are no references but the old model's outputs are what users got);
- judge: the pointwise judge's 1-5 score for the criterion;
- tools: a tool-call metric (tool_call_accuracy, ...) of the target's calls against the items' expected
  calls; the teacher of a demonstration is then an expected call (`teacher_from_expected_calls`).
Scores are oriented so that higher is better. An item without a score (a failed call, a missing
teacher answer) is left out of the mean and counted, never scored 0 (that would mix reliability
into quality, as in the report).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from workbench.errors import InputError
from workbench.items.tool_calls import expected_call
from workbench.metrics import MetricWarning, get_metric, metric_info, score_responses
from workbench.stats import bootstrap_ci, paired_delta_ci


@dataclass(frozen=True)
class Objective:
    kind: str  # reference | source | judge
    name: str  # e.g. "chrf", "chrf vs hf/gemma3-270m", "judge:correctness"
    sign: float  # +1 when the metric is higher-is-better, -1 otherwise
    perfect: float | None  # the best possible (oriented) score, when the metric has one
    floor: float = 0.0  # the worst possible (oriented) score: what the search engine sees for an unscored item

    def describe(self) -> str:
        return {"reference": f"{self.name} against the references",
                "source": f"{self.name} against the baseline model's outputs (source-model mode)",
                "judge": f"pointwise judge score ({self.name})",
                "tools": f"{self.name} against the items' expected calls"}[self.kind]


def make_objective(kind: str, metric: str, baseline: str | None, criterion: str) -> Objective:
    """Validate the metric (it must have a better direction) and orient it."""
    if kind == "judge":
        return Objective("judge", f"judge:{criterion}", 1.0, 5.0, 1.0)

    if kind == "tools":
        reads = get_metric(metric).columns
        if "expected_calls" not in reads:
            raise InputError(f"objective 'tools' needs a metric scored against expected calls (tool_call_accuracy, "
                             f"tool_name_match, tool_arg_value_match, ...); '{metric}' is not one")
        return Objective("tools", metric, 1.0, 1.0, 0.0)
    info = metric_info([metric]).iloc[0]
    if not info["needs_reference"]:
        raise InputError(f"metric '{metric}' does not compare with a reference; the {kind} objective needs one "
                         "that does (chrf, bleu, rouge_l, semantic_similarity, exact_match)")
    higher = info["higher_is_better"]
    if higher is None or higher != higher:
        raise InputError(f"metric '{metric}' has no better direction, so it cannot be optimised")
    sign = 1.0 if bool(higher) else -1.0
    low_high = info["value_range"]
    perfect = None if low_high is None else float(low_high[1] if sign > 0 else -low_high[0])
    floor = 0.0 if low_high is None else float(low_high[0] if sign > 0 else -low_high[1])
    name = metric if kind == "reference" else f"{metric} vs {baseline}"
    return Objective(kind, name, sign, perfect, floor)


def metric_scores(objective: Objective, metric: str, items: pd.DataFrame, responses: pd.DataFrame,
                  teacher: pd.Series) -> pd.Series:
    """Oriented metric per item id (NaN where there is no answer or no teacher answer)."""
    ids = items["item_id"].astype(str)
    if objective.kind == "tools":  # scored against the items' own expected calls and tools
        graded = items.assign(item_id=ids.values)
    else:
        graded = pd.DataFrame({"item_id": ids.values, "reference": ids.map(teacher).values})
        if "language" in items.columns:
            graded["language"] = items["language"].values
    frame = pd.DataFrame({"item_id": responses["item_id"].astype(str).values, "model": "target",
                          "response": responses["response"].values})
    if "tool_calls" in responses.columns:
        frame["tool_calls"] = responses["tool_calls"].values
    with warnings.catch_warnings():  # failed calls are counted per trial (errors), not warned about per item
        warnings.simplefilter("ignore", MetricWarning)
        scores = score_responses(graded, frame, [metric])
    values = pd.Series(scores["value"].values, index=scores["item_id"].astype(str).values, dtype=float)
    return (values * objective.sign).reindex(ids.values)


def judge_scores(judge: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame], items: pd.DataFrame,
                 responses: pd.DataFrame) -> pd.Series:
    """Pointwise judge scores per item id, from `judge(items, responses) -> scores frame`."""
    ids = items["item_id"].astype(str)
    frame = pd.DataFrame({"item_id": responses["item_id"].astype(str).values, "model": "target",
                          "sample_index": 0, "response": responses["response"].values})
    answered = frame[frame["response"].notna()]
    if answered.empty:
        return pd.Series(np.nan, index=ids.values, dtype=float)
    scores = judge(items, answered)
    values = pd.Series(pd.to_numeric(scores["score"], errors="coerce").values,
                       index=scores["item_id"].astype(str).values, dtype=float)
    return values.groupby(level=0).mean().reindex(ids.values)


def teacher_from_references(items: pd.DataFrame) -> pd.Series:
    """The reference of every item; an item without one is an input error naming it."""
    if "reference" not in items.columns:
        raise InputError("objective 'reference' needs a 'reference' column (or use objective 'source' with a "
                         "baseline model, or 'judge')")
    refs = items["reference"]
    missing = items.loc[refs.isna() | (refs.astype(str).str.strip() == ""), "item_id"].astype(str).tolist()
    if missing:
        raise InputError(f"objective 'reference': {len(missing)} item(s) have no reference, e.g. "
                         f"{', '.join(missing[:5])}")
    return pd.Series(refs.astype(str).values, index=items["item_id"].astype(str).values)


def teacher_from_expected_calls(items: pd.DataFrame) -> pd.Series:
    """Per item that expects calls, one set of them that is right (each argument's first accepted value;
    an optional one left out), as `[{name, arguments}]`: the answer a demonstration shows. Items expecting
    no call or "any" call have none (they are scored, never shown as demonstrations)."""
    if "expected_calls" not in items.columns:
        raise InputError("objective 'tools' needs items with expected_calls")
    teacher = {}
    for item_id, expected in zip(items["item_id"].astype(str), items["expected_calls"]):
        if isinstance(expected, list) and expected:
            calls = [expected_call(entry) for entry in expected]
            teacher[item_id] = [{"name": c.name, "arguments": {k: v[0] for k, v in c.accepted.items() if v}}
                                for c in calls]
    if not teacher:
        raise InputError("objective 'tools': no item expects a call (expected_calls), so nothing can be scored")
    return pd.Series(teacher, dtype=object)


def teacher_from_responses(responses: pd.DataFrame) -> pd.Series:
    """The baseline model's answers per item (failed ones left out: those items are not scored)."""
    ok = responses[responses["response"].notna()]
    return pd.Series(ok["response"].astype(str).values, index=ok["item_id"].astype(str).values)


def summary_ci(values: pd.Series, resamples: int, seed: int) -> dict[str, Any]:
    """Mean with a bootstrap CI over the items that have a score."""
    x = values.dropna().to_numpy(dtype=float)
    if len(x) < 2:
        mean = float(x.mean()) if len(x) else None
        return {"score": mean, "score_low": None, "score_high": None, "n": int(len(x))}
    ci = bootstrap_ci(x, n_resamples=resamples, seed=seed)
    return {"score": ci.estimate, "score_low": ci.low, "score_high": ci.high, "n": int(len(x))}


def delta_ci(trial: pd.Series, start: pd.Series, resamples: int, seed: int) -> dict[str, Any]:
    """Paired mean difference trial - start over the items both scored (the pipeline's statistic)."""
    both = pd.concat([trial.rename("t"), start.rename("s")], axis=1).dropna()
    if len(both) < 2:
        return {"delta": None, "delta_low": None, "delta_high": None, "n_paired": int(len(both))}
    if (both["t"] == both["s"]).all():
        return {"delta": 0.0, "delta_low": 0.0, "delta_high": 0.0, "n_paired": int(len(both))}
    ci = paired_delta_ci(both["t"].to_numpy(), both["s"].to_numpy(), n_resamples=resamples, seed=seed)
    return {"delta": ci.estimate, "delta_low": ci.low, "delta_high": ci.high, "n_paired": int(len(both))}
