"""The PostgreSQL store: the same tables and methods as the SQLite store, for teams sharing one store.

Selected by URL (`postgresql://user@host:5432/db` or `postgres://...`, see `open_store`). The
password comes from the URL, `PGPASSWORD` or `~/.pgpass` (libpq reads them); the URL is only ever
shown with its credentials redacted (`self.path`). One connection per store, behind a lock, like
the SQLite store: safe between the asyncio loop and worker threads of one process; processes and
machines share the server.

Where the SQLite store serialises writers with BEGIN IMMEDIATE, this one uses what PostgreSQL has:
`INSERT ... ON CONFLICT` (responses, judgments, claims, trials), transactions, and transaction-level
advisory locks: one per (task, rater) around label writes, so a rater's label ids grow in commit
order (an incremental reader never skips a row) and two kernels undoing at once never cancel the
same label; one around schema migrations, so concurrent first opens migrate once. Every write
commits with `synchronous_commit = on` (the server's default) unless `synchronous="OFF"`: a label
is on the server's disk before `append_label` returns.
"""
from __future__ import annotations

import functools
import json
import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd

from workbench.errors import StoreError
from workbench.secrets import redact, redact_url_credentials
from workbench.store.base import (
    RUN_FRAME_COLUMNS,
    BaseStore,
    insert_sql,
    items_from_json,
    with_tool_calls,
)
from workbench.store.schema import (
    CLAIM_COLUMNS,
    LABEL_COLUMNS,
    POSTGRES_MIGRATIONS,
    RUN_COLUMNS,
    RUN_ITEM_COLUMNS,
    RUN_ROWS,
)

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
URL_SCHEMES = ("postgresql://", "postgres://")

# Advisory lock keys: (class, key) pairs, the class spells "WB" so other applications' locks never collide.
LOCK_CLASS = 0x5742
MIGRATION_LOCK = 0
JUDGE_ERROR_LOCK = 1


INSERT_RUN = insert_sql("runs", RUN_COLUMNS, "RETURNING run_id")
COPY_RUN_ITEMS = f"COPY run_items({', '.join(RUN_ITEM_COLUMNS)}) FROM STDIN"
# One statement, one round trip: the (task, rater) lock is taken before the identity value is drawn and held
# until the commit, so a rater's label ids grow in commit order.
INSERT_LABEL = (f"WITH rater_lock AS (SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext(%(task)s || chr(31) || %(rater)s)))"
                f" INSERT INTO labels({', '.join(LABEL_COLUMNS[1:])})"
                " SELECT %(task)s::text, %(item_id)s::text, %(rater)s::text, %(left_model)s::text, %(right_model)s::text,"
                " %(action)s::text, %(winner_model)s::text, NULL, %(note)s::text, %(assignment_seed)s::bigint,"
                " %(session_id)s::text, %(created_at)s::double precision FROM rater_lock RETURNING label_id")
# A claim is taken where the key has no response, no error since the claimer started, and no live claim.
CLAIM_CALLS = (f"INSERT INTO claims({', '.join(CLAIM_COLUMNS)})"
               " SELECT k, %(owner)s, %(now)s, %(expires)s FROM unnest(%(keys)s::text[]) AS k"
               " WHERE NOT EXISTS (SELECT 1 FROM responses r WHERE r.cache_key = k)"
               " AND NOT EXISTS (SELECT 1 FROM call_errors e WHERE e.cache_key = k AND e.created_at >= %(since)s)"
               " ON CONFLICT (cache_key) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at,"
               " expires_at = excluded.expires_at WHERE claims.expires_at <= excluded.claimed_at")
# Run right after CLAIM_CALLS in the same transaction, with a fresh snapshot: a response or error committed
# while the insert waited (by a holder that released its claim just then) undoes the claim just taken.
UNCLAIM_ANSWERED = ("DELETE FROM claims c WHERE c.owner = %(owner)s AND c.cache_key = ANY(%(keys)s)"
                    " AND (EXISTS (SELECT 1 FROM responses r WHERE r.cache_key = c.cache_key)"
                    " OR EXISTS (SELECT 1 FROM call_errors e WHERE e.cache_key = c.cache_key"
                    " AND e.created_at >= %(since)s))")
