import hashlib
import json
import multiprocessing
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import StoreError, WorkbenchError
from workbench.models.base import Response
from tests.store.historic_schema import SQLITE_SCRIPTS
from workbench.store import MIGRATIONS, Store

# The SQL that made the stores in the field: as it shipped up to version 5, then generated.
SHIPPED = [*SQLITE_SCRIPTS, *MIGRATIONS[len(SQLITE_SCRIPTS):]]


def _schema(path) -> str:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").fetchall()
    conn.close()
    return "\n".join(f"{t} {n}: {' '.join(s.split())}" for t, n, s in rows)


# Pinned: changing the schema means adding a numbered migration AND updating this hash on purpose.
# 2: optimize_runs and optimize_trials (prompt optimisation, issue 12)
# 3: claims (calls in flight, so processes sharing a store never pay for one call twice, issue 10)
# 5: responses.tool_calls_json (the calls a model made, issue 20)
# 6: scores (metric values kept under what they read, so a warm compare reads them, issue 25)
PINNED_SCHEMA_SHA256 = "cc7e3128c47468befb7baf48c0de350563add0e22332af2dcedbc0599517f383"


def test_schema_is_pinned(tmp_path):
    with Store(tmp_path / "s.db") as s:
        assert s.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert s.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    digest = hashlib.sha256(_schema(tmp_path / "s.db").encode()).hexdigest()
    assert digest == PINNED_SCHEMA_SHA256, f"schema changed (sha256 {digest}):\n{_schema(tmp_path / 's.db')}"


@pytest.mark.parametrize("k", range(1, len(SQLITE_SCRIPTS) + 1))
def test_the_generated_ddl_is_the_sql_that_shipped(tmp_path, k):
    """Up to every shipped version, the scripts generated from the one declaration make a store whose
    schema (CREATE text, comments and all) is the one the hand-written SQL made."""
    _at_version(tmp_path / "shipped.db", k, SQLITE_SCRIPTS).close()
    _at_version(tmp_path / "generated.db", k, MIGRATIONS).close()
    assert _schema(tmp_path / "generated.db") == _schema(tmp_path / "shipped.db")


