"""The shape every HTTP API adapter shares: one request, one HTTP call, one Response or one
classified ModelCallError. Subclasses only say how a request is sent and what a call costs."""
from __future__ import annotations

import asyncio
import importlib
import json
import time
from typing import Any, ClassVar, Mapping, Sequence

from workbench.errors import ModelCallError
from workbench.items.fields import api_response_format, api_tools
from workbench.items.tool_calls import ToolCall, ToolNames, function_of, tool_names
from workbench.models import preload
from workbench.models.api_errors import classify
from workbench.models.api_options import ApiOptions, token_cost
from workbench.models.base import Adapter, Outcome, Request, Response
from workbench.secrets import redact_url_credentials


class ApiAdapter(Adapter):
    """Many calls in flight at once, one request each; retries, timeouts and caching stay in
    `workbench.generation.calls`. Subclasses implement `_send` and `resolved_api_base`."""

    options: ApiOptions
    max_batch = 1
    concurrent = True
    # Modules the SDK would import inside the first call (seconds of it), imported in prepare().
    lazy_modules: ClassVar[tuple[str, ...]] = ()
    _identity: dict[str, Any] | None = None
    _warm = False

    def resolved_api_base(self) -> str | None:
        """Where calls really go, for the cache key: a different endpoint is a different model."""
        raise NotImplementedError

    def endpoint_identity(self) -> dict[str, Any]:
        """The endpoint's part of the identity: where calls go. `litellm/` with several
        deployments replaces it (calls go to any of them, and adding one keeps the cache)."""
        base = self.resolved_api_base()  # credentials in the URL are neither recorded nor part of the key
        return {"api_base": redact_url_credentials(base) if base else base}

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            identity: dict[str, Any] = {"provider": self.provider, "model": self.model, **self.endpoint_identity()}
            if self.options.extra_headers:  # names only: values may be credentials
                identity["extra_headers"] = sorted(self.options.extra_headers)
            self._identity = identity
        return self._identity

    async def prepare(self) -> None:
        if not self._warm:
            await asyncio.to_thread(self._warm_up)  # seconds of imports, outside any call's timeout

    def _warm_up(self) -> None:
        """Import what the client otherwise imports during the first call, so that call's recorded
        latency is the provider's, not ours. Subclasses add what else their first call needs.
        A background import still running is waited for first: two threads importing into the
        same package (openai) could meet importlib's deadlock guard."""
        preload.wait()
        self._warm = True
        for module in self.lazy_modules:
            try:
                importlib.import_module(module)
            except ImportError:  # another SDK version: only the first call's latency suffers
                pass

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        if len(requests) == 1:
            return [await self._call(requests[0], timeout_s)]
        return list(await asyncio.gather(*(self._call(r, timeout_s) for r in requests)))

    async def _send(self, request: Request, timeout_s: float) -> Any:
        """The provider's raw answer to one request (chat or text completion); raises on failure."""
        raise NotImplementedError

    def _prices(self) -> tuple[float, float] | None:
        """(input, output) USD per token: the custom prices when given, else unknown."""
        return self.options.prices

    def _cost(self, raw: Any, usage: Any) -> float | None:
        return token_cost(self._prices(), getattr(usage, "prompt_tokens", None),
                          getattr(usage, "completion_tokens", None))

    async def _call(self, request: Request, timeout_s: float) -> Outcome:
        try:
            if not self._warm:  # generate() without prepare()
                self._warm_up()
            start = time.perf_counter()
            raw = await self._send(request, timeout_s)
            return self._response(raw, time.perf_counter() - start, text_completion=request.prompt is not None,
                                  names=request_tool_names(request))
        except ModelCallError as exc:
            return exc
        except Exception as exc:
            return classify(exc)

    def _response(self, raw: Any, latency: float, text_completion: bool, names: ToolNames | None = None) -> Outcome:
        choices = getattr(raw, "choices", None) or []
        if not choices:
            return ModelCallError("bad_output", f"{self.name} answered with no choices")
        choice = choices[0]
        calls: tuple[ToolCall, ...] = ()
        if text_completion:
            text = getattr(choice, "text", None)
        else:
            message = getattr(choice, "message", None)
            text = getattr(message, "content", None)
            calls = answered_calls(getattr(message, "tool_calls", None), names)
        usage = getattr(raw, "usage", None)
        return Response(
            text=text or "",
            finish_reason=getattr(choice, "finish_reason", None),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=self._cost(raw, usage),
            latency_s=latency,
            model_version=getattr(raw, "model", None) or None,
            tool_calls=calls,
        )


