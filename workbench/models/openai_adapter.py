"""`openai/<model>`: OpenAI's API, or any OpenAI-compatible server (vLLM, llama.cpp, Ollama, a
gateway) given as `api_base`, through the openai SDK alone.

Why beside `litellm/`: litellm spends about 3 ms of client CPU per call (logging objects, a
cost lookup), the SDK alone about a third of that. With 32 calls in flight on one event loop
that CPU is what stretches the wall time (docs/bench/api.md), so for a fast local server or a
large sweep this is the quicker road. Same call layer, options and error classification as
`litellm/`; the SDK's own retries are off (one retry loop, in `workbench.generation.calls`). Parameters go
out as given, without litellm's per-provider translation (only `max_tokens` is sent as
`max_completion_tokens` to OpenAI itself, which its reasoning models require).
"""
from __future__ import annotations

import asyncio
import os
from typing import Any

from workbench.models.api_adapter import ApiAdapter, request_kwargs
from workbench.models.api_options import ApiOptions, key_from_env
from workbench.models.base import Request

OPENAI_API_BASE = "https://api.openai.com/v1"


class OpenAIOptions(ApiOptions):
    """`api_key_env` unset: OPENAI_API_KEY, which OpenAI's own API requires and a server of your
    own (`api_base`) may not: there an unset key is sent as the placeholder "EMPTY"."""


class OpenAIAdapter(ApiAdapter):
    provider = "openai"
    options_model = OpenAIOptions
    lazy_modules = ("openai.resources.chat", "openai.resources.completions")

    def __init__(self, model: str, options: OpenAIOptions):
        super().__init__(model, options)
        self.api_base = (options.api_base or os.environ.get("OPENAI_BASE_URL") or OPENAI_API_BASE).rstrip("/")
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._list_prices: tuple[float, float] | None = None

    def resolved_api_base(self) -> str:
        return self.api_base

    @property
    def official(self) -> bool:
        return self.api_base == OPENAI_API_BASE

    def _warm_up(self) -> None:
        """Also OpenAI's list prices when the call goes to OpenAI itself (from litellm's bundled
        price table; a server of your own has no list price)."""
        super()._warm_up()
        if self.official and self.options.prices is None:
            import litellm

            entry = litellm.model_cost.get(self.model) or {}
            prices = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
            if None not in prices:
                self._list_prices = (float(prices[0]), float(prices[1]))

    def _api_key(self) -> str:
        if self.options.api_key_env:
            return key_from_env(self.options.api_key_env)
        if self.official:
            return key_from_env("OPENAI_API_KEY", "OpenAI's API needs a key; api_key_env names another variable")
        return os.environ.get("OPENAI_API_KEY") or "EMPTY"

    def _client_for_this_loop(self) -> Any:
        """One client per event loop: its connection pool belongs to the loop that opened it."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            import openai

            self._client = openai.AsyncOpenAI(base_url=self.api_base, api_key=self._api_key(), max_retries=0,
                                              default_headers=self.options.extra_headers)
            self._client_loop = loop
        return self._client

    async def _send(self, request: Request, timeout_s: float) -> Any:
        client = self._client_for_this_loop()
        kwargs = request_kwargs(request)
        kwargs.update(model=self.model, timeout=timeout_s)
        if request.prompt is not None:
            return await client.completions.create(**kwargs)
        if self.official:  # OpenAI's reasoning models refuse max_tokens; every chat model takes this
            kwargs["max_completion_tokens"] = kwargs.pop("max_tokens")
        return await client.chat.completions.create(**kwargs)

    def _prices(self) -> tuple[float, float] | None:
        return self.options.prices or self._list_prices

    async def aclose(self) -> None:
        client, loop = self._client, self._client_loop
        self._client = self._client_loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.close()
