"""The PostgreSQL store keeps the SQLite store's contract: the same methods give the same answers,
numbered migrations reach the same schema version, concurrent writers stay atomic, and a database
that cannot be used is one clear StoreError whose message never shows the password."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time

import pandas as pd
import pytest

from tests.test_store import (_trial, test_claims_are_exclusive_until_released_or_expired,  # noqa: F401
                              test_concurrent_claims_never_give_one_key_to_two_processes,
                              test_judge_errors_replayed_from_the_cache_are_recorded_once,
                              test_labels_frame_all_tasks_or_one, test_planned_frame_matches_run_frame,
                              test_run_frame_shows_response_or_latest_error, test_runs_frame_run_spec_and_models)
from workbench.errors import StoreError, WorkbenchError
from workbench.models.base import Response
from tests.store.historic_schema import POSTGRES_SCRIPTS
from workbench.store import (MIGRATIONS, POSTGRES_MIGRATIONS, PostgresStore, SQLiteStore, Store, open_store)
from workbench.store.ddl import INTEGER, REAL, TEXT, AddColumn, optional, postgres_script
from workbench.store.schema import TABLES

# The DDL that made the PostgreSQL stores in the field: as it shipped up to version 5, then generated.
SHIPPED = [*POSTGRES_SCRIPTS, *POSTGRES_MIGRATIONS[len(POSTGRES_SCRIPTS):]]

# The tests imported above (tests/test_store.py) take the `store` fixture: tests/store/conftest.py
# gives them a PostgreSQL store, so the SQLite store's contract is checked on PostgreSQL too.


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


# ---- schema: one list of versions, the same tables and columns on both databases --------------------
def _pg_schema(url: str) -> str:
    with _connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, ''), is_identity,"
            " coalesce(identity_generation, '') FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, ordinal_position").fetchall()
        indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
                               " ORDER BY indexname").fetchall()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2").fetchall()
    return "\n".join(" ".join(map(str, row)) for row in [*columns, *indexes, *constraints])


# Pinned like the SQLite schema: a change means a new numbered migration in store/schema.py and this hash updated.
PINNED_POSTGRES_SCHEMA_SHA256 = "2b4963ebfdcb09b159fbffdafa356820afdd55e7bafea77c02547e0fc8492028"  # 6: scores


def test_the_generated_ddl_gives_the_schema_that_shipped_at_every_version(pg_cluster):
    """The PostgreSQL scripts generated from the one declaration make, version by version, the same
    columns (types, nullability, defaults, identity), indexes and constraints the hand-written DDL made."""
    for k in range(1, len(POSTGRES_SCRIPTS) + 1):
        shipped, generated = pg_cluster.create_database(), pg_cluster.create_database()
        _at_version(shipped, k, POSTGRES_SCRIPTS)
        _at_version(generated, k, POSTGRES_MIGRATIONS)
        assert _pg_schema(generated) == _pg_schema(shipped), f"version {k}"


def test_postgres_schema_is_pinned(pg_url):
    with open_store(pg_url) as s:
        assert isinstance(s, PostgresStore) and s.schema_version == len(MIGRATIONS)
    text = _pg_schema(pg_url)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == PINNED_POSTGRES_SCHEMA_SHA256, f"schema changed (sha256 {digest}):\n{text}"


def test_postgres_has_the_sqlite_tables_columns_and_indexes(pg_url, tmp_path):
    """Version N is the same schema on both: every table, column (in order) and named index; the
    PostgreSQL-only extras are `schema_version` and the `seq` columns that stand for SQLite's rowid."""
    with Store(tmp_path / "s.db") as lite:
        lite_columns = {t: [r[1] for r in lite.execute(f"PRAGMA table_info({t})")] for t in TABLES}
        lite_indexes = {r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                                   " AND name NOT LIKE 'sqlite_%'")}
    open_store(pg_url).close()
    with _connect(pg_url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns"
                            " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position").fetchall()
        pg_indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
                                                  " AND indexname NOT LIKE '%_pkey'")}
    pg_columns: dict[str, list[str]] = {}
    for table, column in rows:
        pg_columns.setdefault(table, []).append(column)
    assert set(pg_columns) - {"schema_version"} == set(TABLES)
    for table in TABLES:
        assert [c for c in pg_columns[table] if c != "seq"] == lite_columns[table], table
    assert pg_indexes == lite_indexes


