"""The prompt optimizer (issue 12): what it costs beyond the model calls, and the bundled-data run.

    .venv/bin/python bench/bench_optimize.py overhead [--latency 0.2] [--items 64] [--concurrency 8]
    .venv/bin/python bench/bench_optimize.py bundled [--project DIR] [--moves fewshot]
    .venv/bin/python bench/bench_optimize.py load-once [--items 8] [--candidates 4] [--max-tokens 16] [--repeats 1]

`overhead`: the rule-driven target and optimizer model (tests/optimize/rule_server.py) in a separate
process, answering after `--latency` seconds like an API; a full optimisation (demonstrations, then
GEPA rewrites) on a fresh store, then the same command again on the warm store. Per trial it
compares the trial's whole time with the time spent inside the runner (`model_s`: the cached runner
making or reading the calls); the difference is the optimizer's own work (scoring with the project's
metrics, bootstrap CIs, trial records, GEPA's bookkeeping). Goal: under 5% of the calls' time.

`bundled`: re-tunes SmolLM2-135M-Instruct's `support_chat@v1` on the bundled demo data, CPU only,
32 dev / 32 test items, chrF against the references, and prints dev and test scores of the starting
and the optimised prompt, calls and wall time (the store in --project is reused: a re-run is free).

`load-once` (issue 25): the same optimisation of an hf/ target (`--model`; demonstrations, `--items` dev
and test items each, greedy `--max-tokens` answers, a fresh store each time) run twice in one
process: as before, the hf/ model unloaded whenever a run's adapter closes (so every trial's run
loads it again), and as now, loaded once for the process. Prints both wall times, the loads counted
at `from_pretrained` and the ratio; the answers of both must be identical.
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


def load_once(args: argparse.Namespace) -> dict:
    from transformers import AutoModelForCausalLM

    from workbench.models import release_local_models
    from workbench.models.hf_adapter import HFAdapter
    from workbench.store import Store

    real_load, loads = AutoModelForCausalLM.from_pretrained, []

    def timed_load(*a, **kw):
        started = time.perf_counter()
        model = real_load(*a, **kw)
        loads.append(time.perf_counter() - started)
        return model

    AutoModelForCausalLM.from_pretrained = timed_load
    close = HFAdapter.aclose

    async def close_and_unload(self):  # the behaviour before issue 25: a closed adapter unloads its model
        await close(self)
        release_local_models()

    items = [{"item_id": f"i{i:03d}", "input": w, "reference": w.upper() + ".", "group": "ab"[i % 2]}
             for i, w in enumerate(WORDS[: 2 * args.items])]
    rows, answers = [], {}
    # A first, unmeasured run pays the imports (metrics, GEPA, the store) and fills the disk cache,
    # then the modes alternate which goes first.
    plan = [(-1, "warm-up")] + [(r, m) for r in range(args.repeats)
                                for m in (("reload per run", "load once") if r % 2 == 0 else ("load once", "reload per run"))]
    for repeat, mode in plan:
        HFAdapter.aclose = close_and_unload if mode == "reload per run" else close
        release_local_models()
        loads.clear()
        folder = Path(tempfile.mkdtemp(prefix="bench-load-once-"))
        (folder / "prompts" / "plain").mkdir(parents=True)
        (folder / "prompts" / "plain" / "v1.toml").write_text(
            'description = "plain"\nmode = "chat"\nsystem = "Answer in capitals."\nuser = "{input}"\n')
        (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
        config = OptimizeConfig(
            dataset=str(folder / "items.jsonl"), target=args.model, start_prompt="plain@v1",
            objective="reference", metric="chrf", baseline=None, baseline_prompt=None, dev_size=args.items,
            test_size=args.items, strata=["group"], moves=["fewshot"], max_demos=1,
            fewshot_candidates=args.candidates, max_tokens=args.max_tokens, max_calls=2000, timeout_s=3600,
            store=str(folder / "store.db"), prompts_dir=str(folder / "prompts"), project_dir=str(folder))
        started, cpu = time.perf_counter(), _cpu()
        result = optimize(config)
        wall = time.perf_counter() - started
        if mode == "warm-up":
            continue
        with Store(folder / "store.db") as store:
            answers.setdefault(mode, []).append(
                store.frame("SELECT cache_key, text FROM responses ORDER BY cache_key").values.tolist())
        trials = result.trials
        rows.append({"repeat": repeat, "mode": mode, "wall_s": round(wall, 2), "cpu_s": round(_cpu() - cpu, 2),
                     "loads": len(loads), "load_s": round(sum(loads), 2), "trials": int(len(trials)),
                     "runs_with_calls": int((trials["calls_made"] > 0).sum()),
                     "calls": int(trials["calls_made"].sum()), "load_avg": round(os.getloadavg()[0], 2)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    HFAdapter.aclose = close
    AutoModelForCausalLM.from_pretrained = real_load
    before = [r["wall_s"] for r in rows if r["mode"] == "reload per run"]
    now = [r["wall_s"] for r in rows if r["mode"] == "load once"]
    return {"runs": rows, "identical_answers": answers["reload per run"] == answers["load once"],
            "ratio_before_over_now": [round(b / n, 2) for b, n in zip(before, now)],
            "cpu_ratio_before_over_now": [round(b["cpu_s"] / n["cpu_s"], 2) for b, n in zip(
                [r for r in rows if r["mode"] == "reload per run"], [r for r in rows if r["mode"] == "load once"])],
            "dev_items": args.items, "test_items": args.items, "max_tokens": args.max_tokens,
            "fewshot_candidates": args.candidates, "model": args.model}


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
    once = sub.add_parser("load-once")
    once.add_argument("--items", type=int, default=8, help="dev items, and as many test items")
    once.add_argument("--candidates", type=int, default=4, help="demonstration sets tried")
    once.add_argument("--max-tokens", type=int, default=16)
    once.add_argument("--repeats", type=int, default=1)
    once.add_argument("--model", default="hf/smollm2-135m-instruct", help="the hf/ target")
    args = parser.parse_args()
    run = {"overhead": overhead, "bundled": bundled, "load-once": load_once}[args.mode]
    print(json.dumps(run(args), indent=2, default=str))


if __name__ == "__main__":
    main()
