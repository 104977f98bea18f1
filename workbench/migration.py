"""The migration pipeline behind the report: generate -> score -> judge -> compare -> gate.

`MigrationConfig` fields are exactly the report notebook's parameters, so a papermill run, the CLI
and a user in JupyterLab configure the same object. Each step is a function taking DataFrames, so
the notebook can show every intermediate result.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]


class MigrationConfig(BaseModel):
    """Everything a migration report depends on. Unknown fields and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_name: str = "demo"
    dataset: str = "data/support_reviews.jsonl"
    baseline: str = "hf/gemma3-270m"
    baseline_prompt: str | None = "support_fewshot@v1"
    candidates: list[str] = Field(default_factory=lambda: ["hf/smollm2-135m-instruct"])
    candidate_prompts: list[str | None] = Field(default_factory=lambda: ["support_chat@v1"])
    judge: str | None = "hf/smollm2-135m-instruct"
    judge_criterion: str = "correctness"
    judge_template: str = "completion-v1"  # chat-v1 for API / instruction-tuned judges
    metrics: list[str] = Field(default_factory=lambda: ["chrf", "rouge_l", "bleu", "semantic_similarity", "length_chars"])
    gate: dict[str, Any] = Field(default_factory=dict)
    sample_size: int | None = 96  # stratified by language x task; None = every item
    seed: int = 0
    max_tokens: int = 64
    temperature: float = 0.0
    store: str = ".workbench/store.db"
    api_base: str | None = None
    concurrency: int = 4
    timeout_s: float = 300.0
    lifecycle_file: str | None = "data/model_lifecycle.toml"
    bootstrap_resamples: int = 1000
    labels_task: str | None = None
    output_dir: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "MigrationConfig":
        if not self.candidates:
            raise ValueError("candidates: give at least one candidate model")
        if len(self.candidate_prompts) not in (1, len(self.candidates)):
            raise ValueError(f"candidate_prompts: give one prompt for all candidates or one per candidate "
                             f"({len(self.candidates)}), got {len(self.candidate_prompts)}")
        if self.sample_size is not None and self.sample_size < 1:
            raise ValueError("sample_size must be >= 1 (or null for every item)")
        return self

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> "MigrationConfig":
        """Build from notebook parameters, naming the parameter and the problem on bad input."""
        try:
            return cls(**params)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                name = ".".join(str(p) for p in err["loc"]) or "parameters"
                given = err.get("input")
                problems.append(f"parameter '{name}': {err['msg']} (got {given!r})" if err["loc"] else err["msg"])
            raise InputError(problems) from None

    def preflight(self) -> None:
        """Cheap checks that would otherwise fail deep inside the notebook: files, model names, prompts."""
        from workbench.models import split_name
        from workbench.prompts import load_prompt

        problems = []
        if not self.path(self.dataset).exists():
            problems.append(f"parameter 'dataset': {self.dataset} not found")
        for name in [self.baseline, *self.candidates, *([self.judge] if self.judge else [])]:
            try:
                split_name(name)
            except InputError as exc:
                problems.extend(str(p) for p in exc.problems)
        for ref in [self.baseline_prompt, *self.candidate_prompts]:
            if ref:
                try:
                    load_prompt(ref)
                except InputError as exc:
                    problems.extend(str(p) for p in exc.problems)
        if problems:
            raise InputError(problems)

    def path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else REPO_ROOT / path

    def prompt_for(self, index: int) -> str | None:
        prompts = self.candidate_prompts
        return prompts[0] if len(prompts) == 1 else prompts[index]



