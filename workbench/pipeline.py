"""The one path from data to verdict: select items -> responses -> scores -> judge -> compare -> gate.

`workbench score`, `workbench compare`, the report notebook, the labeler and the explorer all call
`run_pipeline` (or its first steps) with a `MigrationConfig`, so they select the same runs (dataset,
model, prompt version) and reach the same numbers. With `allow_calls=False` nothing is generated:
every response must already be in the store (an error lists what is missing), which is how the CLI
compares a warm store without surprising anyone with a bill.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from workbench import __version__, forked, memory, stats
from workbench import labels as labels_mod
from workbench.comparison.compare import (
    AnswerEvidence,
    answer_evidence,
    compact_behaviour,
    compact_items,
    compact_responses,
    compare,
    concat_columns,
    describe_metrics,
    rate_scale,
    split_rows,
    statistics_columns,
)
from workbench.comparison.defaults import CONFIDENCE
from workbench.comparison.gate import Retirement, unreachable_rules
from workbench.errors import EvidenceError, InputError, Problem
from workbench.generation.calls import CallPolicy, run_sync
from workbench.generation.runner import RunStats, arm_names, generate, not_stored_error, preflight, stored_responses
from workbench.hashing import content_hash, json_safe
from workbench.items.codes import ItemCodes
from workbench.items.display import answer_text, task_text
from workbench.judges import JudgeSpec, candidate_score, judge_pairwise, judge_pointwise
from workbench.metrics import score_responses, with_app_metrics
from workbench.metrics.base import warn_unscored
from workbench.metrics.score_cache import cache_enabled, forget_answers
from workbench.metrics.user_metrics import module_record
from workbench.models import Sampling, make_adapter, preload
from workbench.models.lifecycle import lookup, today
from workbench.progress import PhaseReporter
from workbench.project.environment import environment, git_state
from workbench.secrets import redact_config, redact_url_credentials
from workbench import store as stores
from workbench.store.base import latest_common_runs
from workbench.task.config import MigrationConfig, notebook_config
from workbench.task.dataset import dataset_id, load_items
from workbench.task.prompts import load_prompt
from workbench.values import is_missing

CALLS_MADE_ENV = "WORKBENCH_CALLS_MADE"  # set by `workbench report` for its kernel: every call is made
RESULT_ENV = "WORKBENCH_REPORT_RESULT"  # set by `workbench report` for its kernel: the result it computed
CHUNK_ENV = "WORKBENCH_CHUNK_ITEMS"  # items per chunk of a read in chunks (`chunk_items`)
DEFAULT_CHUNK_ITEMS = 2500
# items each process of a read in chunks must get before a forked reader starts (`forked.worker_count`):
# 10k items on 2 processes ran 1.2x slower than on one in chunks of 5,000, and 0.2 s faster in chunks of
# 2,500 for 32 MiB more; from 20k items on, the child saves a quarter of the time and more
MIN_ITEMS_EACH = 10_000


def calls_already_made() -> bool:
    """True inside a notebook that `workbench report` runs after making every call itself: the
    notebook then only reads the store (a call that failed there is reported, not paid again)."""
    return os.environ.get(CALLS_MADE_ENV) == "1"


def notebook_result(namespace: dict[str, Any]) -> "MigrationResult":
    """The report notebook's result. Run by `workbench report`: the result it computed, handed over in
    a file (`report.command.handed_over`), so the kernel loads, renders and scores nothing again.
    Opened on its own: the pipeline on the notebook's parameters (`notebook_config`)."""
    handed = os.environ.get(RESULT_ENV)
    if handed:
        with open(handed, "rb") as handle:
            return pickle.load(handle)
    return run_pipeline(notebook_config(namespace), allow_calls=not calls_already_made())


@dataclass
class MigrationResult:
    config: MigrationConfig
    items: pd.DataFrame
    responses: pd.DataFrame  # `model` holds the arm label (see arm_labels); compact (no texts) when read in chunks
    scores: pd.DataFrame
    judgments: dict[str, Any]
    comparisons: dict[str, Any]
    lifecycle: list[Any]
    run_stats: Any
    judge_calls: int
    wall_s: float
    ranking: pd.DataFrame | None = None  # Bradley–Terry over the judge's verdicts, 2+ candidates
    labels: dict[str, pd.DataFrame] = field(default_factory=dict)  # candidate -> human label export
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        return arm_labels(self.config)[0]

    @property
    def candidates(self) -> list[str]:
        return arm_labels(self.config)[1:]

    @property
    def complete(self) -> bool:
        return bool(compact_responses(self.responses)["answered"].all())

    @property
    def verdict(self) -> str:
        """The best candidate's verdict: the question is whether *a* candidate can replace the baseline."""
        order = {"PASS": 0, "INCONCLUSIVE": 1, "FAIL": 2}
        verdicts = [c.gate.verdict for c in self.comparisons.values() if c.gate is not None]
        return min(verdicts, key=order.__getitem__) if verdicts else "INCONCLUSIVE"

    def verdict_json(self) -> dict[str, Any]:
        candidates = {}
        for name, c in self.comparisons.items():
            data = c.to_dict()
            candidates[name] = {"verdict": c.gate.verdict if c.gate else None,
                                "rules": c.gate.to_dict()["rules"] if c.gate else [], "n_paired": c.n_paired,
                                **{k: data[k] for k in ("metric_deltas", "win_rates", "judge_reliability", "ratios",
                                                         "binary_checks")},
                                "errors": int(len(c.errors)),
                                **({"tool_errors": data["tool_errors"]} if data["tool_errors"] else {})}
        return {"verdict": self.verdict, "complete": self.complete, "report_name": self.config.report_name,
                "baseline": self.baseline, "confidence": CONFIDENCE, "candidates": candidates,
                "gate": gate_record(self.config), "lifecycle": lifecycle_record(self.lifecycle),
                "ranking": json_safe(self.ranking.reset_index().to_dict(orient="records"))
                if self.ranking is not None else None}


