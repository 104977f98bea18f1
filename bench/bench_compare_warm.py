"""`workbench compare` at N items x 2 models, with the score cache (cold, then warm) against today's
behaviour (the cache bypassed: `WORKBENCH_SCORE_CACHE=0`), measured side by side in one run.

    .venv/bin/python bench/bench_compare_warm.py [--n 100000] [--keep DIR] [--reuse DIR] [--rounds 2] [--before TREE]

The project is the one docs/bench/scale.md measured at 20k: N items of ~20 words with a reference and
`language` x `task` slices, `fake/base` against `fake/cand`, metrics `chrf` and `length_chars`, no judge.
Its store is written by `workbench generate` (the fake adapter answers at once; --reuse DIR keeps a
project made earlier with --keep). Then, each `workbench compare` in its own process, as a user types it,
its wall time, CPU time and peak memory (psutil, sampled every 0.1 s from outside: RSS and PSS summed over
the process and its forked children):
* today: the cache bypassed (every score and behaviour measure computed, nothing kept);
* cold: the cache on, the scores table emptied first (everything computed, then kept);
* warm: the cache on, everything kept (goal: <= 15 s at 100k x 2);
* serial: warm, read by the command's process alone (`WORKBENCH_READ_WORKERS=1`: no forked child);
* before (with --before TREE, e.g. `git worktree add /tmp/wb-start cb3740d`): a warm compare by the code
  in TREE, on the same store, so a change is measured against the code before it in the same run
  (its peak RSS against this code's: the read in chunks).
The rounds alternate (today, cold, warm, ...), so load drifts reach every mode alike; the verdict
records (`--json`) of every run must be identical, byte for byte.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the order ships today please check your account settings and contact support if the refund "
         "is late").split()
PARAMS = ('dataset = "data.jsonl"\nbaseline = "fake/base"\nbaseline_prompt = ""\ncandidates = ["fake/cand"]\n'
          'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf", "length_chars"]\nsample_size = ""\n'
          'store = "store.db"\ngate_file = "gate.toml"\n')
GATE = "min_items = 30\n[metrics.chrf]\nmax_drop = 1.0\nhigher_is_better = true\n"


def _env(tree: Path = ROOT, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "WORKBENCH_TEST_PROVIDERS": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **extra}


def make_project(project: Path, n: int) -> float:
    """data.jsonl, params.toml, gate.toml and the store written by `workbench generate`; its wall seconds."""
    with (project / "data.jsonl").open("w", encoding="utf-8") as out:
        for i in range(n):
            words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(20))
            out.write(json.dumps({"item_id": f"item-{i:06d}", "input": f"question {i}: {words}",
                                  "reference": f"fake/base: question {i}: {words[:60]}",
                                  "language": "en" if i % 3 else "ja", "task": ("support", "summary")[i % 2]}) + "\n")
    (project / "params.toml").write_text(PARAMS, encoding="utf-8")
    (project / "gate.toml").write_text(GATE, encoding="utf-8")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workbench.cli", "generate", "data.jsonl", "--model", "fake/base",
                    "--model", "fake/cand", "--store", "store.db", "-q"], cwd=project, env=_env(), check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_rss(pid: int, every: float, out: list[tuple[int, int]], stop: threading.Event) -> None:
    """(RSS, PSS) of the process and its children (the read in chunks forks), summed, every `every` s.
    Summed RSS counts the pages a fork shares twice; PSS splits them: the memory the machine spends."""
    import psutil

    proc = psutil.Process(pid)
    while not stop.is_set():
        rss = pss = 0
        try:
            for member in [proc, *proc.children(recursive=True)]:
                memory = member.memory_full_info()
                rss, pss = rss + memory.rss, pss + memory.pss
        except psutil.Error:  # a process ended while it was read: this sample is incomplete
            if not proc.is_running():
                return
        else:
            out.append((rss, pss))
        stop.wait(every)


def compare(project: Path, mode: str, tag: str, before: Path | None = None) -> dict[str, float]:
    """One `workbench compare` in its own process: wall s, CPU s (user + system, from the child's rusage:
    what a shared machine's load does not inflate), peak RSS MiB; its verdict record kept."""
    if mode == "cold":
        with sqlite3.connect(project / "store.db") as conn:
            conn.execute("DELETE FROM scores")
    env = _env(before if mode == "before" and before else ROOT, WORKBENCH_SCORE_CACHE="0" if mode == "today" else "1",
               **({"WORKBENCH_READ_WORKERS": "1"} if mode == "serial" else {}))
    cmd = [sys.executable, "-m", "workbench.cli", "compare", "--params", "params.toml", "--json", f"verdict-{tag}.json"]
    samples: list[tuple[int, int]] = []
    stop = threading.Event()
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=peak_rss, args=(proc.pid, 0.1, samples, stop), daemon=True)
    sampler.start()
    _out, err = proc.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stop.set()
    sampler.join()
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"workbench compare ({mode}) exited {proc.returncode}:\n{err[-3000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "rss_mib": max([rss for rss, _ in samples] or [0]) / 2**20,
            "pss_mib": max([pss for _, pss in samples] or [0]) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="items (each answered by both models)")
    parser.add_argument("--rounds", type=int, default=2, help="today / cold / warm rounds, alternating")
    parser.add_argument("--keep", default=None, metavar="DIR", help="project folder to keep (default: a temp dir)")
    parser.add_argument("--reuse", default=None, metavar="DIR", help="a project kept earlier with --keep")
    parser.add_argument("--before", default=None, type=Path, metavar="TREE",
                        help="a checkout of earlier code: its warm compare runs beside this code's")
    parser.add_argument("--modes", default="today,cold,warm", help="which modes run, in this order each round")
    args = parser.parse_args()
    project = Path(args.reuse or args.keep or tempfile.mkdtemp(prefix="bench-compare-"))
    project.mkdir(parents=True, exist_ok=True)
    try:
        if not args.reuse:
            print(f"store written by workbench generate in {make_project(project, args.n):.1f} s")
        items = sum(1 for line in (project / "data.jsonl").open("rb") if line.strip())  # a reused project's own
        print(f"N={items:,} items x 2 models; load average {os.getloadavg()[0]:.2f}; {project}")
        modes = [m for m in args.modes.split(",") if m] + (["before"] if args.before else [])
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
        for k in range(args.rounds):
            for mode in modes:
                run = compare(project, mode, f"{mode}{k}", args.before)
                results[mode].append(run)
                print(f"  round {k + 1} {mode:<5} {run['wall_s']:7.2f} s wall, {run['cpu_s']:7.2f} s CPU, peak RSS {run['rss_mib']:6.0f} MiB, PSS {run['pss_mib']:6.0f} MiB; "
                      f"load average {os.getloadavg()[0]:.2f}", flush=True)
        records = {path.name: path.read_text(encoding="utf-8") for path in sorted(project.glob("verdict-*.json"))}
        same = len(set(records.values())) == 1
        for measure in ("wall_s", "cpu_s", "rss_mib", "pss_mib"):
            median = {mode: statistics.median(r[measure] for r in runs) for mode, runs in results.items()}
            ratios = [f"{mode}/{base} {median[mode] / median[base]:.3f}x" for mode, base in
                      (("warm", "today"), ("cold", "today"), ("warm", "serial"), ("warm", "before")) if mode in median and base in median]
            print(f"median {measure}: " + ", ".join(f"{mode} {value:.2f}" for mode, value in median.items())
                  + f"; same run: {', '.join(ratios)}"
                  + (f"; warm goal <= 15 s: {'met' if median['warm'] <= 15 else 'NOT met'}"
                     if measure == "wall_s" and "warm" in median else ""))
        print(f"verdict records identical across all {len(records)} runs: {same}")
        if not same:
            raise SystemExit("the verdict records differ between modes")
    finally:
        if not (args.keep or args.reuse):
            shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