LABEL_LOCK = f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext(%s || chr(31) || %s))"
INSERT_UNDO = """
    INSERT INTO labels(task, item_id, rater, left_model, right_model, action, winner_model,
                       undoes_label_id, note, assignment_seed, session_id, created_at)
    SELECT task, item_id, rater, left_model, right_model, 'undo', NULL, label_id, NULL, %s, %s, %s
    FROM labels l
    WHERE task = %s AND rater = %s AND action <> 'undo'
      AND NOT EXISTS (SELECT 1 FROM labels u WHERE u.task = l.task AND u.rater = l.rater AND u.action = 'undo'
                      AND u.undoes_label_id = l.label_id)
    ORDER BY label_id DESC LIMIT 1
    RETURNING label_id, item_id
    """


# Text PostgreSQL cannot hold (NUL, and lone surrogates, which are not UTF-8) is stored escaped and read
# back equal: ESCAPED followed by the value as ASCII JSON. A value that starts with ESCAPED is escaped too,
# so every stored string reads back as written; every other value is stored as it is (no migration).
ESCAPED = "\ue000wb-escaped:"


def escape_text(value: str) -> str:
    return ESCAPED + json.dumps(value, ensure_ascii=True)


def unescape_text(value: str) -> str:
    return json.loads(value[len(ESCAPED):]) if value.startswith(ESCAPED) else value


def _encode_text(value: str, encoding: str) -> bytes:
    if "\x00" in value or value.startswith(ESCAPED):
        return escape_text(value).encode(encoding)
    try:
        return value.encode(encoding)
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800" decodes to one)
        return escape_text(value).encode(encoding)


def _register_text_codec(conn: Any) -> None:
    """Every str parameter and text result of `conn` goes through escape_text / unescape_text."""
    from psycopg.types import string

    def dumper(base: type) -> type:
        return type(f"Escaping{base.__name__}", (base,),
                    {"dump": lambda self, obj: _encode_text(obj, self._encoding)})

    def loader(base: type) -> type:
        return type(f"Unescaping{base.__name__}", (base,),
                    {"load": lambda self, data: unescape_text(base.load(self, data))})

    adapters = conn.adapters
    for base in (string.StrBinaryDumperName, string.StrBinaryDumperVarchar, string.StrBinaryDumper,
                 string.StrDumperName, string.StrDumperVarchar, string.StrDumper, string.StrDumperUnknown):
        adapters.register_dumper(str, dumper(base))  # in psycopg's order: the last one is the default
    for base in (string.TextLoader, string.TextBinaryLoader):
        for name in ("text", "varchar", "name", "bpchar"):
            adapters.register_loader(name, loader(base))


# A dropped connection (a server restart, a failover, a network blip) is re-opened and the method run
# again: its transaction was rolled back with the connection. Waits grow to RECONNECT_MAX_WAIT_S, about
# RECONNECT_BUDGET_S in all, then the method fails with a StoreError.
RECONNECT_BUDGET_S = 60.0
RECONNECT_MAX_WAIT_S = 5.0
F = TypeVar("F", bound=Callable[..., Any])


def reconnecting(method: F) -> F:
    """Run `method` again on a fresh connection when the connection it used was lost."""
    @functools.wraps(method)
    def run(self: "PostgresStore", *args: Any, **kwargs: Any) -> Any:
        while True:
            conn = self.conn
            try:
                return method(self, *args, **kwargs)
            except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
                if self._closed or not (conn.closed or conn.broken):
                    raise  # a query error on a live connection (or a closed store): running it again cannot help
                self._reconnect(conn, exc)
    return run  # type: ignore[return-value]


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(URL_SCHEMES)


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password or None): to hand a store URL to a process that
    records its parameters (papermill) with the password in PGPASSWORD instead."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}@{host}")), unquote(parts.password)


