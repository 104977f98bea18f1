"""The trial table: every prompt scored on a whole split, in the store as it happens.

A trial row carries its dev score with a CI, its paired difference to the starting prompt with a
CI (on the items both scored), and what it took: the distinct calls it needed since the previous
trial (the budget's unit), how many of those a model answered now (0 on a resumed run: the store
answered), their known cost, and the time in the runner against the trial's whole time (the
optimizer's own overhead is the difference). A replayed trial keeps its first record; one whose
scores changed (a re-run answered calls that had failed) replaces it.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import pandas as pd

from workbench.optimize.budget import Budget
from workbench.optimize.evaluate import Evaluation, Evaluator
from workbench.optimize.objective import delta_ci, summary_ci
from workbench.task.prompts import prompt_toml

TABLE_COLUMNS = ["trial", "round", "split", "move", "prompt_version", "n_items", "score", "score_low", "score_high",
                 "delta", "delta_low", "delta_high", "calls", "calls_made", "cost_usd", "wall_s"]


class TrialLog:
    def __init__(self, store: Any, run_id: str, budget: Budget, evaluator: Evaluator, resamples: int, seed: int,
                 on_trial: Callable[[dict[str, Any]], None] | None = None):
        self.store, self.run_id, self.budget, self.evaluator = store, run_id, budget, evaluator
        self.resamples, self.seed, self.on_trial = resamples, seed, on_trial
        self.rows: list[dict[str, Any]] = []
        self.evaluations: dict[int, Evaluation] = {}  # trial -> its evaluation
        self.start: dict[str, pd.Series] = {}  # split -> the starting prompt's scores
        self._seen: dict[tuple[str, str, frozenset[str]], dict[str, Any]] = {}
        self._mark = self._counters()

    def _counters(self) -> tuple[int, int, float, float, float]:
        return (self.budget.calls, self.evaluator.calls_made, self.budget.cost_usd, self.evaluator.model_s,
                time.perf_counter())

    def find(self, digest: str, split: str, item_ids: frozenset[str]) -> dict[str, Any] | None:
        return self._seen.get((digest, split, item_ids))

    def record(self, evaluation: Evaluation, *, round: int, move: str, split: str, parent: str | None) -> dict[str, Any]:
        """Record a trial (or return the row of the same prompt on the same items)."""
        ids = frozenset(evaluation.scores.index)
        key = (evaluation.prompt.digest, split, ids)
        if key in self._seen:
            return self._seen[key]
        if move == "start":
            self.start[split] = evaluation.scores
        base = self.start.get(split)
        delta = delta_ci(evaluation.scores, base, self.resamples, self.seed) if base is not None \
            else {"delta": None, "delta_low": None, "delta_high": None}
        summary = summary_ci(evaluation.scores, self.resamples, self.seed)
        calls, made, cost, model_s, clock = self._counters()
        last = self._mark
        self._mark = (calls, made, cost, model_s, clock)
        row = {
            "run_id": self.run_id, "trial": len(self.rows), "round": round, "split": split, "move": move,
            "prompt_version": evaluation.prompt.ref, "parent_version": parent,
            "prompt_digest": evaluation.prompt.digest, "prompt_toml": prompt_toml(evaluation.prompt.data),
            "n_items": summary["n"], "score": summary["score"], "score_low": summary["score_low"],
            "score_high": summary["score_high"], "delta": delta["delta"], "delta_low": delta["delta_low"],
            "delta_high": delta["delta_high"], "calls": calls - last[0], "calls_made": made - last[1],
            "cost_usd": (cost - last[2]) if self.budget.cost_known else None, "model_s": _round(model_s - last[3]),
            "wall_s": _round(clock - last[4]), "errors": evaluation.errors,
            "item_scores": {k: (None if v is None or math.isnan(v) else float(v))
                            for k, v in evaluation.scores.items()},
        }
        self.store.put_trial({k: v for k, v in row.items() if k != "errors"})
        self.rows.append(row)
        self.evaluations[row["trial"]] = evaluation
        self._seen[key] = row
        if self.on_trial is not None:
            self.on_trial(row)
        return row

    def frame(self) -> pd.DataFrame:
        return table(self.rows)

    def best_dev(self) -> dict[str, Any]:
        """The dev trial with the largest paired gain over the start (the start itself when none gains;
        ties go to the earlier trial, which is the simpler prompt)."""
        dev = [r for r in self.rows if r["split"] == "dev"]
        best = dev[0]
        for row in dev[1:]:
            if row["delta"] is not None and row["delta"] > (best["delta"] or 0.0):
                best = row
        return best


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The trial table as shown: one row per trial, the columns of TABLE_COLUMNS."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return frame[[c for c in TABLE_COLUMNS if c in frame.columns]]


def trial_line(row: dict[str, Any]) -> str:
    """One trial as a line of the live table (CLI stderr)."""
    def num(value: Any, fmt: str = "{:.2f}") -> str:
        return "-" if value is None else fmt.format(value)

    ci = f"[{num(row['score_low'])}, {num(row['score_high'])}]"
    delta = "" if row["delta"] is None else f" delta {row['delta']:+.2f} [{num(row['delta_low'], '{:+.2f}')}, " \
        f"{num(row['delta_high'], '{:+.2f}')}]"
    cost = "" if row["cost_usd"] is None else f" ${row['cost_usd']:.4f}"
    return (f"trial {row['trial']:>2} round {row['round']} {row['split']:<4} {row['move']:<11} {row['prompt_version']}: "
            f"{num(row['score'])} {ci} n={row['n_items']}{delta}; {row['calls']} calls ({row['calls_made']} made)"
            f"{cost}, {row['wall_s']:.1f} s")


def _round(seconds: float) -> float:
    return float(f"{seconds:.4f}")
