"""Metrics by name: built-ins, user registrations, and factory specs such as "contains:refund".

Spec strings exist because notebook parameters are literals: a notebook can say
`metrics = ["bleu", "contains:返金", "regex:^\\d+$", "json_schema:schemas/reply.json"]`.
The part after the first ":" is the factory's argument and the whole spec is the metric name.
A name that is neither registered nor a factory spec is looked up among the installed plugins' metrics
(the `workbench.metrics` entry points, `workbench.plugins`), which are imported only then.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from workbench import plugins
from workbench.errors import InputError
from workbench.items.fields import ANY_CALL
from workbench.metrics import json_answers, reference, semantic, structure, tool_calls
from workbench.metrics.base import Metric
from workbench.values import is_blank

_REGISTRY: dict[str, Metric] = {m.name: m for mod in (reference, structure, semantic, tool_calls, json_answers)
                                for m in mod.METRICS}
BUILTIN_METRICS: frozenset[str] = frozenset(_REGISTRY)


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
    plugin = _plugins().get(spec)
    if plugin is not None:
        return _load_plugin_metric(plugin)
    raise InputError(
        f"unknown metric {spec!r}; available: {', '.join(sorted({*available_metrics(), *_plugins()}))}; "
        f"factories: {', '.join(p + ':<arg>' for p in FACTORIES)}"
    )


def _plugins() -> dict[str, plugins.Plugin]:
    """The metrics of installed plugins (read once; a plugin may not claim a built-in name)."""
    return plugins.table(plugins.METRICS, builtins=BUILTIN_METRICS)


def _load_plugin_metric(plugin: plugins.Plugin) -> Metric:
    """Import a plugin's metric and register it under its entry-point name. The entry point names a
    Metric, or a function that registers it (`register_metric`) or returns it. A plugin that replaces
    a metric already registered is refused, and the registry is left as it was."""
    before = registered()
    target = plugin.load()
    try:
        if callable(target) and not isinstance(target, Metric):
            target = target()
        if isinstance(target, Metric) and _REGISTRY.get(target.name) is not target:
            register_metric(target)
    except Exception as exc:  # noqa: BLE001 - third-party code: one line naming the plugin
        restore(before)
        raise plugins.PluginError(f"{plugin.describe()}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    replaced = sorted(name for name, metric in before.items() if _REGISTRY.get(name) is not metric)
    if replaced or plugin.name not in _REGISTRY:
        restore(before)
        raise plugins.PluginError(
            f"{plugin.describe()} replaced the registered metric(s) {', '.join(replaced)}, which a plugin cannot do"
            if replaced else f"{plugin.describe()} registered no metric named '{plugin.name}' (it must name a Metric "
            f"called '{plugin.name}', or a function that registers or returns one)")
    return _REGISTRY[plugin.name]


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


def registered() -> dict[str, Metric]:
    """A copy of the registry (name -> Metric), for code that must undo what a module registered."""
    return dict(_REGISTRY)


def restore(snapshot: dict[str, Metric]) -> None:
    """Make the registry exactly `snapshot` again (a plugin or metrics module that failed half-way)."""
    _REGISTRY.clear()
    _REGISTRY.update(snapshot)


def unregister_metric(name: str) -> None:
    """Remove a registered metric (for tests and notebooks that re-define one)."""
    _REGISTRY.pop(name, None)


APP_METRICS: tuple[str, ...] = (*(m.name for m in tool_calls.METRICS), *(m.name for m in json_answers.METRICS))


def app_metrics(items: pd.DataFrame) -> list[str]:
    """The metrics an item set's application fields call for, so that a tool-calling or JSON app is
    scored as one without listing them: the tool-call metrics that apply to some item (accuracy, name /
    argument-key / argument-value match where calls are expected, irrelevance where none is, relevance
    where one is), `tool_args_valid` when items declare tools, `json_schema_valid` when they carry a
    response_format (and `json_field_agreement` when a reference is JSON)."""
    def present(column: str) -> list:
        if column not in items.columns:
            return []
        return [v for v in items[column].tolist() if not is_blank(v)]

    chosen: list[str] = []
    expected = present("expected_calls")
    if expected:
        chosen.append("tool_call_accuracy")
        if any(isinstance(e, list) and e for e in expected) or any(isinstance(e, str) and e.strip() not in
                                                                    ("[]", ANY_CALL) for e in expected):
            chosen += ["tool_name_match", "tool_arg_key_match", "tool_arg_value_match"]
        if any(e == [] or (isinstance(e, str) and e.strip() == "[]") for e in expected):
            chosen.append("tool_irrelevance")
        if any(e != [] and not (isinstance(e, str) and e.strip() == "[]") for e in expected):
            chosen.append("tool_relevance")
    if present("tools"):
        chosen.append("tool_args_valid")
    if present("response_format"):
        chosen.append("json_schema_valid")
        if "reference" in items.columns and any(
                isinstance(json_answers.parse_answer(r) if isinstance(r, str) else None, (dict, list))
                for r in items["reference"].tolist()):
            chosen.append("json_field_agreement")
    return chosen


def with_app_metrics(metrics: Iterable[str | Metric], items: pd.DataFrame) -> list[str | Metric]:
    """`metrics` plus the `app_metrics` of the items not already among them (the default metric set of
    a run: a text app gets exactly `metrics`)."""
    chosen = list(metrics)
    names = {m.name if isinstance(m, Metric) else m for m in chosen}
    return chosen + [m for m in app_metrics(items) if m not in names]


def metric_info(metrics: Iterable[str | Metric] | None = None) -> pd.DataFrame:
    """Direction, aggregation, reference need, range and description per metric, to join onto
    a scores frame by `metric`."""
    chosen = [get_metric(m) for m in (available_metrics() if metrics is None else metrics)]
    return pd.DataFrame([m.info() for m in chosen],
                        columns=["metric", "higher_is_better", "aggregation", "needs_reference",
                                 "value_range", "description"])
