"""The end of a run: the best dev prompt confirmed once on held-out test, the verdict, the saved version.

A win only when the test split confirms the dev gain (the paired CI of best - start on test lies
above 0). Statuses: confirmed (a win), overfitting (a dev gain the test split does not confirm),
no_gain (nothing beat the start on dev), unconfirmed (the budget ran out before the test check),
stopped (the start has no dev score: budget or failed calls).
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.errors import InputError
from workbench.hashing import json_safe
from workbench.optimize.budget import BudgetExhausted
from workbench.optimize.gepa_adapter import instruction_key
from workbench.optimize.trials import table
from workbench.task.prompts import HISTORY_KEYS, PromptVersion, load_prompt, save_prompt


@dataclass
class OptimizeResult:
    run_id: str
    status: str  # confirmed | overfitting | no_gain | unconfirmed | stopped (see the module docstring)
    message: str
    objective: str
    start: str
    best: str  # the best dev trial's prompt (the start when nothing beat it)
    saved: str | None  # the new prompt version, name@version
    saved_path: str | None
    dev: dict[str, Any]
    test: dict[str, Any] | None
    trials: pd.DataFrame
    budget: dict[str, Any]
    failed_calls: int
    stopped: str | None  # why the search ended before trying everything, if it did
    report_command: str | None
    best_prompt: PromptVersion | None = field(default=None, repr=False)
    start_prompt: PromptVersion | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({k: v for k, v in self.__dict__.items()
                          if k not in ("trials", "best_prompt", "start_prompt")})


def stopped(search: Any, run_id: str, message: str, reason: str) -> OptimizeResult:
    """No dev score for the starting prompt (budget or failed calls): nothing to compare yet."""
    return OptimizeResult(
        run_id=run_id, status="stopped", message=message, objective=search.evaluator.objective.describe(),
        start=search.start.ref, best=search.start.ref, saved=None, saved_path=None, dev={}, test=None,
        trials=table(search.log.rows), budget=search.budget.summary(), failed_calls=search.evaluator.failed_calls,
        stopped=reason, report_command=None, best_prompt=search.start, start_prompt=search.start)


def confirm(search: Any, run_id: str, created_at: float) -> OptimizeResult:
    """Score the start and the best dev prompt on test (with the calls kept in reserve), decide, save."""
    best_row = search.log.best_dev()
    best = search.evaluation(best_row).prompt
    dev = {**same_items_start(search, best_row), "best_score": best_row["score"], "delta": best_row["delta"],
           "delta_low": best_row["delta_low"], "delta_high": best_row["delta_high"], "n": best_row["n_items"]}
    test: dict[str, Any] | None = None
    search.round += 1
    if best.digest == search.start.digest:
        status, message = "no_gain", "no trial beat the starting prompt on dev; nothing to confirm or save"
    else:
        try:
            search.budget.reserved = 0
            search.evaluator.prepare_teacher(search.split.test, use_reserve=True)
            start_test = search.score(search.start, search.split.test, move="start", split="test", use_reserve=True)
            best_test = search.score(best, search.split.test, move="confirm", split="test",
                                     parent=search.start.ref, use_reserve=True)
            test = {"start_score": start_test["score"], "best_score": best_test["score"],
                    "delta": best_test["delta"], "delta_low": best_test["delta_low"],
                    "delta_high": best_test["delta_high"], "n": best_test["n_items"]}
            status, message = _verdict(dev, test)
        except BudgetExhausted as exc:
            status = "unconfirmed"
            message = f"the test confirmation could not run ({exc}); the dev gain is not a result"
    # only a confirmed win becomes a usable prompt version (and gets a report command); a dev gain the
    # test split did not confirm is kept only on request, named and noted as unconfirmed
    keep = status == "confirmed" or (search.config.save_unconfirmed and status in ("overfitting", "unconfirmed"))
    saved = _save(search, run_id, best, status, message, created_at) if keep else None
    report = None
    if saved and status == "confirmed":
        report = ("workbench report -p candidates " + shlex.quote(json.dumps([search.config.target] * 2))
                  + " -p candidate_prompts " + shlex.quote(json.dumps([search.start.ref, saved[0]])))
    elif status in ("overfitting", "unconfirmed") and not saved:
        message += "; not saved as a prompt version (save_unconfirmed = true keeps it for inspection)"
    return OptimizeResult(
        run_id=run_id, status=status, message=message, objective=search.evaluator.objective.describe(),
        start=search.start.ref, best=best.ref, saved=saved[0] if saved else None,
        saved_path=str(saved[1]) if saved else None, dev=dev, test=test, trials=table(search.log.rows),
        budget=search.budget.summary(), failed_calls=search.evaluator.failed_calls, stopped=search.stop_reason,
        report_command=report, best_prompt=best, start_prompt=search.start)


def same_items_start(search: Any, best_row: dict[str, Any]) -> dict[str, Any]:
    """The start's dev score on exactly the items the best trial was scored on (its demonstrations
    left out of both), from the start's own per-item scores: no call, and the two numbers compare."""
    start_dev = next(r for r in search.log.rows if r["split"] == "dev" and r["move"] == "start")
    items = [i for i, v in best_row["item_scores"].items() if v is not None]
    start_scores = [start_dev["item_scores"].get(i) for i in items]
    start_scores = [v for v in start_scores if v is not None]
    same = len(items) == start_dev["n_items"]
    return {"start_score": sum(start_scores) / len(start_scores) if start_scores else None,
            "start_score_all_dev": start_dev["score"], "n_start_all_dev": start_dev["n_items"],
            "items": "all dev items" if same else
            f"the {len(items)} dev items the best prompt was scored on (its demonstrations left out), "
            f"start re-scored on the same items"}


