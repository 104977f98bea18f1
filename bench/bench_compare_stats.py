"""Benchmark: the statistics a warm `workbench compare` computes at 100k items x 2 models, this tree
beside an older checkout in the same run, and whether every number is the same (issue 25, item 1).

    .venv/bin/python bench/bench_compare_stats.py --before /tmp/wb-start [--n 100000] [--rounds 2]

Each tree runs the same workload in a fresh interpreter (so an import such as scipy.stats is paid
where compare pays it), alternating before/now for `--rounds` rounds; the median of each step is
printed with the ratio before/now. The workload is the statistics calls compare makes today, in its
order, on synthetic data shaped like a chrF/length comparison (scores, costs, latencies, a language
slice column, copy flags): pair_by_item per measure, the chrF and length delta CIs, sign tests, the
non-inferiority test, the per-slice deltas, the cost and p95-latency ratio CIs, copy_checks and a
proportion CI. Every number computed is hashed: the digests must be equal between the trees.
A CI asked for twice (a metric's delta, then copy_checks' delta on all items) is computed once in
this tree (the memo in workbench/stats/bootstrap.py), as in compare. For this tree it also times the
four 100k-item CIs (chrF delta, length delta, cost, p95 latency) as
one `paired_bootstraps` call, the way compare can call them (one index draw instead of four).

    .venv/bin/python bench/bench_compare_stats.py --before /tmp/wb-start --project DIR [--rounds 3]

times the real `compare()` of a warm `workbench compare --params params.toml` in DIR (a project that
`bench/bench_compare_warm.py --keep DIR` writes): the command runs once with this tree, up to the
comparison, and keeps compare()'s arguments (a pickle, in a temp folder); then each tree runs compare()
on them in a fresh interpreter, alternating, CPU (all threads) and wall seconds; every table of the
comparison and its verdict record are hashed, and the digests must be equal between the trees.
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

REPO = Path(__file__).resolve().parents[1]

WORKLOAD = r'''
import hashlib, json, sys, time
import numpy as np, pandas as pd
n, resamples = int(sys.argv[1]), 1000
timings, numbers = {}, []
def step(name, fn):  # CPU seconds: the steady figure on a shared machine (numpy runs on one thread here)
    t0 = time.process_time(); out = fn(); timings[name] = time.process_time() - t0; return out
def keep(*values):
    for v in values:
        numbers.append(repr(float(v)) if isinstance(v, (int, float, np.floating, np.integer)) else repr(v))
t_start = time.process_time()
from workbench import stats
from workbench.metrics.copying import copy_checks
timings["import workbench.stats"] = time.process_time() - t_start
rng = np.random.default_rng(0)
ids = [f"item-{i:06d}" for i in range(n)]
base_chrf = np.clip(rng.normal(45, 15, n), 0, 100); cand_chrf = np.clip(base_chrf + rng.normal(-4, 6, n), 0, 100)
base_len, cand_len = rng.integers(20, 800, n) * 1.0, rng.integers(20, 900, n) * 1.0
base_cost, cand_cost = base_len * 2e-6, cand_len * 1e-6
base_lat, cand_lat = rng.lognormal(0, 0.4, n), rng.lognormal(-0.2, 0.5, n)
lang = rng.choice(["en", "ja", "de", "fr", "es"], n)
frame = lambda v: pd.DataFrame({"item_id": ids, "value": v}).sample(frac=1, random_state=1)
pairs = step("pair_by_item x4", lambda: [stats.pair_by_item(frame(a), frame(b)) for a, b in
                                         ((base_chrf, cand_chrf), (base_len, cand_len), (base_cost, cand_cost),
                                          (base_lat, cand_lat))])
chrf, length, cost, lat = pairs
ci = step("chrF delta CI", lambda: stats.paired_delta_ci(chrf.b, chrf.a, n_resamples=resamples, seed=0))
keep(ci.estimate, ci.low, ci.high, ci.standard_error)
sign = step("sign test (first: imports)", lambda: stats.sign_test(chrf.b, chrf.a)); keep(sign.p_value)
test = step("non-inferiority (t)", lambda: stats.noninferiority_test(chrf.b, chrf.a, margin=1.0)); keep(test.p_value, test.lower_bound)
sliced = pd.DataFrame({"item_id": chrf.item_ids, "baseline": chrf.a, "candidate": chrf.b, "lang": lang})
table = step("slice deltas (5 slices)", lambda: stats.slice_deltas(sliced, ["lang"], n_resamples=resamples, seed=0,
                                                                    include_all=False, min_items=10))
keep(*table[["estimate", "ci_low", "ci_high", "p_value", "p_adjusted"]].to_numpy().ravel())
ci = step("length delta CI", lambda: stats.paired_delta_ci(length.b, length.a, n_resamples=resamples, seed=0))
keep(ci.estimate, ci.low, ci.high); keep(stats.sign_test(length.b, length.a).p_value)
ci = step("cost ratio CI (sum)", lambda: stats.paired_ratio_ci(cost.b, cost.a, statistic="sum", n_resamples=resamples, seed=0))
keep(ci.estimate, ci.low, ci.high)
ci = step("p95 latency ratio CI", lambda: stats.paired_ratio_ci(lat.b, lat.a, statistic="p95", n_resamples=resamples, seed=0))
keep(ci.estimate, ci.low, ci.high, ci.standard_error)
scores = pd.concat([pd.DataFrame({"item_id": ids, "model": m, "metric": metric, "value": v})
                    for metric, a, b in (("chrf", base_chrf, cand_chrf), ("length_chars", base_len, cand_len))
                    for m, v in (("base", a), ("cand", b))])
copies = pd.DataFrame({"item_id": ids * 2, "model": ["base"] * n + ["cand"] * n, "copied_input": rng.random(2 * n) < 0.05})
checks = step("copy checks (2 metrics)", lambda: copy_checks(scores, copies, "base", "cand", n_resamples=resamples, seed=0))
keep(*checks[["delta", "ci_low", "ci_high", "delta_kept", "ci_low_kept", "ci_high_kept"]].to_numpy().ravel())
p = step("proportion CI", lambda: stats.proportion_ci(37, n)); keep(p.low, p.high)
timings["total"] = sum(timings.values())
if hasattr(stats, "paired_bootstraps"):
    requests = {"chrf": stats.delta_request(chrf.b, chrf.a), "length": stats.delta_request(length.b, length.a),
                "cost": stats.ratio_request(cost.b, cost.a, statistic="sum"),
                "latency": stats.ratio_request(lat.b, lat.a, statistic="p95")}
    from workbench.stats import bootstrap
    bootstrap._memo.clear()  # the CIs above are memoised: time the draw, and check against fresh singles
    shared = step("shared: 4 CIs, one draw", lambda: stats.paired_bootstraps(requests, n_resamples=resamples, seed=0))
    bootstrap._memo.clear()
    singles = [stats.paired_delta_ci(chrf.b, chrf.a, n_resamples=resamples, seed=0),
               stats.paired_delta_ci(length.b, length.a, n_resamples=resamples, seed=0),
               stats.paired_ratio_ci(cost.b, cost.a, statistic="sum", n_resamples=resamples, seed=0),
               stats.paired_ratio_ci(lat.b, lat.a, statistic="p95", n_resamples=resamples, seed=0)]
    timings["shared equals singles"] = float(all(a.to_dict() == b.to_dict() for a, b in zip(shared.values(), singles)))
print(json.dumps({"timings": timings, "digest": hashlib.sha256("|".join(numbers).encode()).hexdigest(),
                  "count": len(numbers), "scipy.stats imported": "scipy.stats" in sys.modules}))
'''


def _run(tree: Path, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", WORKLOAD, str(n)], capture_output=True, text=True, env=env,
                          cwd=str(tree), timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"workload failed in {tree}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


CAPTURE = r'''
import pickle, sys
from workbench import cli, pipeline
real = pipeline.compare
def keep(*args, **kwargs):
    with open(sys.argv[1], "wb") as f:
        pickle.dump((args, {**kwargs, "store": None}), f, protocol=5)  # chunked reads pass the evidence: no store
    return real(*args, **kwargs)
pipeline.compare = keep
cli._main(["compare", "--params", "params.toml", "-q"])
'''

COMPARE = r'''
import hashlib, json, pickle, sys, time
from workbench.comparison.compare import compare
args, kwargs = pickle.load(open(sys.argv[1], "rb"))
cpu, wall = time.process_time(), time.perf_counter()
result = compare(*args, **kwargs)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
digest = hashlib.sha256(repr(result.to_dict()).encode())
for name in ("metric_deltas", "win_rates", "judge_reliability", "slices", "behaviour_summary", "cost_latency", "ratios",
             "binary_checks", "copy_checks", "tool_errors"):
    digest.update(getattr(result, name).to_csv().encode())
import workbench
print(json.dumps({"cpu": cpu, "wall": wall, "digest": digest.hexdigest(), "tree": str(workbench.__file__)}))
'''


def _project(args: argparse.Namespace) -> None:
    """compare() on one captured warm compare of the project, per tree (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        captured = Path(tmp) / "compare-args.pickle"
        env = {**os.environ, "PYTHONPATH": str(REPO), "WORKBENCH_TEST_PROVIDERS": "1"}
        proc = subprocess.run([sys.executable, "-c", CAPTURE, str(captured)], cwd=str(args.project), env=env,
                              capture_output=True, text=True, timeout=3600)
        if not captured.exists():
            raise SystemExit(f"workbench compare did not reach compare() in {args.project}:\n{proc.stderr[-3000:]}")
        runs: dict[str, list[dict]] = {"before": [], "now": []}
        for round_ in range(args.rounds):
            order = [("before", args.before), ("now", REPO)]
            for label, tree in (order if round_ % 2 == 0 else order[::-1]):
                out = subprocess.run([sys.executable, "-c", COMPARE, str(captured)], capture_output=True, text=True,
                                     env={**os.environ, "PYTHONPATH": str(tree.resolve())}, cwd=str(tree.resolve()),
                                     timeout=3600)  # cwd: `python -c` puts it first on sys.path
                if out.returncode != 0:
                    raise SystemExit(f"compare() failed in {tree}:\n{out.stderr[-3000:]}")
                runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"compare() of a warm `workbench compare` in {args.project}, medians of {args.rounds} alternating rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    for measure in ("cpu", "wall"):
        b = statistics.median(r[measure] for r in runs["before"])
        a = statistics.median(r[measure] for r in runs["now"])
        each = " / ".join(f"{r[measure]:.2f}" for r in runs["now"])
        low_b, low_a = min(r[measure] for r in runs["before"]), min(r[measure] for r in runs["now"])
        print(f"  {measure:<5} before {b:7.3f} s   now {a:7.3f} s ({each})   {b / a:5.2f}x;   "
              f"fastest run: before {low_b:.3f} s, now {low_a:.3f} s, {low_b / low_a:5.2f}x")
    trees = {label: {r["tree"] for r in rs} for label, rs in runs.items()}
    assert len(trees["before"] | trees["now"]) == 2, f"both trees must be the ones timed: {trees}"
    digests = {r["digest"] for r in runs["before"] + runs["now"]}
    print(f"  every table and the verdict record identical across trees and rounds: {len(digests) == 1}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--project", type=Path, help="time the real compare() of this warm project instead")
    args = parser.parse_args()
    if args.project:
        return _project(args)
    runs: dict[str, list[dict]] = {"before": [], "now": []}
    for round_ in range(args.rounds):
        order = [("before", args.before), ("now", REPO)]
        for label, tree in (order if round_ % 2 == 0 else order[::-1]):
            runs[label].append(_run(tree.resolve(), args.n))
    print(f"{args.n} items x 2 models, 1,000 resamples, CPU seconds, medians of {args.rounds} "
          f"alternating rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    before, now = runs["before"], runs["now"]
    for name in before[0]["timings"]:
        b = statistics.median(r["timings"][name] for r in before)
        a = statistics.median(r["timings"][name] for r in now)
        print(f"  {name:<28} before {b:7.3f} s   now {a:7.3f} s   {b / a if a else float('inf'):6.1f}x")
    for name in ("shared: 4 CIs, one draw",):
        if name in now[0]["timings"]:
            single = sum(statistics.median(r["timings"][k] for r in now) for k in
                         ("chrF delta CI", "length delta CI", "cost ratio CI (sum)", "p95 latency ratio CI"))
            shared = statistics.median(r["timings"][name] for r in now)
            print(f"  the same 4 CIs through paired_bootstraps: {shared:.3f} s against {single:.3f} s one by one "
                  f"({single / shared:.2f}x); equal bit for bit: {bool(now[0]['timings']['shared equals singles'])}")
    digests = {r["digest"] for r in before + now}
    print(f"  numbers ({now[0]['count']}) identical across trees and rounds: {len(digests) == 1}; "
          f"scipy.stats imported before: {before[0]['scipy.stats imported']}, now: {now[0]['scipy.stats imported']}")


if __name__ == "__main__":
    main()
