"""The durable store: one SQLite file (WAL) holding items, responses, errors, judgments and labels.

Everything a report needs is here, so a re-run with a warm store makes no model call.
Schema changes are numbered migrations appended to `MIGRATIONS`; never edit an applied one.
The store is behind this small class so a server database could implement it later.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd

from workbench.models.base import Response

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE datasets (
        dataset_id TEXT PRIMARY KEY,          -- hash of the canonical item rows
        source TEXT NOT NULL,
        n_items INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE items (
        dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
        item_id TEXT NOT NULL,
        input TEXT NOT NULL,
        reference TEXT,
        fields_json TEXT NOT NULL,            -- every column of the row, for templates and slices
        PRIMARY KEY (dataset_id, item_id)
    );
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,                  -- registered name, e.g. hf/smollm2-135m-instruct
        prompt_ref TEXT,                      -- name@version, NULL when the raw input is sent
        dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
        spec_json TEXT NOT NULL,              -- adapter identity, sampling, samples, options
        created_at REAL NOT NULL
    );
    CREATE TABLE run_items (
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        item_id TEXT NOT NULL,
        sample_index INTEGER NOT NULL,
        cache_key TEXT NOT NULL,
        PRIMARY KEY (run_id, item_id, sample_index)
    );
    CREATE TABLE responses (
        cache_key TEXT PRIMARY KEY,           -- sha256 of canonical JSON of adapter identity + request
        model TEXT NOT NULL,
        request_json TEXT NOT NULL,
        text TEXT NOT NULL,
        finish_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd REAL,                        -- NULL when the price is unknown, never 0
        latency_s REAL,
        model_version TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE call_errors (                -- errors are recorded, never cached
        error_id INTEGER PRIMARY KEY AUTOINCREMENT,
        cache_key TEXT NOT NULL,
        model TEXT NOT NULL,
        item_id TEXT NOT NULL,
        sample_index INTEGER NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX call_errors_key ON call_errors(cache_key);
    CREATE TABLE judgments (                  -- cached like responses, keyed by judge spec + inputs
        judge_key TEXT PRIMARY KEY,
        judge_spec_json TEXT NOT NULL,        -- model, template, parameters
        kind TEXT NOT NULL,                   -- pointwise | pairwise
        criterion TEXT NOT NULL,
        item_id TEXT NOT NULL,
        response_key_a TEXT NOT NULL,
        response_key_b TEXT,                  -- pairwise only
        position TEXT,                        -- pairwise: 'ab' (a shown first) or 'ba'
        sample_index INTEGER NOT NULL,
        verdict TEXT,                         -- pairwise: A | B | tie (in the a/b naming, not screen order)
        score REAL,                           -- pointwise: 1..5
        rationale TEXT,
        raw_output TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX judgments_item ON judgments(item_id);
    CREATE TABLE judge_errors (
        error_id INTEGER PRIMARY KEY AUTOINCREMENT,
        judge_key TEXT NOT NULL,
        item_id TEXT NOT NULL,
        message TEXT NOT NULL,
        raw_output TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE labels (                     -- append-only: one row per rater decision, never updated
        label_id INTEGER PRIMARY KEY AUTOINCREMENT,
        task TEXT NOT NULL,                   -- labeling task name (which comparison)
        item_id TEXT NOT NULL,
        rater TEXT NOT NULL,
        left_model TEXT NOT NULL,             -- the blind assignment that was on screen
        right_model TEXT NOT NULL,
        action TEXT NOT NULL,                 -- left | right | tie | both_bad | skip | undo
        winner_model TEXT,                    -- resolved from action + assignment; NULL for tie/both_bad/skip/undo
        undoes_label_id INTEGER,              -- for action = undo
        note TEXT,
        assignment_seed INTEGER NOT NULL,
        session_id TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX labels_task_rater ON labels(task, rater);
    """,
]


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


