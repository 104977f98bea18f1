"""A deterministic fake model, for unit tests only: never a fallback for a real report."""
from __future__ import annotations

import asyncio
import hashlib
from typing import Sequence

from pydantic import BaseModel, ConfigDict

from workbench.errors import ModelCallError
from workbench.models.base import Adapter, Outcome, Request, Response


class FakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency_s: float = 0.0
    fail_items: tuple[str, ...] = ()  # item ids that fail with a server error
    fail_kind: str = "server"
    batch: int = 1


class FakeAdapter(Adapter):
    """Answers `"<model>: <last user message>"` (or a scripted reply keyed by item id)."""

    provider = "fake"
    options_model = FakeOptions

    def __init__(self, model: str, options: FakeOptions):
        super().__init__(model, options)
        self.max_batch = options.batch
        self.calls: list[Request] = []

    def _answer(self, request: Request) -> Outcome:
        if request.item_id in self.options.fail_items:
            return ModelCallError(self.options.fail_kind, f"injected failure for {request.item_id}")
        source = request.prompt if request.prompt is not None else request.messages[-1]["content"]
        text = f"{self.model}: {source}"
        if not request.sampling.greedy:
            text += f" #{hashlib.sha256(f'{request.sample_index}{request.sampling.seed}'.encode()).hexdigest()[:6]}"
        return Response(text=text, finish_reason="stop", prompt_tokens=len(source.split()),
                        completion_tokens=len(text.split()), cost_usd=None)

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        self.calls.extend(requests)
        if self.options.latency_s:
            await asyncio.sleep(self.options.latency_s)
        return [self._answer(r) for r in requests]
