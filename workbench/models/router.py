"""Several deployments of one model (replicas of a server, regions, keys) behind litellm's Router.

The `litellm/` adapter takes them as the option `deployments`; everything here turns that option
into one `litellm.Router` and reads back which deployments are cooling down. What litellm does
with it (litellm 1.110, read in its source and checked against local servers in
tests/models/test_router.py):

- Each call picks one deployment not in cooldown. `least-busy` (the default without rate limits)
  picks the one with the fewest calls in flight, so a slow replica gets fewer calls and the
  throughput approaches the sum of the replicas'. `usage-based-routing-v2` (the default when a
  deployment sets `rpm` or `tpm`) leaves out the deployments that reached their limit in the
  current minute and picks the least used; when all have, the call fails as a rate limit
  ("No deployments available"), which the call layer retries after its backoff.
- A failure (5xx, a timeout, a refused connection, 429, 401, 404) counts against its
  deployment; after more than `allowed_fails` of them within `cooldown_s`, the deployment
  gets no calls for `cooldown_s`. Other 4xx errors (a bad request) never cool a deployment down.
- One retry loop: the Router is built with `num_retries=0` and no fallbacks, and each
  deployment's SDK client with `max_retries=0`, so one `generate` is one HTTP request. The
  call layer (`workbench.generation.calls`) owns retries, backoff and timeouts; its retry of a failed call
  goes through the Router again, which picks a deployment anew and skips those in cooldown:
  that is the failover.

Keys are read from environment variables named in the options, never written in them.
"""
from __future__ import annotations

import re
import time
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.models.api_options import key_from_env
from workbench.secrets import endpoint_problem, register_key_variable

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

RoutingStrategy = Literal["least-busy", "usage-based-routing-v2", "simple-shuffle", "latency-based-routing"]


class Deployment(BaseModel):
    """One place that serves the model. Unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base: str | None = None  # e.g. http://10.0.0.5:8000/v1; None: the provider's default endpoint
    api_key_env: str | None = None  # NAME of the variable holding this deployment's key
    model: str | None = None  # the provider's name for the model here (e.g. an Azure deployment name)
    rpm: int | None = Field(None, ge=1)  # requests per minute this deployment allows
    tpm: int | None = Field(None, ge=1)  # tokens per minute
    max_parallel_requests: int | None = Field(None, ge=1)  # calls in flight to it at most

    @field_validator("api_key_env")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):  # the message never repeats the value
            raise ValueError("must be the NAME of an environment variable (e.g. VLLM_KEY_1), not a key")
        if value is not None:
            register_key_variable(value)  # redacted wherever it is echoed, whatever its name
        return value

    @field_validator("api_base")
    @classmethod
    def _is_a_url(cls, value: str | None) -> str | None:
        """A base URL only: options are recorded with every run, so no credentials in it."""
        if value is None:
            return value
        problem = endpoint_problem(value, recorded=True)
        if problem:
            raise ValueError(problem)
        return value.rstrip("/")

    def label(self, index: int) -> str:
        """How messages name the deployment: its URL, else its model and key variable."""
        return self.api_base or f"deployment {index} ({self.model or 'default endpoint'}, {self.api_key_env or 'default key'})"


def default_strategy(deployments: Sequence[Deployment]) -> RoutingStrategy:
    """Rate limits need the strategy that honours them; without them, fewest calls in flight."""
    return "usage-based-routing-v2" if any(d.rpm or d.tpm for d in deployments) else "least-busy"


def deployment_id(index: int) -> str:
    return f"deployment-{index}"


def model_list(model: str, deployments: Sequence[Deployment], default_key_env: str | None) -> list[dict[str, Any]]:
    """litellm's `model_list`: one entry per deployment under the group name `model`. Keys are read
    here (raises ModelCallError 'auth' naming the variable when one is unset)."""
    entries = []
    for index, deployment in enumerate(deployments):
        params: dict[str, Any] = {"model": deployment.model or model, "max_retries": 0}  # no SDK retries
        if deployment.api_base:
            params["api_base"] = deployment.api_base
        key_env = deployment.api_key_env or default_key_env
        if key_env:
            params["api_key"] = key_from_env(key_env, f"named by deployments[{index}].api_key_env"
                                             if deployment.api_key_env else "named by api_key_env")
        for limit in ("rpm", "tpm", "max_parallel_requests"):
            if getattr(deployment, limit) is not None:
                params[limit] = getattr(deployment, limit)
        entries.append({"model_name": model, "litellm_params": params, "model_info": {"id": deployment_id(index)}})
    return entries


def build_router(litellm: Any, model: str, deployments: Sequence[Deployment], default_key_env: str | None,
                 strategy: RoutingStrategy, allowed_fails: int, cooldown_s: float) -> Any:
    """One Router for one logical model. Retries, fallbacks and failover re-picks are off: the
    call layer owns the retry loop (see the module docstring)."""
    known = set(litellm.model_cost)
    router = litellm.Router(
        model_list=model_list(model, deployments, default_key_env),
        routing_strategy=strategy,
        num_retries=0,
        max_fallbacks=0,
        enable_weighted_failover=False,
        allowed_fails=allowed_fails,
        cooldown_time=cooldown_s,
    )
    # The Router registers each deployment in litellm's global price map with zero prices, after which
    # every call to that model name anywhere in the process would cost "0.0" instead of "unknown".
    # Library code must not leave global state behind: take those entries out again.
    for name in set(litellm.model_cost) - known:
        litellm.model_cost.pop(name, None)
    return router


def cooling_down(router: Any, count: int) -> dict[int, float]:
    """Deployments in cooldown now: index -> when the cooldown began (time.time()). Empty when
    this litellm does not expose it (diagnostics only; routing does not depend on it)."""
    try:
        active = router.health().cooldowns.get_active_cooldowns([deployment_id(i) for i in range(count)], None)
    except Exception:  # noqa: BLE001 - another litellm layout
        return {}
    found = {}
    for model_id, value in active:
        index = int(str(model_id).rsplit("-", 1)[-1])
        since = value.get("timestamp") if isinstance(value, dict) else getattr(value, "timestamp", None)
        found[index] = float(since) if since is not None else time.time()
    return found
