"""Notebook widgets: the side-by-side explorer and the blind pair labeler.

Importing this package is cheap: nothing here imports ipywidgets, pandas or the submodules;
names are resolved lazily on first access (PEP 562), so `import workbench.widgets` never pays
for a widget the notebook does not use.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Explorer": "workbench.widgets.explorer",
    "ExplorerData": "workbench.widgets.explorer_data",
    "Filters": "workbench.widgets.explorer_data",
    "PairLabeler": "workbench.widgets.labeler",
    "diff_html": "workbench.widgets.textdiff",
    "diff_segments": "workbench.widgets.textdiff",
    "tokenize": "workbench.widgets.textdiff",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return list(__all__)