def sample_items(items: pd.DataFrame, size: int | None, seed: int, strata: tuple[str, ...] = ("language", "task")) -> pd.DataFrame:
    """A stratified, seeded sample that keeps every language/task represented, in file order."""
    if size is None or size >= len(items):
        return items
    keys = [c for c in strata if c in items.columns]
    rng = np.random.default_rng(seed)
    if not keys:
        chosen = np.sort(rng.choice(len(items), size=size, replace=False))
        return items.iloc[chosen].copy()
    groups = list(items.groupby(keys, sort=True).indices.values())
    quota = np.full(len(groups), size // len(groups))
    quota[: size - quota.sum()] += 1
    picked: list[int] = []
    for group, want in zip(groups, quota):
        picked.extend(rng.choice(group, size=min(want, len(group)), replace=False).tolist())
    short = size - len(picked)
    if short > 0:
        rest = np.setdiff1d(np.arange(len(items)), picked)
        picked.extend(rng.choice(rest, size=short, replace=False).tolist())
    sampled = items.iloc[sorted(picked)].copy()
    sampled.attrs = dict(items.attrs)
    return sampled


def today() -> dt.date:
    return dt.date.today()


DEFAULT_GATE: dict[str, Any] = {
    "min_items": 30,
    "win_rate": {"noninferiority_margin": 0.10},
    "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True},
                "semantic_similarity": {"max_drop": 0.05, "higher_is_better": True}},
    "max_error_rate": 0.05,
    "min_position_consistency": 0.60,
}


@dataclass
class MigrationResult:
    config: MigrationConfig
    items: pd.DataFrame
    responses: pd.DataFrame
    scores: pd.DataFrame
    judgments: dict[str, Any]
    comparisons: dict[str, Any]
    lifecycle: list[Any]
    run_stats: Any
    judge_calls: int
    wall_s: float
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return bool(self.responses["response"].notna().all())

    @property
    def verdict(self) -> str:
        """The best candidate's verdict: the question is whether *a* candidate can replace the baseline."""
        order = {"PASS": 0, "INCONCLUSIVE": 1, "FAIL": 2}
        verdicts = [c.gate.verdict for c in self.comparisons.values() if c.gate is not None]
        return min(verdicts, key=order.__getitem__) if verdicts else "INCONCLUSIVE"

    def verdict_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "complete": self.complete,
            "report_name": self.config.report_name,
            "baseline": self.config.baseline,
            "candidates": {name: {"verdict": c.gate.verdict if c.gate else None,
                                  "rules": c.gate.to_dict()["rules"] if c.gate else [],
                                  "n_paired": c.n_paired,
                                  "metric_deltas": c.to_dict()["metric_deltas"],
                                  "win_rates": c.to_dict()["win_rates"],
                                  "judge_reliability": c.to_dict()["judge_reliability"],
                                  "ratios": c.to_dict()["ratios"],
                                  "errors": int(len(c.errors))}
                           for name, c in self.comparisons.items()},
        }


def model_specs(config: MigrationConfig) -> list[Any]:
    from workbench.runner import ModelSpec

    return [ModelSpec.with_endpoint(config.baseline, config.baseline_prompt, config.api_base)] + [
        ModelSpec.with_endpoint(name, config.prompt_for(i), config.api_base) for i, name in enumerate(config.candidates)]


