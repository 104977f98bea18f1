"""A large run the way a user makes it: `workbench generate` over N items x 2 models through a
local OpenAI-compatible server (real HTTP), then the same command again on the warm store, then
the explorer opened on that store.

    .venv/bin/python bench/bench_large_run.py [--n 100000] [--concurrency 32] [--keep DIR]

Measured:
* the CLI process's resident memory (RSS, sampled every 0.25 s from outside, next to the number of
  requests the server has answered so far): after planning, at 10% / 30% / 100% of each model's
  calls, and its peak. Flat means the growth from the first checkpoint to the last is small and does
  not scale with the calls made (answers go to the store on disk, not into memory);
* the warm re-run: requests the server saw (goal 0) and its wall time;
* the explorer opened on the N x 2 store: CPU seconds (`time.process_time`) of
  `Explorer.from_store` (goal <= 1 s), and how many response rows it read to open.

The server is `tests/fault_server.py` in its own process, so it does not share the client's GIL.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_server import server_hits, start_server  # noqa: E402

MODELS = ("openai/bench-baseline", "openai/bench-candidate")  # unpriced, as most local servers
WORDS = ("the order ships today please check your account settings and contact support if the refund "
         "is late").split()


def write_dataset(path: Path, n: int) -> None:
    """N items of ~20 words with two slice columns (a realistic support-style row)."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(20))
            out.write(json.dumps({"item_id": f"item-{i:06d}", "input": f"question {i}: {words}",
                                  "language": "en" if i % 3 else "ja", "task": ("support", "summary")[i % 2]}) + "\n")


