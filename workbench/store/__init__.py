"""The durable store: everything a report needs, so a re-run with a warm store makes no model call.

All SQL lives in this package. `Store` is the SQLite backend; the interface it implements is
`BaseStore` (store/base.py), so a server database can stand behind the same methods later.
Schema changes are numbered migrations appended to `MIGRATIONS` (store/schema.py).
"""
from workbench.store.base import BaseStore
from workbench.store.schema import MIGRATIONS
from workbench.store.sqlite import SQLiteStore, schema_version

Store = SQLiteStore

__all__ = ["BaseStore", "MIGRATIONS", "SQLiteStore", "Store", "schema_version"]
