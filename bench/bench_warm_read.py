"""The warm read path of `workbench compare`, stage by stage, against the code before this round in one run.

    .venv/bin/python bench/bench_warm_read.py --project DIR [--before /tmp/wb-start] [--rounds 2] [--chunk 5000]

DIR is a warm project (`bench/bench_compare_warm.py --keep DIR` writes one, and its warm compare keeps
every score): it is copied to a temporary folder first, so nothing in it changes. Each code tree (this
one, and `--before`: a checkout of the code before this round) runs in its own process, as the compare
does, the steps that find, read and describe the answers, each timed (CPU seconds of the process, which
a shared machine's load inflates less than wall seconds, and wall seconds):
* load_items: the dataset file, read and validated;
* dataset_id: the items' content hash;
* preflight: every request rendered and its cache key computed, for both models;
* generate: the stored answers read (cache only, no call);
* score_responses: every score read from the store (0 computed);
* behaviour_diff: every answer's description read from the store (0 measured);
* the same three steps (preflight, score_responses, behaviour_diff) per chunk of `--chunk` items, as a
  streaming pipeline calls them, to show what a call costs beyond its items.
The results of every step (request keys, scores, behaviour table) must be equal between the trees.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(project: Path, chunk: int) -> None:
    """Run in the tree under test (PYTHONPATH): one JSON line of {step: [cpu_s, wall_s]} and digests."""
    os.chdir(project)
    import pandas as pd

    from workbench import store as stores
    from workbench.generation.runner import generate, preflight
    from workbench.metrics import behaviour_diff, score_responses, with_app_metrics
    from workbench.models import Sampling
    from workbench.task.config import build_config
    from workbench.task.dataset import dataset_id, load_items

    config = build_config(project / "params.toml", {})
    specs = [config.model_spec(model, prompt) for model, prompt in config.arms()]
    sampling = Sampling(temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed)
    times: dict[str, list[float]] = {}
    digests: dict[str, str] = {}

    def timed(step: str, fn, *args, **kwargs):
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn(*args, **kwargs)
        spent = [time.process_time() - cpu, time.perf_counter() - wall]
        times[step] = [a + b for a, b in zip(times.get(step, [0.0, 0.0]), spent)]
        return out

    def digest(frame: pd.DataFrame) -> str:
        return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()[:16]

    items = timed("load_items", load_items, config.path(config.dataset))
    digests["dataset_id"] = timed("dataset_id", dataset_id, items)
    prepared = timed("preflight", preflight, items, specs, sampling=sampling, prompts_dir=config.prompts_path)
    digests["request_keys"] = hashlib.sha256("".join(c.cache_key for *_, planned in prepared
                                                     for c in planned).encode()).hexdigest()[:16]
    with stores.open_store(config.store_path, create=False, read_only=True) as store:
        responses, _stats = timed("generate", generate, items, specs, store, sampling=sampling, progress=False,
                                  cache_only=True, prepared=prepared)
        metrics = with_app_metrics(config.metrics, items)
        scores = timed("score_responses", score_responses, items, responses, metrics, store=store)
        digests["scores"] = digest(scores)
        arms = list(dict.fromkeys(responses["model"]))
        cols = ["item_id", "sample_index", "response", "tool_calls"]
        base = responses[responses["model"] == arms[0]][cols].dropna(subset=["response"])
        cand = responses[responses["model"] == arms[1]][cols].dropna(subset=["response"])
        diff = timed("behaviour_diff", behaviour_diff, items, base, cand, store=store)
        digests["behaviour"] = digest(diff)
        for start in range(0, len(items), chunk):
            part = items.iloc[start:start + chunk]
            ids = set(part["item_id"])
            timed(f"preflight per {chunk}", preflight, part, specs, sampling=sampling,
                  prompts_dir=config.prompts_path)
            timed(f"score_responses per {chunk}", score_responses, part,
                  responses[responses["item_id"].isin(ids)], metrics, store=store)
            timed(f"behaviour_diff per {chunk}", behaviour_diff, part, base[base["item_id"].isin(ids)],
                  cand[cand["item_id"].isin(ids)], store=store)
    print(json.dumps({"times": times, "digests": digests}))


def _run(tree: Path, project: Path, chunk: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "WORKBENCH_TEST_PROVIDERS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--project", str(project),
                          "--chunk", str(chunk)], env=env, capture_output=True, text=True, cwd=project)
    if out.returncode:
        raise SystemExit(f"{tree}: exited {out.returncode}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", required=True, help="a warm project (bench_compare_warm.py --keep DIR)")
    parser.add_argument("--before", default="/tmp/wb-start", help="a checkout of the code before this round")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each tree, alternating")
    parser.add_argument("--chunk", type=int, default=5000, help="items per call in the per-chunk steps")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.project), args.chunk)
        return
    with tempfile.TemporaryDirectory(prefix="bench-warm-read-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(args.project, project)
        trees = {"before": Path(args.before), "this": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        print(f"project {args.project}; load average {os.getloadavg()[0]:.2f}")
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(_run(tree, project, args.chunk))
        steps = list(runs["this"][0]["times"])
        print(f"{'step':<28}{'before CPU s':>13}{'this CPU s':>12}{'ratio':>8}{'before wall':>13}{'this wall':>11}")
        for step in steps:
            before = [statistics.median(r["times"][step][k] for r in runs["before"]) for k in (0, 1)]
            this = [statistics.median(r["times"][step][k] for r in runs["this"]) for k in (0, 1)]
            print(f"{step:<28}{before[0]:>13.2f}{this[0]:>12.2f}{this[0] / before[0]:>7.2f}x"
                  f"{before[1]:>13.2f}{this[1]:>11.2f}")
        whole = [k for k in steps if " per " not in k]
        total = {name: statistics.median(sum(r["times"][k][0] for k in whole) for r in rs) for name, rs in runs.items()}
        print(f"{'total (whole steps)':<28}{total['before']:>13.2f}{total['this']:>12.2f}"
              f"{total['this'] / total['before']:>7.2f}x   load average now {os.getloadavg()[0]:.2f}")
        digests = {json.dumps(r["digests"], sort_keys=True) for rs in runs.values() for r in rs}
        print(f"results identical (request keys, dataset id, scores, behaviour table): {len(digests) == 1}")
        if len(digests) != 1:
            raise SystemExit(f"results differ: {digests}")


if __name__ == "__main__":
    main()