def _at_version(url: str, k: int, migrations: list[str] | None = None) -> None:
    """A database as schema version k wrote it (raw SQL as it shipped, not the store, so the test does
    not trust the code it tests)."""
    with _connect(url) as conn, conn.transaction():
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
        for version, script in enumerate((migrations or SHIPPED)[:k], start=1):
            conn.execute(script)
            conn.execute("INSERT INTO schema_version VALUES (%s, %s)", (version, 1_700_000_000.0))


def _write_as_version_1(url: str) -> None:
    t = 1_700_000_000.0
    with _connect(url) as conn, conn.transaction():
        conn.execute("INSERT INTO datasets(dataset_id, source, n_items, created_at) VALUES ('d1', 'mem', 2, %s)", (t,))
        for item, text, ref in (("a", "x", "r"), ("b", "y", None)):
            conn.execute("INSERT INTO items(dataset_id, item_id, input, reference, fields_json) VALUES ('d1',%s,%s,%s,%s)",
                         (item, text, ref, json.dumps({"item_id": item, "input": text})))
        conn.execute("INSERT INTO runs(model, prompt_ref, dataset_id, spec_json, created_at) VALUES (%s,%s,%s,%s,%s)",
                     ("fake/m", "p@v1", "d1", json.dumps({"adapter": {"name": "fake/m"}}), t))
        for item, key in (("a", "ka"), ("b", "kb")):
            conn.execute("INSERT INTO run_items(run_id, item_id, sample_index, cache_key) VALUES (1, %s, 0, %s)", (item, key))
        conn.execute("INSERT INTO responses(cache_key, model, request_json, text, finish_reason, prompt_tokens,"
                     " completion_tokens, cost_usd, latency_s, model_version, created_at)"
                     " VALUES ('ka', 'fake/m', '{}', 'A!', 'stop', 3, 2, NULL, 0.5, 'v', %s)", (t,))
        conn.execute("INSERT INTO call_errors(cache_key, model, item_id, sample_index, kind, message, attempts, created_at)"
                     " VALUES ('kb', 'fake/m', 'b', 0, 'server', 'boom', 3, %s)", (t,))
        conn.execute("INSERT INTO judgments(judge_key, judge_spec_json, kind, criterion, item_id, response_key_a,"
                     " response_key_b, position, sample_index, verdict, score, rationale, raw_output, created_at)"
                     " VALUES ('j1', '{}', 'pairwise', 'correctness', 'a', 'ka', 'kz', 'ab', 0, 'A', NULL, 'why', 'raw', %s)",
                     (t,))
        conn.execute("INSERT INTO labels(task, item_id, rater, left_model, right_model, action, winner_model,"
                     " undoes_label_id, note, assignment_seed, session_id, created_at)"
                     " VALUES ('t', 'a', 'ann', 'fake/m', 'fake/n', 'left', 'fake/m', NULL, NULL, 0, 's', %s)", (t,))


def _check_version_1_data(s) -> None:
    assert list(s.items_frame("d1")["item_id"]) == ["a", "b"]
    frame = s.run_frame(1).set_index("item_id")
    assert frame.loc["a", "response"] == "A!" and frame.loc["b", "error"] == "boom"
    assert s.stored_responses(["ka"])["ka"].prompt_tokens == 3
    assert s.stored_judgments(["j1"]) == {"j1": {"verdict": "A", "score": None, "rationale": "why", "raw_output": "raw"}}
    assert s.labels_frame("t")[["item_id", "rater", "winner_model"]].values.tolist()[0] == ["a", "ann", "fake/m"]
    assert s.run_spec(1) == ({"adapter": {"name": "fake/m"}}, "p@v1")


@pytest.mark.parametrize("k", range(1, len(MIGRATIONS)))
def test_a_postgres_store_at_every_earlier_version_is_migrated_and_keeps_its_data(pg_cluster, k):
    url = pg_cluster.create_database()
    _at_version(url, k)
    _write_as_version_1(url)
    with open_store(url, create=False) as s:
        assert s.schema_version == len(MIGRATIONS)
        _check_version_1_data(s)
        # the write paths of the later versions work at once
        assert s.claim_calls(["ka", "kb", "kc"], "me", 30, since=0.0) == {"kc"}
        s.start_optimize_run("r", "fake/m", "p@v1", {"seed": 0})
        assert s.put_trial(_trial("r", 0)) is True
    fresh = pg_cluster.create_database()
    open_store(fresh).close()
    assert _pg_schema(url) == _pg_schema(fresh)


