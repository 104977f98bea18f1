"""The prompt optimizer (issue 12): what it costs beyond the model calls, and the bundled-data run.

    .venv/bin/python bench/bench_optimize.py overhead [--latency 0.2] [--items 64] [--concurrency 8]
    .venv/bin/python bench/bench_optimize.py bundled [--project DIR] [--moves fewshot]

`overhead`: the rule-driven target and optimizer model (tests/optimize/rule_server.py) in a separate
process, answering after `--latency` seconds like an API; a full optimisation (demonstrations, then
GEPA rewrites) on a fresh store, then the same command again on the warm store. Per trial it
compares the trial's whole time with the time spent inside the runner (`model_s`: the cached runner
making or reading the calls); the difference is the optimizer's own work (scoring with the project's
metrics, bootstrap CIs, trial records, GEPA's bookkeeping). Goal: under 5% of the calls' time.

`bundled`: re-tunes SmolLM2-135M-Instruct's `support_chat@v1` on the bundled demo data, CPU only,
32 dev / 32 test items, chrF against the references, and prints dev and test scores of the starting
and the optimised prompt, calls and wall time (the store in --project is reused: a re-run is free).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench.local_server import server_hits, start_server  # noqa: E402
from workbench.optimize import OptimizeConfig, optimize  # noqa: E402
from workbench.optimize.trials import trial_line  # noqa: E402

WORDS = [f"{a} {b}" for a in ("red", "blue", "green", "grey", "gold", "pink", "teal", "navy")
         for b in ("cat", "dog", "owl", "fox", "elk", "bee", "ant", "yak")]


def overhead(args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="bench-optimize-"))
    (folder / "prompts" / "plain").mkdir(parents=True)
    (folder / "prompts" / "plain" / "v1.toml").write_text(
        'description = "plain"\nmode = "chat"\nsystem = "You are a helpful assistant."\nuser = "{input}"\n')
    items = [{"item_id": f"i{i:03d}", "input": w, "reference": w.upper() + ".", "group": "ab"[i % 2]}
             for i, w in enumerate(WORDS[: args.items])]
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    proc, url = start_server("tests/optimize/rule_server.py", "--latency", str(args.latency))
    try:
        config = OptimizeConfig(
            dataset=str(folder / "items.jsonl"), target="openai/rule-target", start_prompt="plain@v1",
            baseline=None, baseline_prompt=None, dev_size=args.items // 2, test_size=args.items // 2,
            strata=["group"], moves=["fewshot", "instructions"], optimizer_model="openai/rule-optimizer",
            api_base=url, store=str(folder / "store.db"), prompts_dir=str(folder / "prompts"),
            project_dir=str(folder), concurrency=args.concurrency, max_calls=2000)
        started = time.perf_counter()
        result = optimize(config, on_trial=lambda row: print(trial_line(row), file=sys.stderr))
        cold_s = time.perf_counter() - started
        hits = server_hits(url)
        started = time.perf_counter()
        warm = optimize(config)
        warm_s = time.perf_counter() - started
        warm_hits = server_hits(url) - hits
    finally:
        proc.terminate()
        proc.wait(10)
    trials = result.trials.merge(_model_seconds(folder / "store.db", result.run_id), on="trial")
    made = trials[trials["calls_made"] > 0]
    per_trial = ((made["wall_s"] - made["model_s"]) / made["model_s"])
    return {
        "latency_s": args.latency, "concurrency": args.concurrency, "dev_items": config.dev_size,
        "trials": int(len(trials)), "calls": result.budget["calls"], "server_hits": hits,
        "status": result.status, "stopped": result.stopped,
        "runner_s": round(float(trials["model_s"].sum()), 3), "trial_wall_s": round(float(trials["wall_s"].sum()), 3),
        "overhead_per_trial_median": round(float(per_trial.median()), 4),
        "overhead_per_trial_max": round(float(per_trial.max()), 4),
        "overhead_total": round(float((trials["wall_s"].sum() - trials["model_s"].sum()) / trials["model_s"].sum()), 4),
        "optimize_wall_s": round(cold_s, 3), "warm_rerun_s": round(warm_s, 3), "warm_rerun_hits": warm_hits,
        "warm_status": warm.status, "load_avg": os.getloadavg()[0],
    }


def _model_seconds(store_path: Path, run_id: str):
    from workbench.store import Store

    with Store(store_path) as store:
        return store.trials_frame(run_id)[["trial", "model_s"]]


def bundled(args: argparse.Namespace) -> dict:
    project = Path(args.project or tempfile.mkdtemp(prefix="bench-optimize-bundled-"))
    project.mkdir(parents=True, exist_ok=True)
    config = OptimizeConfig(target="hf/smollm2-135m-instruct", start_prompt="support_chat@v1", objective="reference",
                            metric="chrf", dev_size=32, test_size=32, moves=args.moves.split(","),
                            optimizer_model=args.optimizer_model, max_demos=2, fewshot_candidates=4,
                            max_calls=args.max_calls, max_tokens=64, timeout_s=3600, project_dir=str(project))
    started, cpu = time.perf_counter(), _cpu()
    result = optimize(config, on_trial=lambda row: print(trial_line(row), file=sys.stderr))
    trials = result.trials
    return {"project": str(project), "status": result.status, "message": result.message, "dev": result.dev,
            "test": result.test, "saved": result.saved, "calls": result.budget["calls"],
            "calls_made": int(trials["calls_made"].sum()), "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(_cpu() - cpu, 1), "trials": json.loads(trials.to_json(orient="records")),
            "stopped": result.stopped, "report_command": result.report_command, "load_avg": os.getloadavg()[0]}


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    over = sub.add_parser("overhead")
    over.add_argument("--latency", type=float, default=0.2)
    over.add_argument("--items", type=int, default=64)
    over.add_argument("--concurrency", type=int, default=8)
    demo = sub.add_parser("bundled")
    demo.add_argument("--project", default=None)
    demo.add_argument("--moves", default="fewshot")
    demo.add_argument("--optimizer-model", default=None)
    demo.add_argument("--max-calls", type=int, default=400)
    args = parser.parse_args()
    print(json.dumps(overhead(args) if args.mode == "overhead" else bundled(args), indent=2, default=str))


if __name__ == "__main__":
    main()