def test_reopen_does_not_remigrate(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.put_response("k1", "fake/m", {"x": 1}, Response(text="hello"))
    with Store(path) as s:
        assert s.cached_keys(["k1", "k2"]) == {"k1"}


def _open(path):
    Store(path).close()


def test_concurrent_first_open_migrates_once(tmp_path):
    path = str(tmp_path / "s.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(path,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Store(path) as s:
        assert s.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_run_frame_shows_response_or_latest_error(store):
    items = pd.DataFrame({"item_id": ["a", "b"], "input": ["x", "y"], "reference": ["r", None]})
    store.save_items("d1", "mem", items)
    run = store.create_run("fake/m", None, "d1", {}, [("a", 0, "ka"), ("b", 0, "kb")])
    store.put_response("ka", "fake/m", {}, Response(text="A!", prompt_tokens=3, cost_usd=None))
    store.record_error("kb", "fake/m", "b", 0, "server", "first", 1)
    store.record_error("kb", "fake/m", "b", 0, "server", "second", 4)
    frame = store.run_frame(run).set_index("item_id")
    assert frame.loc["a", "response"] == "A!" and pd.isna(frame.loc["a", "error"])
    assert pd.isna(frame.loc["b", "response"]) and frame.loc["b", "error"] == "second"
    assert pd.isna(frame.loc["a", "cost_usd"])  # unknown cost stays unknown
    back = store.items_frame("d1")
    assert list(back["item_id"]) == ["a", "b"]


# ---- migrations: a store written by an earlier schema opens, keeps its data, and is migrated ------
def _at_version(path, k: int, migrations=None) -> sqlite3.Connection:
    """A store file as schema version k wrote it: only the first k migrations applied (raw SQL as it
    shipped, not the Store, so the test does not trust the code it tests)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for script in (migrations or SHIPPED)[:k]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version={k}")
    return conn


def _write_as_version_1(conn: sqlite3.Connection) -> None:
    """Rows as the version-1 code wrote them: positional inserts, every column in table order."""
    t = 1_700_000_000.0
    conn.execute("INSERT INTO datasets VALUES (?,?,?,?)", ("d1", "mem", 2, t))
    conn.execute("INSERT INTO items VALUES (?,?,?,?,?)", ("d1", "a", "x", "r", json.dumps({"item_id": "a", "input": "x"})))
    conn.execute("INSERT INTO items VALUES (?,?,?,?,?)", ("d1", "b", "y", None, json.dumps({"item_id": "b", "input": "y"})))
    conn.execute("INSERT INTO runs(model, prompt_ref, dataset_id, spec_json, created_at) VALUES (?,?,?,?,?)",
                 ("fake/m", "p@v1", "d1", json.dumps({"adapter": {"name": "fake/m"}}), t))
    conn.execute("INSERT INTO run_items VALUES (?,?,?,?)", (1, "a", 0, "ka"))
    conn.execute("INSERT INTO run_items VALUES (?,?,?,?)", (1, "b", 0, "kb"))
    conn.execute("INSERT OR REPLACE INTO responses(cache_key, model, request_json, text, finish_reason, prompt_tokens,"
                 " completion_tokens, cost_usd, latency_s, model_version, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 ("ka", "fake/m", "{}", "A!", "stop", 3, 2, None, 0.5, "v", t))
    conn.execute("INSERT INTO call_errors(cache_key, model, item_id, sample_index, kind, message, attempts, created_at)"
                 " VALUES (?,?,?,?,?,?,?,?)", ("kb", "fake/m", "b", 0, "server", "boom", 3, t))
    conn.execute("INSERT OR IGNORE INTO judgments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 ("j1", "{}", "pairwise", "correctness", "a", "ka", "kz", "ab", 0, "A", None, "why", "raw", t))
    conn.execute("INSERT INTO labels(task, item_id, rater, left_model, right_model, action, winner_model,"
                 " undoes_label_id, note, assignment_seed, session_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 ("t", "a", "ann", "fake/m", "fake/n", "left", "fake/m", None, None, 0, "s", t))


# A migration of the kind the next schema change will be: columns added to the tables whose inserts
# used to be positional (an unnamed insert breaks on them; the store's named ones must not).
ADDED_COLUMNS = """
    ALTER TABLE responses ADD COLUMN reasoning_tokens INTEGER;
    ALTER TABLE judgments ADD COLUMN judge_latency_s REAL;
    ALTER TABLE items ADD COLUMN split TEXT;
    ALTER TABLE datasets ADD COLUMN license TEXT;
    ALTER TABLE run_items ADD COLUMN note TEXT;
    ALTER TABLE labels ADD COLUMN ui_version TEXT;
    """


def _check_version_1_data(s: Store) -> None:
    assert list(s.items_frame("d1")["item_id"]) == ["a", "b"]
    frame = s.run_frame(1).set_index("item_id")
    assert frame.loc["a", "response"] == "A!" and frame.loc["b", "error"] == "boom"
    assert s.stored_responses(["ka"])["ka"].prompt_tokens == 3
    assert s.stored_judgments(["j1"]) == {"j1": {"verdict": "A", "score": None, "rationale": "why", "raw_output": "raw"}}
    assert s.labels_frame("t")[["item_id", "rater", "winner_model"]].values.tolist()[0] == ["a", "ann", "fake/m"]
    assert s.run_spec(1) == ({"adapter": {"name": "fake/m"}}, "p@v1")


@pytest.mark.parametrize("k", range(len(MIGRATIONS)))
def test_a_store_at_every_earlier_version_is_migrated(tmp_path, k):
    path = tmp_path / "old.db"
    _at_version(path, k).close()
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)
    assert _schema(path) == _schema_of_fresh(tmp_path)


def test_a_store_from_before_tool_calls_keeps_its_answers_cached(tmp_path):
    """Version 4 (before migration 5 added tool calls): its answers read back as text answers without
    calls, and a new answer with calls is stored and read back equal."""
    from workbench.items.tool_calls import ToolCall

    path = tmp_path / "v4.db"
    conn = _at_version(path, 4)
    _write_as_version_1(conn)
    conn.close()
    with Store(path, create=False) as s:
        assert s.schema_version == len(MIGRATIONS)
        _check_version_1_data(s)
        assert s.stored_responses(["ka"])["ka"].tool_calls == ()
        assert s.run_frame(1).set_index("item_id").loc["a", "tool_calls"] == ()
        assert s.run_frame(1).set_index("item_id").loc["b", "tool_calls"] is None  # no answer: no calls either
        calls = (ToolCall.parse("get_order", '{"order_id": 5}', "c1"), ToolCall.parse("refund", "{not json"))
        s.put_response("kc", "fake/m", {}, Response(text="", tool_calls=calls))
        back = s.stored_responses(["kc"])["kc"].tool_calls
        assert back == calls and back[0].arguments == {"order_id": 5} and not back[1].valid


def _schema_of_fresh(tmp_path) -> str:
    Store(tmp_path / "fresh.db").close()
    return _schema(tmp_path / "fresh.db")


def test_a_store_written_by_the_previous_schema_keeps_its_data(tmp_path, monkeypatch):
    """Today's schema plays 'previous'; a next migration adds columns. Old rows survive, the new
    columns exist, and every named-column insert of the store still works on the migrated file."""
    path = tmp_path / "old.db"
    conn = _at_version(path, len(MIGRATIONS))
    _write_as_version_1(conn)
    conn.close()
    monkeypatch.setattr("workbench.store.sqlite.MIGRATIONS", [*MIGRATIONS, ADDED_COLUMNS])
    with Store(path, create=False) as s:
        assert s.schema_version == len(MIGRATIONS) + 1
        assert "reasoning_tokens" in {r[1] for r in s.execute("PRAGMA table_info(responses)")}
        _check_version_1_data(s)
        # every write path after the migration
        s.save_items("d2", "mem", pd.DataFrame({"item_id": ["c"], "input": ["z"], "reference": ["q"]}))
        run = s.create_run("fake/n", None, "d2", {"k": 1}, [("c", 0, "kc")])
        s.put_response("kc", "fake/n", {}, Response(text="C!"))
        s.record_error("kd", "fake/n", "c", 0, "server", "nope", 1)
        s.put_judgments([{"judge_key": "j2", "judge_spec_json": "{}", "kind": "pointwise", "criterion": "c",
                          "item_id": "c", "response_key_a": "kc", "response_key_b": None, "position": None,
                          "sample_index": 0, "verdict": None, "score": 4.0, "rationale": "ok", "raw_output": "4"}],
                        [{"judge_key": "j3", "item_id": "c", "message": "bad", "raw_output": None}])
        s.append_label("t", "b", "ann", "fake/n", "fake/m", "right", "fake/m", None, 0, "s")
        assert s.append_undo("t", "ann", 0, "s") is not None
        assert s.run_frame(run)["response"].tolist() == ["C!"]
        assert s.stored_judgments(["j2"])["j2"]["score"] == 4.0
        assert len(s.labels_frame("t")) == 3
    with Store(path) as s:  # and it stays migrated
        assert s.schema_version == len(MIGRATIONS) + 1
        _check_version_1_data(s)


def test_a_failing_migration_leaves_the_old_store_untouched(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    conn = _at_version(path, len(MIGRATIONS))
    _write_as_version_1(conn)
    conn.close()
    monkeypatch.setattr("workbench.store.sqlite.MIGRATIONS",
                        [*MIGRATIONS, "ALTER TABLE responses ADD COLUMN x INTEGER;\nALTER TABLE nope ADD COLUMN y INTEGER"])
    with pytest.raises(sqlite3.OperationalError):
        Store(path)
    monkeypatch.undo()
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        assert "x" not in {r[1] for r in s.execute("PRAGMA table_info(responses)")}
        _check_version_1_data(s)


def _trial(run_id: str, trial: int, **extra) -> dict:
    row = dict.fromkeys(("parent_version", "score", "score_low", "score_high", "delta", "delta_low", "delta_high",
                         "cost_usd", "model_s", "wall_s"))
    row.update(run_id=run_id, trial=trial, round=0, split="dev", move="start", prompt_version="p@v1",
               prompt_digest="d", prompt_toml="t", n_items=2, calls=2, calls_made=2, item_scores={"a": 1.0, "b": 0.5})
    return {**row, **extra}


def test_a_version_1_store_gains_the_optimizer_tables_and_keeps_its_data(tmp_path):
    """Schema 2 (optimize_runs, optimize_trials) on a store written by schema 1."""
    path = tmp_path / "v1.db"
    conn = _at_version(path, 1)
    _write_as_version_1(conn)
    conn.close()
    with Store(path, create=False) as s:
        assert s.schema_version == len(MIGRATIONS) >= 2
        _check_version_1_data(s)
        assert s.optimize_run("r") is None and s.trials_frame("r").empty
        first = s.start_optimize_run("r", "fake/m", "p@v1", {"seed": 0})
        assert first["status"] == "running" and first["config"] == {"seed": 0}
        assert s.put_trial(_trial("r", 0, score=0.75)) is True
        assert s.put_trial(_trial("r", 0, calls_made=0)) is False  # a replayed trial keeps its first record
        s.put_trial(_trial("r", 1, round=1, move="fewshot", item_scores={"a": 1.0}))
        s.finish_optimize_run("r", "done", {"best": "p@v2"})
    with Store(path) as s:
        trials = s.trials_frame("r")
        assert trials["trial"].tolist() == [0, 1] and trials["score"].tolist()[0] == 0.75
        assert trials["calls_made"].tolist()[0] == 2
        # a retry that answered a call which had failed: new scores replace the record
        assert s.put_trial(_trial("r", 1, round=1, move="fewshot", item_scores={"a": 1.0, "b": 0.0}, score=0.5))
        assert s.trials_frame("r")["item_scores"].tolist()[1] == {"a": 1.0, "b": 0.0}
        assert trials["item_scores"].tolist() == [{"a": 1.0, "b": 0.5}, {"a": 1.0}]
        again = s.start_optimize_run("r", "fake/m", "p@v1", {"seed": 0})  # a resume
        assert again["created_at"] == first["created_at"] and again["result"] == {"best": "p@v2"}
        assert s.optimize_runs_frame()["run_id"].tolist() == ["r"]


def test_a_version_2_store_gains_claims_and_keeps_its_data(tmp_path):
    """Schema 3 (claims) on a store written by schema 2: old rows kept, claims work at once."""
    path = tmp_path / "v2.db"
    conn = _at_version(path, 2)
    _write_as_version_1(conn)
    conn.close()
    with Store(path, create=False) as s:
        assert s.schema_version == len(MIGRATIONS) >= 3
        _check_version_1_data(s)
        assert s.claim_calls(["ka", "kb", "kc"], "me", 30, since=0.0) == {"kc"}  # ka answered, kb failed since 0
        assert s.claim_calls(["kb"], "me", 30, since=1_800_000_000.0) == {"kb"}  # an older error is retried
    assert _schema(path) == _schema_of_fresh(tmp_path)


# ---- claims: one process per call in flight -------------------------------------------------------
def test_claims_are_exclusive_until_released_or_expired(store):
    import time

    t0 = time.time()
    assert store.claim_calls(["a", "b"], "p1", 30, t0) == {"a", "b"}
    assert store.claim_calls(["a", "b", "c"], "p2", 30, t0) == {"c"}
    assert store.claim_holders(["a", "b", "c", "d"]) == {"a": "p1", "b": "p1", "c": "p2"}
    store.put_response("a", "fake/m", {}, Response(text="A"))
    store.release_claims("p1", ["a"])
    assert store.claim_calls(["a"], "p2", 30, t0) == set()  # answered: nothing left to claim
    store.record_error("b", "fake/m", "b", 0, "auth", "auth: no key", 1)
    store.release_claims("p1", ["b"])
    assert store.claim_calls(["b"], "p2", 30, t0) == set()  # given up during p2's run: its error is the answer
    assert store.errors_since(["a", "b", "c"], t0) == {"b": ("auth", "auth: no key")}
    assert store.claim_calls(["d"], "p1", 0.05, t0) == {"d"}
    assert store.renew_claims("p2", 30) == 1
    time.sleep(0.1)
    assert store.claim_holders(["d"]) == {}  # p1's lease ran out
    assert store.claim_calls(["d"], "p2", 30, t0) == {"d"}
    store.release_claims("p2")
    assert store.claim_holders(["a", "b", "c", "d"]) == {}


def _claim_many(location: str, owner: str, keys: list, out) -> None:
    import time

    from workbench.store import open_store

    with open_store(location) as s:
        got = set()
        for key in keys:  # one transaction per key: the processes interleave
            got |= s.claim_calls([key], owner, 30, time.time())
        out.put((owner, sorted(got)))


def test_concurrent_claims_never_give_one_key_to_two_processes(store, store_location):
    keys = [f"k{i:03d}" for i in range(200)]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_many, args=(store_location, f"p{n}", keys, out)) for n in range(4)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    claimed = [k for got in results.values() for k in got]
    assert sorted(claimed) == keys  # every key once, none twice


def test_a_half_read_result_never_blocks_the_next_write_after_another_process_commits(tmp_path):
    """The CI failure of `generate` with 4 processes: a read left half-consumed by one thread held a snapshot
    on the shared connection; once another process committed, this store's BEGIN IMMEDIATE failed at once
    with "database is locked" (a stale snapshot skips the busy timeout)."""
    path = tmp_path / "s.db"
    with Store(path) as mine, Store(path) as other:
        for k in range(5):
            mine.put_response(f"k{k}", "fake/m", {"x": k}, Response(text=str(k)))
        rows = mine.execute("SELECT cache_key FROM responses ORDER BY cache_key")
        assert rows.fetchone() == ("k0",)  # one row read, four left: as a thread iterating it would leave them
        other.put_response("k9", "fake/m", {"x": 9}, Response(text="9"))  # another process commits meanwhile
        assert mine.claim_calls(["new"], "me", 30, since=0.0) == {"new"}  # BEGIN IMMEDIATE on this connection
        assert [r[0] for r in rows] == ["k1", "k2", "k3", "k4"]


def test_a_lock_held_past_the_busy_timeout_is_a_store_error_and_writes_nothing(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.put_response("k0", "fake/m", {"x": 0}, Response(text="kept"))
        s.execute("PRAGMA busy_timeout=200")
        other = sqlite3.connect(path, isolation_level=None)  # another process, stopped mid-write
        other.execute("BEGIN IMMEDIATE")
        try:
            for write in (lambda: s.put_response("k1", "fake/m", {"x": 1}, Response(text="lost")),
                          lambda: s.claim_calls(["k2"], "me", 30, since=0.0)):
                with pytest.raises(StoreError, match=r"s\.db: another process kept the store locked for over 0\.2 s"
                                                     r" \(a long write, or one stopped mid-write\); this step wrote"):
                    write()
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert s.cached_keys(["k0", "k1"]) == {"k0"} and s.claim_holders(["k2"]) == {}
        s.put_response("k1", "fake/m", {"x": 1}, Response(text="now"))  # usable once the lock is gone
        assert s.stored_responses(["k1"])["k1"].text == "now"


# ---- files that are not (usable) stores: one clear StoreError, never a sqlite3 traceback ----------
def _store_error(path, **kwargs) -> str:
    with pytest.raises(StoreError) as caught:
        Store(path, **kwargs)
    message = str(caught.value)
    assert isinstance(caught.value, WorkbenchError) and "\n" not in message and message.startswith(str(path))
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)
    return message


def test_a_file_that_is_not_sqlite_is_not_a_workbench_store(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("id,text\n1,hello\n")
    assert _store_error(path).startswith(f"{path}: not a workbench store")
    assert path.read_text() == "id,text\n1,hello\n"


def test_a_folder_is_not_a_workbench_store(tmp_path):
    assert "not a workbench store" in _store_error(tmp_path)


def test_another_programs_sqlite_database_is_not_a_workbench_store(tmp_path):
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    assert _store_error(path).startswith(f"{path}: not a workbench store")
    conn = sqlite3.connect(path)  # and it was left as it was
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()


def test_a_damaged_store_says_how_to_recover(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        for i in range(50):
            s.put_response(f"k{i}", "fake/m", {}, Response(text="x" * 500))
    data = bytearray(path.read_bytes())
    for start, end in ((100, 4096), (40, 200)):  # the schema page after an intact header; the header's fields
        damaged = bytearray(data)
        damaged[start:end] = b"\xa5" * (end - start)
        path.write_bytes(bytes(damaged))
        assert _store_error(path) == f"{path}: damaged database (run `sqlite3 {path} '.recover'`)"


def test_a_store_from_a_newer_workbench_is_refused(tmp_path):
    path = tmp_path / "new.db"
    _at_version(path, len(MIGRATIONS)).execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    assert "newer workbench" in _store_error(path)


def test_create_false_never_creates_the_file_or_its_folder(tmp_path):
    path = tmp_path / "typo" / "store.db"
    assert _store_error(path, create=False).startswith(f"{path}: store not found")
    assert not path.parent.exists()
    Store(path).close()  # created on purpose
    with Store(path, create=False) as s:
        assert s.schema_version == len(MIGRATIONS)


def test_an_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS)


# ---- the store's read methods ---------------------------------------------------------------------
def test_runs_frame_run_spec_and_models(store):
    store.save_items("d1", "mem", pd.DataFrame({"item_id": ["a", "b"], "input": ["x", "y"]}))
    first = store.create_run("fake/m", None, "d1", {"samples": 2}, [("a", 0, "k1"), ("a", 1, "k2"), ("b", 0, "k3")])
    second = store.create_run("fake/n", "p@v2", "d1", {"samples": 1}, [("a", 0, "k4")])
    runs = store.runs_frame()
    assert list(runs.columns) == ["run_id", "model", "prompt_ref", "dataset_id", "source", "created_at", "n_items"]
    assert runs[["run_id", "model", "source", "n_items"]].values.tolist() == [[first, "fake/m", "mem", 2],
                                                                      [second, "fake/n", "mem", 1]]
    assert pd.isna(runs["prompt_ref"][0]) and runs["prompt_ref"][1] == "p@v2"
    assert store.run_spec(second) == ({"samples": 1}, "p@v2")
    assert store.run_models() == ["fake/m", "fake/n"]
    assert store.latest_run_id("fake/n", "p@v2") == second and store.latest_run_id("fake/n", "p@v1") is None
    with pytest.raises(StoreError, match="no run 99"):
        store.run_spec(99)
    assert store.runs_frame().iloc[:0].columns.tolist() == runs.columns.tolist()


def test_planned_frame_matches_run_frame(store):
    store.save_items("d1", "mem", pd.DataFrame({"item_id": ["a", "b", "c"], "input": ["x", "y", "z"]}))
    planned = [("a", 0, "ka"), ("b", 0, "kb"), ("c", 0, "kc")]
    run = store.create_run("fake/m", None, "d1", {}, planned)
    store.put_response("ka", "fake/m", {}, Response(text="A!", prompt_tokens=3, latency_s=0.1))
    store.record_error("kb", "fake/m", "b", 0, "server", "first", 1)
    store.record_error("kb", "fake/m", "b", 0, "server", "second", 2)
    by_run = store.run_frame(run)
    planned_frame = store.planned_frame(planned)
    assert list(planned_frame.columns) == list(by_run.columns)
    same = ["item_id", "sample_index", "response", "prompt_tokens", "latency_s", "error", "cache_key"]
    pd.testing.assert_frame_equal(planned_frame[same], by_run[same], check_dtype=False)
    assert planned_frame[["response", "error"]].iloc[2].isna().all()  # never called


def test_labels_frame_all_tasks_or_one(store):
    assert list(store.labels_frame().columns)[:3] == ["label_id", "task", "item_id"] and store.labels_frame().empty
    store.append_label("t1", "a", "ann", "m1", "m2", "left", "m1", None, 0, "s")
    store.append_label("t2", "a", "bob", "m3", "m2", "tie", None, "hm", 0, "s")
    store.append_label("t1", "b", "bob", "m2", "m1", "skip", None, None, 0, "s")
    assert store.labels_frame()["task"].tolist() == ["t1", "t2", "t1"]
    assert store.labels_frame("t1")["item_id"].tolist() == ["a", "b"]
    assert store.labels_frame("t1", "bob")["action"].tolist() == ["skip"]
    assert store.label_models("t1") == {"m1", "m2"} and store.label_models("none") == set()
    assert [r["item_id"] for r in store.label_rows("t1", "ann", 0)] == ["a"]
    assert store.label_rows("t1", "ann", 1) == []


def test_judge_errors_replayed_from_the_cache_are_recorded_once(store):
    error = {"judge_key": "j", "item_id": "a", "message": "unparseable", "raw_output": "??"}
    store.put_judgments([], [error])
    store.put_judgments([], [error])
    store.put_judgments([], [{**error, "message": "other"}])
    assert store.frame("SELECT message FROM judge_errors ORDER BY error_id")["message"].tolist() == ["unparseable", "other"]


# ---- all SQL lives in workbench/store --------------------------------------------------------------
SQL = re.compile(r"\b(SELECT\b.*\bFROM\b|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
                 r"|CREATE\s+(TABLE|INDEX)\b|ALTER\s+TABLE\b|PRAGMA\s+\w+)")


def test_no_sql_outside_the_store():
    root = Path(__file__).resolve().parents[1]
    found = []
    for folder in (root / "workbench", root / "notebooks"):
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".py", ".ipynb") or "store" in path.relative_to(root).parts[:2]:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if SQL.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert not found, "SQL outside workbench/store (add a store method instead):\n" + "\n".join(found)


def test_items_from_json_builds_the_frame_a_row_of_dicts_would():
    """Column by column when every row has the same fields (one dataset), else row by row."""
    from workbench.store.base import items_from_json

    rows = [{"item_id": "a", "input": "x", "n": 1, "ref": None}, {"item_id": "b", "input": "y", "n": 2, "ref": "r"}]
    texts = [json.dumps(r, sort_keys=True) for r in rows]
    pd.testing.assert_frame_equal(items_from_json(texts), pd.DataFrame([json.loads(t) for t in texts]))
    ragged = ['{"a": 1}', '{"b": 2.5}', '{"a": NaN, "c": "z"}']
    pd.testing.assert_frame_equal(items_from_json(ragged), pd.DataFrame([json.loads(t) for t in ragged]))
    assert items_from_json([]).empty
