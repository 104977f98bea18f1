"""How fast the commands that make no model call start: wall time of whole `workbench` commands.

    .venv/bin/python bench/bench_startup.py --before DIR     # DIR: a checkout of an earlier commit

Each command runs as a user runs it (a fresh interpreter, `python -m workbench.cli ...`), in an empty
folder, alternating this checkout and the one in `--before` (PYTHONPATH decides which package is
imported), so both sides see the same machine load. Prints the median per command and the ratio
before/now. Goal (issue 25): `--help` and a command that makes no call under 1 s on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "workbench --help": ["--help"],
    "workbench --version": ["--version"],
    "workbench compare --help": ["compare", "--help"],
    "workbench drift --help": ["drift", "--help"],
    "workbench doctor (bundled demo)": ["doctor"],
}


def run_once(tree: Path, argv: list[str], folder: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workbench.cli", *argv], cwd=folder, env=env, capture_output=True,
                   check=False, timeout=300)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, default=None, help="an earlier checkout, measured in the same run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    trees = {"now": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for tree in trees.values():  # warm the file cache and byte-code of both trees, unmeasured
            run_once(tree, ["--help"], folder)
        for _ in range(args.runs):
            for label, argv in COMMANDS.items():
                for side, tree in trees.items():
                    times.setdefault((label, side), []).append(run_once(tree, argv, folder))
    load = os.getloadavg()[0]
    print(f"median of {args.runs} runs, load average {load:.1f}, {sys.executable}")
    print(f"{'command':36} {'now (s)':>9}" + (f" {'before (s)':>11} {'before/now':>11}" if args.before else ""))
    for label in COMMANDS:
        now = statistics.median(times[(label, "now")])
        line = f"{label:36} {now:9.2f}"
        if args.before:
            before = statistics.median(times[(label, "before")])
            line += f" {before:11.2f} {before / now:10.2f}x"
        print(line)


if __name__ == "__main__":
    main()