def test_a_failing_postgres_migration_leaves_the_store_untouched(pg_url, monkeypatch):
    _at_version(pg_url, len(MIGRATIONS))
    _write_as_version_1(pg_url)
    bad = "ALTER TABLE responses ADD COLUMN x BIGINT;\nALTER TABLE nope ADD COLUMN y BIGINT"
    monkeypatch.setattr("workbench.store.postgres.POSTGRES_MIGRATIONS", [*POSTGRES_MIGRATIONS, bad])
    with pytest.raises(StoreError, match="nope"):
        open_store(pg_url)
    monkeypatch.undo()
    with open_store(pg_url, create=False) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert "x" not in s.frame("SELECT * FROM responses LIMIT 0").columns  # DDL is transactional
        _check_version_1_data(s)


def test_a_postgres_store_written_by_the_previous_schema_gains_added_columns(pg_url, monkeypatch):
    """A next migration that adds columns: named-column inserts keep working on the migrated store."""
    _at_version(pg_url, len(MIGRATIONS))
    _write_as_version_1(pg_url)
    added = postgres_script((AddColumn("responses", optional("reasoning_tokens", INTEGER)),
                             AddColumn("items", optional("split", TEXT)), AddColumn("labels", optional("ui_version", TEXT)),
                             AddColumn("run_items", optional("note", TEXT)),
                             AddColumn("judgments", optional("judge_latency_s", REAL))))
    monkeypatch.setattr("workbench.store.postgres.POSTGRES_MIGRATIONS", [*POSTGRES_MIGRATIONS, added])
    with open_store(pg_url, create=False) as s:
        assert s.schema_version == len(MIGRATIONS) + 1
        _check_version_1_data(s)
        s.save_items("d2", "mem", pd.DataFrame({"item_id": ["c"], "input": ["z"], "reference": ["q"]}))
        run = s.create_run("fake/n", None, "d2", {"k": 1}, [("c", 0, "kc")])
        s.put_response("kc", "fake/n", {}, Response(text="C!"))
        s.append_label("t", "b", "ann", "fake/n", "fake/m", "right", "fake/m", None, 0, "s")
        assert s.append_undo("t", "ann", 0, "s") is not None
        assert s.run_frame(run)["response"].tolist() == ["C!"] and len(s.labels_frame("t")) == 3


def test_reopen_does_not_remigrate(pg_url):
    with open_store(pg_url) as s:
        s.put_response("k1", "fake/m", {"x": 1}, Response(text="hello"))
    with open_store(pg_url, create=False) as s:
        assert s.cached_keys(["k1", "k2"]) == {"k1"}
        assert s.frame("SELECT version FROM schema_version ORDER BY version")["version"].tolist() == \
            list(range(1, len(MIGRATIONS) + 1))


def _open(url: str) -> None:
    open_store(url).close()


def test_concurrent_first_open_migrates_once(pg_url):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_open, args=(pg_url,)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open_store(pg_url, create=False) as s:
        assert s.frame("SELECT count(*) AS n FROM schema_version")["n"].tolist() == [len(MIGRATIONS)]


# ---- databases that are not (usable) stores: one clear StoreError, the password never shown ------------
def _store_error(url: str, **kwargs) -> str:
    with pytest.raises(StoreError) as caught:
        open_store(url, **kwargs)
    message = str(caught.value)
    assert isinstance(caught.value, WorkbenchError) and "\n" not in message
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)
    return message


def _secret(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_create_false_never_creates_the_database_or_the_schema(pg_cluster):
    missing = pg_cluster.url("no_such_db")
    message = _store_error(missing, create=False)
    assert message.startswith(f"postgresql://[REDACTED]@127.0.0.1:{pg_cluster.port}/no_such_db: store not found")
    assert _secret(missing) not in message
    empty = pg_cluster.create_database()
    assert "store not found (an empty database" in _store_error(empty, create=False)
    with _connect(empty) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
                            ).fetchone()[0] == 0
    with _connect(pg_cluster.url()) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'no_such_db'").fetchone()[0] == 0


