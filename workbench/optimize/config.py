"""The optimizer's one configuration object: every parameter of `workbench optimize` and of the
optimize_prompt notebook, with its default (the bundled demo: re-tune SmolLM2's chat prompt).

The fields that also exist in `MigrationConfig` mean the same and default the same (sampling,
store, prompts, endpoint), so the responses the optimizer caches are the ones a later report asks
for: a re-tuned prompt's report costs no call on the items the optimizer already scored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, field_validator, model_validator

from workbench.hashing import content_hash
from workbench.project.lookup import is_database_url, project_root
from workbench.project.params import ProjectParameters, build
from workbench.task.config import MigrationConfig

Move = Literal["fewshot", "instructions"]
MIN_SPLIT_ITEMS = 5  # fewer items per split make a CI, and a held-out check, meaningless

# Fields that never change what the run finds (how fast calls go, where the result is written):
# left out of the run id, so changing them resumes the same run.
_NOT_IN_RUN_ID = ("concurrency", "timeout_s", "project_dir", "store", "output_prompt", "max_wall_s",
                  "model_options")


class OptimizeConfig(ProjectParameters):
    """Everything an optimisation depends on. Unknown fields and wrong types are errors."""


    dataset: str = Field("bundled:support_reviews.jsonl", description="items: jsonl, csv, parquet or a datasets folder")
    target: str = Field("hf/smollm2-135m-instruct", description="the model whose prompt is re-tuned")
    start_prompt: str = Field("support_chat@v1", description="the prompt version it starts from, name@version")
    objective: Literal["reference", "source", "judge", "tools"] = Field(
        "reference", description="reference: metric vs the items' references; source: metric vs the baseline "
        "model's own outputs (no references needed); judge: pointwise judge score; tools: a tool-call metric "
        "against the items' expected calls (demonstrations then show the expected calls)")
    metric: str = Field("chrf", description="the metric of the reference and source objectives (tools: a tool-call "
                        "metric such as tool_call_accuracy)")
    baseline: str | None = Field("hf/gemma3-270m", description="source mode: the model being replaced")
    baseline_prompt: str | None = Field("support_fewshot@v1", description="its prompt version")
    judge: str | None = Field(None, description="judge mode: the judge model")
    judge_criterion: str = Field("correctness", description="judge mode: built-in criterion name or a sentence")
    judge_template: str = Field("chat-v1", description="judge mode: chat-v1 or completion-v1")
    dev_size: int = Field(32, ge=1, description="items the search is scored on")
    test_size: int = Field(32, ge=1, description="held-out items that confirm the best dev prompt")
    split_seed: int = Field(0, description="fixes the dev/test split")
    strata: list[str] = Field(default_factory=lambda: ["language", "task"],
                              description="slice columns the split is stratified by (and demonstrations matched on)")
    split_column: str | None = Field(None, description="a column whose values 'dev'/'test' give the split instead")
    moves: list[Move] = Field(default_factory=lambda: ["fewshot", "instructions"],
                              description="fewshot: demonstrations from dev; instructions: rewrites by optimizer_model")
    optimizer_model: str | None = Field(None, description="proposes instruction rewrites (None: no rewrites)")
    max_demos: int = Field(2, ge=1, description="demonstrations per slice, at most")
    fewshot_candidates: int = Field(4, ge=1, description="demonstration sets tried")
    minibatch_size: int = Field(3, ge=1, description="dev items the optimizer model reflects on per rewrite")
    max_calls: int = Field(400, description="budget: distinct model calls (target, baseline, judge, optimizer), "
                           "test confirmation included; calls answered by the store count too, so a resumed run "
                           "ends where an uninterrupted one would")
    max_cost_usd: float | None = Field(None, description="budget: known cost of those calls, USD")
    max_wall_s: float | None = Field(None, description="budget: seconds of this invocation")
    output_prompt: str | None = Field(None, description="name@version of the result (None: <start>-opt-<run id>)")
    save_unconfirmed: bool = Field(False, description="also save a result the test split did not confirm "
                                   "(overfitting, unconfirmed), marked as such, for inspection; never a win")
    max_tokens: int = Field(64, ge=1, description="answer length cap (as in the report, for shared cache hits)")
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature")
    seed: int = Field(0, description="sampling seed and the search's random choices")
    optimizer_max_tokens: int = Field(400, ge=1, description="length cap of the optimizer model's proposals")
    bootstrap_resamples: int = Field(1000, ge=100, description="bootstrap resamples for every CI")
    store: str = Field(".workbench/store.db", description="the SQLite store, relative to the project, or a "
                       "postgresql:// URL of a team's shared store (password from PGPASSWORD)")
    prompts_dir: str = Field("prompts", description="the project's prompt versions; the result is written here")
    api_base: str | None = Field(None, description="OpenAI-compatible server for litellm/ and openai/ models")
    model_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="adapter options by model name, e.g. prices for the cost budget: "
        '{"openai/m": {"input_cost_per_token": 1e-6, "output_cost_per_token": 4e-6}} (not part of cache keys)')
    concurrency: int = Field(4, ge=1, description="calls in flight at once")
    timeout_s: float = Field(300.0, gt=0, allow_inf_nan=False, description="hard limit per call, seconds")
    project_dir: str | None = Field(None, description="folder relative paths resolve against (None: the project root)")

    @field_validator("baseline", "baseline_prompt", "judge", "split_column", "optimizer_model", "output_prompt",
                     "api_base", "project_dir", "max_cost_usd", "max_wall_s", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value

    @model_validator(mode="after")
    def _check(self) -> "OptimizeConfig":
        problems = []
        if self.max_calls < 1:
            problems.append(f"max_calls: a budget of {self.max_calls} calls allows no call; give at least 1")
        for name in ("max_cost_usd", "max_wall_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                problems.append(f"{name}: a budget of {value} allows no call; give more than 0 (or none)")
        if not self.moves:
            problems.append("moves: give at least one of 'fewshot', 'instructions'")
        if self.objective == "source" and not self.baseline:
            problems.append("objective 'source' needs baseline (the model whose outputs the target should match)")
        if self.objective == "judge" and not self.judge:
            problems.append("objective 'judge' needs judge (a judge model)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ---- paths and identities ------------------------------------------------------------------
    @property
    def store_path(self) -> Path | str:
        """The store's location for `workbench.store.open_store`: a path, or a database URL as given."""
        return self.path(self.store)

    def scratch_dir(self, run_id: str) -> Path:
        """Where a run's trial prompt files go: beside a SQLite store, in the project for a server store."""
        base = self.base_dir / ".workbench" if is_database_url(self.store) else Path(self.store_path).parent
        return base / "optimize" / run_id / "prompts"

    @property
    def prompts_path(self) -> Path:
        return self.path(self.prompts_dir)

    def run_id(self, fingerprints: Mapping[str, str]) -> str:
        """Hash of the settings that decide the result, plus the content of the data and prompts
        (`fingerprints`): the same command on the same inputs resumes the same run."""
        settings = self.model_dump(mode="json", exclude=set(_NOT_IN_RUN_ID))
        return content_hash({"settings": settings, "inputs": dict(fingerprints)})[:12]

    def migration_config(self, candidate_prompt: str | None = None, prompts_dir: str | Path | None = None) -> MigrationConfig:
        """The report configuration of this migration (baseline vs the target with `candidate_prompt`):
        its sampling, call policy and endpoints are the ones every optimizer call uses."""
        baseline, baseline_prompt = ((self.baseline, self.baseline_prompt) if self.baseline
                                     else (self.target, self.start_prompt))
        return MigrationConfig(
            dataset=self.dataset, baseline=baseline, baseline_prompt=baseline_prompt, candidates=[self.target],
            candidate_prompts=[candidate_prompt or self.start_prompt], judge=None, metrics=[self.metric],
            seed=self.seed, max_tokens=self.max_tokens, temperature=self.temperature, store=self.store,
            prompts_dir=str(prompts_dir or self.prompts_dir), api_base=self.api_base, concurrency=self.concurrency,
            timeout_s=self.timeout_s, bootstrap_resamples=self.bootstrap_resamples,
            project_dir=str(self.base_dir))


def build_optimize_config(params_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                          base: str | Path | None = None) -> OptimizeConfig:
    """Defaults, then the parameters file, then overrides; see `params.build`."""
    return build(OptimizeConfig, params_file, overrides, base)


def notebook_optimize_config(namespace: Mapping[str, Any]) -> OptimizeConfig:
    """The config of the optimize notebook's parameters cell (papermill sets project_dir; opened by
    hand, relative paths resolve against the project root found upwards)."""
    values = {name: namespace[name] for name in OptimizeConfig.model_fields if name in namespace}
    if not values.get("project_dir"):
        values["project_dir"] = str(project_root())
    return OptimizeConfig.from_parameters(values)
