"""Throughput of one model spread over several deployments (`litellm/` + `deployments`, litellm's
Router) against one deployment of the same model, through the real call layer (`calls.execute`
with a store), measured in the same run.

Each deployment is a replica process (tests/fault_server.py behind a fixed number of slots:
`--slots` calls answered at once, `--latency` s each, the rest queue), so one replica answers at
most slots/latency calls per second. Setups, each run `--rounds` times in alternating order
(the machine is shared) on fresh items:
  one deployment       `litellm/` with `api_base` (the baseline of every ratio)
  router, 1 replica    the same replica through the Router (its own overhead)
  router, 3 replicas   three equal replicas (ideal: 3x)
  router, 3 mixed      one replica, one 4x slower, one answering every call with 500
                       (ideal: 1.25x once the failing one cools down; every item answered)

    .venv/bin/python bench/bench_router.py [--n 400] [--slots 4] [--latency 0.1] [--rounds 2]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key-000000")

MODEL = "openai/bench-model"


# ---- the replica process ------------------------------------------------------------------------
def serve(slots: int, latency: float, fail_status: int | None) -> None:
    """Run one replica until killed; prints its base URL."""
    import threading

    from aiohttp import web
    from fault_server import FaultServer

    class Replica(FaultServer):
        def __init__(self) -> None:
            super().__init__(latency_s=latency, record_bodies=False)
            self._slots: asyncio.Semaphore | None = None

        async def _chat(self, request: web.Request) -> web.StreamResponse:
            if fail_status is not None:
                with self._lock:
                    self.hits["failed"] += 1
                return web.json_response({"error": {"message": "injected", "type": "server_error"}},
                                         status=fail_status)
            if self._slots is None:
                self._slots = asyncio.Semaphore(slots)
            async with self._slots:
                return await super()._chat(request)

    server = Replica().start()
    print(server.url, flush=True)
    threading.Event().wait()


def start_replica(slots: int, latency: float, fail_status: int | None = None) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, __file__, "--serve", str(slots), str(latency)]
    if fail_status is not None:
        command += ["--fail-status", str(fail_status)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip() if proc.stdout else ""
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("replica did not start")
    return proc, url


def hits(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/_control/stats", timeout=10) as resp:
        return json.load(resp)["total_hits"]


# ---- the client -----------------------------------------------------------------------------------
async def run_setup(adapter, n: int, tag: str, store, concurrency: int) -> tuple[float, int, float]:
    """Seconds for n fresh items, items answered, and client CPU seconds per item."""
    from workbench.generation.calls import CallPolicy, PlannedCall, execute
    from workbench.hashing import request_key
    from workbench.models.base import Request, Response, Sampling

    calls = []
    for i in range(n):
        request = Request(f"{tag}-{i}", messages=({"role": "user", "content": f"{tag} item {i}"},),
                          sampling=Sampling(max_tokens=16))
        calls.append(PlannedCall(request_key(adapter.identity(), request.payload()), request))
    policy = CallPolicy(concurrency=concurrency, timeout_s=30, max_attempts=6, backoff_base_s=0.05, backoff_max_s=0.5)
    await adapter.prepare()
    cpu, started = time.process_time(), time.perf_counter()
    outcomes = await execute(adapter, calls, store, policy)
    elapsed = time.perf_counter() - started
    answered = sum(isinstance(o, Response) for o in outcomes.values())
    return elapsed, answered, (time.process_time() - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="items per setup and round")
    parser.add_argument("--slots", type=int, default=4, help="calls a replica answers at once")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per call of a replica")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", nargs=2, metavar=("SLOTS", "LATENCY"), help=argparse.SUPPRESS)
    parser.add_argument("--fail-status", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), float(args.serve[1]), args.fail_status)
        return

    import workbench  # noqa: F401  (offline defaults before litellm is imported)
    from workbench.models import get_model
    from workbench.store import Store

    procs, urls = [], {}
    for name, latency, fail in (("a", args.latency, None), ("b", args.latency, None), ("c", args.latency, None),
                                ("slow", 4 * args.latency, None), ("failing", args.latency, 500)):
        proc, urls[name] = start_replica(args.slots, latency, fail)
        procs.append(proc)
    one_rate = args.slots / args.latency
    concurrency = 6 * args.slots  # enough calls in flight to keep three replicas busy
    setups = {
        "one deployment": lambda: get_model(f"litellm/{MODEL}", api_base=urls["a"]),
        "router, 1 replica": lambda: get_model(f"litellm/{MODEL}", deployments=[{"api_base": urls["a"]}]),
        "router, 3 replicas": lambda: get_model(f"litellm/{MODEL}", deployments=[
            {"api_base": urls[k]} for k in ("a", "b", "c")]),
        "router, 3 mixed": lambda: get_model(f"litellm/{MODEL}", deployments=[
            {"api_base": urls[k]} for k in ("a", "slow", "failing")], cooldown_s=600),
    }
    ideal = {"one deployment": 1.0, "router, 1 replica": 1.0, "router, 3 replicas": 3.0, "router, 3 mixed": 1.25}
    results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in setups}
    loads = [os.getloadavg()[0]]
    print(f"replicas: {args.slots} slots x {args.latency:g} s = {one_rate:.0f} calls/s each (slow one: "
          f"{one_rate / 4:.0f}/s); {args.n} items per setup, {concurrency} in flight, {args.rounds} rounds", flush=True)
    async def run_all(store) -> None:  # one event loop for every setup, as in a notebook session
        for r in range(args.rounds):
            order = list(setups) if r % 2 == 0 else list(reversed(setups))
            for name in order:
                adapter = setups[name]()  # a fresh Router each round: cooldowns start over
                result = await run_setup(adapter, args.n, f"{name}-{r}", store, concurrency)
                await adapter.aclose()
                results[name].append(result)
                loads.append(os.getloadavg()[0])
                print(f"round {r + 1}: {name:<20} {args.n / result[0]:7.1f} items/s, {result[1]}/{args.n} "
                      f"answered, {result[2] * 1000:.1f} ms client CPU per item; load {loads[-1]:.1f}", flush=True)

    try:
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
            asyncio.run(run_all(store))
            failing_hits = hits(urls["failing"])
    finally:
        for proc in procs:
            proc.kill()
    base = sum(args.n for _ in results["one deployment"]) / sum(r[0] for r in results["one deployment"])
    print(f"\n{'setup':<22}{'items/s':>9}{'ratio':>8}{'ideal':>7}  answered  client CPU/item")
    for name, runs in results.items():
        rate = args.n * len(runs) / sum(r[0] for r in runs)
        cpu = sum(r[2] for r in runs) / len(runs) * 1000
        print(f"{name:<22}{rate:>9.1f}{rate / base:>7.2f}x{ideal[name]:>6.2f}x  "
              f"{sum(r[1] for r in runs)}/{args.n * len(runs)}  {cpu:.1f} ms")
    print(f"failing replica: {failing_hits} calls in {args.rounds} rounds (each round's fresh Router sends it "
          f"a few before its cooldown)")
    print(f"load average during the run: {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs (shared machine)")


if __name__ == "__main__":
    main()
