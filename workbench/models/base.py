"""The one interface every model adapter implements: a batch of requests in, responses out.

Adapters only translate requests to a provider. Caching, retries, timeouts, concurrency and
progress wrap them once, in `workbench.generation.calls`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from pydantic import BaseModel, ConfigDict

from workbench.errors import ModelCallError
from workbench.items.tool_calls import ToolCall


class Sampling(BaseModel):
    """Every generation parameter that changes the output (all of it goes into the cache key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Request:
    """One model call. `messages` is chat format (turns may carry tool calls and tool results);
    `prompt` is set instead for plain completion. `tools` (declarations as the item or prompt gives
    them, see `workbench.items.fields`), `tool_choice` and `response_format` are sent when set."""

    item_id: str
    messages: tuple[dict[str, Any], ...] = ()
    prompt: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    sample_index: int = 0
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        """Canonical content of the request (everything that changes the output except the model).
        Tools, tool_choice and response_format enter only when set, so a text request keeps the key
        it had before they existed (stores written then stay cached)."""
        payload: dict[str, Any] = {
            "messages": [dict(m) for m in self.messages],
            "prompt": self.prompt,
            "sampling": self.sampling.model_dump(mode="json"),
            # The sample index only changes the output when sampling; greedy samples share a key.
            "sample_index": None if self.sampling.greedy else self.sample_index,
        }
        if self.tools:
            payload["tools"] = [dict(t) for t in self.tools]
        if self.tool_choice is not None:
            payload["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            payload["response_format"] = self.response_format
        return payload


@dataclass(frozen=True)
class Response:
    """One model answer with what it cost. Token counts and cost are None when unknown, never 0.
    `tool_calls`: the calls the model made instead of (or beside) its text, in order."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    model_version: str | None = None  # what the provider says it ran, when it says
    tool_calls: tuple[ToolCall, ...] = ()

    def with_latency(self, latency_s: float) -> "Response":
        return dataclasses.replace(self, latency_s=latency_s)


Outcome = Response | ModelCallError


class Adapter:
    """Base class for adapters. Subclasses set `provider` and implement `generate`.

    `options_model` is a pydantic model with extra="forbid", so an unknown option is an error.
    `max_batch` is how many requests one `generate` call takes (API adapters: 1, local: >1).
    `concurrent` says whether several `generate` calls may run at once (API: yes, local: no).
    `default_timeout_s` is the per-call limit when the user sets none: one HTTP request for API
    models, a batch of many rows for local ones (which on a CPU takes minutes).
    `local_files`: the model part of the name is a file or folder; the adapter then takes
    `base_dir`, the folder a relative path resolves against (the user's project).
    `background_imports`: slow modules a command that will call this model starts importing on a
    thread as soon as it knows its models (`workbench.models.preload`).
    """

    provider: ClassVar[str]
    options_model: ClassVar[type[BaseModel]]
    default_timeout_s: ClassVar[float] = 60.0
    local_files: ClassVar[bool] = False
    background_imports: ClassVar[tuple[str, ...]] = ()
    max_batch: int = 1
    concurrent: bool = True

    def __init__(self, model: str, options: BaseModel):
        self.model = model
        self.options = options

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"

    def identity(self) -> dict[str, Any]:
        """What identifies the model for caching: provider, model id, resolved endpoint, weights."""
        return {"provider": self.provider, "model": self.model}

    def key_payload(self, request: Request) -> dict[str, Any]:
        """What of a request goes into its cache key. Models answer from the request's content, so
        the item id is left out (identical requests share one answer); `replay/` overrides this."""
        return request.payload()

    async def prepare(self) -> None:
        """Load what the first call needs (weights, a slow import) before any call is timed, so the
        per-call timeout measures answering, not loading. Called once by `calls.execute`."""

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        """Answer each request, in order. A failure is returned per item, never raised for the batch."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release clients, sessions or GPU memory."""
