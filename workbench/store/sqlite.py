"""The SQLite store: one file (WAL) holding items, responses, errors, judgments and labels.

Safe to share between the asyncio loop and worker threads of one process (one connection behind a
lock) and between processes (WAL, busy timeout). All of the workbench's SQL is in this package.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd

from workbench.errors import StoreError
from workbench.secrets import redact_url_credentials
from workbench.store.base import (
    BaseStore,
    _chunks,
    _marks,
    insert_sql,
    items_from_json,
    with_tool_calls,
)
from workbench.store.schema import CLAIM_COLUMNS, LABEL_COLUMNS, MIGRATIONS, RUN_COLUMNS, RUN_ITEM_COLUMNS, RUN_ROWS

SQLITE_HEADER = b"SQLite format 3\x00"
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


INSERT_RUN = insert_sql("runs", RUN_COLUMNS)
INSERT_RUN_ITEM = insert_sql("run_items", RUN_ITEM_COLUMNS)
INSERT_LABEL = insert_sql("labels", LABEL_COLUMNS[1:])  # label_id is assigned by SQLite
# A claim is taken where the key has no response, no error since the claimer started, and no live claim.
CLAIM_CALL = (f"INSERT INTO claims({', '.join(CLAIM_COLUMNS)}) SELECT ?, ?, ?, ?"
              " WHERE NOT EXISTS (SELECT 1 FROM responses WHERE cache_key = ?)"
              " AND NOT EXISTS (SELECT 1 FROM call_errors WHERE cache_key = ? AND created_at >= ?)"
              " ON CONFLICT(cache_key) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at,"
              " expires_at = excluded.expires_at WHERE claims.expires_at <= excluded.claimed_at")


class FetchedRows:
    """A statement's result, read in full under the store's lock. A cursor left half-read keeps a read
    transaction open on the shared connection; another thread's BEGIN IMMEDIATE on that stale snapshot
    then fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT skips the busy timeout)."""

    def __init__(self, cursor: sqlite3.Cursor):
        self._rows: list[tuple[Any, ...]] = cursor.fetchall()
        self.rowcount: int = cursor.rowcount
        self.lastrowid: int | None = cursor.lastrowid

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


class SQLiteStore(BaseStore):
    """A workbench store in one SQLite file. `create=False` opens an existing store only (commands
    that only read must not leave an empty store behind); `synchronous="FULL"` makes every commit
    survive a power cut (the label log uses it), NORMAL survives a killed process."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL", create: bool = True, read_only: bool = False,
                 *, checked: bool = False):
        """`checked`: this process's parent opened the same file and checked it (`reopened`)."""
        if "://" in str(path):  # a server URL must never become a file named after it (password included)

            raise StoreError(f"{redact_url_credentials(str(path))}: a URL is not a SQLite file; open it with "
                             "workbench.store.open_store")
        self.path = Path(path)
        self.synchronous = synchronous
        if str(synchronous).upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}")
        create = create and not read_only
        self.read_only = read_only
        self._check_file(create)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            if read_only:
                self.conn = self._connect_read_only()
            else:
                target, uri = (str(self.path), False) if create else (self.path.resolve().as_uri() + "?mode=rw", True)
                self.conn = sqlite3.connect(target, timeout=30, check_same_thread=False, isolation_level=None, uri=uri)
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.DatabaseError) and _damaged(exc):
                raise self._damaged_error() from None
            raise StoreError(f"{self.path}: cannot open the database ({exc})") from None
        try:
            if not read_only:
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self.conn.execute("PRAGMA busy_timeout=30000")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if checked:
                return
            self._check_integrity()
            self._check_schema()
            if not read_only:
                self._migrate()
            elif schema_version(self.conn) < len(MIGRATIONS):  # written by an older workbench: upgraded first
                self.conn.close()
                self._upgrade(synchronous)
                self.conn = self._connect_read_only()
        except BaseException as exc:
            self.conn.close()
            if isinstance(exc, sqlite3.DatabaseError) and _damaged(exc):
                raise self._damaged_error() from None
            raise

    # ---- opening and migrating ---------------------------------------------------------------------
    def _connect_read_only(self) -> sqlite3.Connection:
        """A read-only connection. In a folder nobody may write, a WAL store cannot get the shared-memory
        file SQLite reads it through; with no pending WAL to read either, the file alone is the whole
        store, and it is opened as immutable."""
        uri = self.path.resolve().as_uri()
        conn = sqlite3.connect(uri + "?mode=ro", timeout=30, check_same_thread=False, isolation_level=None, uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            wal = Path(f"{self.path}-wal")
            if wal.exists() and wal.stat().st_size:
                raise  # writes wait in the WAL: reading the file alone would miss them
        return sqlite3.connect(uri + "?mode=ro&immutable=1", timeout=30, check_same_thread=False,
                               isolation_level=None, uri=True)

    def _check_file(self, create: bool) -> None:
        if not self.path.exists():
            if not create:
                raise StoreError(f"{self.path}: store not found (run `workbench generate ... --store {self.path}` first)")
            return
        if not self.path.is_file():
            raise StoreError(f"{self.path}: not a workbench store (not a file)")
        with open(self.path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
        if not header and not create:  # a read never turns an empty file into a store
            raise StoreError(f"{self.path}: not a workbench store (an empty file)")
        if header and header != SQLITE_HEADER:
            raise StoreError(f"{self.path}: not a workbench store (not a SQLite database)")

    def _upgrade(self, synchronous: str) -> None:
        try:
            SQLiteStore(self.path, synchronous, create=False).close()  # opened to write: migrated
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: written by an older workbench and cannot be upgraded here ({exc}); "
                             "run a command that writes (generate) where the store is writable") from None

    def _damaged_error(self, cause: str = "") -> StoreError:
        """A damaged file, named with SQLite's way to recover what it holds (one wording everywhere)."""
        return StoreError(f"{self.path}: damaged database ({cause + '; ' if cause else ''}run "
                          f"`sqlite3 {self.path} '.recover'`)")

    def _check_integrity(self) -> None:
        """A damaged file is refused before anything reads it: a command must never answer from the
        pages it happens to read (quick_check: every page and record, about 0.5 s per 200 MB)."""
        problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise self._damaged_error('; '.join(problems)[:200])

    def _check_schema(self) -> None:
        version = schema_version(self.conn)
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path}: written by a newer workbench (schema version {version}, this one knows "
                             f"{len(MIGRATIONS)}); upgrade workbench")
        if version == 0:
            tables = [r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            if tables:
                shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
                raise StoreError(f"{self.path}: not a workbench store (a SQLite database with other tables: {shown})")

    def _migrate(self) -> None:
        with self._locked():
            current = schema_version(self.conn)
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                with self._writing() as conn:
                    if schema_version(conn) < version:  # another process may have migrated meanwhile
                        for statement in script.split(";\n"):
                            if statement.strip():
                                conn.execute(statement)
                        conn.execute(f"PRAGMA user_version={version}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """This thread alone on the connection. A write lock another process held past the busy timeout
        becomes a StoreError that says so, where sqlite3 says only "database is locked"; so does damage
        the open check could not see (a page changed since), however pandas wraps it."""
        with self._lock:
            try:
                yield
            except Exception as exc:
                cause = exc if isinstance(exc, sqlite3.DatabaseError) else exc.__cause__
                if isinstance(cause, sqlite3.DatabaseError) and _DAMAGE.search(str(cause)):
                    raise self._damaged_error(str(cause)) from None
                if not isinstance(exc, sqlite3.OperationalError) or "database is locked" not in str(exc):
                    raise
                waited = self.conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
                raise StoreError(f"{self.path}: another process kept the store locked for over {waited:g} s (a long "
                                 "write, or one stopped mid-write); this step wrote nothing, run it again") from None

    def reopened(self) -> "SQLiteStore":
        return SQLiteStore(self.path, self.synchronous, create=False, read_only=self.read_only, checked=True)

    @property
    def schema_version(self) -> int:
        with self._locked():
            return schema_version(self.conn)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # ---- raw SQL: SQLite only, for tests, benchmarks and debugging; not the store interface ---------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> FetchedRows:
        with self._locked():
            return FetchedRows(self.conn.execute(sql, params))

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self._locked():
            return pd.read_sql_query(sql, self.conn, params=params)

    def _rows_at(self, columns: Sequence[str], table: str, key_columns: Sequence[str],
                 keys: Sequence[Any], where: str = "", params: Sequence[Any] = ()) -> dict[int, tuple[Any, ...]]:
        """The first key column's values as one JSON array (`json_each`), probed in sorted order (each
        lookup reads pages next to the last one's: a hash key makes the given order random); the other
        key columns are read back and compared here, which costs less than extracting them in SQL."""
        sql = (f"SELECT {', '.join([*(f't.{c}' for c in columns), 'k.key', *(f't.{c}' for c in key_columns[1:])])}"
               f" FROM json_each(?) AS k CROSS JOIN {table} AS t"  # CROSS JOIN: the keys drive the lookups
               f" ON t.{key_columns[0]} = k.value{f' AND {where}' if where else ''}")
        first = keys if len(key_columns) == 1 else [key[0] for key in keys]
        order = sorted(range(len(keys)), key=first.__getitem__)
        at = len(columns)
        rows: dict[int, tuple[Any, ...]] = {}
        for start in range(0, len(order), self.keys_per_probe):
            part = order[start:start + self.keys_per_probe]
            found = self.execute(sql, (json.dumps([first[position] for position in part]), *params)).fetchall()
            if len(key_columns) > 1:  # a row of the first column's value with other values in the rest is another key's
                rows.update((part[row[at]], row) for row in found if row[at + 1:] == keys[part[row[at]]][1:])
            else:
                rows.update((part[row[at]], row) for row in found)
        return rows

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock up front, so no other writer (thread or process) interleaves."""
        with self._locked():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    # ---- datasets and items ------------------------------------------------------------------------
    def items_frame(self, dataset_id: str) -> pd.DataFrame:
        rows = self.execute("SELECT fields_json FROM items WHERE dataset_id=? ORDER BY rowid", (dataset_id,)).fetchall()
        return items_from_json([r[0] for r in rows])

    # ---- runs --------------------------------------------------------------------------------------
    def create_run(self, model: str, prompt_ref: str | None, dataset_id: str, spec: dict[str, Any],
                   planned: Sequence[tuple[str, int, str]]) -> int:
        with self._writing() as conn:
            cur = conn.execute(INSERT_RUN, (model, prompt_ref, dataset_id, json.dumps(spec, sort_keys=True, default=str),
                                            time.time()))
            run_id = int(cur.lastrowid)
            conn.executemany(INSERT_RUN_ITEM, [(run_id, item, sample, key) for item, sample, key in planned])
        return run_id

    def run_frame(self, run_id: int) -> pd.DataFrame:
        return with_tool_calls(self.frame(f"{RUN_ROWS} WHERE ri.run_id = ? ORDER BY ri.rowid", (run_id,)))

    # ---- claims ------------------------------------------------------------------------------------
    def claim_calls(self, keys: Sequence[str], owner: str, lease_s: float, since: float) -> set[str]:
        held: set[str] = set()
        for chunk in _chunks(dict.fromkeys(keys)):
            with self._writing() as conn:
                now = time.time()
                conn.executemany(CLAIM_CALL, [(key, owner, now, now + lease_s, key, key, since) for key in chunk])
                held.update(r[0] for r in conn.execute(
                    f"SELECT cache_key FROM claims WHERE owner = ? AND cache_key IN ({_marks(chunk)})", (owner, *chunk)))
        return held

    # ---- labels (append-only: rows are inserted, never updated or deleted) -------------------------
    def append_label(self, task: str, item_id: str, rater: str, left_model: str, right_model: str, action: str,
                     winner_model: str | None, note: str | None, assignment_seed: int, session_id: str) -> int:
        cur = self.execute(INSERT_LABEL, (task, item_id, rater, left_model, right_model, action, winner_model, None,
                                          note, int(assignment_seed), session_id, time.time()))
        return int(cur.lastrowid)

    def append_undo(self, task: str, rater: str, assignment_seed: int, session_id: str) -> tuple[int, str] | None:
        with self._locked():
            cur = self.conn.execute(
                """
                INSERT INTO labels(task, item_id, rater, left_model, right_model, action, winner_model,
                                   undoes_label_id, note, assignment_seed, session_id, created_at)
                SELECT task, item_id, rater, left_model, right_model, 'undo', NULL, label_id, NULL, ?, ?, ?
                FROM labels
                WHERE task = ? AND rater = ? AND action != 'undo'
                  AND label_id NOT IN (SELECT undoes_label_id FROM labels
                                       WHERE task = ? AND rater = ? AND action = 'undo')
                ORDER BY label_id DESC LIMIT 1
                """, (int(assignment_seed), session_id, time.time(), task, rater, task, rater))
            if cur.rowcount != 1:
                return None
            label_id = int(cur.lastrowid)
            item = self.conn.execute("SELECT item_id FROM labels WHERE label_id = ?", (label_id,)).fetchone()[0]
        return label_id, item


_DAMAGE = re.compile("malformed|unsupported file format|not a database|disk i/o error", re.I)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Damage, as opposed to lock contention or a failing statement (which surface as what they are)."""
    return not isinstance(exc, sqlite3.OperationalError) or bool(_DAMAGE.search(str(exc)))
