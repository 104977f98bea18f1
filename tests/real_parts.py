"""The real parts a test needs (PostgreSQL, the browser, an optional library, the shared data): when
one cannot be set up, the test skips with one line saying what is missing, and under CI (`CI` set
and not "0"/"false") it fails with that line instead, so a green CI run never hides untested parts.
Every missing part is also listed once at the end of the run (tests/conftest.py)."""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

MISSING: set[str] = set()  # what this run lacked, for the summary line


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(message: str) -> NoReturn:
    """Skip with `message`; under CI fail with it (one line, no traceback)."""
    MISSING.add(message)
    if under_ci():
        pytest.fail(f"missing under CI: {message}", pytrace=False)
    pytest.skip(message)


def need_module(name: str, why: str) -> ModuleType:
    """Import `name` or report it missing: `why` says what needs it and how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{name} is not importable ({exc.__class__.__name__}: {exc}); {why}")
