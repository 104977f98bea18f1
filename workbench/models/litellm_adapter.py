"""`litellm/<any litellm model>`: hosted APIs and OpenAI-compatible servers through litellm.

The adapter only translates: one request in, one `litellm.acompletion` call, one Response or
classified ModelCallError out. Retries, timeouts and caching live in `workbench.generation.calls`, so the
SDK's own retries are switched off per call (one retry loop, counted in one place). Every option
is passed per call. The one litellm global set is `suppress_debug_info`: otherwise litellm prints a
help banner to stdout for every failed call (hundreds of lines in a notebook when an endpoint is
down), while the failure is already recorded per item. API keys come from the environment only.

With the option `deployments`, the model is served by several places (replicas, regions, keys)
and each call goes through one `litellm.Router` over them: per-deployment rpm/tpm limits,
cooldown of failing deployments, and failover through the call layer's own retries (see
`workbench/models/router.py`). The cache key then names the model, never a deployment.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from pydantic import Field, model_validator

from workbench.errors import InputError
from workbench.models import preload
from workbench.models import router as routing
from workbench.models.api_adapter import ApiAdapter, request_kwargs
from workbench.models.api_options import ApiOptions, key_from_env
from workbench.models.base import Request

log = logging.getLogger(__name__)

ROUTER_DEFAULTS = {"allowed_fails": 2, "cooldown_s": 60.0}


class LiteLLMOptions(ApiOptions):
    """`api_key_env` unset: litellm reads its provider's usual variable (OPENAI_API_KEY, ...).

    `deployments`: the places that serve this one model; calls spread over them through litellm's
    Router. `api_key_env` is then the key of the deployments that name none. `routing_strategy`
    (default: least-busy, or usage-based-routing-v2 when a deployment sets rpm/tpm),
    `allowed_fails` (default 2) and `cooldown_s` (default 60) only apply with deployments: a
    deployment that fails more than `allowed_fails` times within `cooldown_s` gets no calls for
    `cooldown_s`.
    """

    deployments: list[routing.Deployment] | None = Field(None, min_length=1)
    routing_strategy: routing.RoutingStrategy | None = None
    allowed_fails: int | None = Field(None, ge=0)
    cooldown_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _router_options(self) -> "LiteLLMOptions":
        if self.deployments is None:
            given = [n for n in ("routing_strategy", "allowed_fails", "cooldown_s") if getattr(self, n) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only with deployments")
            return self
        if self.api_base:
            raise ValueError("api_base and deployments exclude each other: give each deployment its api_base")
        seen: dict[tuple[str | None, ...], int] = {}
        for index, deployment in enumerate(self.deployments):
            key = (deployment.api_base, deployment.api_key_env, deployment.model)
            if key in seen:
                raise ValueError(f"deployments[{index}] repeats deployments[{seen[key]}]")
            seen[key] = index
        return self

    def router_setting(self, name: str) -> Any:
        value = getattr(self, name)
        return ROUTER_DEFAULTS[name] if value is None else value


class LiteLLMAdapter(ApiAdapter):
    """Chat requests go to `acompletion`; plain prompts to `atext_completion`, which litellm sends
    to the native /v1/completions endpoint of OpenAI-compatible servers (no chat template: what a
    base model needs) and turns into a single user message for chat-only providers."""

    provider = "litellm"
    options_model = LiteLLMOptions
    lazy_modules = ("openai.resources", "litellm.proxy._types")  # litellm 1.106 / openai 2.x: about 3 s
    background_imports = ("litellm", *lazy_modules)  # 3-5 s, begun as soon as a command knows its models

    def __init__(self, model: str, options: LiteLLMOptions):
        super().__init__(model, options)
        self._litellm: Any = None
        self._router: tuple[asyncio.AbstractEventLoop, Any] | None = None  # one Router per event loop
        self._cooling: set[int] = set()

    def _lib(self) -> Any:
        if self._litellm is None:
            preload.wait(self.background_imports)  # an import begun by the command: finish it, not race it
            import litellm  # 3-5 s: only when the adapter is really used

            litellm.suppress_debug_info = True
            self._litellm = litellm
        return self._litellm

    def endpoint_identity(self) -> dict[str, Any]:
        """With deployments: any of them answers for the model, so none is named (adding a replica
        keeps the cache)."""
        if self.options.deployments:
            return {"routed": True}
        return super().endpoint_identity()

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
        if self.options.deployments:
            return await self._send_routed(request, timeout_s)
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

    async def _send_routed(self, request: Request, timeout_s: float) -> Any:
        """One call through the Router: one deployment, one HTTP request (no retries inside)."""
        router = self.router()
        kwargs = request_kwargs(request)
        kwargs.update(model=self.model, timeout=timeout_s)
        if self.options.extra_headers:
            kwargs["extra_headers"] = dict(self.options.extra_headers)
        try:
            if request.prompt is not None:
                return await router.atext_completion(**kwargs)
            return await router.acompletion(**kwargs)
        except Exception:
            self._report_cooldowns(router)
            raise

    def router(self) -> Any:
        """The Router of the running event loop, built on first use (reads the keys then)."""
        loop = asyncio.get_running_loop()
        if self._router is None or self._router[0] is not loop:
            options = self.options
            assert options.deployments
            self._router = (loop, routing.build_router(
                self._lib(), self.model, options.deployments, options.api_key_env,
                options.routing_strategy or routing.default_strategy(options.deployments),
                options.router_setting("allowed_fails"), options.router_setting("cooldown_s")))
        return self._router[1]

    def cooling_down(self) -> dict[str, float]:
        """Deployments in cooldown now (their api_base or label -> when it began, time.time())."""
        if self._router is None or not self.options.deployments:
            return {}
        deployments = self.options.deployments
        found = routing.cooling_down(self._router[1], len(deployments))
        return {deployments[i].label(i): since for i, since in found.items()}

    def _report_cooldowns(self, router: Any) -> None:
        deployments = self.options.deployments or []
        cooling = set(routing.cooling_down(router, len(deployments)))
        for index in sorted(cooling - self._cooling):
            log.warning("%s: %s gets no calls for %g s after repeated failures", self.name,
                        deployments[index].label(index), self.options.router_setting("cooldown_s"))
        self._cooling = cooling

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
