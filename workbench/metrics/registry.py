"""Metrics by name: built-ins, user registrations, and factory specs such as "contains:refund".

Spec strings exist because notebook parameters are literals: a notebook can say
`metrics = ["bleu", "contains:返金", "regex:^\\d+$", "json_schema:schemas/reply.json"]`.
The part after the first ":" is the factory's argument and the whole spec is the metric name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from workbench.errors import InputError
from workbench.metrics import reference, semantic, structure
from workbench.metrics.base import Metric

_REGISTRY: dict[str, Metric] = {m.name: m for mod in (reference, structure, semantic) for m in mod.METRICS}


def _schema_from_file(spec: str, path: str) -> Metric:
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"metric {spec!r}: cannot read JSON schema from {path!r}: {exc}") from exc
    return structure.json_schema(schema, name=spec)


FACTORIES: dict[str, Callable[[str, str], Metric]] = {
    "contains": lambda spec, arg: structure.contains(arg, name=spec),
    "icontains": lambda spec, arg: structure.contains(arg, case_sensitive=False, name=spec),
    "regex": lambda spec, arg: structure.regex(arg, name=spec),
    "json_schema": _schema_from_file,
}


def get_metric(spec: str | Metric) -> Metric:
    """A Metric from a registered name, a factory spec ("contains:...", "icontains:...",
    "regex:...", "json_schema:<path>") or a Metric (returned as-is)."""
    if isinstance(spec, Metric):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"a metric must be a name or a Metric, got {type(spec).__name__}")
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    prefix, sep, arg = spec.partition(":")
    if sep and prefix in FACTORIES:
        if not arg:
            raise InputError(f"metric {spec!r}: nothing after '{prefix}:'")
        try:
            return FACTORIES[prefix](spec, arg)
        except InputError:
            raise
        except Exception as exc:  # re.error, jsonschema.SchemaError, ValueError: the argument is bad
            raise InputError(f"metric {spec!r}: {type(exc).__name__}: {exc}") from exc
    raise InputError(
        f"unknown metric {spec!r}; available: {', '.join(available_metrics())}; "
        f"factories: {', '.join(p + ':<arg>' for p in FACTORIES)}"
    )


def available_metrics() -> list[str]:
    """Registered metric names (factory specs are listed in `FACTORIES`)."""
    return sorted(_REGISTRY)


def register_metric(metric: Metric, replace: bool = False) -> Metric:
    """Make a custom metric available by name. Refuses to shadow a name unless `replace`."""
    if not isinstance(metric, Metric):
        raise TypeError("register_metric takes a Metric")
    if metric.name.partition(":")[0] in FACTORIES and ":" in metric.name:
        raise ValueError(f"{metric.name!r} would shadow a factory spec")
    if metric.name in _REGISTRY and not replace:
        raise ValueError(f"metric {metric.name!r} is already registered (pass replace=True)")
    _REGISTRY[metric.name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a registered metric (for tests and notebooks that re-define one)."""
    _REGISTRY.pop(name, None)


def metric_info(metrics: Iterable[str | Metric] | None = None) -> pd.DataFrame:
    """Direction, aggregation, reference need, range and description per metric, to join onto
    a scores frame by `metric`."""
    chosen = [get_metric(m) for m in (available_metrics() if metrics is None else metrics)]
    return pd.DataFrame([m.info() for m in chosen],
                        columns=["metric", "higher_is_better", "aggregation", "needs_reference",
                                 "value_range", "description"])
