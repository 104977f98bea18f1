"""`litellm/<any litellm model>`: hosted APIs and OpenAI-compatible servers through litellm.

The adapter only translates: one request in, one `litellm.acompletion` call, one Response or
classified ModelCallError out. Retries, timeouts and caching live in `workbench.calls`, so the
SDK's own retries are switched off per call (one retry loop, counted in one place). Every option
is passed per call; no litellm global is touched. API keys come from the environment only.
"""
from __future__ import annotations

import asyncio
import email.utils
import importlib
import json
import os
import re
import time
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from workbench.errors import InputError, ModelCallError
from workbench.models.base import Adapter, Outcome, Request, Response

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Imported lazily inside the first call by litellm 1.106 / openai 2.x (measured: about 3 s of it).
_LAZY_MODULES = ("openai.resources", "litellm.proxy._types")


class LiteLLMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_base: str | None = None  # e.g. http://127.0.0.1:8000/v1 for a vLLM or llama.cpp server
    api_key_env: str | None = None  # NAME of the environment variable that holds the key
    extra_headers: dict[str, str] | None = None
    input_cost_per_token: float | None = None  # USD; overrides litellm's price list
    output_cost_per_token: float | None = None

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        # The message never repeats the value: it may be a key pasted by mistake.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key")
        return value

    @model_validator(mode="after")
    def _prices_together(self) -> "LiteLLMOptions":
        if (self.input_cost_per_token is None) != (self.output_cost_per_token is None):
            raise ValueError("give both input_cost_per_token and output_cost_per_token, or neither")
        return self


class LiteLLMAdapter(Adapter):
    """Chat requests go to `acompletion`; plain prompts to `atext_completion`, which litellm sends
    to the native /v1/completions endpoint of OpenAI-compatible servers (no chat template: what a
    base model needs) and turns into a single user message for chat-only providers."""

    provider = "litellm"
    options_model = LiteLLMOptions
    max_batch = 1
    concurrent = True

    def __init__(self, model: str, options: LiteLLMOptions):
        super().__init__(model, options)
        self._identity: dict[str, Any] | None = None
        self._litellm: Any = None
        self._warm = False

    def _lib(self) -> Any:
        if self._litellm is None:
            import litellm  # 3-5 s: only when the adapter is really used

            self._litellm = litellm
        return self._litellm

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            identity: dict[str, Any] = {"provider": self.provider, "model": self.model,
                                        "api_base": self._resolved_api_base()}
            if self.options.extra_headers:  # names only: values may be credentials
                identity["extra_headers"] = sorted(self.options.extra_headers)
            self._identity = identity
        return self._identity

    def _resolved_api_base(self) -> str | None:
        """Where calls really go: the option, else the provider's base URL from the environment
        (litellm's `<PROVIDER>_BASE_URL` / `<PROVIDER>_API_BASE`), else litellm's default for it."""
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
        """Import what litellm and the openai SDK otherwise import lazily during the first call
        (seconds of it), so that the first call's recorded latency is the provider's, not ours."""
        self._warm = True
        self._lib()
        for module in _LAZY_MODULES:
            try:
                importlib.import_module(module)
            except ImportError:  # another litellm/openai version: only the first latency suffers
                pass

    async def prepare(self) -> None:
        if not self._warm:
            await asyncio.to_thread(self._warm_up)  # seconds of imports, outside any call's timeout

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        if not self._warm:
            self._warm_up()
        if len(requests) == 1:
            return [await self._call(requests[0], timeout_s)]
        return list(await asyncio.gather(*(self._call(r, timeout_s) for r in requests)))

    def _call_kwargs(self, request: Request, timeout_s: float) -> dict[str, Any]:
        sampling = request.sampling
        kwargs: dict[str, Any] = {
            "model": self.model,
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
            "timeout": timeout_s,
            "num_retries": 0,  # litellm's retry loop: off
            "max_retries": 0,  # the openai SDK's retry loop underneath: off
        }
        if sampling.top_p != 1.0:  # 1.0 is every API's default; some reject top_p beside temperature
            kwargs["top_p"] = sampling.top_p
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        options = self.options
        if options.api_base:
            kwargs["api_base"] = options.api_base
        if options.extra_headers:
            kwargs["extra_headers"] = dict(options.extra_headers)
        if options.api_key_env:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise ModelCallError("auth", f"environment variable {options.api_key_env} (api_key_env) is not set")
            kwargs["api_key"] = key
        if request.prompt is not None:
            kwargs["prompt"] = request.prompt
        else:
            kwargs["messages"] = [dict(m) for m in request.messages]
        return kwargs

    async def _call(self, request: Request, timeout_s: float) -> Outcome:
        try:
            litellm = self._lib()
            kwargs = self._call_kwargs(request, timeout_s)
            start = time.perf_counter()
            if request.prompt is not None:
                raw = await litellm.atext_completion(**kwargs)
            else:
                raw = await litellm.acompletion(**kwargs)
            latency = time.perf_counter() - start
            return self._response(raw, latency, text_completion=request.prompt is not None)
        except ModelCallError as exc:
            return exc
        except Exception as exc:
            return classify(exc)

    def _response(self, raw: Any, latency: float, text_completion: bool) -> Outcome:
        choices = getattr(raw, "choices", None) or []
        if not choices:
            return ModelCallError("bad_output", f"{self.name} answered with no choices")
        choice = choices[0]
        if text_completion:
            text = getattr(choice, "text", None)
        else:
            message = getattr(choice, "message", None)
            text = getattr(message, "content", None)
        usage = getattr(raw, "usage", None)
        return Response(
            text=text or "",
            finish_reason=getattr(choice, "finish_reason", None),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=self._cost(raw),
            latency_s=latency,
            model_version=getattr(raw, "model", None) or None,
        )

    def _cost(self, raw: Any) -> float | None:
        """Custom prices when given; else the cost litellm already computed for the call (reused,
        not recomputed: it is a large part of litellm's per-call time). Unknown price: None."""
        options = self.options
        if options.input_cost_per_token is not None and options.output_cost_per_token is not None:
            try:
                return float(self._lib().completion_cost(
                    completion_response=raw, custom_cost_per_token={
                        "input_cost_per_token": options.input_cost_per_token,
                        "output_cost_per_token": options.output_cost_per_token}))
            except Exception:
                return None
        hidden = getattr(raw, "_hidden_params", None) or {}
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else getattr(hidden, "response_cost", None)
        if cost is None:
            return None
        return float(cost)


