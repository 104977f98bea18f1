"""Several `workbench generate` processes on one store and one dataset, as users start them (two
terminals, a CI matrix): real processes, real HTTP to the fault server, which counts the requests
of every item. No call is paid twice; a process killed with -9 costs only its calls in flight."""
import json
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.fault_server import FaultServer
from tests.test_cli import _cmd, _data, _env

pytestmark = pytest.mark.slow


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    return {**json.loads(out.strip().splitlines()[-1]), "stderr": err}


def _query(store, sql: str, params=()) -> list:
    conn = sqlite3.connect(store, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created or migrated yet
        return []
    finally:
        conn.close()


@pytest.mark.parametrize("n_procs, concurrency, model", [(2, 4, "litellm/openai/test-model"),
                                                          (4, 2, "openai/test-model")])
def test_processes_on_one_store_request_every_item_once(tmp_path, n_procs, concurrency, model):
    n = 200
    data, store = _data(tmp_path, n), tmp_path / "s.db"
    with FaultServer(latency_s=0.25) as server:  # all together: 200 x 0.25 s / 8 = 6 s, enough to overlap
        procs = [_start(_cmd(data, store, server.url, "--concurrency", str(concurrency), "--debug",  # every item
                             "-p", "sample_size", "null", model=model))  # --debug: a failure's traceback in CI
                 for _ in range(n_procs)]
        summaries = [_finish(p) for p in procs]
        hits = dict(server.hits)
    assert len(hits) == n and set(hits.values()) == {1}, f"requested twice: {[k for k, v in hits.items() if v > 1]}"
    assert sum(s["calls_made"] for s in summaries) == n
    for s in summaries:  # each saw every item: made it, or found it answered by another
        assert s["errors"] == 0 and s["calls_made"] + s["cached"] == n, summaries
        assert f"{model}: {s['calls_made']} calls made, {s['cached']} cached (" in s["stderr"]
        assert "answered by another process meanwhile), 0 errors" in s["stderr"]
    assert all(s["calls_made"] > 0 for s in summaries), f"the processes did not overlap: {summaries}"
    assert _query(store, "SELECT count(*) FROM responses") == [(n,)]
    assert _query(store, "SELECT count(*) FROM claims") == [(0,)]  # every claim released
    print(f"{n_procs} processes, {n} items: {sum(hits.values())} requests, made per process "
          f"{[s['calls_made'] for s in summaries]}")


def test_a_process_killed_mid_run_costs_only_its_calls_in_flight(tmp_path):
    n, concurrency = 120, 4
    data, store = _data(tmp_path, n), tmp_path / "s.db"
    cmd = _cmd(data, store, "", "--concurrency", str(concurrency), "--debug", "-p", "sample_size", "null",
               model="openai/test-model")
    with FaultServer(latency_s=0.3) as server:
        cmd[cmd.index("--api-base") + 1] = server.url
        victim, *others = [_start(cmd) for _ in range(3)]
        deadline, held = time.monotonic() + 60, []
        while time.monotonic() < deadline:  # mid-run: some answers stored, the victim holding calls in flight
            time.sleep(0.05)
            held = _query(store, "SELECT cache_key FROM claims WHERE owner LIKE ?", (f"%/{victim.pid}/%",))
            if held and _query(store, "SELECT count(*) FROM responses")[0][0] >= 20:
                break
        victim.send_signal(signal.SIGSTOP)  # frozen (alive to the others) while its claims are read
        assert held, "the victim never held a call"
        stored_at_kill = _query(store, "SELECT count(*) FROM responses")[0][0]
        in_flight = {item for (item,) in _query(  # claimed by the victim and not answered
            store, "SELECT DISTINCT i.input FROM claims c JOIN run_items r ON r.cache_key = c.cache_key "
                   "JOIN runs u ON u.run_id = r.run_id JOIN items i ON i.dataset_id = u.dataset_id "
                   "AND i.item_id = r.item_id WHERE c.owner LIKE ? "
                   "AND NOT EXISTS (SELECT 1 FROM responses WHERE cache_key = c.cache_key)", (f"%/{victim.pid}/%",))}
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed_at = time.monotonic()
        summaries = [_finish(p) for p in others]
        takeover_s = time.monotonic() - killed_at
        hits = dict(server.hits)
    assert stored_at_kill < n, "the kill came after the end"
    assert len(hits) == n and _query(store, "SELECT count(*) FROM responses") == [(n,)]  # nothing lost
    assert all(s["errors"] == 0 for s in summaries)
    repeated = {item for item, count in hits.items() if count > 1}
    assert repeated <= in_flight, (repeated, in_flight)  # only calls in flight were made again
    assert len(in_flight) <= 2 * concurrency, in_flight  # in flight, or claimed just before (a chunk)
    assert max(hits.values()) <= 2
    assert takeover_s < 25, f"the survivors waited out the lease ({takeover_s:.1f} s) instead of seeing the kill"
    assert _query(store, "SELECT count(*) FROM claims") == [(0,)]
    print(f"killed with {len(in_flight)} in flight, {stored_at_kill} stored; {sum(hits.values())} requests for {n} "
          f"items, repeated {len(repeated)}; survivors finished {takeover_s:.1f} s after the kill")
