"""Shared fixtures. Tests never reach the network: offline flags are set before anything imports.
The `fake/` test double is switched on here (and only here) for unit tests; subprocesses and
notebook kernels a test starts inherit the switch."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

for _name, _value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                      "LITELLM_LOCAL_MODEL_COST_MAP": "True", "WORKBENCH_TEST_PROVIDERS": "1"}.items():
    os.environ[_name] = _value

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "external"


def pytest_terminal_summary(terminalreporter) -> None:
    """One line per real part this run lacked (skipped locally, failed under CI)."""
    from tests.real_parts import MISSING, under_ci

    for message in sorted(MISSING):
        terminalreporter.write_line(f"{'FAILED' if under_ci() else 'SKIPPED'}, missing: {message}",
                                    red=under_ci(), yellow=not under_ci())


@pytest.fixture(scope="module", autouse=True)
def _local_models_released_after_each_module():
    """Local models stay loaded across adapters of a process (workbench.models.loaded_models); a test
    module's models go when it ends, so memory does not grow over the run and load counts start afresh."""
    yield
    from workbench.models.loaded_models import release_local_models

    release_local_models()


@pytest.fixture
def store_location(tmp_path):
    """Where a test's store lives: a SQLite file here, a PostgreSQL URL in tests/store."""
    return str(tmp_path / "store.db")


@pytest.fixture
def store(store_location):
    from workbench.store import open_store

    with open_store(store_location) as s:
        yield s


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fake OpenAI key in the environment: tests check it reaches the server and nothing else."""
    key = "sk-test-SECRET1234567890abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        from tests.real_parts import missing

        missing(f"shared data not found at {SHARED_DATA} (CI clones it beside the repo as ../shared)")
    return SHARED_DATA