def gate_record(config: MigrationConfig) -> dict[str, Any]:
    """The effective gate: where its rules came from and the rules themselves (after --gate, the
    parameters and the defaults), as verdict.json and the manifest record it."""
    return {"source": config.gate_source(),
            "rules": config.gate_config().model_dump(mode="json", exclude_none=True, exclude_defaults=False)}


def lifecycle_record(lifecycle: list[Any]) -> dict[str, Any]:
    """model -> retirement date and days left (None: no date known), as of today."""
    now = today()
    return {e.model: {"retires": e.retires.isoformat() if e.retires else None, "days_left": e.days_left(now),
                      "status": e.status(now), "source": e.source} for e in lifecycle}


def warn_out_of_reach(config: MigrationConfig, items: pd.DataFrame) -> None:
    """On stderr, before the first call: rules this sample cannot pass (the report's notes repeat them)."""
    for line in gate_out_of_reach(config, items):
        print(f"warning: gate rule out of reach: {line}", file=sys.stderr)


def gate_out_of_reach(config: MigrationConfig, items: pd.DataFrame) -> list[str]:
    """The gate's rules that cannot pass on these items even if nothing regressed, each with the
    number of items it needs (`gate.unreachable_rules`); said before any model call."""
    gate = config.gate_config()
    info = describe_metrics([m for m in gate.metrics if m in set(config.metrics) | set(config.judge_metrics())])
    scales = {row["metric"]: rate_scale(row) for row in info.to_dict(orient="records")}
    return unreachable_rules(gate, len(items), value_ranges={k: v for k, v in scales.items() if v is not None})


def retirement(entry: Any) -> Any:
    """The gate's view of one model's lifecycle entry: days left as of today."""
    return Retirement(entry.model, entry.days_left(today()), entry.retires.isoformat() if entry.retires else None,
                      "litellm model map and lifecycle_file" if entry.source == "unknown" else entry.source)


def arm_labels(config: MigrationConfig) -> list[str]:
    """The baseline's then each candidate's name in frames, tables and label tasks."""
    return arm_names(config.arms())


def labels_task(config: MigrationConfig, candidate_index: int) -> str:
    """The labeling task of one comparison; the labeler and the report both use this name."""
    if config.labels_task:
        return config.labels_task
    labels = arm_labels(config)
    return f"{labels[0]} vs {labels[candidate_index + 1]}"


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


def select_items(config: MigrationConfig) -> pd.DataFrame:
    """The configuration's items: its seeded, stratified sample."""
    return _selected(config)[0]


def _selected(config: MigrationConfig) -> tuple[pd.DataFrame, int]:
    """(the sample, how many items the file holds), from one read of the dataset."""
    items = load_items(config.path(config.dataset), id_field=config.id_field, input_field=config.input_field,
                       reference_field=config.reference_field)
    return sample_items(items, config.sample_size, config.seed), len(items)


def arm_rows(responses: pd.DataFrame, label: str) -> pd.DataFrame:
    """One arm's answers: a slice of the frame where its rows lie together, as every path gathers them
    (a view: no copy of 100,000 answers), else the rows a mask picks."""
    where = np.flatnonzero((responses["model"] == label).to_numpy())
    if len(where) and where[-1] - where[0] + 1 == len(where):
        return responses.iloc[where[0]:where[-1] + 1]
    return responses.iloc[where]


def model_specs(config: MigrationConfig) -> list[Any]:
    return [config.model_spec(model, prompt) for model, prompt in config.arms()]


def call_policy(config: MigrationConfig, model: Any | None = None) -> Any:
    """The call policy of `model` (a ModelSpec, whose per-call limit wins: `ModelSpec.policy`) or the
    run's default (`timeout_s`, else the policy's own), at the configuration's concurrency."""
    policy = CallPolicy(concurrency=config.concurrency)
    if config.timeout_s:
        policy = policy.with_timeout(config.timeout_s)
    return policy if model is None else model.policy(policy)


def sampling(config: MigrationConfig) -> Any:
    return Sampling(temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed)


def check_requests(config: MigrationConfig, items: pd.DataFrame, specs: list[Any] | None = None,
                   samples: int = 1) -> list[Any]:
    """Every model builds and every item renders with its prompt, before the store is opened; the
    rendered requests (`runner.preflight`) are handed on to generation, never rendered again."""
    return preflight(items, model_specs(config) if specs is None else specs, sampling=sampling(config),
                     samples=samples, prompts_dir=config.prompts_path)


@dataclass
class Plan:
    """The first steps of every path, done once: the checked configuration, its items (the seeded,
    stratified sample) and every request rendered (one list per prompt) with its adapter."""

    config: MigrationConfig
    items: pd.DataFrame
    requests: list[Any]  # what `runner.preflight` returns: (spec, arm, adapter, planned calls) per arm
    available: int  # items in the dataset file (more than `items` when sampled)