class Sampler(threading.Thread):
    """(seconds, server hits, RSS bytes) of a child process every `every` seconds until it exits."""

    def __init__(self, pid: int, url: str, every: float = 0.25):
        super().__init__(daemon=True)
        import psutil

        self.proc, self.url, self.every = psutil.Process(pid), url, every
        self.samples: list[tuple[float, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while not self.stop.is_set():
            try:
                rss = self.proc.memory_info().rss
            except Exception:  # noqa: BLE001 - the process ended
                return
            self.samples.append((time.perf_counter() - start, server_hits(self.url), rss))
            self.stop.wait(self.every)


def run_generate(project: Path, url: str, concurrency: int) -> tuple[float, list[tuple[float, int, int]], str, int, int]:
    """`workbench generate` as a user types it, in its own process; (wall s, samples, stdout, requests
    the server had answered before, requests it answered during the run)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-bench-not-a-real-key-000000"}
    cmd = [sys.executable, "-c", "import sys; from workbench.cli import main; sys.exit(main())", "generate",
           "data.jsonl", *[a for m in MODELS for a in ("--model", m)], "--api-base", url,
           "--concurrency", str(concurrency), "--store", "store.db", "--max-tokens", "32",
           "-p", "sample_size", "null", "-q"]  # every item, not the parameters' sample
    before = server_hits(url)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid, url)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"workbench generate exited {proc.returncode}:\n{err[-3000:]}")
    return wall, sampler.samples, out.strip().splitlines()[-1], before, server_hits(url) - before


def rss_at(samples: list[tuple[float, int, int]], hits: int, last: bool = False) -> int:
    """RSS of the first sample taken once the server had answered `hits` requests; with `last`, of
    the last sample taken before (the run's last calls, not its teardown)."""
    if last:
        return [rss for _t, h, rss in samples if h < hits][-1]
    return next((rss for _t, h, rss in samples if h >= hits), samples[-1][2])


def memory_table(samples: list[tuple[float, int, int]], n: int, base_hits: int) -> dict[str, float]:
    mib = 1 / 2**20
    first_call = next((rss for _t, h, rss in samples if h > base_hits), samples[-1][2])
    rows = {"planned (first call)": first_call * mib}
    for k, model in enumerate(("baseline", "candidate")):
        for frac in (0.1, 0.3, 1.0):
            rows[f"{model} {frac:.0%} ({int(frac * n):,} calls)"] = rss_at(
                samples, base_hits + k * n + int(frac * n), last=frac == 1.0) * mib
    rows["after the last call (writing, closing)"] = rss_at(samples, base_hits + 2 * n) * mib
    peak = max(samples, key=lambda sample: sample[2])
    rows[f"peak (at {peak[0]:.0f} s, {peak[1] - base_hits:,} calls)"] = peak[2] * mib
    return rows


def open_explorer(store_path: Path) -> dict[str, float]:
    """CPU seconds to open the explorer on the store (imports done first), in this process."""
    import pandas as pd
    import psutil

    from workbench.store import open_store
    from workbench.widgets import Explorer

    rss0 = psutil.Process().memory_info().rss
    with open_store(store_path, create=False) as store:
        c0, t0 = time.process_time(), time.perf_counter()
        explorer = Explorer.from_store(store, models=list(MODELS))
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        c1 = time.process_time()
        for _ in range(20):
            explorer.next()
        step = (time.process_time() - c1) / 20
        rows = explorer.data.rows_loaded
        shown = explorer.position_text()
        rss = (psutil.Process().memory_info().rss - rss0) / 2**20
        del explorer
        # Baseline, same store, same process: every run's frame read, then the frame explorer built on it.
        c0 = time.process_time()
        frames = [store.run_frame(store.latest_run_id(m)).assign(model=m) for m in MODELS]
        eager = Explorer(store.items_frame(frames[0]["dataset_id"].iloc[0]), pd.concat(frames, ignore_index=True),
                         models=list(MODELS))
        eager_cpu = time.process_time() - c0
        same = eager.render_item_html() == Explorer.from_store(store, models=list(MODELS)).render_item_html()
    return {"cpu_s": cpu, "wall_s": wall, "next_ms_cpu": step * 1000, "rows_loaded": rows, "rss_mib": rss,
            "status": shown, "eager_cpu_s": eager_cpu, "eager_rows": eager.data.rows_loaded, "same_html": same}


def report_explorer(store_path: Path) -> None:
    print(f"load average {os.getloadavg()[0]:.2f}; opening the explorer on {store_path}")
    ex = open_explorer(store_path)
    print(f"explorer open: {ex['cpu_s']:.3f} s CPU ({ex['wall_s']:.3f} s wall), {ex['rows_loaded']} response rows "
          f"read, +{ex['rss_mib']:.1f} MiB; next item {ex['next_ms_cpu']:.2f} ms CPU; shows \"{ex['status']}\" "
          f"(goal <= 1 s CPU)")
    print(f"  baseline (read every run's frame, build the frame explorer): {ex['eager_cpu_s']:.3f} s CPU, "
          f"{ex['eager_rows']:,} rows; lazy/baseline {ex['cpu_s'] / ex['eager_cpu_s']:.3f}x; "
          f"same first item HTML: {ex['same_html']}")
    print(f"store size {store_path.stat().st_size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="items (each goes to both models)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.0, help="server latency per request, seconds")
    parser.add_argument("--keep", default=None, metavar="DIR", help="project folder to keep (default: a temp dir)")
    parser.add_argument("--explorer-only", default=None, metavar="DIR", help="only open the explorer on DIR/store.db "
                        "(a project kept with --keep)")
    args = parser.parse_args()
    if args.explorer_only:
        report_explorer(Path(args.explorer_only) / "store.db")
        return

    project = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-large-"))
    project.mkdir(parents=True, exist_ok=True)
    write_dataset(project / "data.jsonl", args.n)
    proc, url = start_server("tests/fault_server.py", "--latency", str(args.latency), "--no-record")
    try:
        print(f"N={args.n:,} items x {len(MODELS)} models, C={args.concurrency}, server latency {args.latency}s, "
              f"load average {os.getloadavg()[0]:.2f}")
        cold_wall, samples, cold_out, hits0, cold_hits = run_generate(project, url, args.concurrency)
        print(f"cold run: {cold_wall:.1f} s wall, {cold_hits:,} requests at the server "
              f"({cold_hits / cold_wall:.0f}/s); {cold_out}")
        table = memory_table(samples, args.n, hits0)
        first = next(iter(table.values()))
        for name, mib in table.items():
            print(f"  RSS {name:<38} {mib:8.1f} MiB  ({mib - first:+.1f})")
        mid = table[f"baseline 10% ({args.n // 10:,} calls)"]
        end = table[f"candidate 100% ({args.n:,} calls)"]
        print(f"  growth from 10% of the baseline's calls to its last calls: {end - mid:+.1f} MiB over "
              f"{2 * args.n - args.n // 10:,} calls ({(end - mid) * 1024 / max(1, 2 * args.n - args.n // 10):.3f} KiB/call)")

        warm_wall, warm_samples, warm_out, _, warm_hits = run_generate(project, url, args.concurrency)
        print(f"warm re-run: {warm_wall:.2f} s wall (process start and imports included), {warm_hits} requests at "
              f"the server, peak RSS {max(s[2] for s in warm_samples) / 2**20:.1f} MiB; {warm_out}")

        report_explorer(project / "store.db")
    finally:
        proc.terminate()
        proc.wait(10)
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