def test_create_true_creates_a_missing_database(pg_cluster):
    name = "created_" + os.urandom(4).hex()
    with open_store(pg_cluster.url(name)) as s:
        assert s.schema_version == len(MIGRATIONS)
    with open_store(pg_cluster.url(name), create=False) as s:
        assert s.runs_frame().empty


def test_another_programs_database_is_not_a_workbench_store(pg_url):
    with _connect(pg_url) as conn:
        conn.execute("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT)")
    message = _store_error(pg_url)
    assert "not a workbench store (a PostgreSQL database with other tables: users)" in message
    with _connect(pg_url) as conn:  # and it was left as it was
        assert [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables"
                                           " WHERE table_schema = 'public'")] == ["users"]


def test_a_postgres_store_from_a_newer_workbench_is_refused(pg_url):
    _at_version(pg_url, len(MIGRATIONS))
    with _connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s, 0)", (len(MIGRATIONS) + 1,))
    assert "newer workbench" in _store_error(pg_url)


def test_wrong_password_and_closed_port_name_the_store_without_the_password(pg_cluster):
    wrong = pg_cluster.url().replace(pg_cluster.password, "not-the-password-123")
    message = _store_error(wrong)
    assert "cannot connect" in message and "password authentication failed" in message
    assert "not-the-password-123" not in message and message.startswith("postgresql://[REDACTED]@127.0.0.1:")
    closed = "postgresql://someone:hunter2-secret@127.0.0.1:1/db"
    message = _store_error(closed)
    assert message.startswith("postgresql://[REDACTED]@127.0.0.1:1/db: cannot connect") and "hunter2" not in message


def test_the_password_may_come_from_pgpassword(pg_cluster, monkeypatch):
    url = pg_cluster.create_database()
    bare = url.replace(":" + pg_cluster.password, "")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert "cannot connect" in _store_error(bare)
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    with open_store(bare.replace("postgresql://", "postgres://")) as s:
        assert s.path == bare.replace("postgresql://", "postgres://").replace(f"{pg_cluster.user}@", "[REDACTED]@")
        assert s.schema_version == len(MIGRATIONS)


# ---- selection by location ------------------------------------------------------------------------
def test_open_store_picks_the_backend_by_location(tmp_path, pg_url):
    with open_store(tmp_path / "a.db") as s:
        assert type(s) is SQLiteStore and Store is SQLiteStore
    with open_store(str(tmp_path / "b.db"), create=True, synchronous="FULL") as s:
        assert type(s) is SQLiteStore
    with open_store(pg_url, synchronous="FULL") as s:
        assert type(s) is PostgresStore and "[REDACTED]" in str(s.path) and _secret(pg_url) not in str(s.path)
    with pytest.raises(ValueError, match="synchronous"):
        open_store(pg_url, synchronous="SOMETIMES")


def test_a_store_url_in_the_config_is_never_a_path(tmp_path):
    from workbench.task.config import build_config
    from workbench.project.lookup import resolve

    url = "postgresql://ann:s3cret-pass@db.example:5432/evals"
    config = build_config(None, {"store": url, "project_dir": str(tmp_path)})
    assert config.store_path == url
    assert resolve(url, tmp_path) == url
    assert build_config(None, {"store": "s.db", "project_dir": str(tmp_path)}).store_path == tmp_path / "s.db"


# ---- the rest of the contract, on both backends ----------------------------------------------------------
def test_items_and_run_order_survive_on_both(any_store):
    ids = [f"i{k:04d}" for k in range(300)][::-1]  # not sorted: order is the order written
    any_store.save_items("d", "mem", pd.DataFrame({"item_id": ids, "input": ids}))
    any_store.save_items("d", "mem", pd.DataFrame({"item_id": ["zz"], "input": ["zz"]}))  # same id: kept as is
    assert any_store.items_frame("d")["item_id"].tolist() == ids
    planned = [(i, s, f"k-{i}-{s}") for i in ids for s in (1, 0)]
    run = any_store.create_run("fake/m", None, "d", {"x": 1}, planned)
    frame = any_store.run_frame(run)
    assert list(zip(frame["item_id"], frame["sample_index"])) == [(i, s) for i, s, _ in planned]
    assert frame["response"].isna().all() and frame["run_id"].eq(run).all()
    any_store.put_response("k-i0001-0", "fake/m", {}, Response(text="first"))
    any_store.put_response("k-i0001-0", "fake/m", {}, Response(text="second", cost_usd=0.5))  # replaces
    assert any_store.stored_responses(["k-i0001-0", "nope"])["k-i0001-0"].text == "second"
    assert any_store.cached_keys([]) == set() and any_store.stored_responses([]) == {}


