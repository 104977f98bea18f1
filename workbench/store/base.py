"""What a store does, independent of the database behind it.

`BaseStore` is the interface the rest of the workbench uses: methods grouped by concept (datasets,
runs, responses, judgments, labels), plain Python values and DataFrames in and out, no SQL outside
the store package. A backend (SQLite, or PostgreSQL for teams of raters) implements the abstract
methods: opening, migrating, a write transaction (`_writing`) and the writes whose SQL or locking
really differ (a run's planned calls, claims, labels). Reads and writes that both databases run as
the same `?` statements are written here, once.
"""
from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ContextManager, Iterable, Iterator, Mapping, Sequence

import pandas as pd

from workbench.errors import InputError, StoreError
from workbench.items.tool_calls import ToolCall, calls_from_json, calls_to_json
from workbench.models.base import Response
from workbench.store.schema import (
    CALL_ERROR_COLUMNS,
    DATASET_COLUMNS,
    ITEM_COLUMNS,
    JUDGE_ERROR_COLUMNS,
    JUDGMENT_COLUMNS,
    LABEL_COLUMNS,
    LABEL_QUEUE_COLUMNS,
    OPTIMIZE_RUN_COLUMNS,
    RESPONSE_COLUMNS,
    RUN_ROWS,
    SCORE_COLUMNS,
    TRIAL_COLUMNS,
)
from workbench.values import is_missing


def insert_sql(table: str, columns: Sequence[str], conflict: str = "") -> str:
    """An INSERT naming its columns (a migration that adds one breaks none), with `?` placeholders and
    an optional ON CONFLICT clause: SQL both databases run (SQLite has had PostgreSQL's upsert since 3.24)."""
    sql = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    return f"{sql} {conflict}" if conflict else sql


def _replace(columns: Sequence[str], key: Sequence[str]) -> str:
    """`c = excluded.c` for every column outside the conflict key: the new row replaces the stored one."""
    return ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)


INSERT_DATASET = insert_sql("datasets", DATASET_COLUMNS, "ON CONFLICT DO NOTHING")
INSERT_ITEM = insert_sql("items", ITEM_COLUMNS, "ON CONFLICT DO NOTHING")
# A later answer for a key replaces the stored one.
UPSERT_RESPONSE = insert_sql("responses", RESPONSE_COLUMNS,
                             f"ON CONFLICT (cache_key) DO UPDATE SET {_replace(RESPONSE_COLUMNS, ['cache_key'])}")
INSERT_CALL_ERROR = insert_sql("call_errors", CALL_ERROR_COLUMNS)
INSERT_JUDGMENT = insert_sql("judgments", JUDGMENT_COLUMNS, "ON CONFLICT (judge_key) DO NOTHING")
INSERT_JUDGE_ERROR = insert_sql("judge_errors", JUDGE_ERROR_COLUMNS)
INSERT_SCORE = insert_sql("scores", SCORE_COLUMNS, "ON CONFLICT DO NOTHING")
LATEST_JUDGE_ERROR = "SELECT message, raw_output FROM judge_errors WHERE judge_key = ? ORDER BY error_id DESC LIMIT 1"
INSERT_LABEL_QUEUE = insert_sql("label_queues", LABEL_QUEUE_COLUMNS, "ON CONFLICT (task) DO NOTHING")
INSERT_OPTIMIZE_RUN = insert_sql("optimize_runs", OPTIMIZE_RUN_COLUMNS, "ON CONFLICT (run_id) DO NOTHING")
# A replayed trial keeps its first record (what it cost then); one whose prompt or item scores changed
# (a retry answered calls that had failed) replaces it.
UPSERT_TRIAL = insert_sql("optimize_trials", TRIAL_COLUMNS,
                          f"ON CONFLICT (run_id, trial) DO UPDATE SET {_replace(TRIAL_COLUMNS, ['run_id', 'trial'])}"
                          " WHERE excluded.item_scores_json <> optimize_trials.item_scores_json"
                          " OR excluded.prompt_digest <> optimize_trials.prompt_digest")

