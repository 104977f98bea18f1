"""The same API job through the workbench and its peers, side by side in one run: 512 chat calls,
32 in flight, against one local OpenAI-compatible server (tests/fault_server.py, its own process,
200 ms per answer), the same prompts, max_tokens and temperature.

    .venv/bin/python bench/bench_peers.py [--rounds 2] [--promptfoo PATH] [--inspect PATH]

Clients, each as its own command in a fresh process, timed whole (start-up, imports, writing its
results included), one after another and in a rotated order every round:
- `workbench generate --model openai/...`   (the openai SDK alone) into a fresh store;
- `workbench generate --model litellm/...`  (litellm) into a fresh store;
- promptfoo `eval --no-cache -j C`          (npm package; its results database in a temp folder);
- inspect_ai `inspect eval --max-connections C` (its own virtual environment; logs in a temp folder);
- with `--before DIR`, the two workbench commands again from another checkout (before/after a change).
CPU is the command's user + system time (its child processes included: the steadier number on a
shared machine). The span is read at the server: from the first request's arrival to the last answer sent, on one
clock for every client; ideal = N x latency / C. A peer that is not installed is reported as
skipped with the line that installs it (see docs/benchmarks.md), not as a failure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_server import start_server  # noqa: E402

MODEL = "bench-model"
PROMPTFOO_INSTALL = ("mkdir -p /work/peers/promptfoo && cd /work/peers/promptfoo && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "
                     "npm install --no-audit --no-fund --ignore-scripts promptfoo@0.118.17 && "
                     "npm rebuild better-sqlite3 --build-from-source --nodedir=/usr")
INSPECT_INSTALL = ("python3 -m venv /work/peers/inspect/venv && "
                   "/work/peers/inspect/venv/bin/pip install inspect_ai==0.3.285 openai")
DEFAULT_PROMPTFOO = Path("/work/peers/promptfoo/node_modules/.bin/promptfoo")
DEFAULT_INSPECT = Path("/work/peers/inspect/venv/bin/inspect")

INSPECT_TASK = '''
import json
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.solver import generate


@task
def bench():
    rows = [json.loads(line) for line in open("items.jsonl", encoding="utf-8")]
    return Task(dataset=[Sample(id=row["item_id"], input=row["input"]) for row in rows], solver=generate())
'''


@dataclass
class Client:
    name: str
    version: str | None  # None: not installed
    install: str = ""
    walls: list[float] = field(default_factory=list)
    spans: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)  # user + system seconds of the command and its children
    problems: list[str] = field(default_factory=list)


def control(url: str, path: str, body: dict | None = None) -> dict:
    base = url.removesuffix("/v1")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def write_inputs(folder: Path, n: int, max_tokens: int, concurrency: int, url: str) -> None:
    """The same items for every client: a JSONL file (workbench, inspect_ai) and a CSV (promptfoo)."""
    rows = [{"item_id": f"q{k:04d}", "input": f"Question {k}: in one short sentence, what is {k} plus {k}?"}
            for k in range(n)]
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "tests.csv").write_text("input\n" + "".join(f'"{r["input"]}"\n' for r in rows), encoding="utf-8")
    (folder / "promptfooconfig.yaml").write_text(
        "description: bench_peers\n"
        "prompts: ['{{input}}']\n"
        f"providers:\n  - id: openai:chat:{MODEL}\n    config:\n      apiBaseUrl: {url}\n"
        f"      apiKey: sk-bench-not-a-real-key\n      temperature: 0\n      max_tokens: {max_tokens}\n"
        "tests: file://tests.csv\n", encoding="utf-8")
    (folder / "task.py").write_text(INSPECT_TASK, encoding="utf-8")


def commands(client: str, folder: Path, run: str, args: argparse.Namespace, url: str) -> tuple[list[str], dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-bench-not-a-real-key"}
    if client.startswith("before"):  # the same command on another checkout of the workbench (--before)
        env["PYTHONPATH"] = str(args.before)
    if client.startswith(("workbench", "before")):
        model = f"openai/{MODEL}" if client.endswith("openai/") else f"litellm/openai/{MODEL}"
        return [sys.executable, "-m", "workbench.cli", "generate", str(folder / "items.jsonl"), "--model", model,
                "--api-base", url, "--concurrency", str(args.concurrency), "--max-tokens", str(args.max_tokens),
                "--store", str(folder / f"{run}.db"), "--quiet"], env
    if client == "promptfoo":
        env.update(PROMPTFOO_DISABLE_TELEMETRY="1", PROMPTFOO_DISABLE_UPDATE="1",
                   PROMPTFOO_CONFIG_DIR=str(folder / f"{run}-promptfoo"))
        return [str(args.promptfoo), "eval", "-c", "promptfooconfig.yaml", "--no-cache", "-j", str(args.concurrency),
                "--no-progress-bar", "--no-table"], env
    env.update(LOCAL_API_KEY="sk-bench-not-a-real-key", LOCAL_BASE_URL=url, INSPECT_LOG_DIR=str(folder / f"{run}-logs"))
    return [str(args.inspect), "eval", "task.py", "--model", f"openai-api/local/{MODEL}", "--max-connections",
            str(args.concurrency), "--max-tokens", str(args.max_tokens), "--temperature", "0",
            "--display", "none"], env


def versions(args: argparse.Namespace) -> dict[str, Client]:
    def package(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    from workbench.project import package_version

    wb = f"workbench {package_version()}"
    clients = {"workbench openai/": Client("workbench openai/", f"{wb}, openai {package('openai')}"),
               "workbench litellm/": Client("workbench litellm/", f"{wb}, litellm {package('litellm')}")}
    if args.before is not None:
        for name in ("openai/", "litellm/"):
            clients[f"before {name}"] = Client(f"before {name}", f"workbench at {args.before}")
    promptfoo = None
    if args.promptfoo.exists():
        proc = subprocess.run([str(args.promptfoo), "--version"], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1"})
        promptfoo = f"promptfoo {proc.stdout.strip().splitlines()[-1]}" if proc.returncode == 0 and proc.stdout.strip() else None
    clients["promptfoo"] = Client("promptfoo", promptfoo, PROMPTFOO_INSTALL)
    inspect = None
    python = args.inspect.parent / "python"
    if args.inspect.exists() and python.exists():
        proc = subprocess.run([str(python), "-c", "from importlib.metadata import version as v; "
                               "print(f\"inspect_ai {v('inspect_ai')}, openai {v('openai')}\")"],
                              capture_output=True, text=True, timeout=60)
        inspect = proc.stdout.strip() if proc.returncode == 0 else None
    clients["inspect_ai"] = Client("inspect_ai", inspect, INSPECT_INSTALL)
    return clients


def run_one(client: Client, folder: Path, run: str, args: argparse.Namespace, url: str) -> str:
    """One whole command of `client`; its wall time and span are added, or the failure; returns a line."""
    cmd, env = commands(client.name, folder, run, args, url)
    control(url, "/_control/script", {"reset": True})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=folder, timeout=args.timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stats = control(url, "/_control/stats?total=1")
    if proc.returncode != 0 or stats["total_hits"] != args.n:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        client.problems.append(f"{run}: exit {proc.returncode}, {stats['total_hits']} of {args.n} requests; "
                               + " | ".join(tail))
        return f"failed ({client.problems[-1]})"
    client.walls.append(wall)
    client.spans.append(stats["span_s"])
    client.cpus.append(cpu)
    return f"wall {wall:.2f} s, span {stats['span_s']:.2f} s, CPU {cpu:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="every client once per round, order rotated")
    parser.add_argument("--promptfoo", type=Path, default=DEFAULT_PROMPTFOO, help="the promptfoo executable")
    parser.add_argument("--inspect", type=Path, default=DEFAULT_INSPECT, help="inspect_ai's `inspect` executable")
    parser.add_argument("--only", nargs="+", default=None, help="client names to run (default: all)")
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="another checkout of the workbench (e.g. `git archive <rev> | tar -x -C DIR`): its "
                             "openai/ and litellm/ commands join the run as 'before openai/' and 'before litellm/'")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    clients = versions(args)
    chosen = [c for c in clients.values() if args.only is None or c.name in args.only]
    runnable = [c for c in chosen if c.version is not None]
    proc, url = start_server("tests/fault_server.py", "--latency", str(args.latency), "--no-record")
    folder = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        write_inputs(folder, args.n, args.max_tokens, args.concurrency, url)
        load = []
        for round_ in range(args.rounds):
            order = runnable[round_ % len(runnable):] + runnable[:round_ % len(runnable)] if runnable else []
            for client in order:
                load.append(os.getloadavg()[0])
                line = run_one(client, folder, f"r{round_}-{client.name.replace(' ', '-').replace('/', '')}", args, url)
                print(f"  round {round_ + 1}: {client.name}: {line}", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)

    ideal = args.n * args.latency / args.concurrency
    base = {name: statistics.median(clients[name].walls) if clients[name].walls else None
            for name in ("workbench openai/", "workbench litellm/")}
    base_span = statistics.median(clients["workbench openai/"].spans) if clients["workbench openai/"].spans else None
    print(f"\nN={args.n} C={args.concurrency} latency={args.latency}s ideal={ideal:.2f}s rounds={args.rounds} "
          f"(median per client; load average {min(load, default=0):.1f}-{max(load, default=0):.1f} at the starts)")
    print(f"{'client':<20} {'version':<36} {'span/ideal':>10} {'wall s':>7} {'span vs wb openai/':>18} "
          f"{'wall vs wb openai/':>18} {'wall vs wb litellm/':>19} {'CPU s':>6}  runs (wall s)")
    for client in chosen:
        if client.version is None:
            print(f"{client.name:<20} skipped: not installed; install with: {client.install}")
            continue
        if not client.walls:
            print(f"{client.name:<20} {client.version:<36} failed: {client.problems[-1]}")
            continue
        wall, span = statistics.median(client.walls), statistics.median(client.spans)
        ratio = lambda value, reference: f"{value / reference:.2f}x" if reference else "-"  # noqa: E731
        print(f"{client.name:<20} {client.version:<36} {span / ideal:>10.2f} {wall:>7.2f} "
              f"{ratio(span, base_span):>18} {ratio(wall, base['workbench openai/']):>18} "
              f"{ratio(wall, base['workbench litellm/']):>19} {statistics.median(client.cpus):>6.2f}  "
              f"{[round(w, 2) for w in client.walls]}")
        for problem in client.problems:
            print(f"{'':<20} failed run: {problem}")


if __name__ == "__main__":
    main()