def test_one_items_rows_failed_items_and_run_cost_on_both(any_store):
    """What the explorer reads per item and the CLI's cost without building a run's frame."""
    any_store.save_items("d", "mem", pd.DataFrame({"item_id": ["a", "b", "c"], "input": ["1", "2", "3"]}))
    base = any_store.create_run("fake/base", None, "d", {"samples": 2},
                                [(i, s, f"base-{i}-{s}") for i in "abc" for s in (0, 1)])
    cand = any_store.create_run("fake/cand", None, "d", {"samples": 1}, [(i, 0, f"cand-{i}") for i in "abc"])
    for key, cost in [("base-a-0", 0.25), ("base-a-1", None), ("base-b-0", 0.5), ("base-b-1", 0.5), ("base-c-0", 1.0),
                      ("base-c-1", 1.0), ("cand-a", None), ("cand-c", None)]:
        any_store.put_response(key, "fake/m", {}, Response(text=f"text of {key}", cost_usd=cost, latency_s=0.1))
    any_store.record_error("cand-b", "fake/cand", "b", 0, "server", "server: boom", 2)
    rows = any_store.run_item_rows([base, cand], "b")
    assert [(r["run_id"], r["sample_index"], r["response"], r["error"]) for r in rows] == [
        (base, 0, "text of base-b-0", None), (base, 1, "text of base-b-1", None), (cand, 0, None, "server: boom")]
    assert set(rows[0]) >= {"model", "latency_s", "cost_usd", "prompt_tokens", "finish_reason", "cache_key"}
    assert any_store.run_item_rows([cand], "zz") == []
    assert any_store.run_failed_items([base, cand]) == ["b"] and any_store.run_failed_items([base]) == []
    assert any_store.run_cost(base) == pytest.approx(float(any_store.run_frame(base)["cost_usd"].sum())) == 3.25
    assert any_store.run_cost(cand) is None  # no price known: unknown, never 0


def test_judgments_undo_and_optimizer_on_both(any_store):
    row = {"judge_key": "j", "judge_spec_json": "{}", "kind": "pairwise", "criterion": "c", "item_id": "a",
           "response_key_a": "ka", "response_key_b": "kb", "position": "ab", "sample_index": 0, "verdict": "A",
           "score": None, "rationale": "r", "raw_output": "A"}
    any_store.put_judgments([row], [{"judge_key": "j2", "item_id": "a", "message": "bad", "raw_output": None}])
    any_store.put_judgments([{**row, "verdict": "B"}], [])  # a key already stored is kept
    assert any_store.stored_judgments(["j", "x"])["j"]["verdict"] == "A"
    assert any_store.latest_judge_errors(["j", "j2"]) == {"j2": "bad"}
    assert any_store.append_undo("t", "ann", 0, "s") is None
    first = any_store.append_label("t", "a", "ann", "m1", "m2", "left", "m1", None, 0, "s")
    second = any_store.append_label("t", "b", "ann", "m2", "m1", "right", "m1", "why", 0, "s")
    assert second > first
    assert any_store.append_undo("t", "ann", 0, "s")[1] == "b"
    assert any_store.append_undo("t", "ann", 0, "s")[1] == "a"
    assert any_store.append_undo("t", "ann", 0, "s") is None
    log = any_store.labels_frame("t", "ann")
    assert log["action"].tolist() == ["left", "right", "undo", "undo"]
    assert log["undoes_label_id"].tolist()[2:] == [second, first]
    assert [r["action"] for r in any_store.label_rows("t", "ann", second)] == ["undo", "undo"]
    # optimizer runs and trials
    first_run = any_store.start_optimize_run("r", "fake/m", "p@v1", {"seed": 0})
    assert any_store.put_trial(_trial("r", 0, score=0.75)) is True
    assert any_store.put_trial(_trial("r", 0, calls_made=0)) is False
    assert any_store.put_trial(_trial("r", 0, item_scores={"a": 0.0})) is True
    any_store.finish_optimize_run("r", "done", {"best": "p@v2"})
    again = any_store.start_optimize_run("r", "fake/m", "p@v1", {"seed": 0})
    assert again["created_at"] == first_run["created_at"] and again["result"] == {"best": "p@v2"}
    assert any_store.trials_frame("r")["item_scores"].tolist() == [{"a": 0.0}]
    assert any_store.optimize_runs_frame()["run_id"].tolist() == ["r"] and any_store.optimize_run("x") is None


