"""The one configuration object: every parameter of a migration report and its default.

`MigrationConfig` fields are exactly the report notebook's parameters, and the CLI's `score`,
`compare` and `report` build the same object (from `--params FILE`, `-p NAME VALUE` and flags), so
there is one set of defaults and one way runs are selected. Relative paths resolve against
`project_dir` (the parameters file's folder, the current folder for the CLI, or the project root
found upwards from a notebook); `bundled:NAME` names a data file shipped in the package.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, ValidationError, field_validator, model_validator

from workbench.comparison.defaults import DEFAULT_GATE
from workbench.errors import InputError
from workbench.generation.options import problems as model_option_problems
from workbench.models import default_timeout_s, split_name
from workbench.project.doctor import requirement_problems
from workbench.project.lookup import project_root, resolve
from workbench.project.params import ProjectParameters, build, load_params_file  # noqa: F401  (load_params_file: re-exported)
from workbench.secrets import endpoint_problem, redact, redact_url_credentials
from workbench.task.prompts import load_prompt

MAX_TOKENS = 1_000_000  # an answer cap above this is a typo (1e20), not a request any model serves
SEED_MAX = 2 ** 63 - 1  # what the stores' 64-bit integers and numpy's generators take


def check_api_base(url: str | None) -> None:
    """An api_base must be an http(s) URL with a host (a typo must not become a request elsewhere),
    without credentials or a query string (see `secrets.endpoint_problem`)."""
    if url is None:
        return

    problem = endpoint_problem(url, recorded=False)
    if problem:  # the URL is shown only when it carries no credentials (the problem is then its form)
        shown = "" if "credentials" in problem else f" {redact(url)!r}"
        raise InputError(f"parameter 'api_base'{shown} {problem}")


class MigrationConfig(ProjectParameters):
    """Everything a migration report depends on. Unknown fields and wrong types are errors."""

    report_name: str = Field("demo", description="folder name under reports/")
    dataset: str = Field("bundled:support_reviews.jsonl", description="jsonl, csv, parquet or a datasets folder; "
                         "relative to the project, or bundled:NAME for the packaged demo data")
    input_field: str = Field("input", description="the dataset column holding each item's input")
    id_field: str = Field("item_id", description="the column holding item ids (missing: ids from content)")
    reference_field: str = Field("reference", description="the column holding reference answers, if any")
    baseline: str = Field("hf/gemma3-270m", description="the model in production, provider/model")
    baseline_prompt: str | None = Field("support_fewshot@v1", description="its prompt version, name@version "
                                        "(None: send each item's input as is)")
    candidates: list[str] = Field(default_factory=lambda: ["hf/smollm2-135m-instruct"],
                                  description="the models that could replace it")
    candidate_prompts: list[str | None] = Field(default_factory=lambda: ["support_chat@v1"],
                                                description="one prompt version for all candidates, or one each")
    judge: str | None = Field("hf/smollm2-135m-instruct", description="judge model (None: no judge)")
    judge_mode: Literal["pairwise", "pointwise"] = Field("pairwise", description="pairwise (both orders, win rate) "
                                                         "or pointwise (1-5 score per answer, compared as a metric)")
    judge_criterion: str | list[str] = Field("correctness", description="built-in criterion name or a sentence; "
                                             "pointwise: a list for several criteria, each compared as judge:<criterion>")
    judge_template: str = Field("completion-v1", description="chat-v1 for API / instruction-tuned judges, "
                                "completion-v1 for small local ones")
    metrics: list[str] = Field(default_factory=lambda: ["chrf", "rouge_l", "bleu", "semantic_similarity", "length_chars"],
                               description="reference metrics (see workbench.metrics); the tool-call and JSON "
                               "metrics join when the items carry expected_calls, tools or response_format")
    metrics_module: str | None = Field(None, description="your own metrics: a .py file relative to the project, or "
                                       "a dotted module name, that registers them with workbench.register_metric; "
                                       "the CLI and the report's notebook load it, so `metrics` can name them")
    gate: dict[str, Any] = Field(default_factory=dict, description="gate rules inline; empty: gate_file, else the default gate")
    gate_file: str | None = Field(None, description="gate rules as a .toml or .json file (see gate.toml)")
    sample_size: int | None = Field(96, ge=1, description="items to use, stratified by language x task (None: every item)")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="fixes the sample, sampling and bootstrap")
    max_tokens: int = Field(64, ge=1, le=MAX_TOKENS, description="answer length cap")
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature (0: greedy)")
    store: str = Field(".workbench/store.db", description="the store: a SQLite file relative to the project, or "
                       "postgresql://user@host/db for a team's shared store (password from PGPASSWORD)")
    prompts_dir: str = Field("prompts", description="the project's prompt versions (bundled ones are found too)")
    api_base: str | None = Field(None, description="OpenAI-compatible server for litellm/ and openai/ models; "
                                 "env:NAME reads it from that environment variable; no credentials in it "
                                 "(keys come from the environment)")
    model_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="adapter options by model name (replicas behind litellm's Router, "
        "prices, a model's own api_base, hf/ device or batch size), checked by the model's adapter; no keys here: "
        "api_key_env names the environment variable that holds one")
    concurrency: int = Field(4, ge=1, description="calls in flight at once")
    timeout_s: float | None = Field(None, gt=0, allow_inf_nan=False,
                                    description="hard limit per call, seconds; None: by model kind (60 for an "
                                    "API request, 600 for a local model's batch of many rows)")
    lifecycle_file: str | None = Field("bundled:model_lifecycle.toml", description="release and retirement dates")
    bootstrap_resamples: int = Field(1000, ge=100, description="bootstrap resamples for every CI")
    labels_task: str | None = Field(None, description="human labels' task (None: the name the labeler uses)")
    project_dir: str | None = Field(None, description="folder relative paths resolve against (None: the project root)")
    output_dir: str | None = Field(None, description="set by `workbench report`: where verdict.json goes")

    @field_validator("baseline_prompt", "judge", "metrics_module", "gate_file", "api_base", "lifecycle_file", "labels_task",
                     "project_dir", "output_dir", "sample_size", "timeout_s", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """TOML has no null: an empty string (or "none") switches an optional parameter off."""
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value

    @field_validator("candidate_prompts", mode="before")
    @classmethod
    def _empty_prompts_are_none(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [None if isinstance(v, str) and v.strip().lower() in ("", "none", "null") else v for v in value]
        return value

    @model_validator(mode="after")
    def _check(self) -> "MigrationConfig":
        if isinstance(self.judge_criterion, list) and (not self.judge_criterion or (
                self.judge_mode == "pairwise" and len(self.judge_criterion) != 1)):
            raise ValueError("judge_criterion: a pairwise judge takes one criterion; a list of several is for "
                             "judge_mode = \"pointwise\"" if self.judge_criterion else "judge_criterion: empty list")
        if not self.candidates:
            raise ValueError("candidates: give at least one candidate model")
        if len(self.candidate_prompts) not in (1, len(self.candidates)):
            raise ValueError(f"candidate_prompts: give one prompt for all candidates or one per candidate "
                             f"({len(self.candidates)}), got {len(self.candidate_prompts)}")
        return self

    # ---- paths ---------------------------------------------------------------------------------
    @property
    def store_path(self) -> Path | str:
        """The store's location for `workbench.store.open_store`: a path, or a database URL as given."""
        return self.path(self.store)

    @property
    def store_shown(self) -> str:
        """The store's location as a message shows it: a database URL without its password."""
        return redact_url_credentials(str(self.store_path))

    @property
    def prompts_path(self) -> Path:
        return self.path(self.prompts_dir)

    @property
    def endpoint(self) -> str | None:
        """The api_base to call: `env:NAME` is read from the environment (never written anywhere)."""
        if self.api_base and self.api_base.startswith("env:"):
            name = self.api_base[4:]
            value = os.environ.get(name)
            if not value:
                raise InputError(f"parameter 'api_base': environment variable {name} is not set")
            return value
        return self.api_base

    # ---- models --------------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Every model this configuration calls: the baseline, the candidates, the judge."""
        return list(dict.fromkeys([self.baseline, *self.candidates, *([self.judge] if self.judge else [])]))

    def model_spec(self, model: str, prompt: str | None = None) -> Any:
        """The runner's spec of `model`: its own options, the global api_base where it has none,
        relative model paths resolved in the project, and its per-call limit (`timeout_s`, else the
        default of its kind)."""
        from workbench.generation.runner import ModelSpec  # heavy (numpy, pandas): not for --help

        return ModelSpec.with_endpoint(model, prompt, self.endpoint, options=self.model_options.get(model),
                                       base_dir=self.base_dir, timeout_s=self.timeout_s or default_timeout_s(model))

    def load_metrics_module(self) -> list[str]:
        """Register the project's own metrics (`metrics_module`) in this process, once; the names it
        registered. Every path from data to verdict (CLI and notebook kernel) passes `preflight`, which
        calls this first."""
        if not self.metrics_module:
            return []
        from workbench.metrics.user_metrics import load_metrics_module  # heavy (numpy, pandas): not for --help

        return load_metrics_module(self.metrics_module, self.base_dir)

    def prompt_for(self, index: int) -> str | None:
        prompts = self.candidate_prompts
        return prompts[0] if len(prompts) == 1 else prompts[index]

    def arms(self) -> list[tuple[str, str | None]]:
        """(model, prompt version) of the baseline, then of each candidate."""
        return [(self.baseline, self.baseline_prompt)] + [(name, self.prompt_for(i))
                                                          for i, name in enumerate(self.candidates)]

    @property
    def judge_criteria(self) -> list[str]:
        """The judge's criteria as a list (one for a pairwise judge)."""
        return list(self.judge_criterion) if isinstance(self.judge_criterion, list) else [self.judge_criterion]

    def judge_metrics(self) -> list[str]:
        """The metrics a pointwise judge adds to the comparison: judge:<criterion name>, one per criterion."""
        if not self.judge or self.judge_mode != "pointwise":
            return []
        from workbench.judges.criteria import resolve_criteria  # heavy (numpy, pandas): not for --help

        return [f"judge:{c.name}" for c in resolve_criteria(self.judge_criteria)]

    def default_gate(self) -> dict[str, Any]:
        """DEFAULT_GATE for a pairwise judge. A pointwise judge has no win rate and no position
        consistency: its scores are gated like a metric instead (a drop of at most half a point)."""
        if self.judge_mode != "pointwise":
            return DEFAULT_GATE
        gate = {k: v for k, v in DEFAULT_GATE.items() if k not in ("win_rate", "min_position_consistency")}
        judged = {name: {"max_drop": 0.5, "higher_is_better": True} for name in self.judge_metrics()}
        return {**gate, "metrics": {**gate["metrics"], **judged}}

    def gate_source(self) -> str:
        """Where the gate's rules come from, for the report and the manifest."""
        if self.gate:
            return "inline gate of the parameters"
        if self.gate_file:
            return f"gate_file {self.gate_file}"
        return "the default gate" + (" for a pointwise judge" if self.judge_mode == "pointwise" else "")

    def gate_config(self) -> Any:
        from workbench.comparison.gate import GateConfig, load_gate_config  # heavy (numpy, pandas): not for --help

        if not self.gate and self.gate_file:
            return load_gate_config(self.path(self.gate_file))
        try:
            return GateConfig(**(self.gate or self.default_gate()))
        except ValidationError as exc:
            raise InputError([f"parameter '{'.'.join(['gate', *map(str, e['loc'])])}': "
                              f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]) from None

    def preflight(self, requirements: bool = False) -> None:
        """Cheap checks that would otherwise fail deep inside a run: files, model names, prompts,
        a comparison of a model with itself, the gate; with `requirements`, also the packages, models
        and keys the run needs (`workbench.project.doctor`). Every problem at once; nothing is written before
        these pass."""
        self.load_metrics_module()  # first: `metrics` and the gate may name what it registers
        problems: list[str] = []
        try:
            check_api_base(self.endpoint)
        except InputError as exc:
            problems.extend(str(p) for p in exc.problems)
        if not self.path(self.dataset).exists():
            problems.append(f"parameter 'dataset': {self.dataset} not found (looked in {self.base_dir})")
        if self.lifecycle_file and not self.path(self.lifecycle_file).is_file():
            problems.append(f"parameter 'lifecycle_file': {self.lifecycle_file} not found")
        for name in self.models():
            try:
                split_name(name)
            except InputError as exc:
                problems.extend(str(p) for p in exc.problems)
        problems.extend(model_option_problems(self.model_options, self.models()))
        for ref in [self.baseline_prompt, *self.candidate_prompts]:
            if ref:
                try:
                    load_prompt(ref, self.prompts_path)
                except InputError as exc:
                    problems.extend(str(p) for p in exc.problems)
        for i, (name, prompt) in enumerate(self.arms()[1:]):
            if (name, prompt) == (self.baseline, self.baseline_prompt):
                problems.append(f"parameter 'candidates': candidate {name} with prompt {prompt} is the baseline "
                                "itself; compare another model, or the same model with another prompt version")
        if requirements and not any(p.startswith("parameter 'api_base'") for p in problems):
            problems.extend(requirement_problems(self.models(), self.metrics, endpoint=self.endpoint,
                                                 model_options=self.model_options))
        try:
            problems.extend(self.gate_problems())
        except InputError as exc:
            problems.extend(str(p) for p in exc.problems)
        if problems:
            raise InputError(problems)

    def check_gate(self) -> None:
        """Every gate rule must be able to get its evidence from this configuration: a rule that can
        never be evaluated would hold the verdict at INCONCLUSIVE forever, or pass by mistake."""
        problems = self.gate_problems()
        if problems:
            raise InputError(problems)

    def gate_problems(self) -> list[str]:
        """The problems `check_gate` raises (a gate file that cannot be read raises its own)."""
        from workbench.metrics import APP_METRICS, metric_info  # heavy (numpy, pandas): not for --help

        gate = self.gate_config()
        where = "gate_file " + str(self.gate_file) if not self.gate and self.gate_file else "gate"
        problems: list[str] = []
        pairwise = bool(self.judge) and self.judge_mode == "pairwise"
        if gate.win_rate is not None and not pairwise:
            problems.append(f"{where}: rule 'win_rate' needs a pairwise judge (set judge, judge_mode = \"pairwise\") "
                            "or remove the rule")
        if gate.min_position_consistency is not None and not pairwise:
            problems.append(f"{where}: rule 'min_position_consistency' needs a pairwise judge or must be removed")
        directions: dict[str, Any] = {}
        # the tool-call and JSON metrics join the run when the items carry those fields (app_metrics)
        for metric in [*self.metrics, *(m for m in APP_METRICS if m not in self.metrics)]:
            try:  # one at a time: a misspelt metric must not hide the others
                info = metric_info([metric])
                directions.update(zip(info["metric"], info["higher_is_better"]))
            except InputError as exc:
                problems.extend(f"parameter 'metrics': {p}" for p in exc.problems)
        try:
            directions.update({name: True for name in self.judge_metrics()})
        except InputError as exc:
            problems.extend(f"parameter 'judge_criterion': {p}" for p in exc.problems)
        for name, rule in gate.metrics.items():
            if name not in directions:
                computed = [m for m in directions if m not in APP_METRICS or m in self.metrics]
                problems.append(f"{where}: rule 'metrics.{name}' needs metric '{name}', which is not computed "
                                f"(metrics: {', '.join(computed) or 'none'})")
            elif directions[name] is None or directions[name] != directions[name]:
                problems.append(f"{where}: rule 'metrics.{name}': '{name}' has no better direction (descriptive "
                                "only), so no drop can be gated")
            elif bool(directions[name]) != rule.higher_is_better:
                problems.append(f"{where}: rule 'metrics.{name}': higher_is_better = {str(rule.higher_is_better).lower()}"
                                f" contradicts the metric (higher is {'better' if directions[name] else 'worse'})")
        return problems


