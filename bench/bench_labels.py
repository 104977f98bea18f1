"""Click-to-durable-write latency of the blind labeler with 10,000 labels already in the store.

Goal: p95 < 50 ms from a click to the label being committed with synchronous=FULL. Measured:
  durable write    LabelLog.record (INSERT + fsync of the WAL), what a click waits for
  click to screen  Button.click() on the labeler: write + re-read of the rater's log + re-render
Baselines measured in the same run, to read the numbers as ratios:
  NORMAL write     the same INSERT with synchronous=NORMAL (no fsync per commit)
  empty store      the durable write on a store with no labels

Run: .venv/bin/python bench/bench_labels.py [--labels 10000] [--clicks 300] [--dir PATH]
The store goes to --dir (default .cache/bench-labels in the repo: a real disk, not tmpfs,
or the fsync would cost nothing).
"""
from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench import labels as lab  # noqa: E402
from workbench.store import Store  # noqa: E402

A, B = "hf/base-model", "litellm/new-model"
TASK = "bench"


def _prefill(path: Path, n_labels: int, n_raters: int) -> None:
    """n_labels decisions spread over n_raters raters, written in one transaction (setup, not timed)."""
    per_rater = n_labels // n_raters
    now = time.time()
    rows = []
    for r in range(n_raters):
        rater = f"r{r}"
        for k in range(per_rater):
            item = f"item-{k:05d}"
            left, right = lab.sides(0, item, rater, A, B)
            rows.append((TASK, item, rater, left, right, "left", left, None, None, 0, "prefill", now))
    with Store(path) as store:
        store.transaction([(
            "INSERT INTO labels(task, item_id, rater, left_model, right_model, action, winner_model,"
            " undoes_label_id, note, assignment_seed, session_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            row) for row in rows])


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


def _time_records(log: lab.LabelLog, n: int, rater: str, start: int) -> list[float]:
    out = []
    for k in range(start, start + n):
        item = f"item-{k:05d}"
        left, right = lab.sides(0, item, rater, A, B)
        t0 = time.perf_counter()
        log.record(item, rater, left, right, "left", 0)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _time_clicks(path: Path, n: int, n_items: int) -> list[float]:
    from workbench.widgets.labeler import PairLabeler

    ids = [f"item-{k:05d}" for k in range(n_items)]
    pairs = pd.DataFrame({"item_id": ids, "input": [f"question {i}" for i in ids],
                          "response_a": [f"answer a {i}" for i in ids], "response_b": [f"answer b {i}" for i in ids]})
    labeler = PairLabeler(path, TASK, pairs, rater="r0", seed=0, model_a=A, model_b=B, keyboard="none")
    out = []
    for _ in range(n):
        before = labeler.current_item
        t0 = time.perf_counter()
        labeler.buttons["left"].click()
        out.append((time.perf_counter() - t0) * 1000)
        assert labeler.current_item != before
    labeler.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--raters", type=int, default=10)
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=ROOT / ".cache" / "bench-labels")
    args = parser.parse_args()
    workdir = args.dir / uuid.uuid4().hex[:8]
    workdir.mkdir(parents=True)
    try:
        full, empty = workdir / "full.db", workdir / "empty.db"
        _prefill(full, args.labels, args.raters)
        Store(empty).close()
        per_rater = args.labels // args.raters
        n_items = per_rater + 2 * args.clicks + 10
        results = {}
        with lab.LabelLog(full, TASK) as log:
            _time_records(log, 20, "warmup", 0)
            results["durable write (FULL), 10k labels"] = _time_records(log, args.clicks, "w-full", 0)
        with lab.LabelLog(empty, TASK) as log:
            _time_records(log, 20, "warmup", 0)
            results["durable write (FULL), empty store"] = _time_records(log, args.clicks, "w-empty", 0)
        with lab.LabelLog(full, TASK) as log:
            log.store.execute("PRAGMA synchronous=NORMAL")
            results["write (NORMAL, no fsync), 10k labels"] = _time_records(log, args.clicks, "w-normal", 0)
        results["click to next item shown, 10k labels"] = _time_clicks(full, args.clicks, n_items)
        conn = sqlite3.connect(full)
        total = conn.execute("SELECT count(*) FROM labels").fetchone()[0]
        conn.close()
        print(f"store: {full} ({total} labels at the end; {args.labels} before timing), clicks per case: {args.clicks}")
        base = _percentiles(results["write (NORMAL, no fsync), 10k labels"])["p95"]
        print(f"{'case':42s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'p95/NORMAL':>11s}")
        for name, samples in results.items():
            p = _percentiles(samples)
            print(f"{name:42s} {p['p50']:8.2f} {p['p95']:8.2f} {p['p99']:8.2f} {p['max']:8.2f} {p['p95'] / base:11.1f}x")
        p95 = _percentiles(results["durable write (FULL), 10k labels"])["p95"]
        print(f"goal p95 < 50 ms for the durable write: {'met' if p95 < 50 else 'NOT met'} ({p95:.1f} ms)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
