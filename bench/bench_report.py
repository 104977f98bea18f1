"""Report regeneration from a warm store: the whole `workbench report` command's wall time, side by side
with an earlier version of the code in the same run, and where the time goes (measured separately).

    git archive fca9f46 | tar -x -C /tmp/before      # the code before issue 19's one path (prompts fix only)
    .venv/bin/python bench/bench_report.py --before /tmp/before            # the demo (warms the store first)
    .venv/bin/python bench/bench_report.py --before /tmp/before --fake     # fake models: the fixed costs alone
    .venv/bin/python bench/bench_report.py --store /tmp/demo/store.db      # an already warm demo store

Each version runs as its own `python -m workbench.cli report` process (PYTHONPATH names its tree) on the
same store, alternating, so the machine's load falls on both alike. Zero model calls on every warm run.
The notebook's cell times come from papermill's record in each tree's last report.ipynb; the command's
own phases (imports, checks, pipeline, notebook, HTML) from `bench/report_phases.py`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAKE = {"baseline": "fake/base", "candidates": ["fake/cand"], "judge": None,
        "metrics": ["chrf", "rouge_l", "bleu", "length_chars"], "report_name": "bench-fake",
        "gate": {"min_items": 30, "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True}}}}


def report(tree: Path, store: Path, reports: Path, fake: bool) -> tuple[float, float]:
    """One `workbench report` of `tree`'s code: its wall time and its CPU time (user + system, the
    notebook's kernel included), in seconds. On a loaded machine the CPU time is the steadier figure."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "WORKBENCH_TEST_PROVIDERS": "1" if fake else ""}
    args = ["-p", "store", json.dumps(str(store)), "--reports-dir", str(reports), "-q"]
    for name, value in (FAKE.items() if fake else ()):
        args += ["-p", name, json.dumps(value)]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "report", *args], env=env, cwd=reports.parent,
                          capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"{tree}: report failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def manifest(reports: Path, fake: bool) -> dict:
    return json.loads((reports / ("bench-fake" if fake else "demo") / "manifest.json").read_text())


def verdict(reports: Path, fake: bool) -> dict:
    record = json.loads((reports / ("bench-fake" if fake else "demo") / "verdict.json").read_text())
    record.pop("lifecycle", None)  # days left: as of today
    return record


def cell_times(reports: Path, fake: bool) -> tuple[float, list[tuple[float, int, str]]]:
    """The notebook's run as papermill recorded it in report.ipynb: its whole duration (kernel ready
    to last cell done) and each code cell's duration, slowest first, with the cell's first line."""
    notebook = json.loads((reports / ("bench-fake" if fake else "demo") / "report.ipynb").read_text(encoding="utf-8"))
    cells = [(cell["metadata"]["papermill"]["duration"] or 0.0, index, "".join(cell["source"]).splitlines()[0])
             for index, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code" and cell["source"]]
    return notebook["metadata"]["papermill"]["duration"], sorted(cells, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fake", action="store_true", help="fake models on the bundled data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None, help="a tree of the earlier code to compare with")
    parser.add_argument("--store", type=Path, default=None, help="a warm store (default: warmed here first)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    store = args.store or tmp / "store.db"
    trees = {"now": REPO, **({"before": args.before.resolve()} if args.before else {})}
    reports = {name: tmp / name / "reports" for name in trees}
    for folder in reports.values():
        folder.mkdir(parents=True)
    warm, _ = report(REPO, store, reports["now"], args.fake)  # warms the store (or checks it is warm)
    print(f"first run (warming the store where needed): {warm:.1f} s; load average {os.getloadavg()[0]:.1f}")
    walls: dict[str, list[float]] = {name: [] for name in trees}
    cpus: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.repeat):
        for name, tree in trees.items():
            wall, cpu = report(tree, store, reports[name], args.fake)
            walls[name].append(wall)
            cpus[name].append(cpu)
            made = manifest(reports[name], args.fake)["calls"]["made"]
            assert made == 0, f"{name}: a warm re-run made {made} calls"
    medians = {name: statistics.median(values) for name, values in walls.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpus.items()}
    for name, values in walls.items():
        print(f"{name:>6}: warm report, median of {args.repeat}: {medians[name]:.1f} s wall "
              f"(runs: {', '.join(f'{v:.1f}' for v in values)}), {cpu_medians[name]:.1f} s CPU, zero model calls")
    print(f"load average after the runs: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)")
    if "before" in medians:
        print(f"before / now: {medians['before'] / medians['now']:.2f}x wall, "
              f"{cpu_medians['before'] / cpu_medians['now']:.2f}x CPU")
        same = verdict(reports["now"], args.fake) == verdict(reports["before"], args.fake)
        print(f"verdict.json identical before and now (lifecycle days aside): {same}")
    pipeline_s = manifest(reports["now"], args.fake)["pipeline_wall_s"]
    notebook_s = manifest(reports["now"], args.fake)["report_wall_s"]
    print(f"  now: pipeline (store reads, scores, statistics) {pipeline_s:.1f} s; notebook + HTML {notebook_s:.1f} s; "
          f"the rest (imports, checks, writing) {max(0.0, medians['now'] - pipeline_s - notebook_s):.1f} s")
    for name, folder in reports.items():
        total, cells = cell_times(folder, args.fake)
        print(f"  {name}: the notebook's cells (last run) {total:.1f} s; slowest: "
              + "; ".join(f"cell {index} {seconds:.2f} s ({first[:40]!r})" for seconds, index, first in cells[:3]))


if __name__ == "__main__":
    main()
