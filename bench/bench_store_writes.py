"""The store's write path, today's code vs SQLAlchemy Core doing the same writes, same run (issue 19).

Issue 19 adopts SQLAlchemy Core (with Alembic) for the store only if it keeps the label write p95
under 50 ms with 20 raters on PostgreSQL AND the 100k-item run within 10% of today's time. This
bench measures both sides of that rule on the same machine, back to back:

  save_items    N items in one transaction (a run's first write)
  create_run    one run with N planned calls
  put_response  N answers, one upsert and one commit each (what the call writer thread does)
  labels        20 rater processes writing labels at once on PostgreSQL, p50/p95/p99 per write
                (one rater process alone as the uncontended baseline)

"today" is the workbench store (`open_store`); "SQLAlchemy" is SQLAlchemy Core on the same database
file or server, the same tables (made by the store, so the DDL is identical), statements built from
`Table` objects with each dialect's `insert().on_conflict_do_*`, one Connection held open like the
store's. The label write is the store's single statement (advisory lock CTE + INSERT ... SELECT ...
RETURNING) built in Core. PostgreSQL is a throwaway server (tests/store/pgcluster.py) with fsync on.

SQLAlchemy is not a dependency of the workbench: install it beside the venv to run this, e.g.
    pip install --target /tmp/sqla sqlalchemy
    PYTHONPATH=$PWD:/tmp/sqla .venv/bin/python bench/bench_store_writes.py [--n 20000] [--raters 20] [--clicks 100]
`--today-only` skips SQLAlchemy (to compare two versions of the store code, run it once per tree).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from tests.store.pgcluster import PostgresCluster, find_bindir  # noqa: E402
from workbench.models.base import Response  # noqa: E402
from workbench.store import open_store  # noqa: E402

TASK = "bench"
LOCK_CLASS = 0x5742  # the store's advisory-lock class (workbench/store/postgres.py)


class Clock:
    """Wall and CPU seconds (this process: the client side of every write) of each timed step."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def __call__(self, name: str) -> "Clock":
        self.name = name
        return self

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.times[self.name] = time.perf_counter() - self.wall
        self.times[self.name + " cpu"] = time.process_time() - self.cpu


def _items(n: int) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"item-{i:06d}" for i in range(n)],
                         "input": [f"question {i}: the order ships today please check" for i in range(n)],
                         "reference": [None if i % 3 else f"answer {i}" for i in range(n)],
                         "language": ["en" if i % 3 else "ja" for i in range(n)]})


def _response(i: int) -> Response:
    return Response(text=f"answer {i} " + "x" * 80, finish_reason="stop", prompt_tokens=40, completion_tokens=20,
                    latency_s=0.01)


REQUEST = {"adapter": {"name": "openai/bench", "api_base": "http://127.0.0.1:1/v1"},
           "request": {"messages": [{"role": "user", "content": "question: the order ships today"}],
                       "max_tokens": 32}}


# ---- today's store -------------------------------------------------------------------------------
def today_writes(location: str, n: int) -> dict[str, float]:
    items = _items(n)
    planned = [(f"item-{i:06d}", 0, f"key-{i}") for i in range(n)]
    clock = Clock()
    with open_store(location) as store:
        with clock("save_items"):
            store.save_items("d1", "bench", items)
        with clock("create_run"):
            store.create_run("openai/bench", None, "d1", {"bench": True}, planned)
        with clock("put_response"):
            for i in range(n):
                store.put_response(f"key-{i}", "openai/bench", REQUEST, _response(i))
    return clock.times