# ---- errors ---------------------------------------------------------------------------------------
def classify(exc: BaseException) -> ModelCallError:
    """A litellm/openai exception as a ModelCallError whose kind says whether a retry can help."""
    import litellm
    import openai

    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        return ModelCallError("rate_limit", message, retry_after=retry_after_s(exc), status=429)
    if isinstance(exc, (litellm.Timeout, openai.APITimeoutError, TimeoutError)) or status == 408:
        return ModelCallError("timeout", message, status=status)
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or status in (401, 403):
        return ModelCallError("auth", message, status=status)
    if _caused_by_connection_failure(exc):  # litellm reports a refused connection as a 500
        return ModelCallError("connection", message, status=status)
    if _caused_by_malformed_body(exc):  # a truncated or non-JSON body: a server fault, worth a retry
        return ModelCallError("server", f"malformed response body: {message}", status=status)
    if isinstance(exc, (litellm.BadRequestError, litellm.NotFoundError, litellm.UnprocessableEntityError)) \
            or status in (400, 404, 413, 422):
        return ModelCallError("bad_request", message, status=status)
    if isinstance(exc, openai.APIConnectionError):
        return ModelCallError("connection", message, status=status)
    if status is not None and status >= 500 or isinstance(exc, (
            litellm.InternalServerError, litellm.ServiceUnavailableError, litellm.BadGatewayError)):
        return ModelCallError("server", message, status=status)
    if isinstance(exc, (litellm.APIError, openai.APIError)):  # provider error without a usable status
        return ModelCallError("server", message, status=status)
    return ModelCallError("unavailable", message, status=status)


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < 16:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _caused_by_connection_failure(exc: BaseException) -> bool:
    import httpx
    import openai

    for cause in _causes(exc):
        if isinstance(cause, (openai.APITimeoutError, httpx.TimeoutException)):
            return False  # a timeout, classified as such by the caller
        if isinstance(cause, (openai.APIConnectionError, httpx.ConnectError, httpx.RemoteProtocolError,
                              ConnectionError)):
            return True
    return False


def _caused_by_malformed_body(exc: BaseException) -> bool:
    return any(isinstance(cause, json.JSONDecodeError) for cause in _causes(exc))


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After-Ms, Retry-After as seconds or HTTP date)."""
    for headers in (getattr(exc, "headers", None), getattr(exc, "litellm_response_headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        if not headers:
            continue
        lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
        if "retry-after-ms" in lowered:
            try:
                return max(0.0, float(lowered["retry-after-ms"]) / 1000)
            except ValueError:
                pass
        if "retry-after" in lowered:
            return parse_retry_after(lowered["retry-after"])
    return None


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