class PostgresStore(BaseStore):
    """A workbench store in a PostgreSQL database (its current schema, normally `public`).

    `create=False` opens an existing store only: a missing database, or one without the workbench's
    tables, is a StoreError, and nothing is created. With `create=True` a missing database is created
    when the user may (CREATE DATABASE), and an empty one gets the schema. An existing store at an
    older schema version is migrated either way, as the SQLite store does. `self.path` is the URL with
    its credentials redacted: what messages, manifests and logs show."""

    def __init__(self, url: str, synchronous: str = "NORMAL", create: bool = True, read_only: bool = False):
        import psycopg

        self._psycopg = psycopg
        self.url = url.strip()
        self.path = redact_url_credentials(self.url)  # type: ignore[assignment]  (a location, shown everywhere)
        if str(synchronous).upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}")
        self._lock = threading.RLock()
        self._closed = False
        self.synchronous = synchronous
        self._synchronous_off = str(synchronous).upper() == "OFF"
        self._options: dict[str, Any] = {"autocommit": True, "application_name": "workbench"}
        if "connect_timeout" not in self.url:
            self._options["connect_timeout"] = 10
        create = create and not read_only
        self.read_only = read_only
        self.conn = self._connect(create)
        try:
            if self._synchronous_off:
                self.conn.execute("SET synchronous_commit = off")
            self._check_schema(create)
            self._migrate()  # a store an older workbench wrote is upgraded, by readers too
            if read_only:
                self.conn.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            self.conn.close()
            raise StoreError(self._message(exc)) from None
        except BaseException:
            self.conn.close()
            raise

    # ---- opening and migrating ---------------------------------------------------------------------
    def _reconnect(self, lost: Any, exc: BaseException) -> None:
        """Replace the lost connection `lost` (unless another thread already did), retrying with growing
        waits for about RECONNECT_BUDGET_S: a server restarting takes seconds."""
        with self._lock:
            if self.conn is not lost:
                return
            lost.close()
            deadline, wait = time.monotonic() + RECONNECT_BUDGET_S, 0.1
            while True:
                try:
                    conn = _with_text_codec(self._psycopg.connect(self.url, **self._options))
                    if self._synchronous_off:
                        conn.execute("SET synchronous_commit = off")
                    if self.read_only:
                        conn.execute("SET default_transaction_read_only = on")
                    self.conn = conn
                    return
                except self._psycopg.OperationalError as again:
                    exc = again
                if time.monotonic() + wait > deadline:
                    raise StoreError(self._message(exc, f"lost the connection and could not reconnect in "
                                                        f"{RECONNECT_BUDGET_S:g} s: ")) from None
                time.sleep(wait)
                wait = min(wait * 2, RECONNECT_MAX_WAIT_S)

    def _message(self, exc: BaseException, prefix: str = "") -> str:
        """One line starting with the redacted URL; libpq's text never carries the password, but it is
        redacted anyway (a password in the URL is also in PGPASSWORD-like variables some users set)."""
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return f"{self.path}: {prefix}{redact(detail)}"

    def _connect(self, create: bool) -> Any:
        psycopg = self._psycopg
        options = self._options
        try:
            return _with_text_codec(psycopg.connect(self.url, **options))
        except psycopg.OperationalError as exc:
            if not _database_missing(exc):
                raise StoreError(self._message(exc, "cannot connect: ")) from None
        if not create:
            raise StoreError(f"{self.path}: store not found (the database does not exist; run `workbench generate "
                             f"... --store URL` to create it)")
        self._create_database(options)
        try:
            return _with_text_codec(psycopg.connect(self.url, **options))
        except psycopg.OperationalError as exc:
            raise StoreError(self._message(exc, "cannot connect: ")) from None

    def _create_database(self, options: dict[str, Any]) -> None:
        """CREATE DATABASE through the server's maintenance database, as the URL's user."""
        psycopg = self._psycopg
        from psycopg import sql
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(self.url).get("dbname")
        if not name:
            raise StoreError(f"{self.path}: store not found (no such database)")
        try:
            with psycopg.connect(self.url, **{**options, "dbname": "postgres"}) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
        except psycopg.errors.DuplicateDatabase:
            pass  # another process created it meanwhile
        except psycopg.Error as exc:
            raise StoreError(self._message(exc, f"database {name} does not exist and cannot be created "
                                                "(create it, or grant CREATEDB): ")) from None

    def _tables(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " ORDER BY table_name")]

    def _version(self) -> int | None:
        """The schema version, None when the database has no `schema_version` table."""
        if self.conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return None
        return int(self.conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])

    @contextmanager
    def _migration_lock(self, shared: bool = False) -> Iterator[None]:
        """The migration lock, held by the session across transactions: every statement under it starts
        a transaction of its own, which sees the catalog as the previous holder committed it (a lock
        taken inside one transaction would leave that transaction's stale catalog cache in use)."""
        kind = "_shared" if shared else ""
        self.conn.execute(f"SELECT pg_advisory_lock{kind}({LOCK_CLASS}, {MIGRATION_LOCK})")
        try:
            yield
        finally:
            try:
                self.conn.execute(f"SELECT pg_advisory_unlock{kind}({LOCK_CLASS}, {MIGRATION_LOCK})")
            except self._psycopg.Error:
                pass  # the connection is gone, and its locks with it

    def _check_schema(self, create: bool) -> None:
        with self._migration_lock(shared=True):  # not while another process migrates: it would look half-made
            version = self._version()
            tables = self._tables() if version is None else []
        if version is None:
            if tables:
                shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
                raise StoreError(f"{self.path}: not a workbench store (a PostgreSQL database with other tables: {shown})")
            if not create:  # a read never turns an empty database into a store
                raise StoreError(f"{self.path}: store not found (an empty database; run `workbench generate ... "
                                 f"--store URL` first)")
        elif version > len(POSTGRES_MIGRATIONS):
            raise StoreError(f"{self.path}: written by a newer workbench (schema version {version}, this one knows "
                             f"{len(POSTGRES_MIGRATIONS)}); upgrade workbench")

    def _migrate(self) -> None:
        with self._lock:
            if (self._version() or 0) == len(POSTGRES_MIGRATIONS):
                return  # the usual case: no lock needed
            with self._migration_lock():
                current = self._version() or 0  # after the lock: another process may have migrated meanwhile
                for version, script in enumerate(POSTGRES_MIGRATIONS[current:], start=current + 1):
                    with self.conn.transaction():  # one version at a time: DDL is transactional
                        self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                                          "version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
                        for statement in script.split(";\n"):
                            if statement.strip():
                                self.conn.execute(statement)
                        self.conn.execute("INSERT INTO schema_version(version, applied_at) VALUES (%s, %s)",
                                          (version, time.time()))

    @property
    @reconnecting
    def schema_version(self) -> int:
        with self._lock:
            return self._version() or 0

    def reopened(self) -> "PostgresStore":
        return PostgresStore(self.url, self.synchronous, create=False, read_only=self.read_only)

    def close(self) -> None:
        with self._lock:
            self._closed = True  # never re-opened after this
            self.conn.close()

    # ---- raw SQL: for tests, benchmarks and debugging; not the store interface -----------------------
    @reconnecting
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; `?` placeholders (as the SQLite store takes) or `%s`."""
        with self._lock:
            return self.conn.execute(_qmark(sql) if params else sql, params or None)

    @reconnecting
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self._lock:
            cur = self.conn.execute(_qmark(sql) if params else sql, params or None)
            return _frame(cur)

    def _rows_at(self, columns: Sequence[str], table: str, key_columns: Sequence[str],
                 keys: Sequence[Any], where: str = "", params: Sequence[Any] = ()) -> dict[int, tuple[Any, ...]]:
        """The keys as one text array per key column, `unnest`ed with their ordinality."""
        names = [f"k{n}" for n in range(len(key_columns))]
        sql = (f"SELECT {', '.join(f't.{c}' for c in columns)}, k.position - 1"
               f" FROM unnest({', '.join(['?::text[]'] * len(names))}) WITH ORDINALITY AS k({', '.join(names)}, position)"
               f" JOIN {table} AS t ON {' AND '.join(f't.{c} = k.{n}' for c, n in zip(key_columns, names))}"
               f"{f' AND {where}' if where else ''}")
        rows: dict[int, tuple[Any, ...]] = {}
        for start in range(0, len(keys), self.keys_per_probe):
            part = keys[start:start + self.keys_per_probe]
            arrays = [list(part)] if len(names) == 1 else [[key[n] for key in part] for n in range(len(names))]
            rows.update((start + row[-1], row) for row in self.execute(sql, (*arrays, *params)).fetchall())
        return rows

    @contextmanager
    def _writing(self) -> Iterator["QmarkCursor"]:
        with self._lock, self.conn.transaction(), self.conn.cursor() as cur:
            yield QmarkCursor(cur)

    # The writes BaseStore writes once, run again on a fresh connection when theirs was lost (their
    # transaction was rolled back with it).
    transaction = reconnecting(BaseStore.transaction)
    save_items = reconnecting(BaseStore.save_items)
    put_response = reconnecting(BaseStore.put_response)
    record_error = reconnecting(BaseStore.record_error)
    put_judgments = reconnecting(BaseStore.put_judgments)
    put_scores = reconnecting(BaseStore.put_scores)

    def _serialize_judge_errors(self, cur: "QmarkCursor") -> None:
        cur.execute(f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, {JUDGE_ERROR_LOCK})")

    @reconnecting
    def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    @reconnecting
    def _frame(self, sql: str, params: Any = None) -> pd.DataFrame:
        with self._lock:
            return _frame(self.conn.execute(sql, params))

    # ---- datasets and items ------------------------------------------------------------------------
    @reconnecting
    def items_frame(self, dataset_id: str) -> pd.DataFrame:
        rows = self._rows("SELECT fields_json FROM items WHERE dataset_id = %s ORDER BY seq", (dataset_id,))
        return items_from_json([r[0] for r in rows])

    # ---- runs --------------------------------------------------------------------------------------
    @reconnecting
    def create_run(self, model: str, prompt_ref: str | None, dataset_id: str, spec: dict[str, Any],
                   planned: Sequence[tuple[str, int, str]]) -> int:
        with self._lock, self.conn.transaction():
            run_id = int(self.conn.execute(_qmark(INSERT_RUN), (model, prompt_ref, dataset_id,
                                                        json.dumps(spec, sort_keys=True, default=str),
                                                        time.time())).fetchone()[0])
            with self.conn.cursor() as cur, cur.copy(COPY_RUN_ITEMS) as copy:
                for item, sample, key in planned:
                    copy.write_row((run_id, item, int(sample), key))
        return run_id

    def run_frame(self, run_id: int) -> pd.DataFrame:
        frame = self._frame(f"{RUN_ROWS} WHERE ri.run_id = %s ORDER BY ri.seq", (int(run_id),))
        return with_tool_calls(frame[RUN_FRAME_COLUMNS])

    # ---- claims ------------------------------------------------------------------------------------
    @reconnecting
    def claim_calls(self, keys: Sequence[str], owner: str, lease_s: float, since: float) -> set[str]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return set()
        with self._lock, self.conn.transaction():
            now = time.time()
            params = {"keys": keys, "owner": owner, "now": now, "expires": now + lease_s, "since": since}
            self.conn.execute(CLAIM_CALLS, params)
            self.conn.execute(UNCLAIM_ANSWERED, params)
            return {r[0] for r in self.conn.execute(
                "SELECT cache_key FROM claims WHERE owner = %s AND cache_key = ANY(%s)", (owner, keys))}

    # ---- labels (append-only: rows are inserted, never updated or deleted) -------------------------
    @reconnecting
    def append_label(self, task: str, item_id: str, rater: str, left_model: str, right_model: str, action: str,
                     winner_model: str | None, note: str | None, assignment_seed: int, session_id: str) -> int:
        params = {"task": task, "item_id": item_id, "rater": rater, "left_model": left_model,
                  "right_model": right_model, "action": action, "winner_model": winner_model, "note": note,
                  "assignment_seed": int(assignment_seed), "session_id": session_id, "created_at": time.time()}
        with self._lock:  # autocommit: one statement is one transaction, committed before this returns
            return int(self.conn.execute(INSERT_LABEL, params).fetchone()[0])

    @reconnecting
    def append_undo(self, task: str, rater: str, assignment_seed: int, session_id: str) -> tuple[int, str] | None:
        with self._lock, self.conn.transaction():
            self.conn.execute(LABEL_LOCK, (task, rater))
            # a new statement after the lock: its snapshot sees an undo another kernel committed meanwhile
            row = self.conn.execute(INSERT_UNDO, (int(assignment_seed), session_id, time.time(), task,
                                                  rater)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))


def _with_text_codec(conn: Any) -> Any:
    _register_text_codec(conn)
    return conn


def _database_missing(exc: Exception) -> bool:
    return getattr(exc, "sqlstate", None) == "3D000" or bool(re.search(r'database "[^"]*" does not exist', str(exc)))


def _frame(cur: Any) -> pd.DataFrame:
    columns = [d.name for d in cur.description or ()]
    rows = cur.fetchall()
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)


@functools.lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    """`?` placeholders (the SQL BaseStore writes once) as psycopg's `%s` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s") if "?" in sql else sql


class QmarkCursor:
    """A psycopg cursor that takes `?` placeholders, as BaseStore's writes are written."""

    def __init__(self, cursor: Any):
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(_qmark(sql) if params else sql, params or None)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(_qmark(sql), rows)
