"""One optimisation: split -> score the start -> demonstrations -> instruction rewrites (GEPA) ->
confirm the best dev prompt on held-out test -> save it as a new prompt version.

Honest by construction: the search sees only dev; the winner is the dev trial with the largest
paired gain over the starting prompt, and it is called a win only when the test split confirms
the gain (result.py). Every call is cached in the store and counted against the budget, so a
re-run (or a resume after a kill) repeats no call and ends where an uninterrupted run would.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from workbench.errors import InputError
from workbench.generation.options import problems as model_option_problems
from workbench.items.render import render_items
from workbench.models import split_name
from workbench.optimize.budget import Budget
from workbench.optimize.config import OptimizeConfig
from workbench.optimize.evaluate import Evaluator
from workbench.optimize.objective import make_objective, teacher_from_expected_calls, teacher_from_references
from workbench.optimize.result import OptimizeResult
from workbench.optimize.search import Search
from workbench.optimize.split import Split, split_items
from workbench.optimize.trials import TrialLog
from workbench.progress import PhaseReporter
from workbench.store import open_store
from workbench.task.dataset import dataset_id, load_items
from workbench.task.prompts import PromptVersion, load_prompt

__all__ = ["OptimizeResult", "optimize"]


def optimize(config: OptimizeConfig, *, progress: PhaseReporter | None = None,
             on_trial: Callable[[dict[str, Any]], None] | None = None) -> OptimizeResult:
    """Run (or resume) the optimisation `config` describes; bad input raises InputError before
    anything is written."""
    started = time.perf_counter()  # the wall-time budget counts from here
    checked = _preflight(config)
    run_id = config.run_id(checked.fingerprints)
    with open_store(config.store_path) as store:
        run = store.start_optimize_run(run_id, config.target, config.start_prompt, config.model_dump(mode="json"))
        scratch = config.scratch_dir(run_id)
        budget = Budget(config.max_calls, config.max_cost_usd, config.max_wall_s, reserved=checked.reserve,
                        started=started)
        evaluator = Evaluator(config, store, budget, scratch, progress)
        log = TrialLog(store, run_id, budget, evaluator, config.bootstrap_resamples, config.seed, on_trial)
        search = Search(config, evaluator, log, checked.split, evaluator.copy_prompt(config.start_prompt))
        try:
            result = search.run(run_id, dataset_id(checked.items), run["created_at"])
        except BaseException as exc:
            store.finish_optimize_run(run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"[:2000],
                                                         "budget": budget.summary()})
            raise
        store.finish_optimize_run(run_id, "done", result.to_dict())
    return result


@dataclass
class _Checked:
    items: pd.DataFrame
    split: Split
    fingerprints: dict[str, str]
    reserve: int


def _preflight(config: OptimizeConfig) -> _Checked:
    """Every cheap check, with every problem listed at once: files, models, prompts, split, budget."""
    problems: list[str] = []
    for name in [config.target, config.baseline if config.objective == "source" else None, config.judge
                 if config.objective == "judge" else None, config.optimizer_model]:
        if name:
            try:
                split_name(name)
            except InputError as exc:
                problems.extend(str(p) for p in exc.problems)

    models = [m for m in (config.target, config.baseline, config.judge, config.optimizer_model) if m]
    problems.extend(model_option_problems(config.model_options, models))  # as the report checks them
    prompts: dict[str, PromptVersion] = {}
    for ref in [config.start_prompt, config.baseline_prompt if config.objective == "source" else None]:
        if ref:
            try:
                prompts[ref] = load_prompt(ref, config.prompts_path)
            except InputError as exc:
                problems.extend(str(p) for p in exc.problems)
    if config.moves == ["instructions"] and not config.optimizer_model:
        problems.append("moves ['instructions'] needs optimizer_model (the model that proposes rewrites)")
    if config.output_prompt and "@" not in config.output_prompt:
        problems.append(f"output_prompt '{config.output_prompt}' must look like 'name@version'")
    try:
        make_objective(config.objective, config.metric, config.baseline, config.judge_criterion)
    except InputError as exc:
        problems.extend(str(p) for p in exc.problems)
    path = config.path(config.dataset)
    if not path.exists():
        problems.append(f"parameter 'dataset': {config.dataset} not found (looked in {config.base_dir})")
    if problems:
        raise InputError(problems)
    items = load_items(path)
    split = split_items(items, config.dev_size, config.test_size, config.split_seed, config.strata,
                        config.split_column)
    both = pd.concat([split.dev, split.test], ignore_index=True)
    render_items(both.to_dict(orient="records"), prompts[config.start_prompt])  # a missing field fails now
    if config.objective == "reference":
        teacher_from_references(both)
    if config.objective == "tools":
        teacher_from_expected_calls(both)
    per_item = 2 if config.objective == "judge" else 1
    reserve = len(split.test) * (2 * per_item + (1 if config.objective == "source" else 0))
    needed = len(split.dev) * (per_item + (1 if config.objective == "source" else 0)) + reserve
    if config.max_calls < needed:
        raise InputError(f"max_calls {config.max_calls} is below the {needed} calls that scoring the starting prompt "
                         f"on dev ({len(split.dev)} items) and confirming on test ({len(split.test)} items) need")
    fingerprints = {"dataset": dataset_id(both), **{ref: p.digest for ref, p in prompts.items()}}
    return _Checked(items, split, fingerprints, reserve)


