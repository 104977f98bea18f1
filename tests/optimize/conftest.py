"""Fixtures for the optimizer tests: a small project and the rule server."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.optimize.helpers import PLAIN, rule_items, write_items
from tests.optimize.rule_server import RuleServer


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_items(tmp_path / "items.jsonl", rule_items())
    (tmp_path / "prompts" / "plain").mkdir(parents=True)
    (tmp_path / "prompts" / "plain" / "v1.toml").write_text(PLAIN, encoding="utf-8")
    return tmp_path


@pytest.fixture
def rule_server() -> Iterator[RuleServer]:
    with RuleServer() as server:
        yield server


from tests.store.conftest import pg_cluster, pg_url  # noqa: E402,F401  (a real PostgreSQL, for the shared-store test)