LABEL_SELECT = f"SELECT {', '.join(LABEL_COLUMNS)} FROM labels"
RESPONSE_READ = ("text", "finish_reason", "prompt_tokens", "completion_tokens", "cost_usd", "latency_s",
                 "model_version", "tool_calls_json")  # a stored answer, as `_stored_rows` reads it
RUN_FRAME_COLUMNS = ["item_id", "model", "prompt_version", "sample_index", "response", "finish_reason", "prompt_tokens",
                     "completion_tokens", "latency_s", "cost_usd", "model_version", "tool_calls", "error", "cache_key",
                     "run_id", "dataset_id"]


KEYS_PER_STATEMENT = 500  # an IN list's length: under SQLite's bound-parameter limit, planned quickly by both


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), KEYS_PER_STATEMENT):
        yield values[start:start + KEYS_PER_STATEMENT]


def _marks(values: Sequence[Any]) -> str:
    """`?, ?, ?`: one placeholder per value of an IN list."""
    return ", ".join("?" * len(values))


def _calls(response: Any, stored: str | None) -> tuple[ToolCall, ...] | None:
    """A row's tool calls: None without a response (the call failed or never ran), else a tuple."""
    return None if is_missing(response) else calls_from_json(None if is_missing(stored) else stored)


def with_tool_calls(frame: pd.DataFrame) -> pd.DataFrame:
    """A run frame's `tool_calls` column decoded from the stored JSON (see `_calls`)."""
    if "tool_calls" in frame.columns:
        frame["tool_calls"] = [_calls(r, c) for r, c in zip(frame["response"].tolist(), frame["tool_calls"].tolist())]
    return frame


def items_from_json(texts: Sequence[str]) -> pd.DataFrame:
    """The items frame from each row's `fields_json`, in order: parsed as one JSON array and built
    column by column (a quarter less CPU than a `json.loads` and a frame from dicts at 100k items)."""
    records = json.loads("[" + ",".join(texts) + "]")
    if not records:
        return pd.DataFrame()
    keys = list(records[0])
    if any(len(r) != len(keys) or r.keys() != records[0].keys() for r in records):  # rows of another shape
        return pd.DataFrame(records)
    return pd.DataFrame({k: [r[k] for r in records] for k in keys})


def latest_common_runs(per_label: Mapping[str, pd.DataFrame]) -> dict[str, int] | None:
    """{label: run id}: each label's latest run (rows of `runs_frame`) on the newest dataset every
    label has a run on; None when they share none."""
    common = set.intersection(*(set(runs["dataset_id"]) for runs in per_label.values())) if per_label else set()
    if not common:
        return None
    everything = pd.concat(list(per_label.values()))
    newest = max(common, key=lambda d: everything.loc[everything["dataset_id"] == d, "run_id"].max())
    return {label: int(runs.loc[runs["dataset_id"] == newest, "run_id"].max()) for label, runs in per_label.items()}