def plan_run(config: MigrationConfig, *, requirements: bool = False, specs: list[Any] | None = None,
             samples: int = 1, calls: bool = False, render: bool = True) -> Plan:
    """Check the configuration (with `requirements`, the packages, models and keys too: one check,
    every problem at once), select its items and render every request, before the store is opened.
    `specs`: other arms than the configuration's (`workbench generate --model`), same defaults. With
    `calls` (models will be called), litellm's seconds of import begin now, beside reading and rendering.
    `render=False`: the requests are left to a read in chunks (`read_in_chunks`), which renders each
    chunk when it reads it (`Plan.requests` is empty)."""
    config.preflight(requirements=requirements)
    if calls:
        preload.start([spec.name for spec in specs] if specs is not None else config.models())
    items, available = _selected(config)
    return Plan(config, items, check_requests(config, items, specs, samples) if render else [], available)


@dataclass
class Evidence:
    """What the model calls gave (made now or read from the store): the first half of `run_pipeline`,
    with the store still open for the second (labels, the label queue)."""

    plan: Plan
    store: Any
    responses: pd.DataFrame
    run_stats: Any
    judgments: dict[str, Any]
    judge_calls: int

    def calls(self) -> dict[str, int]:
        """Model calls made (generation, judge) and generations served from the store."""
        return {"made": self.run_stats.calls_made + self.judge_calls, "cached": self.run_stats.cached,
                "generation_made": self.run_stats.calls_made, "judge_made": self.judge_calls}


@contextmanager
def gathered(plan: Plan, *, allow_calls: bool, progress: PhaseReporter | None = None,
             judge: bool = True) -> Iterator[Evidence]:
    """Open the store once and collect every response, then the judge's verdicts (`judge=False`:
    responses only); the store stays open while the caller reads the evidence."""
    config = plan.config
    with open_store(config, allow_calls, write_scores=cache_enabled()) as store:  # scores are kept where it may write
        responses, run_stats = collect_responses(config, plan.items, store, allow_calls=allow_calls,
                                                 progress=progress, prepared=plan.requests)
        require_answers(responses, run_stats)
        judgments, judge_calls = {}, 0
        if judge:
            judgments, judge_calls = judge_responses(config, plan.items, responses, store, progress=progress,
                                                     allow_calls=allow_calls)
            require_verdicts(config, judgments)
        yield Evidence(plan, store, responses, run_stats, judgments, judge_calls)


def open_store(config: MigrationConfig, allow_calls: bool, write_scores: bool = False) -> Any:
    """The store; a read-only step never creates one (a typo in a path must not make an empty store)
    and opens it read-only (it reads a store in a folder it cannot write). With `write_scores` it
    opens a store it may write for writing, to keep the scores it computes (no model call is made
    either way); a SQLite file it may not write is still opened read-only."""
    writable = allow_calls or (write_scores and (stores.is_database_url(str(config.store_path))
                                                 or _may_write(config.store_path)))
    return stores.open_store(config.store_path, create=allow_calls, read_only=not writable)


def _may_write(path: Any) -> bool:
    """The SQLite file and its folder (where the WAL and shared-memory files go) are writable."""
    path = Path(path)
    return path.is_file() and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def collect_responses(config: MigrationConfig, items: pd.DataFrame, store: Any, *, allow_calls: bool,
                      progress: PhaseReporter | None = None, prepared: list[Any] | None = None
                      ) -> tuple[pd.DataFrame, Any]:
    """Every arm's responses on `items`, generated (cached, resumable) or, without calls, read from
    the store. `model` is renamed to the arm label. `prepared`: the requests `check_requests` rendered."""
    if prepared is None:
        prepared = check_requests(config, items)
    return generate(items, [spec for spec, *_ in prepared], store, sampling=sampling(config),
                    policy=call_policy(config), prompts_dir=config.prompts_path, progress=progress or False,
                    cache_only=not allow_calls, prepared=prepared)


def require_answers(responses: pd.DataFrame, run_stats: Any) -> None:
    """An arm without a single answer is a configuration problem (a missing or wrong key, an unknown
    model, a server that is not there), not evidence that the candidate is worse: stop with the reason
    instead of letting the gate call it FAIL."""
    problems = []
    for arm, group in compact_responses(responses).groupby("model", sort=False):
        if len(group) and not group["answered"].any():
            kinds = run_stats.per_model.get(arm, {}).get("error_kinds") or {}
            why = "; ".join(f"{v['count']} x {k}, e.g. {v['example']}" for k, v in kinds.items())
            if not why:
                errors = group["error"].dropna()
                why = f"e.g. {errors.iloc[0]}" if len(errors) else "no call was answered"
            problems.append(f"{arm}: none of its {len(group)} calls was answered ({why}); check the model name, "
                            "its key in the environment and api_base")
    if problems:
        raise EvidenceError(problems)


def require_verdicts(config: MigrationConfig, judgments: dict[str, Any]) -> None:
    """A judge that returned nothing at all (a key or model problem) is a configuration error too."""
    for name, result in judgments.items():
        table = result.verdicts if config.judge_mode == "pairwise" else result.scores
        column = "verdict" if config.judge_mode == "pairwise" else "score"
        if len(table) and table[column].isna().all():
            errors = table["error"].dropna()
            example = f" (e.g. {errors.iloc[0]})" if len(errors) else ""

            raise EvidenceError(f"judge {config.judge}: no verdict on any of {len(table)} items for {name}{example}; "
                                "check the judge model, its key and judge_template")


