"""The durable store: everything a report needs, so a re-run with a warm store makes no model call.

All SQL lives in this package. `BaseStore` (store/base.py) is the interface; `SQLiteStore` (one file,
the default) and `PostgresStore` (a server shared by a team of raters) implement it. `open_store`
picks one by location: a `postgresql://` or `postgres://` URL is a PostgreSQL database, anything
else a SQLite file. `Store` is the SQLite backend (a path, as always). Schema changes are numbered
migrations appended to `SCHEMA` (store/schema.py), declared once: `MIGRATIONS` (SQLite) and
`POSTGRES_MIGRATIONS` are written from it.
"""
from __future__ import annotations

from pathlib import Path

from workbench.project.lookup import is_database_url
from workbench.store.base import BaseStore
from workbench.store.postgres import PostgresStore, is_postgres_url
from workbench.store.schema import MIGRATIONS, POSTGRES_MIGRATIONS
from workbench.store.sqlite import SQLiteStore, schema_version

Store = SQLiteStore


def open_store(location: str | Path, *, create: bool = True, synchronous: str = "NORMAL",
               read_only: bool = False) -> BaseStore:
    """The store at `location`: PostgreSQL for a `postgresql://`/`postgres://` URL, else a SQLite file.
    `create=False` opens an existing store only; `read_only=True` too, and writes nothing (a store in a
    folder the user cannot write is read); `synchronous="FULL"` makes each commit durable against a
    power cut (the label log uses it; PostgreSQL commits durably unless it is "OFF")."""
    if is_postgres_url(location):
        return PostgresStore(str(location), synchronous=synchronous, create=create, read_only=read_only)
    return SQLiteStore(location, synchronous=synchronous, create=create, read_only=read_only)


__all__ = ["BaseStore", "MIGRATIONS", "POSTGRES_MIGRATIONS", "PostgresStore", "SQLiteStore", "Store",
           "is_database_url", "open_store", "schema_version"]
