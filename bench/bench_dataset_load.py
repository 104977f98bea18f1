"""`load_items` + `dataset_id` on a large JSONL file: this tree against another (`--before TREE`, the code
before a change), each measurement in its own process, rounds alternating, in one run.

    .venv/bin/python bench/bench_dataset_load.py [--data FILE | --n 100000] [--before /tmp/wb-start] [--rounds 3]

Without --data, N items like bench_compare_warm.py's (~20 words of input, a reference, `language` and
`task` slices) are written to a temporary file. Each process imports the tree's loader (not timed), then
reports the CPU seconds of `load_items` and of `dataset_id`, the peak RSS the load added over the RSS
before it (getrusage; the imports' own peak is lower), the RSS the loaded frame keeps, and with
--tracemalloc the peak of Python allocations during the load (a separate process: tracing slows it).
Both trees must give the same dataset_id, columns and dtypes; the script fails if they do not.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the order ships today please check your account settings and contact support if the refund "
         "is late").split()

CHILD = r"""
import json, resource, sys, time
def rss_mib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20
from workbench.task import dataset
from workbench.task.dataset import dataset_id, load_items
assert dataset.__file__.startswith(sys.argv[3]), dataset.__file__
path, trace = sys.argv[1], sys.argv[2] == "1"
if trace:
    import tracemalloc
    tracemalloc.start()
before = rss_mib()
start = time.process_time()
frame = load_items(path)
loaded = time.process_time()
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
kept_rss = rss_mib() - before
traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
if trace:
    tracemalloc.stop()
hashed_start = time.process_time()
ident = dataset_id(frame)
hashed = time.process_time()
print(json.dumps({"load_s": loaded - start, "id_s": hashed - hashed_start, "peak_rss_mib": peak_rss,
                  "kept_rss_mib": kept_rss, "traced_peak_mib": traced, "dataset_id": ident,
                  "columns": list(map(str, frame.columns)), "dtypes": list(map(str, frame.dtypes)),
                  "rows": len(frame)}))
"""


def write_items(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(20))
            out.write(json.dumps({"item_id": f"item-{i:06d}", "input": f"question {i}: {words}",
                                  "reference": f"fake/base: question {i}: {words[:60]}",
                                  "language": "en" if i % 3 else "ja", "task": ("support", "summary")[i % 2]}) + "\n")


def measure(tree: Path, data: Path, trace: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(data), "1" if trace else "0", str(tree)], env=env, cwd=tree,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a JSONL file of items (default: N written to a temp file)")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--before", type=Path, help="another tree (e.g. the code before this change)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tracemalloc", action="store_true", help="also one traced load per tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data
        if data is None:
            data = Path(scratch) / "items.jsonl"
            write_items(data, args.n)
        trees = {"now": ROOT, **({"before": args.before} if args.before else {})}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():  # alternating, so load drifts reach both alike
                runs[name].append(measure(tree, data))
        traced = {name: measure(tree, data, trace=True)["traced_peak_mib"] for name, tree in trees.items()} \
            if args.tracemalloc else {}
    first = runs["now"][0]
    for name, results in runs.items():
        for result in results:
            same = {key: result[key] for key in ("dataset_id", "columns", "dtypes", "rows")}
            if same != {key: first[key] for key in same}:
                raise SystemExit(f"{name} differs from now: {same} != {first}")
    print(f"{data} ({first['rows']:,} rows), load average {os.getloadavg()[0]:.1f}, "
          f"{args.rounds} rounds, medians (CPU seconds; MiB)")
    print(f"dataset_id {first['dataset_id']} (the same in every run)")
    keys = ("load_s", "id_s", "peak_rss_mib", "kept_rss_mib")
    table = {name: {key: statistics.median(r[key] for r in results) for key in keys} for name, results in runs.items()}
    for row in table.values():
        row["total_s"] = row["load_s"] + row["id_s"]
    header = ["tree", "load_items s", "dataset_id s", "both s", "load peak RSS +MiB", "frame kept +MiB"]
    if traced:
        header.append("traced peak MiB")
    print(" | ".join(header))
    for name, row in table.items():
        cells = [name, f"{row['load_s']:.3f}", f"{row['id_s']:.3f}", f"{row['total_s']:.3f}",
                 f"{row['peak_rss_mib']:.0f}", f"{row['kept_rss_mib']:.0f}"]
        if traced:
            cells.append(f"{traced[name]:.0f}")
        print(" | ".join(cells))
    if "before" in table:
        now, before = table["now"], table["before"]
        print("now / before: " + ", ".join(
            f"{key} {now[key] / before[key]:.2f}x" for key in ("load_s", "id_s", "total_s", "peak_rss_mib")
            if before[key]))


if __name__ == "__main__":
    main()
