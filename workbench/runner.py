"""Generate: items x models x samples -> responses in the store, returned as one DataFrame.

Every planned call is recorded (runs, run_items) before any call is made, and each answer is
stored as soon as it arrives, so an interrupted run resumes without repeating a completed call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from workbench import calls
from workbench.data import dataset_id as compute_dataset_id
from workbench.hashing import request_key
from workbench.models import Adapter, Request, Sampling, get_model, takes_api_base
from workbench.prompts import PromptVersion, Rendered, load_prompt
from workbench.store import Store


class ModelSpec(BaseModel):
    """One model under test: its registered name, its own prompt version and adapter options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    prompt: str | None = None  # "name@version"; None sends each item's `input` as the user message
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def with_endpoint(cls, name: str, prompt: str | None, api_base: str | None) -> "ModelSpec":
        """A spec whose `api_base` (an OpenAI-compatible server) applies only where it means
        something: API models (`litellm/`, `openai/`). Local models ignore it rather than reject it."""
        options = {"api_base": api_base} if api_base and takes_api_base(name) else {}
        return cls(name=name, prompt=prompt, options=options)


@dataclass
class RunStats:
    items: int = 0
    calls_made: int = 0
    cached: int = 0
    errors: int = 0
    wall_s: float = 0.0
    cost_usd: float | None = None
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "calls_made": self.calls_made, "cached": self.cached,
                "errors": self.errors, "wall_s": round(self.wall_s, 3)}


def build_requests(items: pd.DataFrame, prompt: PromptVersion | None, sampling: Sampling, samples: int) -> list[Request]:
    """Render every item with the model's prompt (or send its raw input). Fails before any call
    if a variable is missing, naming the items and the variables."""
    records = items.to_dict(orient="records")
    if prompt is None:
        rendered = [Rendered(({"role": "user", "content": str(r["input"])},), None, (), None) for r in records]
    else:
        rendered = prompt.render_many(records)
    return [one.to_request(str(record["item_id"]), sampling, sample_index)
            for record, one in zip(records, rendered) for sample_index in range(samples)]


def plan_calls(adapter: Adapter, requests: Sequence[Request]) -> list[calls.PlannedCall]:
    identity = adapter.identity()
    return [calls.PlannedCall(request_key(identity, adapter.key_payload(r)), r) for r in requests]


async def agenerate(items: pd.DataFrame, models: Sequence[ModelSpec], store: Store, *, samples: int = 1,
                    sampling: Sampling | None = None, policy: calls.CallPolicy | None = None,
                    prompts_dir: str | Path | None = None, progress: bool = True) -> tuple[pd.DataFrame, RunStats]:
    """Run every model over every item (and sample); returns the responses and what it cost."""
    if samples < 1:
        from workbench.errors import InputError

        raise InputError(f"samples must be >= 1, got {samples}")
    sampling = sampling or Sampling()
    policy = policy or calls.CallPolicy()
    started = time.perf_counter()
    data_id = compute_dataset_id(items)
    store.save_items(data_id, str(items.attrs.get("source", "<dataframe>")), items)

    # Build and render everything first: bad prompts or options fail before any call is made.
    prepared = []
    for spec in models:
        adapter = get_model(spec.name, **spec.options)
        prompt = load_prompt(spec.prompt, prompts_dir) if spec.prompt else None
        prepared.append((spec, adapter, plan_calls(adapter, build_requests(items, prompt, sampling, samples))))

    stats = RunStats(items=len(items))
    frames = []
    for spec, adapter, planned in prepared:
        unique_keys = list(dict.fromkeys(c.cache_key for c in planned))
        already = store.cached_keys(unique_keys)
        run_id = store.create_run(
            spec.name, spec.prompt, data_id,
            {"adapter": adapter.identity(), "options": spec.options, "sampling": sampling.model_dump(mode="json"),
             "samples": samples},
            [(c.request.item_id, c.request.sample_index, c.cache_key) for c in planned])
        bar = calls.TqdmProgress(total=len(unique_keys), desc=spec.name) if progress else None
        try:
            outcomes = await calls.execute(adapter, planned, store, policy, bar)
        finally:
            if bar is not None:
                bar.close()
            await adapter.aclose()
        errors = sum(1 for o in outcomes.values() if isinstance(o, Exception))
        made = len(unique_keys) - len(already)
        stats.calls_made += made
        stats.cached += len(already)
        stats.errors += errors
        stats.per_model[spec.name] = {"run_id": run_id, "calls_made": made, "cached": len(already), "errors": errors}
        frames.append(store.run_frame(run_id))

    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    costs = result["cost_usd"].dropna() if "cost_usd" in result else pd.Series(dtype=float)
    stats.cost_usd = float(costs.sum()) if len(costs) else None
    stats.wall_s = time.perf_counter() - started
    return result, stats


def generate(items: pd.DataFrame, models: Sequence[ModelSpec], store: Store, **kwargs: Any) -> tuple[pd.DataFrame, RunStats]:
    """Sync wrapper of `agenerate` that also works inside a running Jupyter event loop."""
    return calls.run_sync(agenerate(items, models, store, **kwargs))