def judge_responses(config: MigrationConfig, items: pd.DataFrame, responses: pd.DataFrame, store: Any, *,
                    progress: PhaseReporter | None = None, allow_calls: bool = True) -> tuple[dict[str, Any], int]:
    """The judge on each candidate (pairwise in both orders, or pointwise on every arm); cached.
    Without calls every verdict must be stored (failed ones come back as their recorded error)."""
    if not config.judge:
        return {}, 0

    model = config.model_spec(config.judge)  # its own options; api_base reaches API judges too
    spec = JudgeSpec(model=config.judge, template=config.judge_template, options=model.options)
    adapter = make_adapter(model.name, model.options, model.base_dir)  # a relative hf/ path: in the project
    policy = call_policy(config, model)
    labels = arm_labels(config)
    baseline = arm_rows(responses, labels[0])
    results: dict[str, Any] = {}
    calls_made = 0
    try:
        if config.judge_mode == "pointwise":
            result = judge_pointwise(store, spec, items, responses, config.judge_criteria, policy, adapter=adapter,
                                     progress=progress, cache_only=not allow_calls)
            return {name: result for name in labels[1:]}, int(result.stats.model_calls or 0)
        for name in labels[1:]:
            result = judge_pairwise(store, spec, items, baseline, arm_rows(responses, name),
                                    config.judge_criteria[0], policy, adapter=adapter, progress=progress,
                                    cache_only=not allow_calls)
            results[name] = result
            calls_made += int(result.stats.model_calls or 0)
        return results, calls_made
    finally:
        run_sync(adapter.aclose())


def judge_scores(config: MigrationConfig, judgments: dict[str, Any]) -> pd.DataFrame:
    """Pointwise judge scores as metrics (`judge:<criterion>`, 1-5, higher is better) for the paired deltas."""
    if config.judge_mode != "pointwise" or not judgments:
        return pd.DataFrame(columns=["item_id", "model", "sample_index", "metric", "value"])
    scores = next(iter(judgments.values())).scores
    return pd.DataFrame({"item_id": scores["item_id"], "model": scores["model"], "sample_index": scores["sample_index"],
                         "metric": "judge:" + scores["criterion"].astype(str), "value": pd.to_numeric(scores["score"])})


def human_labels(config: MigrationConfig, store: Any, candidate_index: int,
                 item_ids: pd.Series) -> pd.DataFrame | None:
    """The human pair labels of one comparison (one row per item and rater, choice A/B/tie/both_bad).
    Only labels of this comparison's items (`item_ids`, compared as text) and pair count: a row the log
    holds for any other item or model (written through the API, or by an older workbench) is left out,
    never counted."""
    log = store.labels_frame(labels_task(config, candidate_index))
    if log.empty:
        return None  # no label yet: 100,000 item ids need not be made text and matched against nothing
    names = arm_labels(config)
    pair = [names[0], names[candidate_index + 1]]
    log = log[log["item_id"].astype(str).isin(set(item_ids.astype(str))) & log["left_model"].isin(pair)
              & log["right_model"].isin(pair)]
    if log.empty:
        return None
    export = labels_mod.export_frame(labels_mod.fold(log), names[0], names[candidate_index + 1])
    export = export[export["choice"].isin(labels_mod.RATED_CHOICES)]
    return export if len(export) else None


def rank_candidates(config: MigrationConfig, judgments: dict[str, Any]) -> pd.DataFrame | None:
    """Bradley–Terry ratings (anchored on the baseline, bootstrap CIs over items) from the pairwise
    judge, when there are two or more candidates to rank."""
    if config.judge_mode != "pairwise" or len(judgments) < 2:
        return None

    rows = []
    baseline = arm_labels(config)[0]
    for name, result in judgments.items():
        verdicts = result.verdicts.dropna(subset=["verdict"])
        rows.append(pd.DataFrame({"item_id": verdicts["item_id"].astype(str) + "::" + name, "model_a": baseline,
                                  "model_b": name, "score_a": 1.0 - verdicts["verdict"].map(candidate_score)}))
    comparisons = pd.concat(rows, ignore_index=True)
    if comparisons.empty:
        return None
    fit = stats.bradley_terry(comparisons, n_resamples=config.bootstrap_resamples, confidence=CONFIDENCE,
                              seed=config.seed, anchor=baseline)
    return fit.table


def prepare(config: MigrationConfig, *, progress: PhaseReporter | None = None) -> dict[str, int]:
    """Make every model call a report needs (generation, then the judge), with progress, and nothing
    after: the first half of `run_pipeline`. Returns the call counts (`Evidence.calls`)."""
    plan = plan_run(config, calls=True)
    warn_out_of_reach(config, plan.items)
    with gathered(plan, allow_calls=True, progress=progress) as evidence:
        return evidence.calls()


@dataclass
class Labeling:
    """What the blind labeler needs for one comparison, read in one pass (one store open, the items
    loaded and rendered once): the task name, the pairs, and the judge's choices (None: no judge)."""

    task: str
    pairs: pd.DataFrame
    judge: pd.DataFrame | None


def labeling(config: MigrationConfig, candidate_index: int = 0) -> Labeling:
    """(task name, pairs, judge choices) for the blind labeler: the report's items and responses for
    the baseline and one candidate, read from the store (no call). Items where either side failed are
    left out of the pairs; how many is in `pairs.attrs["dropped"]`."""
    names = arm_labels(config)
    if not 0 <= candidate_index < len(names) - 1:
        raise InputError(f"candidate index {candidate_index} is out of range: there are {len(names) - 1} candidate(s)")
    with gathered(plan_run(config), allow_calls=False, judge=False) as evidence:
        pairs = _pairs(evidence.plan.items, evidence.responses, names[0], names[candidate_index + 1])
        judge = _judge_choices(evidence, names[candidate_index + 1])
    return Labeling(labels_task(config, candidate_index), pairs, judge)