def gate_config(config: MigrationConfig) -> Any:
    from workbench.gate import GateConfig

    try:
        return GateConfig(**(config.gate or DEFAULT_GATE))
    except ValidationError as exc:
        raise InputError([f"parameter 'gate.{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()]) from None


HUMAN_SCORE = {"A": 0.0, "B": 1.0, "tie": 0.5, "both_bad": 0.5}  # model_b = candidate; "both bad" prefers neither


def human_scores(store: Any, task: str, baseline: str, candidate: str) -> pd.DataFrame | None:
    """Human pair labels as candidate-side scores per item (mean over raters), when any exist."""
    from workbench import labels as labels_mod

    log = store.frame("SELECT * FROM labels WHERE task = ?", (task,))
    if log.empty:
        return None
    export = labels_mod.export_frame(labels_mod.fold(log), baseline, candidate)
    export = export.assign(score=export["choice"].map(HUMAN_SCORE)).dropna(subset=["score"])
    return export.groupby("item_id", as_index=False)["score"].mean() if len(export) else None


def run_migration(config: MigrationConfig, progress: bool = False) -> MigrationResult:
    """generate -> score -> judge -> compare -> gate, all cached in the store."""
    import time

    from workbench.calls import CallPolicy
    from workbench.compare import compare
    from workbench.data import dataset_id, load_items
    from workbench.lifecycle import lookup
    from workbench.metrics import score_responses
    from workbench.models import Sampling
    from workbench.runner import generate
    from workbench.store import Store

    started = time.perf_counter()
    items = sample_items(load_items(config.path(config.dataset)), config.sample_size, config.seed)
    gate = gate_config(config)
    specs = model_specs(config)
    policy = CallPolicy(concurrency=config.concurrency, timeout_s=config.timeout_s)
    sampling = Sampling(temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed)
    with Store(config.path(config.store)) as store:
        responses, run_stats = generate(items, specs, store, sampling=sampling, policy=policy, progress=progress)
        scores = score_responses(items, responses, config.metrics)
        baseline_resp = responses[responses["model"] == config.baseline]
        judgments, comparisons, judge_calls = {}, {}, 0
        for name in config.candidates:
            candidate_resp = responses[responses["model"] == name]
            verdicts = None
            if config.judge:
                from workbench.judges import JudgeSpec, judge_pairwise

                result = judge_pairwise(store, JudgeSpec(model=config.judge, template=config.judge_template), items,
                                        baseline_resp, candidate_resp,
                                        config.judge_criterion, policy)
                judgments[name] = result
                verdicts = result.verdicts
                judge_calls += int(getattr(result.stats, "model_calls", 0) or 0)
            task = config.labels_task or f"{config.baseline} vs {name}"
            human = human_scores(store, task, config.baseline, name)
            comparisons[name] = compare(items, baseline_resp, candidate_resp, scores=scores, verdicts=verdicts,
                                        human=human, gate=gate, n_resamples=config.bootstrap_resamples, seed=config.seed)
        lifecycle = lookup([config.baseline, *config.candidates],
                           config.path(config.lifecycle_file) if config.lifecycle_file else None)
        result = MigrationResult(config, items, responses, scores, judgments, comparisons, lifecycle, run_stats,
                                 judge_calls, time.perf_counter() - started)
        result.manifest = build_manifest(result, store, dataset_id(items))
    return result


def build_manifest(result: MigrationResult, store: Any, data_id: str) -> dict[str, Any]:
    from workbench.hashing import content_hash
    from workbench.manifest import environment, git_state
    from workbench.prompts import load_prompt

    config = result.config
    runs = {}
    for name, info in result.run_stats.per_model.items():
        row = store.execute("SELECT spec_json, prompt_ref FROM runs WHERE run_id=?", (info["run_id"],)).fetchone()
        spec = json.loads(row[0])
        prompt = load_prompt(row[1]) if row[1] else None
        versions = result.responses.loc[result.responses["model"] == name, "model_version"].dropna().unique().tolist()
        runs[name] = {"identity": spec["adapter"], "resolved_versions": versions, "run_id": info["run_id"],
                      "prompt": row[1], "prompt_digest": prompt.digest if prompt else None,
                      "calls_made": info["calls_made"], "cached": info["cached"], "errors": info["errors"]}
    costs = result.responses["cost_usd"]
    return {
        "report_name": config.report_name,
        "config_hash": content_hash(config.model_dump(mode="json", exclude={"output_dir"})),
        "config": config.model_dump(mode="json", exclude={"output_dir"}),
        "dataset": {"path": config.dataset, "dataset_id": data_id, "items": int(len(result.items))},
        "models": runs,
        "judge": {"model": config.judge, "criterion": config.judge_criterion,
                  "calls_made": result.judge_calls} if config.judge else None,
        "calls": {"made": result.run_stats.calls_made + result.judge_calls, "cached": result.run_stats.cached,
                  "generation_made": result.run_stats.calls_made, "judge_made": result.judge_calls},
        "total_cost_usd": float(costs.sum()) if costs.notna().all() and len(costs) else None,
        "pipeline_wall_s": round(result.wall_s, 2),
        "git": git_state(REPO_ROOT),
        "environment": environment(),
        "store": str(config.path(config.store)),
    }
