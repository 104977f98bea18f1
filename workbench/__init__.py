"""Migration Workbench: evidence for switching a GenAI application from model A to model B.

The public API is `__all__`, listed once below and documented in docs/api.md; every other module and
name is internal and may change. Importing the package is cheap and offline: the public names are
resolved on first use (PEP 562), and heavy libraries (torch, transformers, litellm, datasets) are
imported inside the functions that need them.
"""
from __future__ import annotations

import importlib

from workbench import _offline  # noqa: F401  (sets offline defaults before anything else)
from workbench import _moved

_moved.install()

__version__ = "0.1.0"

# public name -> the module that defines it (imported when the name is first used)
_PUBLIC: dict[str, str] = {
    # a migration, from parameters to verdict and report
    "MigrationConfig": "workbench.task.config",
    "build_config": "workbench.task.config",
    "project_config": "workbench.task.config",
    "notebook_config": "workbench.task.config",
    "run_pipeline": "workbench.pipeline",
    "MigrationResult": "workbench.pipeline",
    "run_report": "workbench.report.command",
    # items and prompt versions
    "load_items": "workbench.task.dataset",
    "load_prompt": "workbench.task.prompts",
    # models and the adapter protocol
    "get_model": "workbench.models",
    "providers": "workbench.models",
    "Adapter": "workbench.models.base",
    "Request": "workbench.models.base",
    "Response": "workbench.models.base",
    "Sampling": "workbench.models.base",
    # the store
    "open_store": "workbench.store",
    # metrics
    "Metric": "workbench.metrics.base",
    "register_metric": "workbench.metrics.registry",
    "unregister_metric": "workbench.metrics.registry",
    "get_metric": "workbench.metrics.registry",
    "available_metrics": "workbench.metrics.registry",
    "metric_info": "workbench.metrics.registry",
    "score_responses": "workbench.metrics.scoring",
    "contains": "workbench.metrics.structure",
    "regex": "workbench.metrics.structure",
    "json_schema": "workbench.metrics.structure",
    # judges
    "JudgeSpec": "workbench.judges.spec",
    "judge_pairwise": "workbench.judges.pairwise",
    "judge_pointwise": "workbench.judges.pointwise",
    # comparison and gate
    "worst_regressions": "workbench.comparison.compare",
    "latency_cost_summary": "workbench.comparison.compare",
    "GateConfig": "workbench.comparison.gate",
    "load_gate_config": "workbench.comparison.gate",
    # statistics
    "bootstrap_ci": "workbench.stats",
    "paired_delta_ci": "workbench.stats",
    "win_rate_ci": "workbench.stats",
    "cohen_kappa": "workbench.stats",
    "krippendorff_alpha": "workbench.stats",
    "bradley_terry": "workbench.stats",
    # notebook widgets
    "Explorer": "workbench.widgets",
    "PairLabeler": "workbench.widgets",
    # drift monitoring
    "DriftConfig": "workbench.monitor",
    "run_drift": "workbench.monitor",
    # errors
    "WorkbenchError": "workbench.errors",
    "InputError": "workbench.errors",
    "StoreError": "workbench.errors",
    "ModelCallError": "workbench.errors",
    "PluginError": "workbench.plugins",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