def build_config(params_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                 base: str | Path | None = None) -> MigrationConfig:
    """Defaults, then the parameters file, then overrides (`-p` and flags); see `params.build`."""
    return build(MigrationConfig, params_file, overrides, base)


def notebook_config(namespace: Mapping[str, Any]) -> MigrationConfig:
    """The config of a notebook's parameters cell. Run by `workbench report` (papermill sets
    project_dir) the cell is the whole config. Opened in JupyterLab, the notebook reads the project's
    params.toml (found upwards from the notebook's folder), and parameters edited in the cell (those
    that differ from the defaults) win over the file."""
    values = {name: namespace[name] for name in MigrationConfig.model_fields if name in namespace}
    if values.get("project_dir"):
        return MigrationConfig.from_parameters(values)
    root = project_root()
    defaults = MigrationConfig().model_dump(mode="json")
    edited = {name: value for name, value in values.items() if value != defaults.get(name)}
    params_file = root / "params.toml"
    return build_config(params_file if params_file.is_file() else None, edited, base=root)


def project_config(params_file: str = "params.toml", overrides: Mapping[str, Any] | None = None) -> MigrationConfig:
    """The config the explorer and labeler notebooks use: the project's parameters file (relative to
    the project root found upwards from the notebook), with `overrides` on top, so they select the
    same runs as `workbench report --params params.toml`. Without the file: the defaults (the demo)."""
    root = project_root()
    path = resolve(params_file, root) if params_file else None
    if path is not None and not path.is_file():
        if params_file != "params.toml":
            raise InputError(f"{path}: parameters file not found")
        path = None
    return build_config(path, dict(overrides or {}), base=root)