# ---- the same writes in SQLAlchemy Core ----------------------------------------------------------
def _sa_tables() -> tuple[Any, dict[str, Any]]:
    """The written tables declared as SQLAlchemy `Table`s (what adopting it would declare once)."""
    from sqlalchemy import BigInteger, Column, Float, MetaData, Table, Text

    md = MetaData()
    t = {
        "datasets": Table("datasets", md, Column("dataset_id", Text, primary_key=True), Column("source", Text),
                          Column("n_items", BigInteger), Column("created_at", Float)),
        "items": Table("items", md, Column("dataset_id", Text, primary_key=True),
                       Column("item_id", Text, primary_key=True), Column("input", Text), Column("reference", Text),
                       Column("fields_json", Text)),
        "runs": Table("runs", md, Column("run_id", BigInteger, primary_key=True, autoincrement=True),
                      Column("model", Text), Column("prompt_ref", Text), Column("dataset_id", Text),
                      Column("spec_json", Text), Column("created_at", Float)),
        "run_items": Table("run_items", md, Column("run_id", BigInteger, primary_key=True),
                           Column("item_id", Text, primary_key=True), Column("sample_index", BigInteger, primary_key=True),
                           Column("cache_key", Text)),
        "responses": Table("responses", md, Column("cache_key", Text, primary_key=True), Column("model", Text),
                           Column("request_json", Text), Column("text", Text), Column("finish_reason", Text),
                           Column("prompt_tokens", BigInteger), Column("completion_tokens", BigInteger),
                           Column("cost_usd", Float), Column("latency_s", Float), Column("model_version", Text),
                           Column("created_at", Float), Column("tool_calls_json", Text)),
        "labels": Table("labels", md, Column("label_id", BigInteger, primary_key=True, autoincrement=True),
                        *(Column(c, Text) for c in ("task", "item_id", "rater", "left_model", "right_model", "action",
                                                    "winner_model")),
                        Column("undoes_label_id", BigInteger), Column("note", Text),
                        Column("assignment_seed", BigInteger), Column("session_id", Text),
                        Column("created_at", Float)),
    }
    return md, t


