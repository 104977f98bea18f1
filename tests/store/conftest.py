"""Real PostgreSQL for the store tests: one throwaway server per test session (tests/store/pgcluster.py),
a fresh database per test. Where PostgreSQL is not installed and could not be (scripts/setup.sh installs
Debian's `postgresql`), skipped with that line, and failed with it under CI."""
from __future__ import annotations

import pytest

from tests.real_parts import missing
from tests.store.pgcluster import PostgresCluster, find_bindir


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = find_bindir()
    if bindir is None:
        missing("PostgreSQL is not installed (scripts/setup.sh installs it: apt-get install postgresql)")
    cluster = PostgresCluster(bindir, fsync=False).start()  # durability is the server's; speed the tests up
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A fresh, empty database on the test server; the URL carries the password."""
    return pg_cluster.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path):
    """The same contract on both backends."""
    from workbench.store import open_store

    location = tmp_path / "store.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with open_store(location) as s:
        yield s


@pytest.fixture
def store_location(pg_url) -> str:
    """tests/test_store.py's contract tests, imported into tests/store, run on PostgreSQL with this."""
    return pg_url
