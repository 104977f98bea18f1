"""How close `calls.execute` comes to the ideal wall time N*L/C with each HTTP adapter, next to
the bare client it wraps under an `asyncio.Semaphore`, measured in the same run against the fault
server (a separate process, so it does not share our GIL), then a warm re-run served from the store.

    .venv/bin/python bench/bench_api_concurrency.py [--n 512] [--latency 0.2] [--reps 3]

Four clients alternate in each repetition and the median is reported, since the machine is shared:
bare `litellm.acompletion`, `execute` + `litellm/`, the bare openai SDK, `execute` + `openai/`.
Goals: ratio <= 1.10 at C=8, <= 1.25 at C=32, execute within 5% of its bare client, warm re-run < 2 s.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key-000000")
os.environ["WORKBENCH_TEST_PROVIDERS"] = "1"  # the fake/ adapter measures the call layer's own cost

import workbench  # noqa: E402,F401  (offline defaults before litellm is imported)
from bench.local_server import server_hits, start_server  # noqa: E402
from workbench.generation.calls import CallPolicy, PlannedCall, execute  # noqa: E402
from workbench.hashing import request_key  # noqa: E402
from workbench.models import get_model  # noqa: E402
from workbench.models.base import Request, Sampling  # noqa: E402
from workbench.store import Store  # noqa: E402

MODEL = "openai/bench-model"  # `openai/` adapter name and litellm model name alike; unpriced, as most local servers


def requests_for(n: int, tag: str) -> list[Request]:
    return [Request(item_id=f"{tag}-{i}", messages=({"role": "user", "content": f"{tag} item {i}"},),
                    sampling=Sampling(max_tokens=16)) for i in range(n)]


async def timed_under_semaphore(call, requests: list[Request], concurrency: int) -> float:
    """Wall time of `call` over every request, at most `concurrency` at once: the bare-client baseline."""
    sem = asyncio.Semaphore(concurrency)

    async def one(request: Request) -> None:
        async with sem:
            await call(request)

    start = time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    return time.perf_counter() - start


async def run_bare(url: str, requests: list[Request], concurrency: int, timeout_s: float) -> float:
    import litellm

    def call(request: Request):
        return litellm.acompletion(model=MODEL, messages=[dict(m) for m in request.messages], api_base=url,
                                   temperature=request.sampling.temperature, max_tokens=request.sampling.max_tokens,
                                   timeout=timeout_s, num_retries=0, max_retries=0)

    return await timed_under_semaphore(call, requests, concurrency)


async def run_raw_openai(client, requests: list[Request], concurrency: int, timeout_s: float) -> float:
    """The openai SDK alone: the bare client under `openai/`."""
    def call(request: Request):
        return client.chat.completions.create(model=MODEL.split("/", 1)[1], timeout=timeout_s,
                                              messages=[dict(m) for m in request.messages],
                                              temperature=request.sampling.temperature,
                                              max_tokens=request.sampling.max_tokens)

    return await timed_under_semaphore(call, requests, concurrency)


async def run_execute(adapter, calls: list[PlannedCall], store: Store, policy: CallPolicy) -> tuple[float, dict]:
    start = time.perf_counter()
    out = await execute(adapter, calls, store, policy)
    return time.perf_counter() - start, out


def plan(adapter, requests: list[Request]) -> list[PlannedCall]:
    identity = adapter.identity()
    return [PlannedCall(request_key(identity, r.payload()), r) for r in requests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    asyncio.run(amain(parser.parse_args()))  # one loop throughout, as run_sync gives a notebook


async def amain(args: argparse.Namespace) -> None:
    proc, url = start_server("tests/fault_server.py", "--latency", str(args.latency), "--no-record")
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        adapters = {"litellm": get_model(f"litellm/{MODEL}", api_base=url),
                    "openai": get_model(MODEL, api_base=url)}
        import openai

        raw_client = openai.AsyncOpenAI(base_url=url, api_key=os.environ["OPENAI_API_KEY"], max_retries=0)
        bare = {"litellm": lambda requests, c: run_bare(url, requests, c, 60),
                "openai": lambda requests, c: run_raw_openai(raw_client, requests, c, 60)}
        # Warm-up: imports and client caches, for every path, outside every timing.
        warm_store = Store(tmp / "warmup.sqlite")
        for name, adapter in adapters.items():
            await bare[name](requests_for(16, f"warm-bare-{name}"), 8)
            await run_execute(adapter, plan(adapter, requests_for(16, f"warm-exec-{name}")), warm_store, CallPolicy())
        warm_store.close()

        print(f"N={args.n} latency={args.latency}s reps={args.reps} (median of alternating runs)")
        print(f"{'C':>4} {'client':>8} {'ideal s':>8} {'bare s':>7} {'bare ratio':>10} {'exec s':>7} "
              f"{'exec ratio':>10} {'exec/bare':>9} {'cpu ms/call bare':>16} {'exec':>6}")
        last = None
        for concurrency in args.concurrency:
            ideal = args.n * args.latency / concurrency
            policy = CallPolicy(concurrency=concurrency, timeout_s=60)
            times: dict[tuple[str, str], list[float]] = {}
            cpu: dict[tuple[str, str], list[float]] = {}
            for rep in range(args.reps):
                requests = requests_for(args.n, f"c{concurrency}r{rep}")
                for name, adapter in adapters.items():
                    c0 = time.process_time()
                    times.setdefault((name, "bare"), []).append(await bare[name](requests, concurrency))
                    cpu.setdefault((name, "bare"), []).append((time.process_time() - c0) / args.n * 1000)
                    store_path = tmp / f"c{concurrency}-r{rep}-{name}.sqlite"
                    store = Store(store_path)
                    calls = plan(adapter, requests)
                    c0 = time.process_time()
                    wall, out = await run_execute(adapter, calls, store, policy)
                    cpu.setdefault((name, "exec"), []).append((time.process_time() - c0) / args.n * 1000)
                    times.setdefault((name, "exec"), []).append(wall)
                    failed = sum(1 for o in out.values() if not hasattr(o, "text"))
                    if failed:
                        print(f"  warning: {failed} failed calls in execute run ({name}, C={concurrency}, rep {rep})")
                    store.close()
                    last = (adapter, store_path, calls)
            for name in adapters:
                b, e = statistics.median(times[(name, "bare")]), statistics.median(times[(name, "exec")])
                print(f"{concurrency:>4} {name:>8} {ideal:>8.2f} {b:>7.2f} {b / ideal:>10.3f} {e:>7.2f} "
                      f"{e / ideal:>10.3f} {e / b:>9.3f} {statistics.median(cpu[(name, 'bare')]):>16.2f} "
                      f"{statistics.median(cpu[(name, 'exec')]):>6.2f}")
                print(f"     runs: bare {[round(x / ideal, 3) for x in times[(name, 'bare')]]} "
                      f"execute {[round(x / ideal, 3) for x in times[(name, 'exec')]]}")

        # The call layer's own cost, without HTTP: a zero-latency in-process fake adapter.
        fake = get_model("fake/overhead")
        fake_calls = plan(fake, requests_for(5000, "fake"))
        store = Store(tmp / "fake.sqlite")
        c0, t0 = time.process_time(), time.perf_counter()
        await execute(fake, fake_calls, store, CallPolicy(concurrency=32))
        cpu_us = (time.process_time() - c0) / len(fake_calls) * 1e6
        wall_us = (time.perf_counter() - t0) / len(fake_calls) * 1e6
        store.close()
        print(f"execute's own overhead (fake adapter, 5000 calls, store write included): "
              f"{cpu_us:.0f} us CPU, {wall_us:.0f} us wall per call")

        # Warm re-run: the same calls against the filled store make zero requests.
        assert last is not None
        adapter, store_path, calls = last
        hits_before = server_hits(url)
        start = time.perf_counter()
        store = Store(store_path)
        out = await execute(adapter, calls, store, CallPolicy())
        warm = time.perf_counter() - start
        store.close()
        made = server_hits(url) - hits_before
        print(f"warm re-run of {len(calls)} {adapter.name} calls (store opened inside the timing): {warm:.3f} s, "
              f"{made} requests made, {len(out)} outcomes")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
