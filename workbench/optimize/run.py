"""One optimisation: split -> score the start -> demonstrations -> instruction rewrites (GEPA) ->
confirm the best dev prompt on held-out test -> save it as a new prompt version.

Honest by construction: the search sees only dev; the winner is the dev trial with the largest
paired gain over the starting prompt, and it is called a win only when the test split confirms
the gain (the paired CI on test lies above 0). A dev gain the test split does not confirm is
reported as overfitting. Statuses: confirmed (a win), overfitting (a dev gain test does not confirm),
no_gain (nothing beat the start on dev), unconfirmed (the budget ran out before the test check),
stopped (the start has no dev score: budget or failed calls). Every call is cached in the store and counted against the budget, so a
re-run (or a resume after a kill) repeats no call and ends where an uninterrupted run would.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from workbench.errors import InputError
from workbench.optimize.budget import Budget, BudgetExhausted
from workbench.optimize.config import OptimizeConfig
from workbench.optimize.evaluate import Evaluation, Evaluator, OptimizerCallFailed
from workbench.optimize.fewshot import demo_sets, with_demos
from workbench.optimize.gepa_adapter import (COMPONENT, BudgetStopper, WorkbenchAdapter, instruction_key, records,
                                             run_gepa)
from workbench.optimize.split import Split, split_items
from workbench.optimize.trials import TrialLog, table
from workbench.progress import PhaseReporter
from workbench.prompts import HISTORY_KEYS, PromptVersion, load_prompt, prompt_from_data, save_prompt

IDLE_ROUNDS = 5  # rewrite rounds in a row that propose no prompt not seen before: the search has converged
JUDGE_DEMO_MIN = 4.0  # judge objective: the target's own answers scored at least this become demonstrations


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
        from workbench.hashing import json_safe

        return json_safe({k: v for k, v in self.__dict__.items()
                          if k not in ("trials", "best_prompt", "start_prompt")})


def optimize(config: OptimizeConfig, *, progress: PhaseReporter | None = None,
             on_trial: Callable[[dict[str, Any]], None] | None = None) -> OptimizeResult:
    """Run (or resume) the optimisation `config` describes; bad input raises InputError before
    anything is written."""
    from workbench.data import dataset_id
    from workbench.store import Store

    started = time.perf_counter()  # the wall-time budget counts from here
    checked = _preflight(config)
    run_id = config.run_id(checked.fingerprints)
    with Store(config.store_path) as store:
        run = store.start_optimize_run(run_id, config.target, config.start_prompt, config.model_dump(mode="json"))
        scratch = config.store_path.parent / "optimize" / run_id / "prompts"
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
    from workbench.data import dataset_id, load_items
    from workbench.models import split_name
    from workbench.optimize.objective import make_objective, teacher_from_references

    problems: list[str] = []
    for name in [config.target, config.baseline if config.objective == "source" else None, config.judge
                 if config.objective == "judge" else None, config.optimizer_model]:
        if name:
            try:
                split_name(name)
            except InputError as exc:
                problems.extend(str(p) for p in exc.problems)
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
    prompts[config.start_prompt].render_many(both.to_dict(orient="records"))  # a missing field fails now
    if config.objective == "reference":
        teacher_from_references(both)
    per_item = 2 if config.objective == "judge" else 1
    reserve = len(split.test) * (2 * per_item + (1 if config.objective == "source" else 0))
    needed = len(split.dev) * (per_item + (1 if config.objective == "source" else 0)) + reserve
    if config.max_calls < needed:
        raise InputError(f"max_calls {config.max_calls} is below the {needed} calls that scoring the starting prompt "
                         f"on dev ({len(split.dev)} items) and confirming on test ({len(split.test)} items) need")
    fingerprints = {"dataset": dataset_id(both), **{ref: p.digest for ref, p in prompts.items()}}
    return _Checked(items, split, fingerprints, reserve)


class Search:
    """The rounds of one run, over the evaluator and the trial table."""

    def __init__(self, config: OptimizeConfig, evaluator: Evaluator, log: TrialLog, split: Split,
                 start: PromptVersion):
        self.config, self.evaluator, self.log, self.split, self.start = config, evaluator, log, split, start
        self.budget = evaluator.budget
        self.demo_ids: dict[str, frozenset[str]] = {start.digest: frozenset()}
        self.stop_reason: str | None = None
        self.round = 0
        self.rewrite_round_offset = 1
        self._parent = start.ref
        self._base: PromptVersion = start
        self._idle, self._seen_prompts, self._new_prompts = 0, set(), 0

    # ---- scoring ---------------------------------------------------------------------------------
    def score(self, prompt: PromptVersion, items: pd.DataFrame, *, move: str, split: str = "dev",
              parent: str | None = None, use_reserve: bool = False) -> dict[str, Any]:
        """A trial: the prompt on the split's items (less its own demonstrations on dev)."""
        excluded = self.demo_ids.get(prompt.digest, frozenset()) if split == "dev" else frozenset()
        scored = items[~items["item_id"].astype(str).isin(excluded)]
        found = self.log.find(prompt.digest, split, frozenset(scored["item_id"].astype(str)))
        if found is not None:
            return found
        evaluation = self.evaluator.evaluate(prompt, scored, f"trial ({move}, {split})", use_reserve=use_reserve)
        return self.log.record(evaluation, round=self.round, move=move, split=split, parent=parent)

    def evaluation(self, row: dict[str, Any]) -> Evaluation:
        return self.log.evaluations[row["trial"]]

    # ---- the run ---------------------------------------------------------------------------------
    def run(self, run_id: str, data_id: str, created_at: float) -> OptimizeResult:
        config = self.config
        try:
            self.evaluator.prepare_teacher(self.split.dev)
            start_row = self.score(self.start, self.split.dev, move="start")
        except BudgetExhausted as exc:
            return self.stopped(run_id, f"the budget ran out before the starting prompt was scored on dev ({exc}); "
                                "the calls made are stored: re-run with a larger budget to resume", f"budget: {exc}")
        if start_row["n_items"] < 2:
            return self.stopped(run_id, f"the starting prompt has a score on {start_row['n_items']} of "
                                f"{len(self.split.dev)} dev items (failed calls: see the store's call errors); "
                                "re-run to retry them", "failed calls")
        try:
            if "fewshot" in config.moves:
                self.round = 1
                self.fewshot(start_row)
            if "instructions" in config.moves and config.optimizer_model:
                self.instructions()
            elif "instructions" in config.moves:
                self.stop_reason = "instruction rewrites skipped: no optimizer_model given"
        except BudgetExhausted as exc:
            self.stop_reason = f"budget: {exc}"
        return self.confirm(run_id, created_at)

    def fewshot(self, start_row: dict[str, Any]) -> None:
        teacher = self.evaluator.teacher
        if self.evaluator.objective.kind == "judge":  # bootstrapped from the target's own good answers
            start_eval = self.evaluation(start_row)
            good = start_eval.scores[start_eval.scores >= JUDGE_DEMO_MIN].index
            answers = start_eval.responses.set_index("item_id")["response"]
            teacher = answers.reindex(good).dropna().astype(str)
        sets = demo_sets(self.split.dev, teacher, self.split.strata, self.config.max_demos,
                         self.config.fewshot_candidates, self.config.seed)
        for demo_ids in sets:
            data = with_demos(self.start, self.split.dev, demo_ids, teacher, self.split.strata)
            prompt = self._install(data)
            self.demo_ids[prompt.digest] = frozenset(demo_ids)
            self.score(prompt, self.split.dev, move="fewshot", parent=self.start.ref)

    def instructions(self) -> None:
        """GEPA over the instruction of the best prompt so far (its demonstrations kept)."""
        best = self.log.best_dev()
        self._base = self.evaluation(best).prompt
        self._parent = self._base.ref
        self.rewrite_round_offset = self.round + 1
        key = instruction_key(self._base.mode)
        excluded = self.demo_ids.get(self._base.digest, frozenset())
        dev = self.split.dev[~self.split.dev["item_id"].astype(str).isin(excluded)]
        objective = self.evaluator.objective
        adapter = WorkbenchAdapter(self, frozenset(dev["item_id"].astype(str)), objective.floor, objective.perfect,
                                   reflection_examples=max(self.config.minibatch_size, 4))
        self._round_cost = 1 + self.config.minibatch_size + len(dev)
        self._seen_prompts.add(self._base.digest)
        try:
            run_gepa(adapter, str(self._base.data.get(key, "")), records(dev), self._reflect,
                     BudgetStopper(self._can_continue), minibatch_size=min(self.config.minibatch_size, len(dev)),
                     seed=self.config.seed, perfect=objective.perfect, on_iteration=self._on_iteration)
        except BudgetExhausted as exc:
            self.stop_reason = f"budget: {exc}"
        except OptimizerCallFailed as exc:
            self.stop_reason = str(exc)

    # ---- GEPA's hooks ----------------------------------------------------------------------------
    def instruction_prompt(self, text: str) -> PromptVersion:
        data = {k: copy.deepcopy(v) for k, v in self._base.data.items() if k not in HISTORY_KEYS}
        data[instruction_key(self._base.mode)] = text
        prompt = self._install(data)
        self.demo_ids.setdefault(prompt.digest, self.demo_ids.get(self._base.digest, frozenset()))
        if prompt.digest not in self._seen_prompts:
            self._seen_prompts.add(prompt.digest)
            self._new_prompts += 1
        return prompt

    def evaluate_instruction(self, text: str, batch: list[dict[str, Any]], *, full: bool
                             ) -> tuple[dict[str, str | None], dict[str, float | None]]:
        prompt = self.instruction_prompt(text)
        items = pd.DataFrame(batch).drop_duplicates("item_id")  # GEPA pads small minibatches with repeats
        if full:
            move = "start" if prompt.digest == self.start.digest else "instruction"
            evaluation = self.evaluation(self.score(prompt, self.split.dev, move=move, parent=self._parent))
        else:
            evaluation = self.evaluator.evaluate(prompt, items, "rewrite minibatch")
        answers = evaluation.responses.set_index("item_id")["response"]
        return ({i: (None if pd.isna(v) else str(v)) for i, v in answers.items()},
                {i: (None if pd.isna(v) else float(v)) for i, v in evaluation.scores.items()})

    def worst_examples(self, text: str, n: int = 4) -> list[dict[str, Any]]:
        """The worst-scored dev items of the prompt with this instruction (from its full dev trial)."""
        prompt = self.instruction_prompt(text)
        self._parent = prompt.ref  # GEPA reflects on the parent it picked right before proposing
        rows = [r for r in self.log.rows if r["prompt_digest"] == prompt.digest and r["split"] == "dev"]
        if not rows:
            return []
        evaluation = self.evaluation(rows[-1])
        by_id = self.split.dev.assign(item_id=self.split.dev["item_id"].astype(str)).set_index("item_id")
        answers = evaluation.responses.set_index("item_id")["response"]
        worst = evaluation.scores.fillna(self.evaluator.objective.floor).sort_values(kind="stable").index[:n]
        return [{"item": {**by_id.loc[i].to_dict(), "item_id": i}, "response": answers.get(i),
                 "score": evaluation.scores.get(i)} for i in worst]

    def feedback_record(self, item: dict[str, Any], response: Any, score: Any) -> dict[str, Any]:
        objective = self.evaluator.objective
        best = "" if objective.perfect is None else f" (best possible {objective.perfect:g})"
        said = "no score: the call failed" if score is None or score != score else f"{objective.name} {score:.1f}{best}"
        teacher = self.evaluator.teacher.get(str(item["item_id"]))
        slices = ", ".join(f"{c}={item.get(c)}" for c in self.split.strata)
        record: dict[str, Any] = {"Inputs": {"input": str(item.get("input", ""))}}
        if slices:
            record["Inputs"]["slice"] = slices
        record["Generated Outputs"] = "(no answer)" if response is None or response != response else str(response)
        record["Feedback"] = f"Score: {said}." + (f" Expected answer: {teacher}" if teacher is not None else "")
        return record

    def _reflect(self, prompt: str | list[dict[str, Any]]) -> str:
        text = prompt if isinstance(prompt, str) else "\n\n".join(str(m.get("content", "")) for m in prompt)
        try:
            return self.evaluator.ask(str(self.config.optimizer_model), text, "instruction rewrite")
        except (BudgetExhausted, OptimizerCallFailed) as exc:
            self.stop_reason = f"budget: {exc}" if isinstance(exc, BudgetExhausted) else str(exc)
            raise

    def _can_continue(self) -> bool:
        if self.stop_reason:
            return False
        left = self.budget.max_calls - self.budget.reserved - self.budget.calls
        if left < self._round_cost:
            self.stop_reason = (f"budget: {left} calls left outside the test reserve; a rewrite round needs up to "
                                f"{self._round_cost}")
            return False
        remaining = self.budget.time_left()
        if remaining is not None and remaining <= 0:
            self.stop_reason = f"budget: the wall-time budget of {self.budget.max_wall_s:g} s is used up"
            return False
        if self._idle >= IDLE_ROUNDS:
            self.stop_reason = f"converged: {IDLE_ROUNDS} rewrite rounds in a row proposed no new prompt"
            return False
        return True

    def _on_iteration(self, iteration: int) -> None:
        """Called as each GEPA round starts: a round before it that proposed no prompt not seen
        before was idle."""
        self.round = self.rewrite_round_offset + iteration - 1
        if iteration > 1:
            self._idle = 0 if self._new_prompts else self._idle + 1
        self._new_prompts = 0

    def _install(self, data: dict[str, Any]) -> PromptVersion:
        digest = prompt_from_data(data, self.start.name, "trial").digest
        return self.evaluator.install(data, self.start.name, f"{self.start.version}-t{digest[:10]}")

    def stopped(self, run_id: str, message: str, reason: str) -> OptimizeResult:
        """No dev score for the starting prompt (budget or failed calls): nothing to compare yet."""
        return OptimizeResult(
            run_id=run_id, status="stopped", message=message, objective=self.evaluator.objective.describe(),
            start=self.start.ref, best=self.start.ref, saved=None, saved_path=None, dev={}, test=None,
            trials=table(self.log.rows), budget=self.budget.summary(), failed_calls=self.evaluator.failed_calls,
            stopped=reason, report_command=None, best_prompt=self.start, start_prompt=self.start)

    # ---- held-out confirmation, saving -------------------------------------------------------------
    def confirm(self, run_id: str, created_at: float) -> OptimizeResult:
        best_row = self.log.best_dev()
        best = self.evaluation(best_row).prompt
        start_dev = next(r for r in self.log.rows if r["split"] == "dev" and r["move"] == "start")
        dev = {"start_score": start_dev["score"], "best_score": best_row["score"], "delta": best_row["delta"],
               "delta_low": best_row["delta_low"], "delta_high": best_row["delta_high"], "n": best_row["n_items"]}
        test: dict[str, Any] | None = None
        self.round += 1
        if best.digest == self.start.digest:
            status, message = "no_gain", "no trial beat the starting prompt on dev; nothing to confirm or save"
        else:
            try:
                self.budget.reserved = 0
                self.evaluator.prepare_teacher(self.split.test, use_reserve=True)
                start_test = self.score(self.start, self.split.test, move="start", split="test", use_reserve=True)
                best_test = self.score(best, self.split.test, move="confirm", split="test", parent=self.start.ref,
                                       use_reserve=True)
                test = {"start_score": start_test["score"], "best_score": best_test["score"],
                        "delta": best_test["delta"], "delta_low": best_test["delta_low"],
                        "delta_high": best_test["delta_high"], "n": best_test["n_items"]}
                status, message = _verdict(dev, test)
            except BudgetExhausted as exc:
                status = "unconfirmed"
                message = f"the test confirmation could not run ({exc}); the dev gain is not a result"
        saved = self._save(run_id, best, status, message, created_at) if status in ("confirmed", "overfitting") else None
        report = None
        if saved:
            report = ("workbench report -p candidates " + shlex.quote(json.dumps([self.config.target] * 2))
                      + " -p candidate_prompts " + shlex.quote(json.dumps([self.start.ref, saved[0]])))
        return OptimizeResult(
            run_id=run_id, status=status, message=message, objective=self.evaluator.objective.describe(),
            start=self.start.ref, best=best.ref, saved=saved[0] if saved else None,
            saved_path=str(saved[1]) if saved else None, dev=dev, test=test, trials=table(self.log.rows),
            budget=self.budget.summary(), failed_calls=self.evaluator.failed_calls, stopped=self.stop_reason,
            report_command=report, best_prompt=best, start_prompt=self.start)

    def _save(self, run_id: str, best: PromptVersion, status: str, message: str, created_at: float
              ) -> tuple[str, Any]:
        start = load_prompt(self.config.start_prompt, self.config.prompts_path)
        ref = self.config.output_prompt or f"{start.name}@{start.version}-opt-{run_id[:8]}"
        moves = "demonstrations" if len(best.examples) > len(start.examples) else ""
        if best.data.get(instruction_key(best.mode)) != start.data.get(instruction_key(start.mode)):
            moves = f"{moves} + instruction" if moves else "instruction"
        data = {k: copy.deepcopy(v) for k, v in best.data.items() if k not in HISTORY_KEYS}
        data["description"] = f"{start.description} Re-tuned for {self.config.target} ({moves})."
        data.update(parent=start.ref, author=f"optimizer:{run_id}", note=f"{status}: {message}",
                    created=dt.datetime.fromtimestamp(int(created_at), dt.timezone.utc))
        try:
            return ref, save_prompt(data, ref, self.config.prompts_path)
        except InputError:
            if self.config.output_prompt:
                raise
            for n in range(2, 100):  # the default name is taken by an earlier result of this run: keep both
                try:
                    return f"{ref}-r{n}", save_prompt(data, f"{ref}-r{n}", self.config.prompts_path)
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
