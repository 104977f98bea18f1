"""Generate: items x models x samples -> responses in the store, returned as one DataFrame.

Every planned call is recorded (runs, run_items) before any call is made, and each answer is
stored as soon as it arrives, so an interrupted run resumes without repeating a completed call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from workbench.generation import calls
from workbench.errors import InputError
from workbench.task.dataset import dataset_id as compute_dataset_id, frame_records
from workbench.hashing import RequestKeys, canonical_json
from workbench.models import Adapter, Request, Sampling, make_adapter, takes_api_base
from workbench.progress import PhaseReporter, phase, reporter
from workbench.secrets import redact_config
from workbench.items.render import render_items
from workbench.task.prompts import PromptVersion, load_prompt
from workbench.store import Store
from workbench.store.base import RUN_FRAME_COLUMNS


class ModelSpec(BaseModel):
    """One model under test: its registered name, its own prompt version and adapter options.

    `base_dir` is the folder a relative `hf/`, `vllm/` or `replay/` path resolves against (the
    user's project; None: the current folder). `timeout_s` is this model's per-call limit (None:
    the call policy's), so API and local models can each get the default their kind needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    prompt: str | None = None  # "name@version"; None sends each item's `input` as the user message
    options: dict[str, Any] = Field(default_factory=dict)
    base_dir: str | None = None
    timeout_s: float | None = Field(None, gt=0)

    @classmethod
    def with_endpoint(cls, name: str, prompt: str | None, api_base: str | None, *,
                      options: Mapping[str, Any] | None = None, base_dir: str | Path | None = None,
                      timeout_s: float | None = None) -> "ModelSpec":
        """A spec with the model's own `options` (see `workbench.generation.options`) and the global
        `api_base` (an OpenAI-compatible server) where it means something: API models (`litellm/`,
        `openai/`) that name no endpoint of their own (`api_base` or `deployments`). Local models
        ignore it rather than reject it."""
        own = dict(options or {})
        endpoint = ({"api_base": api_base} if api_base and takes_api_base(name)
                    and not own.get("api_base") and not own.get("deployments") else {})
        return cls(name=name, prompt=prompt, options={**endpoint, **own},
                   base_dir=str(base_dir) if base_dir is not None else None, timeout_s=timeout_s)

    def policy(self, policy: calls.CallPolicy) -> calls.CallPolicy:
        """The call policy for this model: its own timeout, when it has one."""
        return policy if self.timeout_s is None else policy.with_timeout(self.timeout_s)


@dataclass
class RunStats:
    """Distinct calls of a run: `calls_made` left the machine (paid, or a local model ran),
    `not_sent` failed before any request went out (e.g. no API key), `cached` came from the store
    (answered earlier, or by another process while this one waited); `errors` failed in the end."""

    items: int = 0
    calls_made: int = 0
    not_sent: int = 0
    cached: int = 0
    errors: int = 0
    wall_s: float = 0.0
    cost_usd: float | None = None
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, arm: str, info: dict[str, Any], failures: Sequence[Exception]) -> None:
        """One arm's counts, with its failures by kind (count and one example message, already redacted)."""
        kinds: dict[str, dict[str, Any]] = {}
        for failure in failures:
            kind = getattr(failure, "kind", type(failure).__name__)
            entry = kinds.setdefault(kind, {"count": 0, "example": str(failure)})
            entry["count"] += 1
        unsent = next((str(f) for f in failures if getattr(f, "sent", True) is False), None)
        self.per_model[arm] = {"not_sent": 0, "answered_elsewhere": 0, "failed_elsewhere": 0, **info,
                               "not_sent_example": unsent, "error_kinds": kinds}
        self.calls_made += info["calls_made"]
        self.not_sent += info.get("not_sent", 0)
        self.cached += info["cached"]
        self.errors += info["errors"]

    def absorb(self, part: "RunStats") -> None:
        """Another read's answers and errors found, per arm, added to these (a read in chunks: each
        chunk's counts into the whole read's)."""
        for arm, info in part.per_model.items():
            if arm not in self.per_model:
                self.per_model[arm] = dict(info)
                continue
            for count in ("cached", "errors"):
                self.per_model[arm][count] += info[count]
        self.cached += part.cached
        self.errors += part.errors

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "calls_made": self.calls_made, "not_sent": self.not_sent, "cached": self.cached,
                "errors": self.errors, "wall_s": round(self.wall_s, 3)}


def build_requests(items: pd.DataFrame, prompt: PromptVersion | None, sampling: Sampling, samples: int) -> list[Request]:
    """Render every item with the model's prompt (or send its raw input or conversation, see
    `workbench.items.render`). Fails before any call if a variable is missing or an item's tools do
    not fit, naming the items."""
    records = frame_records(items)
    rendered = render_items(records, prompt)
    return [one.to_request(str(record["item_id"]), sampling, sample_index)
            for record, one in zip(records, rendered) for sample_index in range(samples)]


