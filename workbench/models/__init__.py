"""Model adapters, registered by name as "provider/model".

`get_model("litellm/gpt-4o-mini", api_base=...)` returns an adapter; `make_adapter` also takes the
folder a relative `hf/`, `vllm/` or `replay/` path resolves against (the user's project). Registering a
built-in provider is one line in `_PROVIDERS`; a third-party one is an entry point of the
`workbench.adapters` group (`workbench.plugins`), looked up only for a prefix that is not built in.
Adapters import their heavy libraries lazily. Local models (`hf/`, `vllm/`) stay loaded across
adapters of one process; `release_local_models()` unloads them. The `fake/` test
double exists only where the test suite switches it on (`WORKBENCH_TEST_PROVIDERS=1`, set by
tests/conftest.py so that CLI subprocesses and notebook kernels of a test inherit it): a user can
never pick it, by mistake or as a fallback.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from workbench import plugins
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


def _plugins() -> dict[str, plugins.Plugin]:
    """The adapters of installed plugins (read once; a plugin may not claim a built-in prefix)."""
    return plugins.table(plugins.ADAPTERS, builtins=[*_PROVIDERS, *_TEST_PROVIDERS])


def providers() -> list[str]:
    """Every model prefix: the built-in ones and those of installed plugins."""
    return sorted({*_registered(), *_plugins()})


def split_name(name: str) -> tuple[str, str]:
    """'litellm/openai/gpt-4o' -> ('litellm', 'openai/gpt-4o')."""
    provider, sep, model = name.partition("/")
    if not sep or not model:
        raise UnknownModelError(f"model name '{name}' must look like 'provider/model' (providers: {', '.join(providers())})")
    if provider not in _registered():
        if provider not in _plugins():
            raise UnknownModelError(f"unknown model provider '{provider}' in '{name}' (known: {', '.join(providers())})")
        _plugin_class(provider)  # a plugin that cannot serve the name is named now, before anything runs
    return provider, model


def adapter_class(provider: str) -> type[Adapter]:
    if provider not in _registered():
        return _plugin_class(provider)
    module_name, _, class_name = _registered()[provider].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def _plugin_class(provider: str) -> type[Adapter]:
    """The adapter class of the plugin serving `provider`, imported on first use and checked against
    the protocol (`Adapter`): a wrong object is named here, not as an AttributeError mid-run."""
    plugin = _plugins()[provider]
    cls = plugin.load()
    if callable(cls) and not isinstance(cls, type):  # a factory: the plugin defers its imports to this call
        try:
            cls = cls()
        except Exception as exc:  # noqa: BLE001 - third-party code: one line naming the plugin
            raise plugins.PluginError(f"{plugin.describe()}: its factory failed: {type(exc).__name__}: {exc}"
                                      .splitlines()[0]) from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise plugins.PluginError(f"{plugin.describe()} must name a subclass of workbench.Adapter (or a function "
                                  f"returning one), got {cls!r}")
    options_model = getattr(cls, "options_model", None)
    if not (isinstance(options_model, type) and issubclass(options_model, BaseModel)):
        raise plugins.PluginError(f"{plugin.describe()}: {cls.__name__}.options_model must be a pydantic model "
                                  "of the adapter's options (extra=\"forbid\")")
    if getattr(cls, "provider", None) != provider:
        raise plugins.PluginError(f"{plugin.describe()}: {cls.__name__}.provider is {getattr(cls, 'provider', None)!r}"
                                  f", but the entry point registers it as '{provider}'; make them equal")
    return cls


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
