"""The rounds of one run: the start, demonstrations, then instruction rewrites searched by GEPA.

Each prompt scored on a whole split is a trial (trials.py). Demonstrations are chosen from dev, and
a dev item shown as a demonstration is left out of that prompt's dev score. GEPA rewrites the
instruction of the best prompt so far, its demonstrations kept; it only ever sees dev.
"""
from __future__ import annotations

import copy
from typing import Any

import pandas as pd

from workbench.items.display import answer_text, task_text
from workbench.optimize.budget import BudgetExhausted
from workbench.optimize.config import OptimizeConfig
from workbench.optimize.evaluate import Evaluation, Evaluator, OptimizerCallFailed
from workbench.optimize.fewshot import demo_sets, with_demos
from workbench.optimize.gepa_adapter import BudgetStopper, WorkbenchAdapter, instruction_key, records, run_gepa
from workbench.optimize.result import OptimizeResult, confirm, stopped
from workbench.optimize.split import Split
from workbench.optimize.trials import TrialLog
from workbench.task.prompts import HISTORY_KEYS, PromptVersion, prompt_from_data

IDLE_ROUNDS = 5  # rewrite rounds in a row that propose no prompt not seen before: the search has converged
JUDGE_DEMO_MIN = 4.0  # judge objective: the target's own answers scored at least this become demonstrations


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
            return stopped(self, run_id, f"the budget ran out before the starting prompt was scored on dev ({exc}); "
                                "the calls made are stored: re-run with a larger budget to resume", f"budget: {exc}")
        if start_row["n_items"] < 2:
            return stopped(self, run_id, f"the starting prompt has a score on {start_row['n_items']} of "
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
        """The best prompt before the rewrites with this instruction (itself when unchanged, so a
        prompt without a system message is not turned into one with an empty system message)."""
        key = instruction_key(self._base.mode)
        if text == str(self._base.data.get(key, "")):
            return self._base
        data = {k: copy.deepcopy(v) for k, v in self._base.data.items() if k not in HISTORY_KEYS}
        data[key] = text
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
        frame = evaluation.responses.set_index("item_id")
        calls = frame["tool_calls"] if "tool_calls" in frame.columns else pd.Series(None, index=frame.index)
        answers = pd.Series([None if pd.isna(text) else answer_text(text, made)  # the calls it made, too
                             for text, made in zip(frame["response"], calls)], index=frame.index, dtype=object)
        worst = evaluation.scores.fillna(self.evaluator.objective.floor).sort_values(kind="stable").index[:n]
        return [{"item": {**by_id.loc[i].to_dict(), "item_id": i}, "response": answers.get(i),
                 "score": evaluation.scores.get(i)} for i in worst]

    def feedback_record(self, item: dict[str, Any], response: Any, score: Any) -> dict[str, Any]:
        objective = self.evaluator.objective
        best = "" if objective.perfect is None else f" (best possible {objective.perfect:g})"
        said = "no score: the call failed" if score is None or score != score else f"{objective.name} {score:.1f}{best}"
        teacher = self.evaluator.teacher.get(str(item["item_id"]))
        slices = ", ".join(f"{c}={item.get(c)}" for c in self.split.strata)
        record: dict[str, Any] = {"Inputs": {"input": task_text(item)}}
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

    def confirm(self, run_id: str, created_at: float) -> OptimizeResult:
        return confirm(self, run_id, created_at)