def test_a_label_queue_is_written_once_on_both(any_store):
    assert any_store.label_queue("t") is None
    first = any_store.save_label_queue("t", [("b", 0.25), ("a", 1.0)], seed=7, budget=1.25, n_total=4)
    assert first == [("b", 0.25), ("a", 1.0)]
    # a second draw for the same task (another rater starting) gets the first one back, unchanged
    assert any_store.save_label_queue("t", [("c", 0.5)], seed=8, budget=0.5, n_total=4) == first
    assert any_store.label_queue("t") == {"queue": first, "seed": 7, "budget": 1.25, "n_total": 4, "queue_size": 2}
    assert any_store.label_queue("other") is None


def _draw_queue(location, seed: int, out) -> None:
    with open_store(location) as s:
        out.put(s.save_label_queue("shared", [(f"i{seed}-{k}", 0.5) for k in range(200)], seed=seed, budget=100,
                                   n_total=400))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_raters_drawing_a_queue_at_once_all_get_the_same_one(backend, tmp_path, request):
    """Eight kernels start the active labeler at the same moment with different draws: one draw is
    recorded whole (never a mixture) and every kernel labels from it."""
    location = tmp_path / "s.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    open_store(location).close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_draw_queue, args=(str(location), seed, out)) for seed in range(8)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert all(g == got[0] for g in got)
    assert len({item.split("-")[0] for item, _ in got[0]}) == 1  # one draw, not a mixture


# ---- concurrency across processes -------------------------------------------------------------------
def _undo_all(url: str, start, out) -> None:
    with open_store(url, synchronous="FULL") as s:
        start.wait(30)
        undone = []
        while (result := s.append_undo("t", "ann", 0, f"s{os.getpid()}")) is not None:
            undone.append(result[0])
        out.put(undone)


def test_kernels_undoing_at_once_never_cancel_one_label_twice(pg_url):
    with open_store(pg_url) as s:
        ids = [s.append_label("t", f"i{k}", "ann", "m1", "m2", "left", "m1", None, 0, "s") for k in range(60)]
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_undo_all, args=(pg_url, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    undos = [u for _ in procs for u in out.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open_store(pg_url) as s:
        log = s.labels_frame("t")
    cancelled = log.loc[log["action"] == "undo", "undoes_label_id"].astype(int).tolist()
    assert len(undos) == 60 and sorted(cancelled) == sorted(ids)  # each label cancelled exactly once


def test_a_raters_label_ids_grow_in_commit_order(pg_url):
    """A label's id is drawn only once its (task, rater) lock is held, so an incremental reader
    (`label_rows(after_label_id)`) never misses a row that commits late with a smaller id."""
    import threading

    from workbench.store.postgres import LOCK_CLASS

    with open_store(pg_url) as writer, _connect(pg_url) as other:
        writer.append_label("t", "a", "ann", "m1", "m2", "left", "m1", None, 0, "s")
        with other.transaction():
            other.execute(f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext('t' || chr(31) || 'ann'))")
            got: list[int] = []
            blocked = threading.Thread(target=lambda: got.append(
                writer.append_label("t", "b", "ann", "m1", "m2", "left", "m1", None, 0, "s")))
            blocked.start()
            time.sleep(0.5)
            assert not got  # waits for the lock
            drawn_meanwhile = other.execute("SELECT nextval(pg_get_serial_sequence('labels', 'label_id'))").fetchone()[0]
        blocked.join(10)
        assert got and got[0] > drawn_meanwhile


def test_a_store_url_handed_to_the_report_kernel_loses_its_password():
    """`workbench report` passes parameters to papermill, which writes them into the notebook: the
    store URL goes without its password, which reaches the kernel as PGPASSWORD."""
    from workbench.store.postgres import split_password

    assert split_password("postgresql://ann:p%40ss@db:5432/evals?sslmode=require") == \
        ("postgresql://ann@db:5432/evals?sslmode=require", "p@ss")
    assert split_password("postgres://ann@db/evals") == ("postgres://ann@db/evals", None)
