"""The migration pipeline behind the report: generate -> score -> judge -> compare -> gate.

`MigrationConfig` fields are exactly the report notebook's parameters, so a papermill run, the CLI
and a user in JupyterLab configure the same object. Each step is a function taking DataFrames, so
the notebook can show every intermediate result.
"""
from __future__ import annotations

import datetime as dt
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
    judge_criterion: str = "overall"
    metrics: list[str] = Field(default_factory=lambda: ["chrf", "rouge_l", "bleu", "semantic_similarity", "length_chars"])
    gate: dict[str, Any] = Field(default_factory=dict)
    sample_size: int | None = None
    seed: int = 0
    max_tokens: int = 96
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


def latency_cost_summary(responses: pd.DataFrame) -> pd.DataFrame:
    """Per model: calls, errors, p50/p95 latency, tokens and cost (cost null when any price is unknown)."""
    rows = []
    for model, group in responses.groupby("model", sort=False):
        ok = group[group["error"].isna() & group["response"].notna()]
        latency = ok["latency_s"].dropna()
        cost = ok["cost_usd"]
        rows.append({
            "model": model,
            "items": int(group["item_id"].nunique()),
            "answered": int(len(ok)),
            "errors": int(len(group) - len(ok)),
            "error_rate": float((len(group) - len(ok)) / len(group)) if len(group) else float("nan"),
            "latency_p50_s": float(latency.quantile(0.5)) if len(latency) else float("nan"),
            "latency_p95_s": float(latency.quantile(0.95)) if len(latency) else float("nan"),
            "prompt_tokens": float(ok["prompt_tokens"].sum(min_count=1)) if len(ok) else float("nan"),
            "completion_tokens": float(ok["completion_tokens"].sum(min_count=1)) if len(ok) else float("nan"),
            "cost_usd": float(cost.sum()) if len(ok) and cost.notna().all() else None,
        })
    return pd.DataFrame(rows)


def today() -> dt.date:
    return dt.date.today()
