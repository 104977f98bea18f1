"""Import time of the package and of the CLI's modules, each in a fresh interpreter (median of runs).

    .venv/bin/python bench/bench_import.py            # target: `import workbench` under 1 s (measured ~0.02 s)

tests/test_import.py checks what the import pulls in (no heavy library, no third-party module, no
socket); seconds on a shared machine are measured here, not asserted there.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, time
start = time.perf_counter()
import {modules}
print(json.dumps(time.perf_counter() - start))
"""
SETS = {
    "import workbench": "workbench",
    "the CLI's modules": "workbench, workbench.cli, workbench.models, workbench.generation.runner, workbench.store, "
                         "workbench.stats, workbench.metrics, workbench.judges",
}


def measure(modules: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", PROBE.format(modules=modules)], capture_output=True, text=True,
                              cwd=ROOT, check=True)
        times.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for name, modules in SETS.items():
        times = measure(modules, args.runs)
        print(f"{name}: median {statistics.median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s "
              f"({args.runs} runs)")


if __name__ == "__main__":
    main()