def _save(search: Any, run_id: str, best: PromptVersion, status: str, message: str,
          created_at: float) -> tuple[str, Any]:
    """The best prompt as a new version in the project's prompts/, with its history (a result the
    test split did not confirm is named and noted as unconfirmed)."""
    start = load_prompt(search.config.start_prompt, search.config.prompts_path)
    ref = search.config.output_prompt or f"{start.name}@{start.version}-opt-{run_id[:8]}"
    if status != "confirmed":
        ref = f"{ref}-unconfirmed"
    moves = "demonstrations" if len(best.examples) > len(start.examples) else ""
    if best.data.get(instruction_key(best.mode)) != start.data.get(instruction_key(start.mode)):
        moves = f"{moves} + instruction" if moves else "instruction"
    data = {k: copy.deepcopy(v) for k, v in best.data.items() if k not in HISTORY_KEYS}
    data["description"] = f"{start.description} Re-tuned for {search.config.target} ({moves})."
    note = message if message.startswith(f"{status}:") else f"{status}: {message}"
    data.update(parent=start.ref, author=f"optimizer:{run_id}", note=note,
                created=dt.datetime.fromtimestamp(int(created_at), dt.timezone.utc))
    try:
        return ref, save_prompt(data, ref, search.config.prompts_path)
    except InputError:
        if search.config.output_prompt:
            raise
        for n in range(2, 100):  # the default name is taken by an earlier result of this run: keep both
            try:
                return f"{ref}-r{n}", save_prompt(data, f"{ref}-r{n}", search.config.prompts_path)
            except InputError:
                continue
        raise


def _verdict(dev: dict[str, Any], test: dict[str, Any]) -> tuple[str, str]:
    """A win only when the test split confirms the dev gain: its paired CI lies above 0."""
    def fmt(part: dict[str, Any]) -> str:
        return f"{part['delta']:+.2f} [{part['delta_low']:+.2f}, {part['delta_high']:+.2f}]" \
            if part["delta_low"] is not None else f"{part['delta']:+.2f}"

    if test["delta_low"] is not None and test["delta_low"] > 0:
        return "confirmed", f"dev gain {fmt(dev)} confirmed on held-out test: {fmt(test)}"
    return "overfitting", (f"overfitting: the dev gain {fmt(dev)} is not confirmed on held-out test "
                           f"({fmt(test)}); not a win")
