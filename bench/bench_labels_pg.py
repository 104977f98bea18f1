"""Label write latency with 20 raters labeling at once: PostgreSQL store vs SQLite store, same run.

Goal (issue 15): p95 < 50 ms from `LabelLog.record` to the label being durably committed, with 20
concurrent raters on one PostgreSQL store. Each rater is its own process with its own connection,
as on a team's machines; all start together and write back to back (no think time: far more load
than 20 people clicking), so the numbers are an upper bound on what a rater waits for.

Cases, each measured on both backends in the same run:
  20 raters   20 processes, `--clicks` timed writes each, after `--prefill` labels already stored
  1 rater     the same writes from one process alone (the uncontended baseline)
PostgreSQL runs a throwaway server (tests/store/pgcluster.py: initdb in a temporary folder,
127.0.0.1, default durability: fsync on, synchronous_commit on); SQLite uses synchronous=FULL (WAL),
as the labeler does. Both live on the same disk (--dir, default the system temp folder).

Run: .venv/bin/python bench/bench_labels_pg.py [--raters 20] [--clicks 100] [--prefill 10000] [--dir PATH]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.store.pgcluster import PostgresCluster, find_bindir  # noqa: E402
from workbench import labels as lab  # noqa: E402
from workbench.store import open_store  # noqa: E402

A, B = "hf/base-model", "litellm/new-model"
TASK = "bench"


def _prefill(location: str | Path, n_labels: int, n_raters: int = 10) -> None:
    """n_labels decisions spread over n_raters raters (setup, not timed, so without fsync per row)."""
    with open_store(location, synchronous="OFF") as store:
        for r in range(n_raters):
            for k in range(n_labels // n_raters):
                item = f"pre-{k:05d}"
                left, right = lab.sides(0, item, f"pre{r}", A, B)
                store.append_label(TASK, item, f"pre{r}", left, right, "left", left, None, 0, "prefill")


def _rater(location: str, rater: str, clicks: int, start, out) -> None:
    try:
        with lab.LabelLog(location, TASK) as log:
            for k in range(5):  # warm-up: connection, statement plans
                log.record(f"warm-{k}", rater, A, B, "left", 0)
            start.wait(120)
            times = []
            for k in range(clicks):
                item = f"item-{k:05d}"
                left, right = lab.sides(0, item, rater, A, B)
                t0 = time.perf_counter()
                log.record(item, rater, left, right, "left", 0)
                times.append((time.perf_counter() - t0) * 1000)
            out.put((rater, times, None))
    except BaseException as exc:
        out.put((rater, [], repr(exc)))


def _run(location: str, n_raters: int, clicks: int, tag: str) -> tuple[list[float], float]:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_rater, args=(location, f"{tag}-{n}", clicks, start, out)) for n in range(n_raters)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every rater connected and warmed up
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(60)
    errors = [error for _r, _t, error in results if error]
    if errors:
        raise SystemExit(f"rater failed: {errors[0]}")
    with open_store(location, create=False) as store:
        written = sum(len(store.label_rows(TASK, rater)) for rater, _t, _e in results)
    assert written == n_raters * (clicks + 5), (written, n_raters * (clicks + 5))  # nothing lost or duplicated
    return [t for _r, times, _e in results for t in times], wall


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=100, help="timed writes per rater")
    parser.add_argument("--prefill", type=int, default=10_000, help="labels in the store before timing")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (scripts/setup.sh installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-labels-", dir=args.dir))
    cluster = PostgresCluster(bindir, fsync=True, max_connections=args.raters + 20)
    try:
        cluster.start()
        cluster.create_database("bench")
        locations = {"PostgreSQL": cluster.url("bench"), "SQLite": str(workdir / "labels.db")}
        for location in locations.values():
            open_store(location).close()
            _prefill(location, args.prefill)
        rows = {}
        for backend, location in locations.items():
            for n, label in ((1, "1 rater"), (args.raters, f"{args.raters} raters")):
                times, wall = _run(location, n, args.clicks, f"{backend[:2].lower()}{n}")
                rows[(backend, label)] = (_percentiles(times), len(times) / wall)
        load = os.getloadavg()
        print(f"{args.raters} rater processes x {args.clicks} timed writes, {args.prefill} labels prefilled; "
              f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} CPUs")
        print("| backend | case | p50 ms | p95 ms | p99 ms | max ms | writes/s |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for (backend, label), (pct, rate) in rows.items():
            print(f"| {backend} | {label} | {pct['p50']:.2f} | {pct['p95']:.2f} | {pct['p99']:.2f} | {pct['max']:.2f} "
                  f"| {rate:.0f} |")
        many = f"{args.raters} raters"
        pg, lite = rows[("PostgreSQL", many)][0], rows[("SQLite", many)][0]
        print(f"PostgreSQL / SQLite, {many}: p50 {pg['p50'] / lite['p50']:.2f}x, p95 {pg['p95'] / lite['p95']:.2f}x; "
              f"PostgreSQL {many} / 1 rater p95: {pg['p95'] / rows[('PostgreSQL', '1 rater')][0]['p95']:.2f}x; "
              f"throughput PostgreSQL / SQLite: {rows[('PostgreSQL', many)][1] / rows[('SQLite', many)][1]:.2f}x")
        print(f"goal: PostgreSQL p95 with {many} < 50 ms: {'MET' if pg['p95'] < 50 else 'NOT MET'} ({pg['p95']:.1f} ms)")
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
