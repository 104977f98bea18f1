"""The evaluator: a prompt version of the target, scored on items through the cached runner and
the project's scorers. There is no second path: every call goes through `runner.generate` (so
through `calls.py`'s cache, retries and concurrency), with the sampling and call policy of the
migration's report configuration, and every call is counted against the budget first.

Trial prompts are written as ordinary prompt files into the run's own folder (next to the store),
together with copies of the starting and baseline prompts, so the runner loads them like any
version; the cache key depends on what is sent, not on the file, so a report that later uses the
saved version finds every answer the optimizer already paid for.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from workbench import pipeline
from workbench.generation import calls
from workbench.generation.runner import ModelSpec, agenerate, preflight
from workbench.hashing import content_hash
from workbench.judges import JudgeSpec, judge_pointwise
from workbench.models import make_adapter
from workbench.optimize.budget import Budget, BudgetExhausted
from workbench.optimize.config import OptimizeConfig
from workbench.optimize.objective import (
    Objective,
    judge_scores,
    make_objective,
    metric_scores,
    teacher_from_expected_calls,
    teacher_from_references,
    teacher_from_responses,
)
from workbench.progress import PhaseReporter
from workbench.task.prompts import PromptVersion, load_prompt, prompt_from_data, prompt_toml


@dataclass
class Evaluation:
    """One prompt on some items: oriented score per item id (NaN: not scored) and the answers."""

    prompt: PromptVersion
    scores: pd.Series
    responses: pd.DataFrame  # item_id, response, error
    errors: int


class Evaluator:
    def __init__(self, config: OptimizeConfig, store: Any, budget: Budget, scratch: Path,
                 progress: PhaseReporter | None = None):
        self.config, self.store, self.budget, self.scratch, self.progress = config, store, budget, scratch, progress
        report_config = config.migration_config(prompts_dir=scratch)
        self.sampling = pipeline.sampling(report_config)
        # a call may take timeout_s (local models answer a whole batch per call, minutes on a busy CPU);
        # the policy's budget per call leaves room for a retry after that (CallPolicy.with_timeout)
        self.policy = pipeline.call_policy(report_config)
        self.api_base = report_config.endpoint  # `env:NAME` read from the environment, as the report does
        self.objective: Objective = make_objective(config.objective, config.metric, config.baseline,
                                                   config.judge_criterion)
        self.teacher = pd.Series(dtype=str)  # item id -> the answer a good output resembles
        self.model_s = 0.0  # time inside the runner and the judge
        self.calls_made = 0  # calls a model answered (the rest came from the store)
        self.failed_calls = 0

    # ---- prompt files ----------------------------------------------------------------------------
    def copy_prompt(self, ref: str) -> PromptVersion:
        """A project (or bundled) prompt copied into the run's folder, so trial prompts and it share one root."""
        prompt = load_prompt(ref, self.config.prompts_path)
        return self.install(prompt.data, prompt.name, prompt.version)

    def install(self, data: Mapping[str, Any], name: str, version: str) -> PromptVersion:
        prompt = prompt_from_data(data, name, version)  # validated before it is written
        path = self.scratch / name / f"{version}.toml"
        text = prompt_toml(data)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        return load_prompt(prompt.ref, self.scratch)

    # ---- model calls -----------------------------------------------------------------------------
    def respond(self, model: str, prompt_ref: str | None, items: pd.DataFrame, what: str, *,
                max_tokens: int | None = None, use_reserve: bool = False) -> pd.DataFrame:
        """Answers of `model` with `prompt_ref` on `items` (item_id, response, error, cache_key), through
        the cached runner, after checking that the calls it still needs fit the budget."""
        sampling = self.sampling if max_tokens is None else self.sampling.model_copy(update={"max_tokens": max_tokens})
        spec = ModelSpec(name=model, prompt=prompt_ref, options=self._options(model),
                         base_dir=str(self.config.base_dir))  # a relative hf/ or replay/ path: in the project
        planned = preflight(items, [spec], sampling=sampling, prompts_dir=self.scratch)[0][3]
        new = self.budget.new_keys(c.cache_key for c in planned)
        self.budget.require(len(new), what, use_reserve=use_reserve)
        fresh = len(self.store.cached_keys(new)) < len(new)
        started = time.perf_counter()
        run = agenerate(items, [spec], self.store, sampling=sampling, policy=self.policy, prompts_dir=self.scratch,
                        progress=self.progress if fresh and self.progress else False)
        left = self.budget.time_left()
        try:
            frame, stats = calls.run_sync(asyncio.wait_for(run, left) if left is not None else run)
        except TimeoutError:
            raise BudgetExhausted(f"{what}: the wall-time budget of {self.budget.max_wall_s:g} s ran out during "
                                  "the calls (answers that arrived are stored)") from None
        finally:
            self.model_s += time.perf_counter() - started
        self.calls_made += stats.calls_made
        self.failed_calls += stats.errors
        answered = frame["response"].notna()
        self.budget.record({key: (cost if ok else 0.0) for key, cost, ok in
                            zip(frame["cache_key"], frame["cost_usd"], answered)})
        return frame[["item_id", "response", "tool_calls", "error", "cache_key"]].assign(
            item_id=lambda f: f["item_id"].astype(str))

    def _options(self, model: str) -> dict[str, Any]:
        """The model's own options, and the endpoint where it has none of its own (as the report's)."""
        return ModelSpec.with_endpoint(model, None, self.api_base, options=self.config.model_options.get(model)).options

    def ask(self, model: str, text: str, what: str) -> str:
        """One free-text question to a model (the optimizer), cached like every other call."""
        item = pd.DataFrame({"item_id": [f"optimizer-{content_hash(text)[:16]}"], "input": [text]})
        frame = self.respond(model, None, item, what, max_tokens=self.config.optimizer_max_tokens)
        if frame["response"].isna().all():
            raise OptimizerCallFailed(f"optimizer model {model} failed: {frame['error'].iloc[0]}")
        return str(frame["response"].iloc[0])

    # ---- teacher answers and scores --------------------------------------------------------------
    def prepare_teacher(self, items: pd.DataFrame, *, use_reserve: bool = False) -> None:
        """The answers good outputs are compared with: references, or the baseline model's answers."""
        if self.objective.kind == "reference":
            found = teacher_from_references(items)
        elif self.objective.kind == "tools":
            found = teacher_from_expected_calls(items)
        elif self.objective.kind == "source":
            assert self.config.baseline is not None
            ref = self.copy_prompt(self.config.baseline_prompt).ref if self.config.baseline_prompt else None
            found = teacher_from_responses(self.respond(self.config.baseline, ref, items, "baseline answers",
                                                        use_reserve=use_reserve))
        else:
            return
        self.teacher = pd.concat([self.teacher[~self.teacher.index.isin(found.index)], found])

    def evaluate(self, prompt: PromptVersion, items: pd.DataFrame, what: str, *, use_reserve: bool = False) -> Evaluation:
        responses = self.respond(self.config.target, prompt.ref, items, what, use_reserve=use_reserve)
        if self.objective.kind == "judge":
            scores = self._judge(items, responses, what, use_reserve)
        else:
            scores = metric_scores(self.objective, self.config.metric, items, responses, self.teacher)
        return Evaluation(prompt, scores, responses, int(responses["response"].isna().sum()))

    def _judge(self, items: pd.DataFrame, responses: pd.DataFrame, what: str, use_reserve: bool) -> pd.Series:
        answered = responses[responses["response"].notna()]
        keys = [f"judge:{self.config.judge_criterion}:{k}" for k in answered["cache_key"]]
        self.budget.require(len(self.budget.new_keys(keys)), f"{what} (judge)", use_reserve=use_reserve)
        spec = JudgeSpec(model=self.config.judge, template=self.config.judge_template,
                         options=self._options(str(self.config.judge)))
        adapter = make_adapter(spec.model, spec.options, self.config.base_dir)  # a relative hf/ path: in the project
        started = time.perf_counter()

        def judge(batch: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
            result = judge_pointwise(self.store, spec, batch, frame, self.config.judge_criterion, self.policy,
                                     adapter=adapter)
            self.calls_made += int(result.stats.model_calls or 0)
            self.failed_calls += int(result.stats.errors or 0)
            return result.scores

        try:
            return judge_scores(judge, items, responses)
        finally:
            calls.run_sync(adapter.aclose())
            self.model_s += time.perf_counter() - started
            self.budget.record(dict.fromkeys(keys, None))


class OptimizerCallFailed(Exception):
    """The optimizer model gave no answer after the call layer's retries: rewrites stop there."""
