"""The project's own metrics module (`metrics_module` in params.toml), loaded where the metrics are used.

A report's metrics are names (notebook parameters are literals), so a custom Python metric has to be
registered by name (`register_metric`) in every process that scores: the CLI and the report's
notebook kernel. The parameter names the module once, as a file relative to the project
(`my_metrics.py`) or a dotted module name (`myteam.metrics`, importable from the project folder);
`load_metrics_module` imports it (once per process, again when the file changed) and checks what
it registered. A missing file, an exception while it runs, or a name that is already registered is
one InputError naming the file and its line.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from workbench.errors import InputError
from workbench.metrics import registry

PARAMETER = "metrics_module"
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, int] | None  # the file's (mtime_ns, size) when it was run; None for a dotted module
    names: tuple[str, ...]  # the metrics it registered


_LOADED: dict[str, _Loaded] = {}  # resolved file or module name -> what loading it registered


def is_file_spec(spec: str) -> bool:
    """A file (`my_metrics.py`, `lib/metrics.py`) rather than a dotted module name."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def module_file(spec: str, base_dir: Path) -> Path | None:
    """The file a `metrics_module` value names (None for a dotted module name)."""
    if not is_file_spec(spec):
        return None
    path = Path(spec).expanduser()
    return (path if path.is_absolute() else base_dir / path).resolve()


def load_metrics_module(spec: str, base_dir: Path) -> list[str]:
    """Import the metrics module `spec` names and return the metric names it registered. Loading the
    same unchanged module again does nothing; an edited file replaces its own earlier metrics."""
    path = module_file(spec, base_dir)
    if path is None and not _DOTTED.fullmatch(spec):
        raise InputError(f"parameter '{PARAMETER}': {spec!r} is neither a .py file nor a dotted module name")
    if path is not None and not path.is_file():
        raise InputError(f"parameter '{PARAMETER}': {path} not found (a path relative to the parameters file's folder, "
                         f"{base_dir})")
    key = str(path) if path is not None else spec
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path is not None else None
    loaded = _LOADED.get(key)
    if loaded is not None and loaded.stamp == stamp:
        return list(loaded.names)
    if loaded is None and _imported_elsewhere(path, spec):  # e.g. `import my_metrics` in a notebook cell first:
        _LOADED[key] = _Loaded(stamp, ())  # its metrics are registered; running it again would clash with them
        return []
    previous = set(loaded.names) if loaded is not None else set()
    before = {name: metric for name, metric in registry.registered().items() if name not in previous}
    shown = str(path) if path is not None else f"module {spec}"
    registry.restore(before)  # the edited module registers its metrics anew
    try:
        _execute(path, spec, base_dir, shown)
    except BaseException:
        _forget(key, before)
        raise
    now = registry.registered()
    replaced = sorted(name for name, metric in before.items() if now.get(name) is not metric)
    names = tuple(sorted(set(now) - set(before)))
    if replaced:
        _forget(key, before)
        raise InputError(f"{shown}: registers metric(s) {', '.join(replaced)}, which another metric already has "
                         "(a built-in, a plugin or another module); give yours another name")
    if not names:
        _forget(key, before)
        raise InputError(f"{shown}: registered no metric; call workbench.register_metric(Metric(...)) at the "
                         "module's top level")
    _LOADED[key] = _Loaded(stamp, names)
    return list(names)


def _imported_elsewhere(path: Path | None, spec: str) -> bool:
    """Whether this process imported the module already, by its own name (so it registered its metrics)."""
    if path is None:
        return spec in sys.modules
    for module in list(sys.modules.values()):
        found = getattr(module, "__file__", None)
        if found and found.endswith(path.name) and Path(found).resolve() == path:
            return True
    return False


def module_record(spec: str, base_dir: Path) -> dict[str, object]:
    """What the manifest records of the module: its name, its file and content digest (the numbers
    of a report depend on the code that scored them), and the metrics it registered."""
    path = module_file(spec, base_dir)
    if path is None:
        module = sys.modules.get(spec)
        found = getattr(module, "__file__", None)
        path = Path(found) if found else None
    key = str(module_file(spec, base_dir) or spec)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path is not None and path.is_file() else None
    loaded = _LOADED.get(key)
    return {"module": spec, "file": str(path) if path else None, "sha256": digest,
            "metrics": list(loaded.names) if loaded else []}


def _execute(path: Path | None, spec: str, base_dir: Path, shown: str) -> ModuleType:
    """Run the module; whatever it raises becomes one InputError naming the file and the line."""
    if path is not None:
        name = "workbench_user_metrics_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None  # a .py file always has a loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling look a module up by name while it runs
        try:
            module_spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            raise _error(exc, shown, str(path)) from None
        return module
    sys.path.insert(0, str(base_dir))  # `myteam.metrics` next to params.toml, as the notebook kernel finds it
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (spec == exc.name or spec.startswith(exc.name + ".")):  # the module itself
            raise InputError(f"parameter '{PARAMETER}': module {spec} not found (looked in {base_dir} and the "
                             "installed packages)") from None
        raise _error(exc, shown, None) from None
    except BaseException as exc:
        raise _error(exc, shown, None) from None
    finally:
        sys.path.remove(str(base_dir))


def _error(exc: BaseException, shown: str, filename: str | None) -> InputError | BaseException:
    """`my_metrics.py, line 12: ValueError: ...` (KeyboardInterrupt stays what it is)."""
    if isinstance(exc, KeyboardInterrupt):
        return exc
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if filename is None or Path(f.filename).resolve() == Path(filename)]
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        where = f", line {exc.lineno}"
    else:
        where = f", line {own[-1].lineno}" if own else ""
    if filename is None and own:
        shown = own[-1].filename
    detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return InputError(f"{shown}{where}: {detail} (while loading the metrics module, parameter '{PARAMETER}')")


def _forget(key: str, before: dict) -> None:
    """Put the registry back as it was before a module ran; an edited module that fails leaves none of
    its earlier metrics behind either (a stale version must not score a report)."""
    registry.restore(before)
    _LOADED.pop(key, None)