class Store:
    """A SQLite store. Safe to share between the asyncio loop and worker threads of one process,
    and between processes (WAL, busy timeout)."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a killed process; labels switch to FULL for power-loss durability.
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            current = schema_version(self.conn)
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    if schema_version(self.conn) < version:  # another process may have migrated meanwhile
                        for statement in script.split(";\n"):
                            if statement.strip():
                                self.conn.execute(statement)
                        self.conn.execute(f"PRAGMA user_version={version}")
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- low-level helpers -------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self.conn.execute(sql, params)

    def transaction(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Run statements atomically: all are written or none."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    self.conn.execute(sql, params)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self._lock:
            return pd.read_sql_query(sql, self.conn, params=params)

    # ---- datasets and items ------------------------------------------------------------------
    def save_items(self, dataset_id: str, source: str, items: pd.DataFrame) -> None:
        """Store a dataset's items once (idempotent: same content, same id)."""
        if self.execute("SELECT 1 FROM datasets WHERE dataset_id=?", (dataset_id,)).fetchone():
            return
        rows = []
        for rec in items.to_dict(orient="records"):
            ref = rec.get("reference")
            rows.append(("INSERT OR IGNORE INTO items VALUES (?,?,?,?,?)",
                         (dataset_id, rec["item_id"], rec["input"], None if _missing(ref) else str(ref),
                          json.dumps(rec, ensure_ascii=False, default=str, sort_keys=True))))
        self.transaction([("INSERT OR IGNORE INTO datasets VALUES (?,?,?,?)", (dataset_id, source, len(items), time.time())), *rows])

    def items_frame(self, dataset_id: str) -> pd.DataFrame:
        rows = self.execute("SELECT fields_json FROM items WHERE dataset_id=? ORDER BY rowid", (dataset_id,)).fetchall()
        return pd.DataFrame([json.loads(r[0]) for r in rows])

    # ---- runs and responses ------------------------------------------------------------------
    def create_run(self, model: str, prompt_ref: str | None, dataset_id: str, spec: dict[str, Any],
                   planned: Sequence[tuple[str, int, str]]) -> int:
        """Record a run and its planned (item_id, sample_index, cache_key) before any call is made."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self.conn.execute(
                    "INSERT INTO runs(model, prompt_ref, dataset_id, spec_json, created_at) VALUES (?,?,?,?,?)",
                    (model, prompt_ref, dataset_id, json.dumps(spec, sort_keys=True, default=str), time.time()))
                run_id = int(cur.lastrowid)
                self.conn.executemany("INSERT INTO run_items VALUES (?,?,?,?)",
                                      [(run_id, item, sample, key) for item, sample, key in planned])
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return run_id

    def cached_keys(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(list(keys), 500):
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.execute(f"SELECT cache_key FROM responses WHERE cache_key IN ({marks})", chunk))
        return found

    def stored_responses(self, keys: Sequence[str]) -> dict[str, Response]:
        """The stored answer of each key that has one (a cache hit); missing keys are absent."""
        found: dict[str, Response] = {}
        for chunk in _chunks(list(keys), 500):
            marks = ",".join("?" * len(chunk))
            for row in self.execute("SELECT cache_key, text, finish_reason, prompt_tokens, completion_tokens, cost_usd,"
                                    f" latency_s, model_version FROM responses WHERE cache_key IN ({marks})", chunk):
                found[row[0]] = Response(text=row[1], finish_reason=row[2], prompt_tokens=row[3],
                                         completion_tokens=row[4], cost_usd=row[5], latency_s=row[6],
                                         model_version=row[7])
        return found

    def put_response(self, cache_key: str, model: str, request: dict[str, Any], response: Response) -> None:
        self.execute(
            "INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (cache_key, model, json.dumps(request, ensure_ascii=False, sort_keys=True), response.text,
             response.finish_reason, response.prompt_tokens, response.completion_tokens, response.cost_usd,
             response.latency_s, response.model_version, time.time()))

    def record_error(self, cache_key: str, model: str, item_id: str, sample_index: int, kind: str,
                     message: str, attempts: int) -> None:
        self.execute("INSERT INTO call_errors(cache_key, model, item_id, sample_index, kind, message, attempts, created_at)"
                     " VALUES (?,?,?,?,?,?,?,?)", (cache_key, model, item_id, sample_index, kind, message, attempts, time.time()))

    def latest_run_id(self, model: str, prompt_ref: str | None = None) -> int | None:
        sql, params = "SELECT max(run_id) FROM runs WHERE model=?", [model]
        if prompt_ref is not None:
            sql += " AND prompt_ref=?"
            params.append(prompt_ref)
        row = self.execute(sql, params).fetchone()
        return row[0] if row else None

    def run_frame(self, run_id: int) -> pd.DataFrame:
        """One row per planned call of a run: the response if stored, else the latest error."""
        return self.frame(
            """
            SELECT ri.item_id, r.model, r.prompt_ref AS prompt_version, ri.sample_index,
                   resp.text AS response, resp.finish_reason, resp.prompt_tokens, resp.completion_tokens,
                   resp.latency_s, resp.cost_usd, resp.model_version,
                   CASE WHEN resp.cache_key IS NULL THEN
                       (SELECT e.message FROM call_errors e WHERE e.cache_key = ri.cache_key
                        ORDER BY e.error_id DESC LIMIT 1) END AS error,
                   ri.cache_key, r.run_id, r.dataset_id
            FROM run_items ri JOIN runs r ON r.run_id = ri.run_id
            LEFT JOIN responses resp ON resp.cache_key = ri.cache_key
            WHERE ri.run_id = ?
            ORDER BY ri.rowid
            """, (run_id,))

    def responses_frame(self, model: str, prompt_ref: str | None = None) -> pd.DataFrame:
        """Responses of the latest run of `model` (and prompt version, when given)."""
        run_id = self.latest_run_id(model, prompt_ref)
        if run_id is None:
            from workbench.errors import InputError

            known = sorted({r[0] for r in self.execute("SELECT DISTINCT model FROM runs")})
            raise InputError(f"no run of model '{model}' in store {self.path} (runs exist for: {', '.join(known) or 'none'})")
        return self.run_frame(run_id)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
