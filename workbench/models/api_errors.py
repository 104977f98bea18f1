"""What went wrong in an HTTP model call, as a ModelCallError whose kind says whether a retry helps.

Shared by the API adapters (`litellm/`, `openai/`): litellm's exceptions subclass the openai SDK's,
so one classification on the SDK's classes and the HTTP status covers both, without importing
litellm where it is not used.
"""
from __future__ import annotations

import email.utils
import json
import re
import sys
import time

from workbench.errors import ModelCallError


def classify(exc: BaseException) -> ModelCallError:
    import openai

    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = f"{type(exc).__name__}: {exc}"
    refusal = _refused_before_sending(exc)
    if refusal is not None:  # litellm reports the SDK's "Missing credentials" as a 500: nothing was sent
        return _not_sent(refusal)
    litellm = sys.modules.get("litellm")  # loaded if the error can be one of its own
    if litellm is not None and isinstance(exc, litellm.UnsupportedParamsError):  # checked before sending
        return ModelCallError("bad_request", message, status=status, sent=False)
    if isinstance(exc, openai.RateLimitError) or status == 429:
        return ModelCallError("rate_limit", message, retry_after=retry_after_s(exc), status=429)
    if isinstance(exc, (openai.APITimeoutError, TimeoutError)) or status == 408:
        return ModelCallError("timeout", message, status=status)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)) or status in (401, 403):
        return ModelCallError("auth", message, status=status)
    if _caused_by_connection_failure(exc):  # litellm reports a refused connection as a 500
        return ModelCallError("connection", message, status=status)
    if _caused_by_malformed_body(exc):  # a truncated or non-JSON body: a server fault, worth a retry
        return ModelCallError("server", f"malformed response body: {message}", status=status)
    if isinstance(exc, (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError)) \
            or status in (400, 404, 413, 422):
        return ModelCallError("bad_request", message, status=status)
    if isinstance(exc, openai.APIConnectionError):
        return ModelCallError("connection", message, status=status)
    if status is not None and status >= 500 or isinstance(exc, openai.InternalServerError):
        return ModelCallError("server", message, status=status)
    if isinstance(exc, openai.APIError):  # provider error without a usable status
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


def _not_sent(refusal: BaseException) -> ModelCallError:
    text = str(refusal)
    if not any(word in text.lower() for word in ("api_key", "credential", "api key")):
        return ModelCallError("bad_request", f"nothing sent: {text}", sent=False)
    names = list(dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9_]*_KEY\b", text)))  # e.g. OPENAI_API_KEY
    if names:
        return ModelCallError("auth", f"{' or '.join(names)} is not set", sent=False)
    return ModelCallError("auth", f"no API key, nothing sent: {text}", sent=False)


def _refused_before_sending(exc: BaseException) -> BaseException | None:
    """The openai SDK's refusal to build a request (no API key, a client setting missing): raised
    as the bare `openai.OpenAIError`, which the SDK uses for nothing else (errors of a request are
    `APIError`s; errors parsing an answer are subclasses)."""
    import openai

    return next((cause for cause in _causes(exc) if type(cause) is openai.OpenAIError), None)


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