def label_pairs(config: MigrationConfig, candidate_index: int = 0) -> tuple[str, pd.DataFrame]:
    """(task name, pairs) for the blind labeler (see `labeling`)."""
    session = labeling(config, candidate_index)
    return session.task, session.pairs


def _pairs(items: pd.DataFrame, responses: pd.DataFrame, baseline: str, candidate: str) -> pd.DataFrame:
    first = responses[responses["sample_index"] == 0]
    sides = [_answers(first[first["model"] == name]) for name in (baseline, candidate)]
    extra = [c for c in ("reference", "instruction", "task") if c in items.columns]
    pairs = items[["item_id", "input", *extra]].assign(response_a=lambda f: f["item_id"].map(sides[0]),
                                                        response_b=lambda f: f["item_id"].map(sides[1]))
    pairs["input"] = [task_text(item) for item in items.to_dict(orient="records")]  # the conversation, passages
    ok = pairs["response_a"].notna() & pairs["response_b"].notna()
    strata = [c for c in ("language", "task") if c in items.columns]
    if strata:  # what the active queue balances its labels over (never shown to the rater)
        pairs["slice"] = items[strata].astype(str).agg(" / ".join, axis=1)
    pairs = pairs[ok].assign(model_a=baseline, model_b=candidate).reset_index(drop=True)
    pairs.attrs["dropped"] = int((~ok).sum())
    return pairs


def _answers(responses: pd.DataFrame) -> pd.Series:
    """item_id -> the answer as a rater reads it: its text and the calls it made (None: no answer)."""
    calls = responses["tool_calls"] if "tool_calls" in responses else pd.Series([()] * len(responses),
                                                                                  index=responses.index)
    texts = [None if is_missing(text) else answer_text(text, made)
             for text, made in zip(responses["response"].tolist(), calls.tolist())]
    return pd.Series(texts, index=responses["item_id"].tolist(), dtype=object)


def report_runs(config: MigrationConfig, store: Any) -> dict[str, int]:
    """{arm label: run id}, baseline first: what the explorer reads lazily, one item at a time, without
    running the pipeline. Each arm's latest run (its model and prompt version) on the newest dataset that
    every arm ran on, read from this configuration's data file: runs on another file (another params file
    sharing the store) are never shown, and the arms are always on the same items."""
    runs = store.runs_frame()
    mine = runs[runs["source"] == str(config.path(config.dataset).resolve())]
    if mine.empty and not runs.empty:  # a moved project: match the items themselves (reads the data, seconds)

        mine = runs[runs["dataset_id"] == dataset_id(select_items(config))]
    per_arm = {label: mine[(mine["model"] == model) & (mine["prompt_ref"].isna() if prompt is None
                                                       else mine["prompt_ref"] == prompt)]
               for label, (model, prompt) in zip(arm_labels(config), config.arms())}
    missing = [label for label, arm in per_arm.items() if arm.empty]
    if missing:
        raise InputError(f"no run of {', '.join(missing)} on {config.dataset} in the store: run "
                         "`workbench report` (or generate) first")
    chosen = latest_common_runs(per_arm)
    if chosen is None:
        raise InputError(f"the arms' runs on {config.dataset} were made on different selections of its items "
                         "(sample_size or the file changed between them): run `workbench report` again")
    return chosen


def judge_choices(config: MigrationConfig, candidate_index: int = 0) -> pd.DataFrame | None:
    """The pairwise judge's stored verdicts for one comparison, one row per judged item: item_id, choice
    (A / B / tie, both orders combined; None where the judge gave no verdict), choice_ab and choice_ba
    (each order's verdict, model A = the baseline shown first in `ab`). For the labeler's live
    agreement, stopping rule and active queue; None without a pairwise judge or stored verdicts."""
    return labeling(config, candidate_index).judge


def _judge_choices(evidence: Evidence, candidate: str) -> pd.DataFrame | None:
    config = evidence.plan.config
    if not config.judge or config.judge_mode != "pairwise":
        return None
    try:
        judged, _ = judge_responses(config, evidence.plan.items, evidence.responses, evidence.store,
                                    allow_calls=False)
    except InputError:
        return None  # not judged yet: the labeler works without live feedback
    verdicts = judged[candidate].verdicts
    verdicts = verdicts.sort_values("sample_index", kind="stable").drop_duplicates("item_id")
    return (verdicts[["item_id", "verdict", "verdict_ab", "verdict_ba"]]
            .rename(columns={"verdict": "choice", "verdict_ab": "choice_ab", "verdict_ba": "choice_ba"})
            .reset_index(drop=True))


def win_rate_threshold(config: MigrationConfig) -> float | None:
    """The gate's bound on the win rate (0.5 - margin, or the minimum lower bound), if it has one."""
    gate = config.gate_config()
    return gate.win_rate.threshold if gate.win_rate is not None else None


def run_pipeline(config: MigrationConfig, *, allow_calls: bool = True, progress: PhaseReporter | None = None,
                 plan: Plan | None = None, texts: bool = True) -> MigrationResult:
    """generate (or read) -> score -> judge -> compare -> gate, everything model-made cached in the store.
    `plan`: the configuration already checked, its items selected and its requests rendered (`plan_run`).
    `texts=False` (read-only: `workbench compare`): the store is read in chunks of items and the result
    keeps no answer text (`MigrationResult.responses` is compact; each comparison's behaviour diff keeps
    the columns its tables read, `statistics_columns`), so no text outlives its chunk."""
    started = time.perf_counter()
    if not texts:
        if allow_calls:
            raise ValueError("texts=False reads a warm store: it makes no call (allow_calls=False)")
        return read_in_chunks(plan or plan_run(config, render=False), started)
    with gathered(plan or plan_run(config, calls=allow_calls), allow_calls=allow_calls, progress=progress) as evidence:
        return conclude(evidence, started)


