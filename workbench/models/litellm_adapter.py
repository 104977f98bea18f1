"""`litellm/<any litellm model>`: hosted APIs and OpenAI-compatible servers through litellm.

The adapter only translates: one request in, one `litellm.acompletion` call, one Response or
classified ModelCallError out. Retries, timeouts and caching live in `workbench.calls`, so the
SDK's own retries are switched off per call (one retry loop, counted in one place). Every option
is passed per call. The one litellm global set is `suppress_debug_info`: otherwise litellm prints a
help banner to stdout for every failed call (hundreds of lines in a notebook when an endpoint is
down), while the failure is already recorded per item. API keys come from the environment only.
"""
from __future__ import annotations

import os
from typing import Any

from workbench.errors import InputError
from workbench.models.api_adapter import ApiAdapter, request_kwargs
from workbench.models.api_options import ApiOptions, key_from_env
from workbench.models.base import Request


class LiteLLMOptions(ApiOptions):
    """`api_key_env` unset: litellm reads its provider's usual variable (OPENAI_API_KEY, ...)."""


class LiteLLMAdapter(ApiAdapter):
    """Chat requests go to `acompletion`; plain prompts to `atext_completion`, which litellm sends
    to the native /v1/completions endpoint of OpenAI-compatible servers (no chat template: what a
    base model needs) and turns into a single user message for chat-only providers."""

    provider = "litellm"
    options_model = LiteLLMOptions
    lazy_modules = ("openai.resources", "litellm.proxy._types")  # litellm 1.106 / openai 2.x: about 3 s

    def __init__(self, model: str, options: LiteLLMOptions):
        super().__init__(model, options)
        self._litellm: Any = None

    def _lib(self) -> Any:
        if self._litellm is None:
            import litellm  # 3-5 s: only when the adapter is really used

            litellm.suppress_debug_info = True
            self._litellm = litellm
        return self._litellm

    def resolved_api_base(self) -> str | None:
        """The option, else the provider's base URL from the environment (litellm's
        `<PROVIDER>_BASE_URL` / `<PROVIDER>_API_BASE`), else litellm's default for it."""
        if self.options.api_base:
            return self.options.api_base.rstrip("/")
        litellm = self._lib()
        try:
            _, provider, _, base = litellm.get_llm_provider(self.model)
        except Exception as exc:
            raise InputError(f"model 'litellm/{self.model}': litellm does not know this model or provider "
                             f"({type(exc).__name__}); name it as litellm does, e.g. litellm/openai/gpt-4o-mini") from None
        for env in (f"{provider.upper()}_BASE_URL", f"{provider.upper()}_API_BASE"):
            if os.environ.get(env):
                return os.environ[env].rstrip("/")
        base = base or litellm.get_api_base(self.model, {})
        return base.rstrip("/") if base else None

    def _warm_up(self) -> None:
        super()._warm_up()
        self._lib()

    async def _send(self, request: Request, timeout_s: float) -> Any:
        kwargs = request_kwargs(request)
        kwargs.update(model=self.model, timeout=timeout_s,
                      num_retries=0,  # litellm's retry loop: off
                      max_retries=0)  # the openai SDK's retry loop underneath: off
        options = self.options
        if options.api_base:
            kwargs["api_base"] = options.api_base
        if options.extra_headers:
            kwargs["extra_headers"] = dict(options.extra_headers)
        if options.api_key_env:
            kwargs["api_key"] = key_from_env(options.api_key_env)
        litellm = self._lib()
        if request.prompt is not None:
            return await litellm.atext_completion(**kwargs)
        return await litellm.acompletion(**kwargs)

    def _cost(self, raw: Any, usage: Any) -> float | None:
        """Custom prices when given; else the cost litellm already computed for the call (reused,
        not recomputed: it is a large part of litellm's per-call time). Unknown price: None."""
        if self.options.prices is not None:
            return super()._cost(raw, usage)
        hidden = getattr(raw, "_hidden_params", None) or {}
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else getattr(hidden, "response_cost", None)
        if cost is None:
            return None
        return float(cost)