def plan_calls(adapter: Adapter, requests: Sequence[Request],
               payloads: Sequence[str] | None = None) -> list[calls.PlannedCall]:
    """Each request with its cache key (`hashing.request_key`). `payloads`: each request's
    `canonical_json(request.payload())`, when the caller made them for several adapters; an adapter
    whose key reads more of a request (`key_payload` of its own) makes its own."""
    if payloads is None or not keys_from_payload(adapter):
        payloads = [canonical_json(adapter.key_payload(r)) for r in requests]
    keys = RequestKeys(adapter.identity())
    return [calls.PlannedCall(keys.key(payload), r) for payload, r in zip(payloads, requests)]


def keys_from_payload(adapter: Adapter) -> bool:
    """The adapter keys a request by its payload alone (the base `key_payload`), so adapters share it."""
    return type(adapter).key_payload is Adapter.key_payload


def preflight(items: pd.DataFrame, models: Sequence[ModelSpec], *, sampling: Sampling, samples: int = 1,
              prompts_dir: str | Path | None = None, adapters: Sequence[Adapter] | None = None
              ) -> list[tuple[ModelSpec, str, Adapter, list[calls.PlannedCall]]]:
    """Build every adapter and render every request: unknown models, bad options, missing prompts and
    items a prompt cannot render fail here, before anything is written. Models with the same prompt
    share one list of (frozen) requests: rendered once, held once (a large run's planning memory).
    `adapters`: the models' adapters built by an earlier call (a read in chunks renders each chunk
    with the same ones)."""
    prepared = []
    rendered: dict[str | None, list[Request]] = {}
    payloads: dict[str | None, list[str]] = {}  # each request's canonical JSON, serialised once per prompt
    for index, (spec, arm) in enumerate(zip(models, arm_names([(m.name, m.prompt) for m in models]))):
        adapter = adapters[index] if adapters else make_adapter(spec.name, spec.options, spec.base_dir)
        if spec.prompt not in rendered:
            prompt = load_prompt(spec.prompt, prompts_dir) if spec.prompt else None
            rendered[spec.prompt] = build_requests(items, prompt, sampling, samples)
        requests = rendered[spec.prompt]
        if keys_from_payload(adapter) and spec.prompt not in payloads:
            payloads[spec.prompt] = payload_jsons(requests)
        prepared.append((spec, arm, adapter, plan_calls(adapter, requests, payloads.get(spec.prompt))))
    return prepared


def payload_jsons(requests: Sequence[Request]) -> list[str]:
    """`canonical_json(request.payload())` of each request. "messages" sorts first among a payload's
    keys, so a text request's JSON is its messages' JSON followed by the rest's (prompt, sampling, sample
    index), which requests with the same sampling share: serialised once, not per request. A completion
    prompt, tools, tool_choice or a response_format take the whole way."""
    rests: dict[tuple[int, int | None], str] = {}
    out = []
    for request in requests:
        if (request.prompt is not None or request.tools or request.tool_choice is not None
                or request.response_format is not None):
            out.append(canonical_json(request.payload()))
            continue
        shared = (id(request.sampling), None if request.sampling.greedy else request.sample_index)
        rest = rests.get(shared)
        if rest is None:
            rest = rests[shared] = canonical_json({**request.payload(), "messages": None})[len('{"messages":null'):]
        out.append(f'{{"messages":{canonical_json([dict(m) for m in request.messages])}{rest}')
    return out


def arm_names(arms: Sequence[tuple[str, str | None]]) -> list[str]:
    """The name of each (model, prompt version) arm in frames, tables and label tasks: the model
    name, or `model [prompt]` when the same model runs with several prompts."""
    models = [model for model, _ in arms]
    return [model if models.count(model) == 1 else f"{model} [{prompt or 'raw input'}]" for model, prompt in arms]