def conclude(evidence: Evidence, started: float) -> MigrationResult:
    """The second half of `run_pipeline`: score, compare each candidate with the baseline, gate, rank
    and record, from the evidence (the store still open for the human labels and the label queue)."""
    config, items = evidence.plan.config, evidence.plan.items
    kept = evidence.store if cache_enabled() else None  # where scores and behaviour measures are kept and read
    metrics = with_app_metrics(config.metrics, items)
    scores = _scores(config, metrics, items, evidence.responses, evidence.judgments, kept)
    return decide(evidence, scores, started)


def _scores(config: MigrationConfig, metrics: list[Any], items: pd.DataFrame, responses: pd.DataFrame,
            judgments: dict[str, Any], kept: Any) -> pd.DataFrame:
    """`metrics` (the configuration's and the app's: `with_app_metrics` of every item, not of one chunk)
    on every answer (kept in and read from `kept`), and a pointwise judge's scores."""
    scores = score_responses(items, responses, metrics, store=kept)
    judged = judge_scores(config, judgments)
    return pd.concat([scores, judged], ignore_index=True) if len(judged) else scores


def chunk_items() -> int:
    """Items per chunk of a read in chunks (`WORKBENCH_CHUNK_ITEMS`, default 2,500): large enough that
    per-chunk costs stay small (2% of a warm compare's time over chunks of 5,000), small enough that
    one chunk's temporaries stay a few MiB (the behaviour diff and the scores of 5,000 items peak at 19
    and 15 MiB, held by each process reading: 100k items on 2 processes peaked 35 MiB above 2,500's)."""
    value = os.environ.get(CHUNK_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_CHUNK_ITEMS


def read_in_chunks(plan: Plan, started: float) -> MigrationResult:
    """`run_pipeline` on a warm store, read a chunk of items at a time (`ChunkReader`), the chunks
    shared between the cores (`forked.map_forked`: the results are those of one process); only what
    the statistics read is kept of each chunk, the texts go with it. The tables equal `run_pipeline`'s
    with texts."""
    config, items = plan.config, plan.items
    data_id = dataset_id(items)
    memory.release_unused()  # the rows dataset_id encoded (25 MiB at 100k), before the chunks' copies
    labels = arm_labels(config)
    codes = ItemCodes.of(items["item_id"])  # every id kept as 4 bytes, its text once
    reader = ChunkReader(config, with_app_metrics(config.metrics, items), data_id, codes)
    size = chunk_items()
    again = ItemsAgain(config, data_id)
    bounds = [(start, min(start + size, len(items))) for start in range(0, max(len(items), 1), size)]
    plan = replace(plan, items=codes.decode(compact_items(items).assign(item_id=codes.codes)))  # ids coded too
    # each chunk's rows a copy (a slice would keep every item's texts alive): the texts then go as the
    # chunks are read, not all at the end, and each process lets go of the chunks it will not read; the
    # copies made a column at a time, each of the items' columns let go of once copied (`split_rows`)
    columns, attrs = dict(items.items()), dict(items.attrs)
    del items
    chunks = [ChunkJob(start, stop, rows, again) for (start, stop), rows in zip(bounds, split_rows(columns, bounds, attrs))]
    memory.release_unused()  # what loading the items left free (60 MiB at 100k), before the chunks and the fork
    with open_store(config, False, write_scores=cache_enabled()) as store:
        workers = forked.worker_count(len(chunks), min_each=-(-MIN_ITEMS_EACH // size))
        parts = forked.map_forked(reader, chunks, store, workers, release=ChunkJob.drop)
        del chunks
        run_stats, unscored, counts = RunStats(items=len(plan.items)), Unscored(), {}
        for part in parts:
            run_stats.absorb(part.run_stats)
            unscored.absorb(part.unscored)
            for arm, (never, total) in part.counts.items():
                before = counts.get(arm, (0, 0))
                counts[arm] = (before[0] + never, before[1] + total)
        if any(never for never, _ in counts.values()):
            raise not_stored_error(counts, store)
        unscored.warn()
        # each kind joined, its pieces dropped and their pages handed back before the next: the chunks'
        # frames are never held twice, and what they leave free goes to the statistics
        responses = codes.decode(concat_columns([part.answers.pop(label) for label in labels for part in parts]))
        memory.release_unused()
        require_answers(responses, run_stats)
        judgments = _join_judgments([part.judgments for part in parts])
        require_verdicts(config, judgments)
        scores = codes.decode(concat_columns([part.take("scores") for part in parts]))
        memory.release_unused()
        read = {name: AnswerEvidence.join([part.read.pop(name) for part in parts]) for name in labels[1:]}
        read = {name: replace(joined, behaviour=codes.decode(joined.behaviour))
                for name, joined in read.items()}  # joined coded: concatenating categories over every id hashes them
        parts.clear()
        memory.release_unused()
        evidence = Evidence(plan, store, responses, run_stats, judgments, 0)
        return decide(evidence, scores, started, data_id=data_id, read=read)


@dataclass
class ChunkJob:
    """A chunk of items to read: where it lies among the items, and its rows until they are read
    (`take`), so no chunk's texts outlive its read in the process that reads it. A process that will
    not read the chunk lets go of its rows (`drop`); should it read the chunk after all (a forked
    reader failed), the rows are read again from the items' file (`again`)."""
    start: int
    stop: int
    items: pd.DataFrame | None
    again: ItemsAgain | None = None
    dropped: bool = False

    def take(self) -> pd.DataFrame:
        items, self.items = self.items, None
        if items is not None:
            return items
        if self.dropped and self.again is not None:
            self.dropped = False
            return self.again.rows(self.start, self.stop)
        raise RuntimeError(f"the chunk of items at {self.start} was read already")

    def drop(self) -> None:
        """Let go of the rows unread: a process that will not read this chunk."""
        self.items, self.dropped = None, True


class ItemsAgain:
    """The plan's items read again from their file, once, for chunks whose rows this process let go
    of (`ChunkJob.drop`) and must read after all: a forked reader failed and its block is read here."""

    def __init__(self, config: MigrationConfig, data_id: str):
        self.config, self.data_id = config, data_id
        self.items: pd.DataFrame | None = None

    def rows(self, start: int, stop: int) -> pd.DataFrame:
        if self.items is None:
            items, _ = _selected(self.config)
            if dataset_id(items) != self.data_id:
                raise InputError(Problem(str(self.config.path(self.config.dataset)), None, None,
                                         "the items read again for a chunk a forked reader could not read differ from "
                                         "the ones compared (the file changed while it was read); run the command "
                                         f"again, or with {forked.WORKERS_ENV}=1"))
            self.items = items
        return self.items.take(np.arange(start, stop))


@dataclass
class ChunkRead:
    """What a read in chunks keeps of one chunk: what the statistics read, no text; item ids as codes
    (`ItemCodes`)."""
    run_stats: RunStats
    counts: dict[str, tuple[int, int]]  # arm -> (answers not in the store, planned)
    unscored: "Unscored"
    judgments: dict[str, Any] = field(default_factory=dict)
    scores: pd.DataFrame | None = None
    read: dict[str, AnswerEvidence] = field(default_factory=dict)  # candidate -> behaviour diff, tool errors
    answers: dict[str, pd.DataFrame] = field(default_factory=dict)  # arm -> `compact_responses`

    def take(self, name: str) -> Any:
        """The field `name`, no longer held here (joined frames are not kept twice)."""
        value = getattr(self, name)
        setattr(self, name, None)
        return value


class ChunkReader:
    """Reads one chunk of items from a warm store (`__call__`): its requests rendered, its answers and
    verdicts read, scored (scores kept in the store) and described. Once a chunk lacks answers, later
    chunks are only counted: the read ends in the error that lists what is missing."""

    def __init__(self, config: MigrationConfig, metrics: list[Any], data_id: str, codes: ItemCodes):
        self.config, self.metrics, self.data_id = config, metrics, data_id  # metrics: of every item, not a chunk's
        self.codes = codes
        self.labels = arm_labels(config)
        self.adapters: list[Any] | None = None  # built by the first chunk, used by the rest
        self.missing = False

    def __call__(self, job: ChunkJob, store: Any) -> ChunkRead:
        """The chunk of items `job` read from `store`."""
        start, chunk, config, labels = job.start, job.take(), self.config, self.labels
        prepared = preflight(chunk, model_specs(config), sampling=sampling(config),
                             prompts_dir=config.prompts_path, adapters=self.adapters)
        self.adapters = [adapter for *_, adapter, _planned in prepared]
        responses, run_stats, counts = stored_responses(prepared, store, self.data_id, len(chunk))
        part = ChunkRead(run_stats, counts, Unscored())
        self.missing = self.missing or any(never for never, _ in counts.values())
        if self.missing:
            return part
        kept = store if cache_enabled() else None
        part.judgments, _ = judge_responses(config, chunk, responses, store, allow_calls=False)

        chunk_ids = pd.Index(chunk["item_id"])

        def coded(frame: pd.DataFrame) -> pd.DataFrame:  # ids as codes, sample numbers a byte each
            frame = self.codes.encode(frame, chunk_ids, start)
            if "sample_index" not in frame.columns:
                return frame
            return frame.assign(sample_index=pd.to_numeric(frame["sample_index"], downcast="integer"))

        with part.unscored.gathered(rows=len(responses)):
            part.scores = coded(_scores(config, self.metrics, chunk, responses, part.judgments, kept).astype(
                {"model": "category", "metric": "category", "note": "category", "prompt_version": "category"}))
        baseline = arm_rows(responses, labels[0])
        for name in labels[1:]:
            read = answer_evidence(chunk, baseline, arm_rows(responses, name), store=kept)
            part.read[name] = replace(read, behaviour=compact_behaviour(coded(statistics_columns(read.behaviour))))
        arms = pd.CategoricalDtype(labels)  # one dtype for every arm's rows: their join stays a category
        part.answers = {label: coded(compact_responses(arm_rows(responses, label)).astype({"model": arms}))
                        for label in labels}
        del responses, prepared
        forget_answers()
        memory.release_unused()  # the chunk's texts and requests: their pages go before the next chunk's
        return part


class Unscored:
    """The chunks' warnings about rows a metric could not score, added up into one per metric and reason
    (as one read of every item gives), instead of one per chunk."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], list[str]] = {}
        self.rows = 0  # scored rows over every chunk, with or without a warning

    @contextmanager
    def gathered(self, rows: int) -> Iterator[None]:
        """Collect the warnings of scoring one chunk of `rows` rows."""
        self.rows += rows
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            parts = getattr(warning.message, "unscored", None)
            if parts is None:  # any other warning goes on as it came
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
                continue
            subject, reason, ids, _rows = parts
            self.ids.setdefault((subject, reason), []).extend(ids)

    def absorb(self, part: "Unscored") -> None:
        """Another chunk's rows and unscored ids added to these."""
        self.rows += part.rows
        for key, ids in part.ids.items():
            self.ids.setdefault(key, []).extend(ids)

    def warn(self) -> None:
        for (subject, reason), ids in self.ids.items():
            warn_unscored(subject, reason, ids, self.rows)


def _join_judgments(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Each candidate's judge result over every chunk: its frames joined, its counts added."""
    if not parts or not parts[0]:
        return {}
    joined = {}
    for name, first in parts[0].items():
        results = [part[name] for part in parts]
        values = {}
        for spec in fields(first):
            pieces = [getattr(result, spec.name) for result in results]
            if isinstance(pieces[0], pd.DataFrame):
                values[spec.name] = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
            elif is_dataclass(pieces[0]):
                values[spec.name] = type(pieces[0])(**{f.name: sum(getattr(p, f.name) for p in pieces)
                                                        for f in fields(pieces[0])})
            else:
                values[spec.name] = pieces[0]
        joined[name] = type(first)(**values)
    return joined


def decide(evidence: Evidence, scores: pd.DataFrame, started: float, *, data_id: str | None = None,
           read: dict[str, AnswerEvidence] | None = None) -> MigrationResult:
    """Compare each candidate with the baseline, gate, rank and record, from the evidence and its
    scores. `read`: each candidate's behaviour diff and tool errors when the texts are gone (a read in
    chunks); `data_id`: the items' dataset id when it is known already."""
    config, items, store = evidence.plan.config, evidence.plan.items, evidence.store
    responses, judgments = evidence.responses, evidence.judgments
    gate = config.gate_config()
    kept = store if cache_enabled() else None
    labels = arm_labels(config)
    baseline_resp = arm_rows(responses, labels[0])
    lifecycle = lookup([config.baseline, *config.candidates],
                       config.path(config.lifecycle_file) if config.lifecycle_file else None)
    out_of_reach = [f"Gate rule out of reach at this sample size: {line}." for line in gate_out_of_reach(config, items)]
    comparisons, human = {}, {}
    for index, name in enumerate(labels[1:]):
        verdicts = judgments[name].verdicts if config.judge_mode == "pairwise" and name in judgments else None
        pointwise = judgments[name].scores if config.judge_mode == "pointwise" and name in judgments else None
        human_export = human_labels(config, store, index, items["item_id"])
        if human_export is not None:
            human[name] = human_export
        comparisons[name] = compare(items, baseline_resp, arm_rows(responses, name), scores=scores,
                                    verdicts=verdicts, human=human_export, gate=gate,
                                    n_resamples=config.bootstrap_resamples, seed=config.seed,
                                    label_queue=store.label_queue(labels_task(config, index)),
                                    judge=config.judge, pointwise=pointwise,
                                    retirement=retirement(lifecycle[index + 1]), store=kept,
                                    read=(read or {}).get(name))
        comparisons[name].notes[:0] = out_of_reach
    result = MigrationResult(config, items, responses, scores, judgments, comparisons, lifecycle,
                             evidence.run_stats, evidence.judge_calls, time.perf_counter() - started,
                             rank_candidates(config, judgments), human)
    result.manifest = build_manifest(result, store, data_id or dataset_id(items))
    return result


def build_manifest(result: MigrationResult, store: Any, data_id: str) -> dict[str, Any]:
    config = result.config
    runs = {}
    for name, info in result.run_stats.per_model.items():
        prompt = load_prompt(info["prompt"], config.prompts_path) if info.get("prompt") else None
        versions = result.responses.loc[result.responses["model"] == name, "model_version"].dropna().unique().tolist()
        runs[name] = {"identity": info["identity"], "options": info.get("options", {}),
                      "resolved_versions": versions, "run_id": info["run_id"],
                      "prompt": info.get("prompt"), "prompt_digest": prompt.digest if prompt else None,
                      "calls_made": info["calls_made"], "cached": info["cached"], "errors": info["errors"]}
    costs = result.responses["cost_usd"]
    unset = set() if config.metrics_module else {"metrics_module"}  # a run without one keeps its config_hash
    recorded = redact_config(config.model_dump(mode="json", exclude={"output_dir", *unset}))
    return {
        "report_name": config.report_name,
        "workbench_version": __version__,
        "config_hash": content_hash(recorded),
        "config": recorded,
        "dataset": {"path": config.dataset, "dataset_id": data_id, "items": int(len(result.items))},
        "models": runs,
        "judge": {"model": config.judge, "mode": config.judge_mode, "criterion": config.judge_criterion,
                  "calls_made": result.judge_calls} if config.judge else None,
        "gate": gate_record(config),
        **({"metrics_module": module_record(config.metrics_module, config.base_dir)} if config.metrics_module else {}),
        "calls": {"made": result.run_stats.calls_made + result.judge_calls, "cached": result.run_stats.cached,
                  "generation_made": result.run_stats.calls_made, "judge_made": result.judge_calls},
        "total_cost_usd": float(costs.sum()) if costs.notna().all() and len(costs) else None,
        "pipeline_wall_s": round(result.wall_s, 2),
        "git": git_state(config.base_dir),
        "environment": environment(),
        "store": redact_url_credentials(str(config.store_path)),
    }


def comparison_json(result: MigrationResult) -> str:
    """What `workbench compare --json` writes: the verdict record (the report writes the same)."""
    return json.dumps(result.verdict_json(), indent=2, ensure_ascii=False)
