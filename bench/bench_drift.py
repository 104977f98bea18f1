"""Benchmark: the drift monitor on 10k, 30k and 100k production rows against a 1k reference.

Each measurement runs in a fresh process (`--one`) so its peak memory (ru_maxrss) is its own: the
same `run_drift` the CLI runs with `--no-report`, over a synthetic JSONL log spread over 30 days
(daily windows, so the number of windows is the same at every size and only the rows per window
grow) with a new product line and new languages in its last third (the export pass runs too).

Goals (issue 14): 100k rows under 2 minutes without embeddings; peak memory flat from 10k to 100k.
The baseline measured in the same run is the memory a naive reader would need: the log loaded whole
with pandas (`pd.read_json(lines=True)`), which grows with the log.

Run: .venv/bin/python bench/bench_drift.py [--sizes 10000 30000 100000] [--embeddings]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _prepare(folder: Path, rows: int) -> tuple[Path, Path]:
    from workbench.monitor import synthetic as syn

    reference = folder / "reference.jsonl"
    if not reference.exists():
        syn.write_jsonl(syn.reference_dataset(1000, seed=0), reference)
    log = folder / f"production-{rows}.jsonl"
    if not log.exists():
        frame = syn.production_log(rows, seed=rows, days=30, drifts=[syn.Drift("product", 2 / 3, 0.2),
                                                                       syn.Drift("language", 2 / 3, 0.1)])
        syn.write_jsonl(frame, log)
    return reference, log


def _one(reference: str, log: str, embeddings: bool, naive: bool) -> None:
    """Runs in its own process; prints one JSON line."""
    import pandas  # noqa: F401  (imports and the language model first: the baseline is what a run costs
    import scipy.stats  # noqa: F401  before it reads a row)

    from workbench.monitor.text import language, terms

    language("warm up the language model"), terms("ウォームアップ")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    cpu = time.process_time()
    if naive:
        import pandas as pd

        frame = pd.read_json(log, lines=True)
        out = {"rows": len(frame)}
    else:
        from workbench.monitor.config import DriftConfig
        from workbench.monitor.run import run_drift

        signals = ["length", "language", "vocabulary"] + (["embedding"] if embeddings else [])
        result = run_drift(DriftConfig(reference=reference, production=log, window="day", signals=signals))
        out = {"rows": result.rows_read, "windows": len(result.windows), "tests": len(result.tests),
               "flagged": int(result.windows["flagged"].sum()), "exported": len(result.drifted_items)}
    out.update(wall_s=round(time.perf_counter() - started, 2), cpu_s=round(time.process_time() - cpu, 2),
               peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               baseline_rss_mib=round(baseline, 1))
    print(json.dumps(out))


def _measure(reference: Path, log: Path, embeddings: bool = False, naive: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--one", str(reference), str(log)]
    cmd += ["--embeddings"] if embeddings else []
    cmd += ["--naive"] if naive else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 30000, 100000])
    parser.add_argument("--embeddings", action="store_true", help="also run the embedding test at the largest size")
    parser.add_argument("--one", nargs=2, metavar=("REFERENCE", "LOG"), help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help="where the synthetic files go (default: a temporary folder)")
    args = parser.parse_args()
    if args.one:
        _one(args.one[0], args.one[1], args.embeddings, args.naive)
        return

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_drift_"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average at start {os.getloadavg()[0]:.1f}; files in {folder}")
    print("| rows | log MiB | windows | tests | flagged | wall s | CPU s | peak RSS MiB (after imports) | "
          "naive pandas load: wall s, peak MiB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rows in args.sizes:
        reference, log = _prepare(folder, rows)
        run = _measure(reference, log)
        naive = _measure(reference, log, naive=True)
        print(f"| {rows:,} | {log.stat().st_size / 2**20:.1f} | {run['windows']} | {run['tests']} | {run['flagged']} | "
              f"{run['wall_s']} | {run['cpu_s']} | {run['peak_rss_mib']} ({run['baseline_rss_mib']}) | "
              f"{naive['wall_s']}, {naive['peak_rss_mib']} |",
              flush=True)
    if args.embeddings:
        reference, log = _prepare(folder, args.sizes[-1])
        run = _measure(reference, log, embeddings=True)
        print(f"\nwith the embedding test (all-MiniLM-L6-v2, 200 sampled inputs per window + 500 reference), "
              f"{args.sizes[-1]:,} rows: wall {run['wall_s']} s, CPU {run['cpu_s']} s, peak RSS {run['peak_rss_mib']} MiB, "
              f"{run['tests']} tests, {run['flagged']} windows flagged")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