def _sa_engine(location: str) -> Any:
    from sqlalchemy import create_engine, event

    if location.startswith("postgresql://"):
        return create_engine("postgresql+psycopg://" + location[len("postgresql://"):])
    engine = create_engine(f"sqlite:///{location}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
            dbapi_conn.execute(f"PRAGMA {pragma}")
    return engine


def _dialect_insert(location: str) -> Callable[..., Any]:
    if location.startswith("postgresql://"):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def sqlalchemy_writes(location: str, n: int) -> dict[str, float]:
    from workbench.items.tool_calls import calls_to_json

    _md, t = _sa_tables()
    insert = _dialect_insert(location)
    items = _items(n)
    planned = [(f"item-{i:06d}", 0, f"key-{i}") for i in range(n)]
    engine = _sa_engine(location)
    upsert_response = insert(t["responses"])
    upsert_response = upsert_response.on_conflict_do_update(
        index_elements=["cache_key"],
        set_={c.name: upsert_response.excluded[c.name] for c in t["responses"].c if c.name != "cache_key"})
    clock = Clock()
    with engine.connect() as conn:
        clock("save_items").__enter__()
        if conn.execute(t["datasets"].select().where(t["datasets"].c.dataset_id == "d1")).first() is None:
            rows = []
            for rec in items.to_dict(orient="records"):
                ref = rec.get("reference")
                rows.append({"dataset_id": "d1", "item_id": rec["item_id"], "input": rec["input"],
                             "reference": None if ref is None or ref != ref else str(ref),
                             "fields_json": json.dumps(rec, ensure_ascii=False, default=str, sort_keys=True)})
            conn.execute(insert(t["datasets"]).on_conflict_do_nothing(),
                         {"dataset_id": "d1", "source": "bench", "n_items": n, "created_at": time.time()})
            conn.execute(insert(t["items"]).on_conflict_do_nothing(), rows)
        conn.commit()
        clock.__exit__()
        clock("create_run").__enter__()
        run_id = conn.execute(t["runs"].insert().returning(t["runs"].c.run_id),
                              {"model": "openai/bench", "prompt_ref": None, "dataset_id": "d1",
                               "spec_json": json.dumps({"bench": True}), "created_at": time.time()}).scalar_one()
        conn.execute(t["run_items"].insert(), [{"run_id": run_id, "item_id": item, "sample_index": sample,
                                                "cache_key": key} for item, sample, key in planned])
        conn.commit()
        clock.__exit__()
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # one statement, one commit, as the store
        clock("put_response").__enter__()
        for i in range(n):
            response = _response(i)
            conn.execute(upsert_response, {
                "cache_key": f"key-{i}", "model": "openai/bench",
                "request_json": json.dumps(REQUEST, ensure_ascii=False, sort_keys=True), "text": response.text,
                "finish_reason": response.finish_reason, "prompt_tokens": response.prompt_tokens,
                "completion_tokens": response.completion_tokens, "cost_usd": response.cost_usd,
                "latency_s": response.latency_s, "model_version": response.model_version, "created_at": time.time(),
                "tool_calls_json": calls_to_json(response.tool_calls)})
        clock.__exit__()
    engine.dispose()
    return clock.times


def _sa_label_statement() -> Any:
    """The store's one-statement label write (workbench/store/postgres.py INSERT_LABEL) in Core."""
    from sqlalchemy import BigInteger, Float, Text, bindparam, cast, func, literal, null, select

    _md, t = _sa_tables()
    labels = t["labels"]
    text = lambda name: cast(bindparam(name, type_=Text), Text)  # noqa: E731
    lock = select(func.pg_advisory_xact_lock(literal(LOCK_CLASS), func.hashtext(
        bindparam("task", type_=Text) + func.chr(31) + bindparam("rater", type_=Text))).label("locked")).cte("rater_lock")
    columns = ["task", "item_id", "rater", "left_model", "right_model", "action", "winner_model", "undoes_label_id",
               "note", "assignment_seed", "session_id", "created_at"]
    values = select(text("task"), text("item_id"), text("rater"), text("left_model"), text("right_model"),
                    text("action"), text("winner_model"), null(), text("note"),
                    cast(bindparam("assignment_seed", type_=BigInteger), BigInteger),
                    text("session_id"), cast(bindparam("created_at", type_=Float), Float)).select_from(lock)
    return labels.insert().from_select(columns, values).returning(labels.c.label_id)


# ---- labels: 20 rater processes at once on PostgreSQL --------------------------------------------
def _rater(kind: str, location: str, rater: str, clicks: int, start: Any, out: Any) -> None:
    try:
        def params(item: str) -> dict[str, Any]:
            return {"task": TASK, "item_id": item, "rater": rater, "left_model": "a", "right_model": "b",
                    "action": "left", "winner_model": "a", "note": None, "assignment_seed": 0,
                    "session_id": "s", "created_at": time.time()}

        if kind == "today":
            store = open_store(location, synchronous="FULL")
            write = lambda item: store.append_label(TASK, item, rater, "a", "b", "left", "a", None, 0, "s")  # noqa: E731
            close = store.close
        else:
            engine = _sa_engine(location)
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            statement = _sa_label_statement()
            write = lambda item: conn.execute(statement, params(item)).scalar_one()  # noqa: E731
            close = lambda: (conn.close(), engine.dispose())  # noqa: E731
        for k in range(5):  # warm-up: connection, statement plans
            write(f"warm-{k}")
        start.wait(120)
        times = []
        for k in range(clicks):
            t0 = time.perf_counter()
            write(f"item-{k:05d}")
            times.append((time.perf_counter() - t0) * 1000)
        close()
        out.put((rater, times, None))
    except BaseException as exc:
        out.put((rater, [], repr(exc)))


def label_run(kind: str, location: str, n_raters: int, clicks: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_rater, args=(kind, location, f"{kind}{n_raters}-{n}", clicks, start, out))
             for n in range(n_raters)]
    for p in procs:
        p.start()
    time.sleep(1.5)
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(60)
    errors = [e for _r, _t, e in results if e]
    if errors:
        raise SystemExit(f"{kind} rater failed: {errors[0]}")
    with open_store(location, create=False) as store:
        written = sum(len(store.label_rows(TASK, r)) for r, _t, _e in results)
    assert written == n_raters * (clicks + 5), (written, n_raters * (clicks + 5))
    ordered = sorted(t for _r, times, _e in results for t in times)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1],
            "rate": len(ordered) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="items, planned calls and answers written")
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each side")
    parser.add_argument("--today-only", action="store_true", help="today's store only (no SQLAlchemy)")
    parser.add_argument("--no-labels", action="store_true")
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (scripts/setup.sh installs it)")
    kinds = ["today"] if args.today_only else ["today", "sqlalchemy"]
    if not args.today_only:
        import sqlalchemy

        print(f"SQLAlchemy {sqlalchemy.__version__}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-store-writes-"))
    cluster = PostgresCluster(bindir, fsync=True, max_connections=2 * args.raters + 20)
    writes: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        cluster.start()
        for rnd in range(args.rounds):
            for kind in (kinds if rnd % 2 == 0 else kinds[::-1]):
                for backend in ("SQLite", "PostgreSQL"):
                    if backend == "SQLite":
                        location = str(workdir / f"{kind}-{rnd}.db")
                    else:
                        location = cluster.create_database(f"{kind}_{rnd}")
                    open_store(location).close()  # the schema, made by the store on both sides
                    run = today_writes if kind == "today" else sqlalchemy_writes
                    writes.setdefault((backend, kind), []).append(run(location, args.n))
        load = os.getloadavg()
        print(f"N={args.n:,}; best of {args.rounds} alternating rounds; load average {load[0]:.1f} {load[1]:.1f} "
              f"{load[2]:.1f}; {os.cpu_count()} CPUs")
        print("wall s (CPU s of the client process), best of the rounds")
        print("| backend | write | " + " | ".join(kinds) + (" | SQLAlchemy / today (CPU) |" if len(kinds) > 1 else " |"))
        print("| --- | --- | " + " | ".join("---:" for _ in kinds) + (" | ---: |" if len(kinds) > 1 else " |"))
        best = {(backend, kind, op): min(r[op] for r in writes[(backend, kind)])
                for (backend, kind) in writes for op in writes[(backend, kind)][0]}
        ops100k = {"save_items": 1, "create_run": 2, "put_response": 2}  # a 100k-item run with 2 models
        for backend in ("SQLite", "PostgreSQL"):
            for op in ops100k:
                cells = [f"{best[(backend, k, op)]:.2f} ({best[(backend, k, op + ' cpu')]:.2f})" for k in kinds]
                ratio = (f" | {best[(backend, 'sqlalchemy', op + ' cpu')] / best[(backend, 'today', op + ' cpu')]:.2f}x |"
                         if len(kinds) > 1 else " |")
                print(f"| {backend} | {op} | " + " | ".join(cells) + ratio)
            if len(kinds) > 1:
                scale = 100_000 / args.n
                for unit in ("", " cpu"):
                    added = sum(ops100k[op] * scale * (best[(backend, "sqlalchemy", op + unit)]
                                                       - best[(backend, "today", op + unit)]) for op in ops100k)
                    print(f"{backend}: SQLAlchemy adds {added:+.1f} s {'CPU' if unit else 'wall'} to a 100k-item x "
                          f"2-model run's writes (save_items once, create_run and put_response per model)")
        if not args.no_labels:
            print(f"\nlabels on PostgreSQL: {args.raters} rater processes x {args.clicks} timed writes, back to back")
            print("| code | raters | p50 ms | p95 ms | p99 ms | max ms | writes/s |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            db = cluster.create_database("labels")
            open_store(db).close()
            for n_raters in (1, args.raters):
                for kind in kinds:
                    r = label_run(kind, db, n_raters, args.clicks)
                    print(f"| {kind} | {n_raters} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['max']:.2f} "
                          f"| {r['rate']:.0f} |")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
