"""The public API is listed once (`workbench.__all__`), resolves lazily, is documented name by name in
docs/api.md, and the bundled notebooks import public names from `workbench` wherever one exists."""
from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import workbench
from workbench import _moved
from workbench.project.lookup import bundled

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "api.md"
HEAVY = ("pandas", "numpy", "torch", "transformers", "litellm", "datasets", "pydantic", "papermill", "ipywidgets")


def _probe(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_public_name_resolves_to_the_object_its_module_defines():
    for name in workbench.__all__:
        value = getattr(workbench, name)
        if name != "__version__":
            module = importlib.import_module(workbench._PUBLIC[name])
            assert getattr(module, name) is value, name
    assert set(workbench.__all__) <= set(dir(workbench))
    with pytest.raises(AttributeError, match="no attribute 'pipeline_internals'"):
        workbench.pipeline_internals  # noqa: B018


def test_import_workbench_imports_no_public_module_until_a_name_is_used():
    result = _probe(
        "import json, sys\nimport workbench\nbefore = sorted(m for m in sys.modules if m.startswith('workbench'))\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "from workbench import register_metric, Metric\n"
        "print(json.dumps({'before': before, 'heavy': heavy, 'metric': Metric.__module__,"
        " 'torch': 'torch' in sys.modules}))")
    assert result["before"] == ["workbench", "workbench._moved", "workbench._offline"]
    assert result["heavy"] == []
    assert result["metric"] == "workbench.metrics.base" and result["torch"] is False


def test_public_names_never_collide_with_a_module_name():
    """`import workbench.X` sets the attribute X: a public name equal to a module (or to an old module
    name kept for existing notebooks) would be replaced by that module."""
    modules = {m.name for m in pkgutil.iter_modules(workbench.__path__)}
    old = {name.rpartition(".")[2] for name in _moved.MOVED}
    assert not (set(workbench.__all__) & (modules | old))


def test_docs_api_lists_each_public_name_once_and_says_the_rest_is_internal():
    text = DOC.read_text(encoding="utf-8")
    listed = re.findall(r"^- `([A-Za-z_][A-Za-z0-9_]*)", text, flags=re.M)
    # `contains(text)`, `regex(pattern)`, `json_schema(schema)` share one line
    listed += re.findall(r"`(regex|json_schema)\(", text)
    assert sorted(listed) == sorted(workbench.__all__)
    assert "Anything not listed here is internal" in text
    assert '[project.entry-points."workbench.adapters"]' in text and '[project.entry-points."workbench.metrics"]' in text


def _notebook_imports(path: Path) -> list[tuple[str, str]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(line for line in "".join(cell["source"]).splitlines(keepends=True)
                         if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workbench"):
                found += [(node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("notebook", sorted(p.name for p in bundled("notebooks").glob("*.ipynb")))
def test_bundled_notebooks_import_public_names_from_workbench(notebook):
    imports = _notebook_imports(bundled("notebooks") / notebook)
    assert imports
    internal = [f"from {module} import {name}" for module, name in imports
                if module != "workbench" and name in workbench.__all__
                and getattr(importlib.import_module(module), name) is getattr(workbench, name)]
    assert internal == [], f"{notebook}: import these from workbench"
    for module, name in imports:  # and every name they import still exists
        assert hasattr(importlib.import_module(module), name) or importlib.util.find_spec(f"{module}.{name}"), name
