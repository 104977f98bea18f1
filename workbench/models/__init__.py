"""Model adapters, registered by name as "provider/model".

`get_model("litellm/gpt-4o-mini", api_base=...)` returns an adapter; `make_adapter` also takes the
folder a relative `hf/`, `vllm/` or `replay/` path resolves against (the user's project). Registering a
provider is one line in `_PROVIDERS`; adapters import their heavy libraries lazily. Local models
(`hf/`, `vllm/`) stay loaded across adapters of one process; `release_local_models()` unloads them. The `fake/` test
double exists only where the test suite switches it on (`WORKBENCH_TEST_PROVIDERS=1`, set by
tests/conftest.py so that CLI subprocesses and notebook kernels of a test inherit it): a user can
never pick it, by mistake or as a fallback.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from workbench.errors import InputError, UnknownModelError
from workbench.models.base import Adapter, Outcome, Request, Response, Sampling
from workbench.models.loaded_models import loaded_local_models, release_local_models

__all__ = ["Adapter", "Outcome", "Request", "Response", "Sampling", "default_timeout_s", "get_model", "loaded_local_models",
           "make_adapter", "providers", "release_local_models", "split_name", "takes_api_base"]

# provider -> "module:Class"; the module is imported only when the provider is used.
_PROVIDERS: dict[str, str] = {
    "litellm": "workbench.models.litellm_adapter:LiteLLMAdapter",
    "openai": "workbench.models.openai_adapter:OpenAIAdapter",
    "hf": "workbench.models.hf_adapter:HFAdapter",
    "vllm": "workbench.models.vllm_adapter:VLLMAdapter",
    "replay": "workbench.models.replay_adapter:ReplayAdapter",
}
# test doubles, registered only while TEST_PROVIDERS_ENV is "1" (the test suite)
_TEST_PROVIDERS: dict[str, str] = {"fake": "workbench.models.fake_adapter:FakeAdapter"}
TEST_PROVIDERS_ENV = "WORKBENCH_TEST_PROVIDERS"


def _registered() -> dict[str, str]:
    if os.environ.get(TEST_PROVIDERS_ENV) == "1":
        return {**_TEST_PROVIDERS, **_PROVIDERS}
    return _PROVIDERS


def providers() -> list[str]:
    return sorted(_registered())


def split_name(name: str) -> tuple[str, str]:
    """'litellm/openai/gpt-4o' -> ('litellm', 'openai/gpt-4o')."""
    provider, sep, model = name.partition("/")
    if not sep or not model:
        raise UnknownModelError(f"model name '{name}' must look like 'provider/model' (providers: {', '.join(providers())})")
    if provider not in _registered():
        raise UnknownModelError(f"unknown model provider '{provider}' in '{name}' (known: {', '.join(providers())})")
    return provider, model


def adapter_class(provider: str) -> type[Adapter]:
    module_name, _, class_name = _registered()[provider].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def takes_api_base(name: str) -> bool:
    """Whether the model's adapter sends its calls to an endpoint (`api_base`); False for an
    unknown name, which `get_model` rejects with the reason."""
    try:
        provider, _ = split_name(name)
    except UnknownModelError:
        return False
    return "api_base" in adapter_class(provider).options_model.model_fields


def default_timeout_s(name: str) -> float:
    """The per-call limit a model gets unless the user sets one: an API call is one request, a local
    model's call a batch of many rows (see `Adapter.default_timeout_s`)."""
    provider, _ = split_name(name)
    return adapter_class(provider).default_timeout_s


def make_adapter(name: str, options: Mapping[str, Any] | None = None, base_dir: str | Path | None = None) -> Adapter:
    """Build the adapter for `name`; unknown or ill-typed options raise InputError naming them. A
    relative model path (`hf/models/mine`, `replay/logs/prod.jsonl`) resolves against `base_dir`
    (None: the current folder)."""
    provider, model = split_name(name)
    cls = adapter_class(provider)
    try:
        parsed = cls.options_model(**dict(options or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"options for model '{name}': {problems}") from None
    if cls.local_files and base_dir is not None:
        return cls(model, parsed, base_dir=Path(base_dir))  # type: ignore[call-arg]
    return cls(model, parsed)


def get_model(name: str, **options: Any) -> Adapter:
    """`make_adapter` with the options as keywords and paths relative to the current folder."""
    return make_adapter(name, options)
