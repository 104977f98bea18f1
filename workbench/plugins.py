"""Third-party model adapters and metrics, found through Python entry points (as `llm` and `pytest`
plugins are). A distribution declares them in its pyproject.toml:

    [project.entry-points."workbench.adapters"]
    mycloud = "mycloud_workbench:MyCloudAdapter"   # serves the model names mycloud/<model>
    [project.entry-points."workbench.metrics"]
    toxicity = "mycloud_workbench:toxicity"        # a Metric named toxicity, or a function registering it

Discovery is lazy: the table of entry points is read the first time a name is not a built-in one,
and a plugin is imported only when its own name is used, so `import workbench` stays cheap and a
broken plugin never breaks a command that does not use it. A plugin that fails to import, declares a
built-in name or a name another distribution declares too is one `PluginError` naming the plugin and
its distribution: a built-in is never replaced, silently or otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Iterable

from workbench.errors import WorkbenchError

ADAPTERS = "workbench.adapters"  # name: the model prefix; value: an Adapter subclass (or a function returning one)
METRICS = "workbench.metrics"  # name: the metric name; value: a Metric, or a function that registers it

_TABLES: dict[str, dict[str, "Plugin"]] = {}


class PluginError(WorkbenchError):
    """A plugin that cannot be used: it fails to import, gives the wrong kind of object, or claims a
    name that is taken. The message names the plugin, its entry point and its distribution."""


@dataclass(frozen=True)
class Plugin:
    """One entry point of a workbench group, not yet imported."""

    group: str
    name: str
    value: str  # "module:attribute", as the distribution declares it
    distribution: str  # "name version", as `pip list` shows it
    entry_point: EntryPoint

    def describe(self) -> str:
        return f"plugin '{self.name}' ({self.group} = \"{self.value}\" of distribution {self.distribution})"

    def load(self) -> Any:
        """The object the entry point names; any failure to import it is one PluginError."""
        try:
            return self.entry_point.load()
        except Exception as exc:  # noqa: BLE001 - whatever a third-party import raises, the user sees one line
            raise PluginError(f"{self.describe()} failed to load: {type(exc).__name__}: {exc}".splitlines()[0]
                              + f" (fix or uninstall {self.distribution.split()[0]})") from None


def _distribution(entry_point: EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "unknown distribution"
    return f"{dist.metadata['Name'] or dist.name} {dist.version}"


def table(group: str, builtins: Iterable[str]) -> dict[str, Plugin]:
    """name -> Plugin of `group`, read from the installed distributions once per process (`refresh`
    reads again). A plugin claiming one of `builtins`, or a name two distributions claim, raises."""
    if group not in _TABLES:
        found: dict[str, Plugin] = {}
        for entry_point in entry_points(group=group):
            plugin = Plugin(group, entry_point.name, entry_point.value, _distribution(entry_point), entry_point)
            other = found.get(plugin.name)
            if other is not None and other.distribution != plugin.distribution:
                raise PluginError(f"{plugin.describe()} and {other.describe()} claim the same name; "
                                  "uninstall one of them")
            found[plugin.name] = plugin
        _TABLES[group] = found
    taken = sorted(set(_TABLES[group]) & set(builtins))
    if taken:
        plugin = _TABLES[group][taken[0]]
        kind = "model provider" if group == ADAPTERS else "metric"
        raise PluginError(f"{plugin.describe()} claims the built-in {kind} name '{plugin.name}', which a plugin "
                          "cannot replace; the plugin must use another name")
    return _TABLES[group]


def installed() -> list[Plugin]:
    """Every plugin of both groups, by group and name, without importing any (for `workbench doctor`)."""
    return [plugin for group in (ADAPTERS, METRICS) for _, plugin in sorted(table(group, builtins=()).items())]


def refresh() -> None:
    """Read the entry points again on the next look-up (a notebook that installed a plugin after start)."""
    _TABLES.clear()
