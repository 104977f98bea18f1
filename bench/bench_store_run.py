"""A whole `workbench generate` run with the store's writes done three ways, alternated in one session:
the code before issue 19's store change (`--before DIR`, a checkout of it), today's code, and today's
code with the run's writes (save_items, create_run, put_response) done by SQLAlchemy Core
(bench/sqlalchemy_writes/sitecustomize.py). On a SQLite file and on a PostgreSQL server (fsync on).

    pip install --target /tmp/sqla sqlalchemy      # not a workbench dependency
    .venv/bin/python bench/bench_store_run.py --sqlalchemy-path /tmp/sqla [--before DIR] [--n 10000] [--rounds 2]

Each run: N items x 2 models through a local OpenAI-compatible server (tests/fault_server.py, its own
process), C=32, a fresh store, the CLI in its own process; wall time of the whole command. This is
bench/bench_large_run.py's cold run at a smaller N, the run issue 19's 10% rule is about.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_large_run import MODELS, write_dataset  # noqa: E402
from bench.local_server import start_server  # noqa: E402
from tests.store.pgcluster import PostgresCluster, find_bindir  # noqa: E402


def generate(tree: Path, project: Path, store: str, url: str, pythonpath: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*pythonpath, str(tree)]),
           "OPENAI_API_KEY": "sk-bench-not-a-real-key-000000"}
    cmd = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main())", "generate",
           "data.jsonl", *[a for m in MODELS for a in ("--model", m)], "--api-base", url, "--concurrency", "32",
           "--store", store, "--max-tokens", "32", "-q"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"workbench generate exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sqlalchemy-path", required=True, help="folder SQLAlchemy is installed in (pip --target)")
    parser.add_argument("--before", type=Path, default=None, help="a checkout of the code before the change")
    args = parser.parse_args()
    cases = {"today": (ROOT, []),
             "sqlalchemy": (ROOT, [str(ROOT / "bench" / "sqlalchemy_writes"), args.sqlalchemy_path])}
    if args.before:
        cases = {"before": (args.before.resolve(), []), **cases}
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed")
    project = Path(tempfile.mkdtemp(prefix="bench-store-run-"))
    write_dataset(project / "data.jsonl", args.n)
    cluster = PostgresCluster(bindir, fsync=True).start()
    server, url = start_server("tests/fault_server.py", "--latency", "0", "--no-record")
    walls: dict[tuple[str, str], list[float]] = {}
    try:
        print(f"N={args.n:,} items x {len(MODELS)} models, C=32; load average {os.getloadavg()[0]:.1f}; "
              f"{os.cpu_count()} CPUs")
        for rnd in range(args.rounds):
            order = list(cases) if rnd % 2 == 0 else list(cases)[::-1]
            for backend in ("SQLite", "PostgreSQL"):
                for case in order:
                    tree, pythonpath = cases[case]
                    if backend == "SQLite":
                        store = f"{case}-{rnd}.db"
                    else:
                        store = cluster.create_database(f"{case}_{rnd}")
                    wall = generate(tree, project, store, url, pythonpath)
                    walls.setdefault((backend, case), []).append(wall)
                    print(f"  round {rnd + 1} {backend:<10} {case:<10} {wall:7.1f} s  (load {os.getloadavg()[0]:.1f})",
                          flush=True)
        print("| backend | " + " | ".join(f"{c} s (runs)" for c in cases) + " | sqlalchemy / today | today / before |")
        print("| --- | " + " | ".join("---:" for _ in cases) + " | ---: | ---: |")
        for backend in ("SQLite", "PostgreSQL"):
            med = {c: statistics.median(walls[(backend, c)]) for c in cases}
            cells = [f"{med[c]:.1f} ({', '.join(f'{w:.1f}' for w in walls[(backend, c)])})" for c in cases]
            before = f"{med['today'] / med['before']:.2f}x" if "before" in med else "-"
            print(f"| {backend} | " + " | ".join(cells) + f" | {med['sqlalchemy'] / med['today']:.2f}x | {before} |")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        server.terminate()
        server.wait(10)
        cluster.stop()
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