class BaseStore(ABC):
    path: Path
    keys_per_probe = 20_000  # keys passed as one parameter (`_rows_at`): a chunk of items in one statement, bounded

    # ---- lifecycle -------------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release the connection; the store is unusable afterwards."""

    @abstractmethod
    def reopened(self) -> "BaseStore":
        """A new connection to this same store, for a process forked from this one (a connection never
        crosses a fork); the checks and migrations this store made on opening are not repeated."""

    def __enter__(self) -> "BaseStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Statements with `?` placeholders that SQLite and PostgreSQL both run: the methods below that need
    # no backend-specific SQL are written once, on these three.
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """One statement; returns a DB-API cursor."""

    @abstractmethod
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """A query's rows as a DataFrame."""

    def _rows_for_keys(self, sql: str, keys: Sequence[Any], after: Sequence[Any] = (),
                       before: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of `sql` with `{keys}` as an IN list, run per chunk of keys (`before` / `after`: the
        parameters that precede / follow the list); rows of one key come from one statement, in its order.
        The keys are sorted, so each statement reads neighbouring pages of the key's index (a quarter less
        CPU at 200k keys than their order, which a hash key makes random)."""
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(sorted(set(keys))):
            rows.extend(self.execute(sql.format(keys=_marks(chunk)), (*before, *chunk, *after)).fetchall())
        return rows

    def _keyed_rows(self, columns: Sequence[str], table: str, key_columns: Sequence[str],
                    keys: Sequence[Any], where: str = "", params: Sequence[Any] = ()) -> dict[int, tuple[Any, ...]]:
        """`_rows_at`'s rows. Where the table holds at most twice as many rows (meeting `where`) as keys
        asked for (one dataset's answers or scores, read whole), in one scan matched here: a fifth to a
        third less CPU than 200k key lookups. Otherwise (a chunk of a larger set, a store of many
        datasets) by key. Counted no further than that bound, so a chunk's call costs what its keys cost."""
        bound = 2 * len(keys)
        condition = f" WHERE {where}" if where else ""
        held = self.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} AS t{condition} LIMIT ?) AS held",
                            (*params, bound + 1)).fetchone()[0]
        if held > bound:
            return self._rows_at(columns, table, key_columns, keys, where, params)
        single, width = len(key_columns) == 1, len(columns)
        wanted = keys if single else [tuple(key) for key in keys]
        first: dict[Any, int] = dict(zip(wanted, range(len(wanted))))
        repeated: list[int] = []
        if len(first) < len(wanted):  # a repeated key: found at its first position, copied to the others
            first = {}
            repeated = [at for at, key in enumerate(wanted) if first.setdefault(key, at) != at]
        scanned = self.execute(f"SELECT {', '.join(f't.{c}' for c in [*columns, *key_columns])} FROM {table} AS t"
                               f"{condition}", params).fetchall()
        if single:
            rows = {first[row[width]]: row for row in scanned if row[width] in first}
        else:
            rows = {first[key]: row for row in scanned if (key := row[width:]) in first}
        for at in repeated:
            if first[wanted[at]] in rows:
                rows[at] = rows[first[wanted[at]]]
        return rows

    @abstractmethod
    def _rows_at(self, columns: Sequence[str], table: str, key_columns: Sequence[str],
                 keys: Sequence[Any], where: str = "", params: Sequence[Any] = ()) -> dict[int, tuple[Any, ...]]:
        """{position in `keys` (a tuple each; a plain value where the key is one column): row} for each
        key that a row of `table` (as `t`) meeting `where` (`?` placeholders, `params`) has in its
        `key_columns` (at most one: a key is unique); the row's first values are `columns`, what follows
        is the backend's. The keys go to the database as one parameter per `keys_per_probe` keys: one
        statement per chunk of items, and no key read back as a string only to be looked up again, no
        row copied."""

    @abstractmethod
    def _writing(self) -> ContextManager[Any]:
        """A write transaction, this thread alone on the connection: yields a cursor whose `execute(sql,
        params)` and `executemany(sql, rows)` take `?` placeholders; committed when the block ends,
        rolled back (nothing written) when it raises. The writes below are written once on it."""

    def transaction(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Statements run atomically: all are written or none."""
        with self._writing() as cur:
            for sql, params in statements:
                cur.execute(sql, params)

    # ---- datasets and items ----------------------------------------------------------------------
    def save_items(self, dataset_id: str, source: str, items: pd.DataFrame) -> None:
        """Store a dataset's items once (idempotent: same content, same id)."""
        if self.execute("SELECT 1 FROM datasets WHERE dataset_id = ?", (dataset_id,)).fetchone():
            return
        rows = []
        for rec in items.to_dict(orient="records"):
            ref = rec.get("reference")
            rows.append((dataset_id, rec["item_id"], rec["input"], None if is_missing(ref) else str(ref),
                         json.dumps(rec, ensure_ascii=False, default=str, sort_keys=True)))
        with self._writing() as cur:
            cur.execute(INSERT_DATASET, (dataset_id, source, len(items), time.time()))
            cur.executemany(INSERT_ITEM, rows)

    @abstractmethod
    def items_frame(self, dataset_id: str) -> pd.DataFrame:
        """Every stored column of the dataset's items, in the order they were saved."""

    # ---- runs ------------------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, model: str, prompt_ref: str | None, dataset_id: str, spec: dict[str, Any],
                   planned: Sequence[tuple[str, int, str]]) -> int:
        """Record a run and its planned (item_id, sample_index, cache_key) before any call is made."""

    def latest_run_id(self, model: str, prompt_ref: str | None = None) -> int | None:
        """The newest run of `model` (and prompt version, when given), None when there is none."""
        sql, params = "SELECT max(run_id) FROM runs WHERE model = ?", [model]
        if prompt_ref is not None:
            sql += " AND prompt_ref = ?"
            params.append(prompt_ref)
        row = self.execute(sql, params).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def run_spec(self, run_id: int) -> tuple[dict[str, Any], str | None]:
        """(spec, prompt_ref) recorded when the run was created; StoreError for an unknown run."""
        row = self.execute("SELECT spec_json, prompt_ref FROM runs WHERE run_id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no run {run_id}")
        return json.loads(row[0]), row[1]

    def runs_frame(self) -> pd.DataFrame:
        """One row per run, oldest first: run_id, model, prompt_ref, dataset_id, source (the data file it
        was read from), created_at, n_items."""
        return self.frame(
            """
            SELECT r.run_id, r.model, r.prompt_ref, r.dataset_id, d.source, r.created_at,
                   (SELECT count(DISTINCT ri.item_id) FROM run_items ri WHERE ri.run_id = r.run_id) AS n_items
            FROM runs r LEFT JOIN datasets d ON d.dataset_id = r.dataset_id ORDER BY r.run_id
            """)

    def run_models(self) -> list[str]:
        """The models that have at least one run, sorted."""
        return sorted(r[0] for r in self.execute("SELECT DISTINCT model FROM runs").fetchall())

    @abstractmethod
    def run_frame(self, run_id: int) -> pd.DataFrame:
        """One row per planned call of a run: the response if stored, else the latest error."""

    def run_item_rows(self, run_ids: Sequence[int], item_id: str) -> list[dict[str, Any]]:
        """`run_frame`'s rows of one item in several runs (by run, then sample), as dicts keyed by
        RUN_FRAME_COLUMNS: what the explorer reads per item instead of every run's whole frame."""
        rows = self.execute(f"{RUN_ROWS} WHERE ri.run_id IN ({_marks(run_ids)}) AND ri.item_id = ?"
                            " ORDER BY ri.run_id, ri.sample_index", (*map(int, run_ids), str(item_id))).fetchall()
        return [{**row, "tool_calls": _calls(row["response"], row["tool_calls"])}
                for row in (dict(zip(RUN_FRAME_COLUMNS, values)) for values in rows)]

    def run_failed_items(self, run_ids: Sequence[int]) -> list[str]:
        """Items with at least one planned call in these runs that has no stored answer (failed or
        never made): the explorer's error filter, without reading the responses."""
        return [r[0] for r in self.execute(
            f"SELECT DISTINCT ri.item_id FROM run_items ri WHERE ri.run_id IN ({_marks(run_ids)})"
            " AND NOT EXISTS (SELECT 1 FROM responses resp WHERE resp.cache_key = ri.cache_key)",
            tuple(map(int, run_ids))).fetchall()]

    def run_cost(self, run_id: int) -> float | None:
        """Known cost in USD of a run's planned calls that have a stored answer (as the sum of
        `run_frame(run_id).cost_usd`, without building the frame); None when no price is known."""
        cost = self.execute("SELECT sum(resp.cost_usd) FROM run_items ri JOIN responses resp"
                            " ON resp.cache_key = ri.cache_key WHERE ri.run_id = ?", (int(run_id),)).fetchone()[0]
        return None if cost is None else float(cost)

    def planned_frame(self, planned: Sequence[tuple[str, int, str]]) -> pd.DataFrame:
        """Like `run_frame` for calls that were planned but not recorded as a run: one row per
        (item_id, sample_index, cache_key), in order, with the stored response or else the key's
        latest error (both missing when never called). model, prompt_version, run_id and dataset_id
        are None, for the caller to fill in."""
        if not planned:
            return pd.DataFrame([], columns=RUN_FRAME_COLUMNS)
        keys = list(dict.fromkeys(key for _item, _sample, key in planned))
        stored = {keys[at]: row for at, row in self._stored_rows(keys).items()}
        errors = self._latest_errors([k for k in keys if k not in stored]) if len(stored) < len(keys) else {}
        answers = [stored.get(key) for _item, _sample, key in planned]

        def field(position: int) -> list[Any]:
            return [None if row is None else row[position] for row in answers]

        nothing = [None] * len(planned)
        columns = {"item_id": [item for item, _sample, _key in planned], "model": nothing, "prompt_version": nothing,
                   "sample_index": [sample for _item, sample, _key in planned], "response": field(0),
                   "finish_reason": field(1), "prompt_tokens": field(2), "completion_tokens": field(3),
                   "latency_s": field(5), "cost_usd": field(4), "model_version": field(6),
                   "tool_calls": [None if row is None else calls_from_json(row[7]) for row in answers],
                   "error": [errors.get(key) for _item, _sample, key in planned],
                   "cache_key": [key for _item, _sample, key in planned], "run_id": nothing, "dataset_id": nothing}
        return pd.DataFrame(columns, columns=RUN_FRAME_COLUMNS)  # column by column: no object or dict per row

    def _latest_errors(self, keys: Sequence[str]) -> dict[str, str]:
        """Per key without a response: the message of its latest recorded call error."""
        return self._latest_messages("call_errors", "cache_key", keys)

    def _latest_messages(self, table: str, key_column: str, keys: Sequence[str]) -> dict[str, str]:
        """Per key, the message of its latest error row (errors are logged, never cached)."""
        return dict(self._rows_for_keys(f"SELECT {key_column}, message FROM {table} WHERE {key_column} IN ({{keys}})"
                                        " ORDER BY error_id", keys))  # the latest row of a key comes last

    def responses_frame(self, model: str, prompt_ref: str | None = None) -> pd.DataFrame:
        """Responses of the latest run of `model` (and prompt version, when given)."""
        run_id = self.latest_run_id(model, prompt_ref)
        if run_id is None:
            known = self.run_models()
            raise InputError(f"no run of model '{model}' in store {self.path} (runs exist for: {', '.join(known) or 'none'})")
        return self.run_frame(run_id)

    # ---- responses and call errors (the response cache) ------------------------------------------
    def cached_keys(self, keys: Sequence[str]) -> set[str]:
        """The keys that have a stored response."""
        return {r[0] for r in self._rows_for_keys("SELECT cache_key FROM responses WHERE cache_key IN ({keys})", keys)}

    def stored_responses(self, keys: Sequence[str]) -> dict[str, Response]:
        """The stored answer of each key that has one (a cache hit); missing keys are absent."""
        keys = list(dict.fromkeys(keys))
        return {keys[at]: Response(text=row[0], finish_reason=row[1], prompt_tokens=row[2], completion_tokens=row[3],
                                   cost_usd=row[4], latency_s=row[5], model_version=row[6],
                                   tool_calls=calls_from_json(row[7])) for at, row in self._stored_rows(keys).items()}

    def _stored_rows(self, keys: Sequence[str]) -> dict[int, tuple[Any, ...]]:
        """The stored row of each key that has one, by the key's position in `keys`: (text, finish_reason,
        prompt_tokens, completion_tokens, cost_usd, latency_s, model_version, tool_calls_json, ...)."""
        return self._keyed_rows(RESPONSE_READ, "responses", ["cache_key"], keys)

    def put_response(self, cache_key: str, model: str, request: dict[str, Any], response: Response) -> None:
        """Cache one successful response (a later one for the same key replaces it)."""
        self.execute(UPSERT_RESPONSE, (
            cache_key, model, json.dumps(request, ensure_ascii=False, sort_keys=True), response.text,
            response.finish_reason, response.prompt_tokens, response.completion_tokens, response.cost_usd,
            response.latency_s, response.model_version, time.time(), calls_to_json(response.tool_calls)))

    def record_error(self, cache_key: str, model: str, item_id: str, sample_index: int, kind: str,
                     message: str, attempts: int) -> None:
        """Record a failed call; errors are kept for the record and never served as cache hits."""
        self.execute(INSERT_CALL_ERROR, (cache_key, model, item_id, int(sample_index), kind, message, int(attempts),
                                         time.time()))

    # ---- claims: which execute is making which call now (processes sharing a store) ----------------
    @abstractmethod
    def claim_calls(self, keys: Sequence[str], owner: str, lease_s: float, since: float) -> set[str]:
        """Claim, atomically, each key that has no stored response, no error recorded at or after
        `since` (time.time(): another process gave it up during this run), and no live claim of
        another owner (an expired one is taken over). The keys `owner` holds now; for `lease_s`
        seconds unless renewed."""

    def renew_claims(self, owner: str, lease_s: float) -> int:
        """Extend every claim of `owner` to `lease_s` seconds from now; how many it holds."""
        return self.execute("UPDATE claims SET expires_at = ? WHERE owner = ?", (time.time() + lease_s, owner)).rowcount

    def release_claims(self, owner: str, keys: Sequence[str] | None = None) -> None:
        """Drop `owner`'s claims on `keys` (all of them when None): the calls ended, stored or given up."""
        if keys is None:
            self.execute("DELETE FROM claims WHERE owner = ?", (owner,))
            return
        for chunk in _chunks(keys):
            self.execute(f"DELETE FROM claims WHERE owner = ? AND cache_key IN ({_marks(chunk)})", (owner, *chunk))

    def claim_holders(self, keys: Sequence[str]) -> dict[str, str]:
        """The owner of each key with a live (unexpired) claim; other keys are absent."""
        return dict(self._rows_for_keys("SELECT cache_key, owner FROM claims WHERE cache_key IN ({keys})"
                                        " AND expires_at > ?", keys, after=(time.time(),)))

    def errors_since(self, keys: Sequence[str], since: float) -> dict[str, tuple[str, str]]:
        """(kind, message) of each key's latest error recorded at or after `since`; others absent."""
        rows = self._rows_for_keys("SELECT cache_key, kind, message FROM call_errors WHERE cache_key IN ({keys})"
                                   " AND created_at >= ? ORDER BY error_id", keys, after=(since,))
        return {key: (kind, message) for key, kind, message in rows}  # the latest row of a key comes last

    # ---- judgments (the judge cache) -------------------------------------------------------------
    def stored_judgments(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per stored judge key: {verdict, score, rationale, raw_output}; missing keys are absent."""
        rows = self._rows_for_keys("SELECT judge_key, verdict, score, rationale, raw_output FROM judgments"
                                   " WHERE judge_key IN ({keys})", keys)
        return {key: {"verdict": verdict, "score": score, "rationale": rationale, "raw_output": raw}
                for key, verdict, score, rationale, raw in rows}

    def latest_judge_errors(self, keys: Sequence[str]) -> dict[str, str]:
        """Per judge key without a verdict: the message of its latest recorded failure."""
        return self._latest_messages("judge_errors", "judge_key", keys)

    def put_judgments(self, judgments: Sequence[Mapping[str, Any]], errors: Sequence[Mapping[str, Any]]) -> None:
        """One judging round, atomically. `judgments`: rows with every judgments column but
        created_at (a key already stored is kept). `errors`: judge_key, item_id, message, raw_output;
        an error identical to the key's latest recorded one (replayed from cached calls) is skipped."""
        if not judgments and not errors:
            return
        now = time.time()
        with self._writing() as cur:
            if judgments:
                cur.executemany(INSERT_JUDGMENT, [(*(row[c] for c in JUDGMENT_COLUMNS[:-1]), now) for row in judgments])
            if errors:  # one writer at a time: "same as the latest error" must hold when the row lands
                self._serialize_judge_errors(cur)
            for err in errors:
                last = cur.execute(LATEST_JUDGE_ERROR, (err["judge_key"],)).fetchone()
                if last is not None and tuple(last) == (err["message"], err["raw_output"]):
                    continue  # the same failure replayed from cached calls: already on record
                cur.execute(INSERT_JUDGE_ERROR, (*(err[c] for c in JUDGE_ERROR_COLUMNS[:-1]), now))

    def _serialize_judge_errors(self, cur: Any) -> None:
        """Hold, until the transaction of `cur` ends, the lock that writers of judge errors take. None
        needed where a write transaction already excludes every other writer (SQLite's BEGIN IMMEDIATE)."""

    # ---- metric scores (the score cache) ----------------------------------------------------------
    def stored_scores(self, metric: str, metric_version: str,
                      keys: Sequence[tuple[str, str]]) -> dict[int, float | None]:
        """The stored value of each (response_key, reference_key) a metric at this version has scored, by
        the key's position in `keys` (None: stored as not applicable, NaN); keys never scored are absent."""
        return {at: row[0] for at, row in self._score_rows("value", metric, metric_version, keys).items()}

    def stored_details(self, metric: str, metric_version: str, keys: Sequence[tuple[str, str]]) -> dict[int, str]:
        """Like `stored_scores`, the stored `detail_json` of each key (measures kept as a record)."""
        return {at: row[0] for at, row in self._score_rows("detail_json", metric, metric_version, keys).items()
                if row[0] is not None}

    def _score_rows(self, column: str, metric: str, metric_version: str,
                    keys: Sequence[tuple[str, str]]) -> dict[int, tuple[Any, ...]]:
        """{position in `keys`: row whose first value is `column`} of each key this metric version has stored."""
        return self._keyed_rows([column], "scores", ["response_key", "reference_key"], keys,
                                "t.metric = ? AND t.metric_version = ?", (metric, metric_version))

    def put_scores(self, rows: Sequence[tuple[str, str, str, str, float | None, str | None]]) -> int:
        """Store scores, in one transaction: rows of (metric, metric_version, response_key, reference_key,
        value or None, detail_json or None). A key already stored keeps its first value (the same key
        means the same inputs to the same code). How many rows were given."""
        if not rows:
            return 0
        now = time.time()
        with self._writing() as cur:
            cur.executemany(INSERT_SCORE, [(*row, now) for row in rows])
        return len(rows)

    @abstractmethod
    def append_label(self, task: str, item_id: str, rater: str, left_model: str, right_model: str, action: str,
                     winner_model: str | None, note: str | None, assignment_seed: int, session_id: str) -> int:
        """Append one rater decision, durably committed before returning; its label id."""

    @abstractmethod
    def append_undo(self, task: str, rater: str, assignment_seed: int, session_id: str) -> tuple[int, str] | None:
        """Append an `undo` row cancelling the rater's latest not-yet-cancelled decision, atomically
        (two kernels undoing at once never cancel the same label twice). (undo label id, item id),
        or None when there is nothing to undo."""

    def labels_frame(self, task: str | None = None, rater: str | None = None) -> pd.DataFrame:
        """Label log rows (every task when `task` is None; optionally one rater's), oldest first."""
        given = {k: v for k, v in {"task": task, "rater": rater}.items() if v is not None}
        where = " WHERE " + " AND ".join(f"{k} = ?" for k in given) if given else ""
        return self.frame(f"{LABEL_SELECT}{where} ORDER BY label_id", list(given.values()))

    def label_rows(self, task: str, rater: str, after_label_id: int = 0) -> list[dict[str, Any]]:
        """The rater's rows of `task` newer than `after_label_id`, oldest first, as dicts."""
        rows = self.execute(f"{LABEL_SELECT} WHERE task = ? AND rater = ? AND label_id > ? ORDER BY label_id",
                            (task, rater, int(after_label_id))).fetchall()
        return [dict(zip(LABEL_COLUMNS, row)) for row in rows]

    def label_models(self, task: str) -> set[str]:
        """Every model that appears on either side in the labels of `task`."""
        rows = self.execute("SELECT DISTINCT left_model, right_model FROM labels WHERE task = ?", (task,)).fetchall()
        return {m for row in rows for m in row}

    # ---- the active labeling queue of a task (written once, read by the labeler and the comparison) ---
    def save_label_queue(self, task: str, queue: Sequence[tuple[str, float]], *, seed: int, budget: float,
                         n_total: int) -> list[tuple[str, float]]:
        """Record `task`'s queue (item_id, probability), front first, unless one is recorded already;
        returns the recorded one. One row in one statement, so two raters starting at once can never
        leave a mixture of two draws: the first draw wins and both label from it."""
        queue_json = json.dumps([[str(item), float(p)] for item, p in queue], allow_nan=False)
        self.execute(INSERT_LABEL_QUEUE, (task, int(seed), float(budget), int(n_total), len(queue), queue_json,
                                          time.time()))
        recorded = self.label_queue(task)
        assert recorded is not None
        return recorded["queue"]

    def label_queue(self, task: str) -> dict[str, Any] | None:
        """`task`'s recorded queue: {queue: [(item_id, probability)], seed, budget, n_total, queue_size},
        or None when the task labels in uniform order."""
        row = self.execute("SELECT seed, budget, n_total, queue_size, queue_json FROM label_queues WHERE task = ?",
                           (task,)).fetchone()
        if row is None:
            return None
        seed, budget, n_total, queue_size, queue_json = row
        return {"queue": [(str(i), float(p)) for i, p in json.loads(queue_json)], "seed": int(seed),
                "budget": float(budget), "n_total": int(n_total), "queue_size": int(queue_size)}

    # ---- prompt optimisation: runs and their trials ----------------------------------------------
    def start_optimize_run(self, run_id: str, target: str, start_prompt: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Record an optimisation run, or mark an existing one running again (a resume keeps its first
        `created_at`); returns the run's row as a dict."""
        now = time.time()
        config_json = json.dumps(dict(config), sort_keys=True, default=str, ensure_ascii=False)
        self.transaction([
            (INSERT_OPTIMIZE_RUN, (run_id, target, start_prompt, config_json, "running", None, now, now)),
            ("UPDATE optimize_runs SET status = 'running', updated_at = ? WHERE run_id = ?", (now, run_id)),
        ])
        run = self.optimize_run(run_id)
        assert run is not None
        return run

    def finish_optimize_run(self, run_id: str, status: str, result: Mapping[str, Any] | None) -> None:
        """Set a run's final status ('done' or 'failed') and its result."""
        self.execute("UPDATE optimize_runs SET status = ?, result_json = ?, updated_at = ? WHERE run_id = ?",
                     (status, None if result is None else json.dumps(result, sort_keys=True, default=str,
                                                                     ensure_ascii=False), time.time(), run_id))

    def optimize_run(self, run_id: str) -> dict[str, Any] | None:
        """One run's row (config and result parsed from JSON), None when unknown."""
        row = self.execute(f"SELECT {', '.join(OPTIMIZE_RUN_COLUMNS)} FROM optimize_runs WHERE run_id = ?",
                           (run_id,)).fetchone()
        if row is None:
            return None
        run = dict(zip(OPTIMIZE_RUN_COLUMNS, row))
        run["config"] = json.loads(run.pop("config_json"))
        result = run.pop("result_json")
        run["result"] = json.loads(result) if result else None
        return run

    def optimize_runs_frame(self) -> pd.DataFrame:
        """One row per optimisation run, oldest first (JSON columns as text)."""
        return self.frame(f"SELECT {', '.join(OPTIMIZE_RUN_COLUMNS)} FROM optimize_runs ORDER BY created_at, run_id")

    def put_trial(self, row: Mapping[str, Any]) -> bool:
        """Record one trial (every optimize_trials column but created_at; item_scores as a dict). A
        trial already recorded for (run_id, trial) is kept as first written (a replay: what it cost
        then), unless its prompt or item scores differ (a retry answered calls that had failed), which
        replaces it; True when written now."""
        values = {**row, "item_scores_json": json.dumps(row["item_scores"], sort_keys=True, allow_nan=False),
                  "created_at": time.time()}
        return self.execute(UPSERT_TRIAL, tuple(values[c] for c in TRIAL_COLUMNS)).rowcount == 1

    def trials_frame(self, run_id: str) -> pd.DataFrame:
        """The run's trials in order, `item_scores` parsed into dicts."""
        frame = self.frame(f"SELECT {', '.join(TRIAL_COLUMNS)} FROM optimize_trials WHERE run_id = ? ORDER BY trial",
                           (run_id,))
        frame["item_scores"] = [json.loads(text) for text in frame.pop("item_scores_json")]
        return frame