def request_kwargs(request: Request) -> dict[str, Any]:
    """The OpenAI-style body of one request: sampling, then `prompt` (text completion, no chat
    template: what a base model needs) or `messages`. top_p is left out at its default of 1.0:
    some APIs reject it beside temperature."""
    sampling = request.sampling
    kwargs: dict[str, Any] = {"temperature": sampling.temperature, "max_tokens": sampling.max_tokens}
    if sampling.top_p != 1.0:
        kwargs["top_p"] = sampling.top_p
    if sampling.seed is not None:
        kwargs["seed"] = sampling.seed
    if sampling.stop:
        kwargs["stop"] = list(sampling.stop)
    if request.prompt is not None:
        kwargs["prompt"] = request.prompt
        return kwargs
    names = request_tool_names(request)
    kwargs["messages"] = api_messages(request.messages, names)
    if request.tools:
        kwargs["tools"] = api_tools(request.tools, names)
    if request.tool_choice is not None:
        choice = request.tool_choice
        if isinstance(choice, dict):
            name = function_of(choice)["name"]
            choice = {"type": "function", "function": {"name": names.to_api.get(name, name) if names else name}}
        kwargs["tool_choice"] = choice
    if request.response_format is not None:
        kwargs["response_format"] = api_response_format(request.response_format)
    return kwargs


def request_tool_names(request: Request) -> ToolNames | None:
    """The request's declared names mapped to ones an API accepts (None: no tools)."""
    return ToolNames(tool_names(request.tools)) if request.tools else None


def api_messages(messages: Sequence[Mapping[str, Any]], names: ToolNames | None) -> list[dict[str, Any]]:
    """Turns in OpenAI's form: an assistant's calls as `{id, type, function: {name, arguments: JSON text}}`
    (a plain `{name, arguments}` is converted, a missing id given), names mapped, and a tool result
    without `tool_call_id` answering the earliest call not yet answered."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for n, message in enumerate(messages):
        turn = dict(message)
        if turn.get("tool_calls"):
            converted = []
            for k, call in enumerate(turn["tool_calls"]):
                function = function_of(call)
                arguments = function.get("arguments", {})
                call_id = call.get("id") or f"call_{n}_{k}"
                name = function["name"]
                converted.append({"id": call_id, "type": "function", "function": {
                    "name": names.to_api.get(name, name) if names else name,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)}})
                pending.append(call_id)
            turn["tool_calls"] = converted
        elif turn.get("role") == "tool":
            if not turn.get("tool_call_id") and pending:
                turn["tool_call_id"] = pending[0]
            if turn.get("tool_call_id") in pending:
                pending.remove(turn["tool_call_id"])
        out.append(turn)
    return out


def answered_calls(raw_calls: Any, names: ToolNames | None) -> tuple[ToolCall, ...]:
    """The calls in an OpenAI-style message, with their declared names restored."""
    calls = []
    for raw in raw_calls or ():
        function = getattr(raw, "function", None)
        if function is None and isinstance(raw, Mapping):
            function = raw.get("function", raw)
        name = getattr(function, "name", None) if not isinstance(function, Mapping) else function.get("name")
        arguments = getattr(function, "arguments", None) if not isinstance(function, Mapping) else function.get("arguments")
        call_id = getattr(raw, "id", None) if not isinstance(raw, Mapping) else raw.get("id")
        name = str(name or "")
        calls.append(ToolCall.parse(names.original(name) if names else name, arguments, call_id))
    return tuple(calls)
