"""The local OpenAI-compatible test servers the benchmarks call: real HTTP on 127.0.0.1, each in its
own process so it does not share the client's GIL, and the count of requests it answered."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_server(script: str = "tests/fault_server.py", *args: str) -> tuple[subprocess.Popen, str]:
    """Start `script` (a tests/ server printing its base URL) and return (process, URL)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / script), *args], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"{script} did not start")
    return proc, url


def server_hits(url: str) -> int:
    """Requests the server has answered so far (cheap to poll: the total only)."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/_control/stats?total=1", timeout=10) as resp:
        return int(json.load(resp)["total_hits"])
