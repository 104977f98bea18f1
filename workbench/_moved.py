"""Old module names that moved into packages, kept importable for existing projects.

A project made by `workbench init` carries copies of the notebooks, and users' own notebooks import
helpers such as `workbench.report_view`. Rather than breaking them, each old name resolves to the
module at its new place (the same module object, so patching either name patches both), with a
FutureWarning that says where it lives now. New code imports the new names; tests/test_imports.py
checks that nothing in the package itself uses an old one.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "workbench.report_view": "workbench.report.view",
    "workbench.plots": "workbench.report.plots",
    "workbench.manifest": "workbench.project.environment",
    "workbench.scaffold": "workbench.project.scaffold",
    "workbench.doctor": "workbench.project.doctor",
    "workbench.params": "workbench.project.params",
    "workbench.runner": "workbench.generation.runner",
    "workbench.calls": "workbench.generation.calls",
    "workbench.retry": "workbench.generation.retry",
    "workbench.model_options": "workbench.generation.options",
    "workbench.config": "workbench.task.config",
    "workbench.data": "workbench.task.dataset",
    "workbench.prompts": "workbench.task.prompts",
    "workbench.compare": "workbench.comparison.compare",
    "workbench.gate": "workbench.comparison.gate",
    "workbench.lifecycle": "workbench.models.lifecycle",
}


class _MovedModuleFinder:
    """A meta path finder and loader (the protocol, without importlib.abc and importlib.util, whose
    imports would pull 25 modules into `import workbench`)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there (the old name will be removed)",
                      FutureWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed under its new name already."""


def install() -> None:
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
