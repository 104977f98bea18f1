"""Pairwise judging of a candidate against a baseline: A / B / tie, always in both orders.

Each pair is shown as (a, b) — order 'ab' — and as (b, a) — order 'ba'; the 'ba' verdict is mapped
back to the a/b naming. The orders disagreeing means the judge preferred a position, not a
response: the combined verdict is then a tie and the item is marked position-inconsistent.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.generation import calls
from workbench.judges.criteria import Criterion, resolve_criterion
from workbench.judges.engine import JudgeStats, JudgeTask, Outcome, arun_tasks, judge_key, resolve_adapter
from workbench.judges.frames import (items_by_id, missing, response_error, response_key, response_records,
                                     single_model, text_or_empty)
from workbench.judges.spec import JudgeSpec
from workbench.items.display import answer_text, task_text
from workbench.judges.templates import render
from workbench.models.base import Adapter
from workbench.progress import PhaseReporter
from workbench.store import Store

VERDICT_COLUMNS = ["item_id", "sample_index", "model_a", "model_b", "criterion", "verdict_ab", "verdict_ba", "verdict",
                   "consistent", "longer", "n_samples", "n_errors", "rationale", "error"]
ORDER_COLUMNS = ["item_id", "sample_index", "model_a", "model_b", "criterion", "position", "judge_sample", "verdict",
                 "rationale", "error", "cached", "judge_key"]
UNMATCHED_COLUMNS = ["item_id", "sample_index", "model", "reason"]
POSITIONS = ("ab", "ba")


@dataclass(frozen=True)
class PairwiseResult:
    """`verdicts`: one row per shared (item_id, sample_index) (VERDICT_COLUMNS):
        item_id, sample_index (of the responses), model_a (baseline), model_b (candidate), criterion,
        verdict_ab / verdict_ba: majority verdict over the judge samples of each order, in the a/b
            naming (A = model_a better, B = model_b better, tie); NA when that order has none,
        verdict: the combined verdict A | B | tie — the two orders' verdict when they agree, tie when
            they disagree; NA when an order has no verdict (see error) — never a tie by default,
        consistent: whether the orders agree (NA without both verdicts),
        longer: which response has more characters, a | b | same (for length-bias checks); NA when one is missing,
        n_samples: judge samples that parsed, over both orders; n_errors: those that ended as errors,
        rationale: of the first parsed 'ab' sample, where "A" is model_a (NA in completion mode),
        error: why there is no combined verdict; NA when there is one.
    Missing values are NA (pandas may show None or NaN depending on the column's dtype).
    `orders`: one row per order and judge sample (ORDER_COLUMNS), verdicts in the a/b naming.
    `unmatched`: responses present for one model only or for an unknown item; not judged.
    `stats`: tasks, cached verdicts, model calls made, re-asks, judge errors, wall time.
    """

    verdicts: pd.DataFrame
    orders: pd.DataFrame
    unmatched: pd.DataFrame
    stats: JudgeStats


_CANDIDATE_SCORE = {"A": 0.0, "B": 1.0, "tie": 0.5, "both_bad": 0.5}  # humans' "both bad" prefers neither


def candidate_score(verdict: Any) -> float:
    """A judge verdict or a human choice as the candidate-side score the statistics take (B = candidate
    wins = 1, tie or both bad 0.5, A = 0); NaN for a missing verdict. For position consistency, 'ba' is the order with the
    candidate shown first."""
    return _CANDIDATE_SCORE.get(verdict, float("nan")) if isinstance(verdict, str) else float("nan")


def majority(verdicts: list[str]) -> str | None:
    """The most frequent verdict; a tie between the most frequent ones is a tie. None when empty."""
    if not verdicts:
        return None
    ranked = Counter(verdicts).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return "tie"
    return ranked[0][0]


def combine(verdict_ab: str | None, verdict_ba: str | None) -> tuple[str | None, bool | None]:
    """(combined verdict, consistent). Disagreeing orders -> ('tie', False)."""
    if verdict_ab is None or verdict_ba is None:
        return None, None
    if verdict_ab == verdict_ba:
        return verdict_ab, True
    return "tie", False


def longer(text_a: str, text_b: str) -> str:
    return "a" if len(text_a) > len(text_b) else "b" if len(text_b) > len(text_a) else "same"


async def ajudge_pairwise(store: Store, spec: JudgeSpec, items: pd.DataFrame, baseline: pd.DataFrame,
                          candidate: pd.DataFrame, criterion: str | Criterion = "correctness",
                          policy: calls.CallPolicy | None = None, adapter: Adapter | None = None,
                          progress: PhaseReporter | None = None, cache_only: bool = False) -> PairwiseResult:
    """Judge the candidate's responses against the baseline's on the items both answered."""
    item_map = items_by_id(items)
    side_a = response_records(baseline, "baseline")
    side_b = response_records(candidate, "candidate")
    model_a, model_b = single_model(side_a, "baseline"), single_model(side_b, "candidate")
    crit = resolve_criterion(criterion)
    pairs, unmatched = _pair(side_a, side_b, item_map)
    adapter, owned = resolve_adapter(spec, adapter)
    try:
        identity = adapter.identity()
        template = spec.template_set()
        rows: list[tuple[dict[str, Any], list[JudgeTask], str | None, str | None]] = []
        for rec_a, rec_b in pairs:
            item = item_map[rec_a["item_id"]]
            base = {"item_id": rec_a["item_id"], "sample_index": rec_a["sample_index"], "model_a": model_a,
                    "model_b": model_b, "criterion": crit.name}
            if missing(rec_a["response"]) or missing(rec_b["response"]):
                side = "baseline" if missing(rec_a["response"]) else "candidate"
                rows.append((base, [], f"{side}: {response_error(rec_a if side == 'baseline' else rec_b)}", None))
                continue
            text_a = answer_text(rec_a["response"], rec_a.get("tool_calls"))
            text_b = answer_text(rec_b["response"], rec_b.get("tool_calls"))
            reference = text_or_empty(item.get("reference"))
            lacking = crit.missing_evidence(item, reference)
            if lacking:
                rows.append((base, [], lacking, longer(text_a, text_b)))
                continue
            tasks = []
            for position in POSITIONS:
                first, second = (text_a, text_b) if position == "ab" else (text_b, text_a)
                fields = {"input": task_text(item), "reference": reference, "response_a": first, "response_b": second}
                rendered = render(template, "pairwise", crit, fields)
                tasks += [JudgeTask(judge_key(spec, identity, "pairwise", crit, fields, position, s), "pairwise",
                                    crit.name, rec_a["item_id"], response_key(rec_a), response_key(rec_b), position, s,
                                    rendered)
                          for s in range(spec.samples)]
            rows.append((base, tasks, None, longer(text_a, text_b)))
        outcomes, stats = await arun_tasks(store, spec, adapter, [t for _, ts, _, _ in rows for t in ts], policy, progress,
                                           cache_only)
    finally:
        if owned:
            await adapter.aclose()

    verdicts, orders = [], []
    for base, tasks, error, longer_side in rows:
        by_position: dict[str, list[Outcome]] = {p: [] for p in POSITIONS}
        for task in tasks:
            result = outcomes[task.judge_key]
            by_position[task.position or "ab"].append(result)
            orders.append({**base, "position": task.position, "judge_sample": task.sample_index,
                           "verdict": result.verdict, "rationale": result.rationale, "error": result.error,
                           "cached": result.cached, "judge_key": task.judge_key})
        per_order = {p: majority([r.verdict for r in rs if r.verdict is not None]) for p, rs in by_position.items()}
        verdict, consistent = combine(per_order["ab"], per_order["ba"])
        if error is None and verdict is None:
            failed = [p for p in POSITIONS if per_order[p] is None]
            first_error = next((r.error for p in failed for r in by_position[p] if r.error), "not judged")
            error = f"no verdict in order {' and '.join(failed)}: {first_error}"
        parsed = [r for p in POSITIONS for r in by_position[p] if r.verdict is not None]
        verdicts.append({**base, "verdict_ab": per_order["ab"], "verdict_ba": per_order["ba"], "verdict": verdict,
                         "consistent": consistent, "longer": longer_side, "n_samples": len(parsed),
                         "n_errors": sum(1 for rs in by_position.values() for r in rs if r.error is not None),
                         "rationale": next((r.rationale for r in by_position["ab"] if r.verdict is not None), None),
                         "error": error})
    return PairwiseResult(pd.DataFrame(verdicts, columns=VERDICT_COLUMNS), pd.DataFrame(orders, columns=ORDER_COLUMNS),
                          pd.DataFrame(unmatched, columns=UNMATCHED_COLUMNS), stats)


def judge_pairwise(store: Store, spec: JudgeSpec, items: pd.DataFrame, baseline: pd.DataFrame, candidate: pd.DataFrame,
                   criterion: str | Criterion = "correctness", policy: calls.CallPolicy | None = None,
                   adapter: Adapter | None = None, progress: PhaseReporter | None = None,
                   cache_only: bool = False) -> PairwiseResult:
    """Sync `ajudge_pairwise` (also inside a running Jupyter loop)."""
    return calls.run_sync(ajudge_pairwise(store, spec, items, baseline, candidate, criterion, policy, adapter, progress,
                                          cache_only))


def _pair(side_a: list[dict[str, Any]], side_b: list[dict[str, Any]], item_map: dict[str, Any]
          ) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]]]:
    """Match responses by (item_id, sample_index); report the rest."""
    index_b = {(r["item_id"], r["sample_index"]): r for r in side_b}
    keys_a = {(r["item_id"], r["sample_index"]) for r in side_a}
    pairs, unmatched = [], []
    for rec in side_a:
        key = (rec["item_id"], rec["sample_index"])
        if rec["item_id"] not in item_map:
            unmatched.append({"item_id": key[0], "sample_index": key[1], "model": str(rec["model"]),
                              "reason": "item_id not found in items"})
        elif key not in index_b:
            unmatched.append({"item_id": key[0], "sample_index": key[1], "model": str(rec["model"]),
                              "reason": "baseline only: no candidate response"})
        else:
            pairs.append((rec, index_b[key]))
    for rec in side_b:
        key = (rec["item_id"], rec["sample_index"])
        if key in keys_a and rec["item_id"] in item_map:
            continue
        reason = "item_id not found in items" if rec["item_id"] not in item_map else "candidate only: no baseline response"
        unmatched.append({"item_id": key[0], "sample_index": key[1], "model": str(rec["model"]), "reason": reason})
    return pairs, unmatched