async def agenerate(items: pd.DataFrame, models: Sequence[ModelSpec], store: Store, *, samples: int = 1,
                    sampling: Sampling | None = None, policy: calls.CallPolicy | None = None,
                    prompts_dir: str | Path | None = None, progress: bool | PhaseReporter = True,
                    cache_only: bool = False, responses: bool = True,
                    prepared: list[tuple[ModelSpec, str, Adapter, list[calls.PlannedCall]]] | None = None
                    ) -> tuple[pd.DataFrame, RunStats]:
    """Run every model over every item (and sample); returns the responses (`model` = arm name)
    and what it cost. `cache_only`: make no call and write nothing; every response must already be
    stored (or have failed before), else one InputError says what is missing. `responses=False`
    (the CLI, large runs): answers stay in the store and the frame comes back empty, so memory
    does not grow with the number of calls. `prepared`: what `preflight` returned for these items,
    models and settings, when the caller checked them before opening the store (nothing is rendered
    or built twice)."""
    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    sampling = sampling or Sampling()
    policy = policy or calls.CallPolicy()
    report = reporter("notebook") if progress is True else (progress or None)
    started = time.perf_counter()
    data_id = compute_dataset_id(items)

    if prepared is None:
        prepared = preflight(items, models, sampling=sampling, samples=samples, prompts_dir=prompts_dir)
    if cache_only:
        frame, stats, counts = stored_responses(prepared, store, data_id, len(items))
        if any(never for never, _ in counts.values()):
            raise not_stored_error(counts, store)
        return _finish(stats, [frame], started)
    store.save_items(data_id, str(items.attrs.get("source", "<dataframe>")), items)

    stats = RunStats(items=len(items))
    frames = []
    for spec, arm, adapter, planned in prepared:
        unique_keys = list(dict.fromkeys(c.cache_key for c in planned))
        run_id = store.create_run(
            spec.name, spec.prompt, data_id,
            {"adapter": adapter.identity(), "options": redact_config(spec.options),
             "sampling": sampling.model_dump(mode="json"),
             "samples": samples},
            [(c.request.item_id, c.request.sample_index, c.cache_key) for c in planned])
        bar = phase(report, f"generating {arm}", len(unique_keys))
        counts = calls.CallCounts()
        try:
            failed = await calls.execute(adapter, planned, store, spec.policy(policy), bar, counts,
                                         keep_responses=False)
        finally:
            bar.close()
            await adapter.aclose()
        failures = list(failed.values())
        stats.add(arm, {"run_id": run_id, "identity": adapter.identity(), "prompt": spec.prompt,
                        "options": redact_config(spec.options),
                        "calls_made": counts.made, "not_sent": counts.not_sent,
                        "cached": counts.cached + counts.answered_elsewhere,
                        "answered_elsewhere": counts.answered_elsewhere, "failed_elsewhere": counts.failed_elsewhere,
                        "errors": len(failures)}, failures)
        if responses:
            frames.append(store.run_frame(run_id).assign(model=arm))
        else:
            cost = store.run_cost(run_id)
            stats.cost_usd = cost if stats.cost_usd is None else stats.cost_usd + (cost or 0.0)
    return _finish(stats, frames, started)


def stored_responses(prepared: list[tuple[ModelSpec, str, Adapter, list[calls.PlannedCall]]], store: Store,
                     data_id: str, n_items: int) -> tuple[pd.DataFrame, RunStats, dict[str, tuple[int, int]]]:
    """The planned calls' answers (or recorded failures) read from the store, every arm in one frame,
    with their counts, and {arm: (responses not in the store, planned)}: a read in chunks adds those
    up before it says what is missing (`not_stored_error`)."""
    stats = RunStats(items=n_items)
    frames, counts = [], {}
    for spec, arm, adapter, planned in prepared:
        frame = store.planned_frame([(c.request.item_id, c.request.sample_index, c.cache_key) for c in planned])
        frame = frame.assign(model=arm, prompt_version=spec.prompt, dataset_id=data_id, run_id=None)
        never = int((frame["response"].isna() & frame["error"].isna()).sum())
        counts[f"{arm}{f' (prompt {spec.prompt})' if spec.prompt else ''}"] = (never, len(frame))
        stats.add(arm, {"run_id": None, "identity": adapter.identity(), "prompt": spec.prompt,
                        "options": redact_config(spec.options), "calls_made": 0,
                        "cached": int(frame["response"].notna().sum()), "errors": int(frame["error"].notna().sum())}, [])
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RUN_FRAME_COLUMNS)
    return result, stats, counts


def not_stored_error(counts: Mapping[str, tuple[int, int]], store: Store) -> InputError:
    """What a read-only step cannot find in the store (`counts`: arm -> (not stored, planned)), per arm
    that lacks some, with the command that makes it."""
    return InputError([*(f"{arm}: {never} of {total} responses are not in the store" for arm, (never, total)
                         in counts.items() if never),
                       f"store {store.path}: generate them first (`workbench generate` or `workbench report`) with "
                       "the same dataset, sample, prompts and sampling parameters"])


def _finish(stats: RunStats, frames: list[pd.DataFrame], started: float) -> tuple[pd.DataFrame, RunStats]:
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RUN_FRAME_COLUMNS)
    if frames:
        costs = result["cost_usd"].dropna()
        stats.cost_usd = float(costs.sum()) if len(costs) else None
    stats.wall_s = time.perf_counter() - started
    return result, stats


def generate(items: pd.DataFrame, models: Sequence[ModelSpec], store: Store, **kwargs: Any) -> tuple[pd.DataFrame, RunStats]:
    """Sync wrapper of `agenerate` that also works inside a running Jupyter event loop."""
    return calls.run_sync(agenerate(items, models, store, **kwargs))
