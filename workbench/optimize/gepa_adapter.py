"""Move (b): instruction rewrites, searched by GEPA (reflective prompt evolution, PyPI `gepa`).

GEPA is the search engine only: it picks which prompt to improve (the Pareto front of the best
prompts so far), samples dev minibatches, asks the optimizer model for a rewrite and keeps rewrites
that score better. Everything it measures comes from our evaluator (the cached runner and the
project's scorers, counted against the budget) through GEPA's adapter protocol, and the optimizer
model is any registered model called through the same runner. The component GEPA rewrites is the
prompt's instruction: the system message (chat) or the preamble (completion); demonstrations and
templates stay as the best prompt before it had them.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import pandas as pd

COMPONENT = "instruction"


def instruction_key(mode: str) -> str:
    return "system" if mode == "chat" else "preamble"


class WorkbenchAdapter:
    """GEPA's adapter protocol over the workbench evaluator.

    `evaluate_items(candidate_text, records, full)` returns (responses by item id, scores by item
    id) and records a trial when `full` (GEPA scores a candidate on the whole dev set); the search
    object owns the prompts, the budget and the trial table."""

    propose_new_texts = None  # GEPA's reflective proposer calls the optimizer model (reflection_lm)

    def __init__(self, search: Any, val_ids: frozenset[str], floor: float, perfect: float | None,
                 reflection_examples: int):
        self.search, self.val_ids, self.floor, self.perfect = search, val_ids, floor, perfect
        self.reflection_examples = reflection_examples

    def evaluate(self, batch: list[dict[str, Any]], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa.core.adapter import EvaluationBatch

        ids = [str(r["item_id"]) for r in batch]
        responses, scores = self.search.evaluate_instruction(candidate[COMPONENT], batch,
                                                             full=frozenset(ids) == self.val_ids)
        values = [self._score(scores.get(i)) for i in ids]
        outputs = [responses.get(i) for i in ids]
        traces = None
        if capture_traces:
            traces = [{"item": record, "response": responses.get(i), "score": scores.get(i)}
                      for record, i in zip(batch, ids)]
        return EvaluationBatch(outputs=outputs, scores=values, trajectories=traces)

    def make_reflective_dataset(self, candidate: dict[str, str], eval_batch: Any,
                                components_to_update: list[str]) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        """The minibatch plus the worst-scored dev items of this prompt, worst first: what the
        optimizer model reads to propose a better instruction."""
        seen: dict[str, dict[str, Any]] = {}
        for trace in [*(eval_batch.trajectories or []), *self.search.worst_examples(candidate[COMPONENT])]:
            seen.setdefault(str(trace["item"]["item_id"]), trace)
        ranked = sorted(seen.values(), key=lambda t: self._score(t["score"]))[: self.reflection_examples]
        records = [self.search.feedback_record(t["item"], t["response"], t["score"]) for t in ranked]
        return {name: records for name in components_to_update}

    def _score(self, value: float | None) -> float:
        return self.floor if value is None or value != value else float(value)


class BudgetStopper:
    """GEPA stop condition: stop when the budget cannot pay one more rewrite round (one optimizer
    call, a minibatch and the full dev set), when a call failed for good, or when rounds stop
    proposing prompts not seen before (the search only revisits what it has)."""

    def __init__(self, can_continue: Callable[[], bool]):
        self.can_continue = can_continue

    def __call__(self, gepa_state: Any) -> bool:
        return not self.can_continue()


def run_gepa(adapter: WorkbenchAdapter, seed_text: str, dev_records: list[dict[str, Any]],
             reflection_lm: Callable[[str], str], stopper: BudgetStopper, *, minibatch_size: int, seed: int,
             perfect: float | None, on_iteration: Callable[[int], None]) -> None:
    """Run GEPA's search; the results are in the trial table, not in GEPA's state."""
    import gepa

    class IterationCallback:
        def on_iteration_start(self, event: Any) -> None:
            on_iteration(int(event["iteration"]))

    gepa.optimize(
        seed_candidate={COMPONENT: seed_text}, trainset=dev_records, valset=dev_records, adapter=adapter,
        reflection_lm=reflection_lm, candidate_selection_strategy="pareto", reflection_minibatch_size=minibatch_size,
        perfect_score=perfect if perfect is not None else 1.0, skip_perfect_score=perfect is not None,
        stop_callbacks=[stopper], logger=_QuietLogger(), callbacks=[IterationCallback()], seed=seed,
        raise_on_exception=True, display_progress_bar=False, track_best_outputs=False)


class _QuietLogger:
    """GEPA logs every iteration to stdout by default; the trial table is our record."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(str(message))


def records(items: pd.DataFrame) -> list[dict[str, Any]]:
    return [{**r, "item_id": str(r["item_id"])} for r in items.to_dict(orient="records")]
