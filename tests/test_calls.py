"""The call layer end to end: real HTTP through each API adapter (litellm, the bare openai SDK)
to a scripted fault server, plus the retry arithmetic and the batch path for local
(non-concurrent) adapters."""
from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ holds fault_server.py
from fault_server import (FaultServer, fault_server, hang, malformed, rate_limited,  # noqa: E402,F401
                          server_error, status)

from workbench.generation.calls import CallCounts, CallPolicy, PlannedCall, execute, run_sync  # noqa: E402
from workbench.errors import ModelCallError  # noqa: E402
from workbench.hashing import request_key  # noqa: E402
from workbench.models import get_model  # noqa: E402
from workbench.models.base import Adapter, Outcome, Request, Response, Sampling  # noqa: E402
from workbench.models.fake_adapter import FakeAdapter, FakeOptions  # noqa: E402
from workbench.generation.retry import RetryPolicy  # noqa: E402
from workbench.store import Store  # noqa: E402

FAST = dict(backoff_base_s=0.01, backoff_max_s=0.05)  # keep retry waits short in tests


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "store.sqlite") as s:
        yield s


@pytest.fixture(params=["litellm/openai", "openai"])
def adapter_for(request: pytest.FixtureRequest) -> Callable[[FaultServer], Adapter]:
    """Every call-layer guarantee holds for both HTTP adapters: litellm and the bare openai SDK."""
    return lambda server: get_model(f"{request.param}/fault-model", api_base=server.url)


def plan(adapter: Adapter, *item_ids: str, sampling: Sampling | None = None) -> list[PlannedCall]:
    calls = []
    for item_id in item_ids:
        request = Request(item_id=item_id, messages=({"role": "user", "content": item_id},),
                          sampling=sampling or Sampling(max_tokens=32))
        calls.append(PlannedCall(request_key(adapter.identity(), request.payload()), request))
    return calls


def errors_of(store: Store) -> list[tuple]:
    return store.execute("SELECT item_id, kind, message, attempts FROM call_errors ORDER BY error_id").fetchall()


# ---- retry arithmetic ----------------------------------------------------------------------------
def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=0.5, max_delay_s=4.0)
    assert [policy.backoff_cap(a) for a in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(3, rand=lambda: 0.0) == 0.0  # full jitter reaches down to zero
    assert policy.delay(3, rand=lambda: 0.5) == 1.0
    rng = random.Random(7)
    waits = [policy.delay(3, rand=rng.random) for _ in range(2000)]
    assert 0.0 <= min(waits) < 0.05 and 1.95 < max(waits) <= 2.0  # spread over [0, cap]


def test_retry_after_is_a_floor_but_never_beyond_max_delay() -> None:
    policy = RetryPolicy(base_s=0.5, max_delay_s=4.0)
    assert policy.delay(1, retry_after=3.0, rand=lambda: 0.9) == 3.0
    assert policy.delay(3, retry_after=0.1, rand=lambda: 0.9) == pytest.approx(1.8)  # backoff larger
    assert policy.delay(1, retry_after=60.0, rand=lambda: 0.9) == 4.0


def test_next_delay_gives_up_on_kind_attempts_and_budget() -> None:
    policy = RetryPolicy(max_attempts=3, base_s=1.0, max_delay_s=8.0, budget_s=10.0)
    half = lambda: 0.5  # noqa: E731
    for kind in ("rate_limit", "server", "timeout", "connection"):
        assert policy.next_delay(kind, 1, 0.0, rand=half) == 0.5
    for kind in ("auth", "bad_request", "bad_output", "unavailable"):
        assert policy.next_delay(kind, 1, 0.0, rand=half) is None
    assert policy.next_delay("server", 2, 0.0, rand=half) == 1.0
    assert policy.next_delay("server", 3, 0.0, rand=half) is None  # third attempt was the last
    assert policy.next_delay("server", 1, 9.6, rand=half) is None  # wait would end past the budget
    assert policy.next_delay("rate_limit", 1, 0.0, retry_after=20.0, rand=half) == 8.0


def test_call_policy_rejects_unknown_fields_and_maps_to_retry_policy() -> None:
    with pytest.raises(Exception):
        CallPolicy(concurency=3)
    retry = CallPolicy(max_attempts=2, backoff_base_s=0.1, backoff_max_s=1, budget_s=5).retry_policy()
    assert retry == RetryPolicy(max_attempts=2, base_s=0.1, max_delay_s=1.0, budget_s=5.0)


# ---- execute through litellm against the fault server -------------------------------------------
def test_success_is_stored_with_tokens_latency_and_unknown_cost(fault_server, store, api_key, adapter_for) -> None:
    fault_server.latency_s = 0.05
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "hello world")
    out = run_sync(execute(adapter, calls, store, CallPolicy()))
    response = out[calls[0].cache_key]
    assert isinstance(response, Response)
    assert response.text == "echo: hello world"
    assert (response.prompt_tokens, response.completion_tokens) == (2, 3)
    assert response.cost_usd is None  # no price known for this model: None, never 0
    assert response.model_version == fault_server.model_version
    assert 0.05 <= response.latency_s < 2.0
    row = store.execute("SELECT model, request_json, text, latency_s, cost_usd FROM responses").fetchone()
    assert row[0] == adapter.name and row[2] == "echo: hello world"
    assert '"api_base"' in row[1] and '"hello world"' in row[1] and row[4] is None
    assert row[3] == pytest.approx(response.latency_s)


def test_second_execute_is_served_from_the_store(fault_server, store, api_key, adapter_for) -> None:
    adapter = adapter_for(fault_server)
    calls = plan(adapter, *[f"q{i}" for i in range(5)])
    first = run_sync(execute(adapter, calls, store))
    assert fault_server.total_hits() == 5
    second = run_sync(execute(adapter, calls, store))
    assert fault_server.total_hits() == 5  # zero calls
    assert second == first


def test_duplicate_keys_are_called_once(fault_server, store, api_key, adapter_for) -> None:
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "same", "same", "other")
    out = run_sync(execute(adapter, calls, store))
    assert len(out) == 2 and fault_server.hits["same"] == 1


def test_rate_limit_waits_at_least_retry_after_then_succeeds(fault_server, store, api_key, adapter_for) -> None:
    fault_server.script("busy", rate_limited(retry_after=0.6))
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "busy")
    start = time.monotonic()
    out = run_sync(execute(adapter, calls, store, CallPolicy(backoff_base_s=0.01, backoff_max_s=5)))
    elapsed = time.monotonic() - start
    assert isinstance(out[calls[0].cache_key], Response)
    assert fault_server.hits["busy"] == 2
    # at least Retry-After (backoff alone would wait <= 0.01 s); the upper bound is 10x the expected wait
    assert 0.6 <= elapsed < 6.0


def test_persistent_rate_limit_hits_exactly_max_attempts(fault_server, store, api_key, adapter_for) -> None:
    fault_server.always("busy", rate_limited(retry_after=0.01))
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "busy")
    out = run_sync(execute(adapter, calls, store, CallPolicy(max_attempts=3, **FAST)))
    error = out[calls[0].cache_key]
    assert isinstance(error, ModelCallError) and error.kind == "rate_limit"
    assert fault_server.hits["busy"] == 3  # no hidden SDK retries underneath ours
    assert [(e[0], e[1], e[3]) for e in errors_of(store)] == [("busy", "rate_limit", 3)]
    assert store.execute("SELECT count(*) FROM responses").fetchone()[0] == 0


def test_server_error_then_success(fault_server, store, api_key, adapter_for) -> None:
    fault_server.script("flaky", server_error(500))
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "flaky")
    out = run_sync(execute(adapter, calls, store, CallPolicy(**FAST)))
    assert out[calls[0].cache_key].text == "echo: flaky"
    assert fault_server.hits["flaky"] == 2 and errors_of(store) == []


def test_malformed_json_is_a_retryable_server_error(fault_server, store, api_key, adapter_for) -> None:
    fault_server.script("garbled", malformed())
    fault_server.always("broken", malformed())
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "garbled", "broken")
    out = run_sync(execute(adapter, calls, store, CallPolicy(max_attempts=2, **FAST)))
    assert out[calls[0].cache_key].text == "echo: garbled"
    error = out[calls[1].cache_key]
    assert isinstance(error, ModelCallError) and error.kind == "server" and "malformed" in str(error)
    assert fault_server.hits == {"garbled": 2, "broken": 2}


def test_never_answering_connection_ends_within_timeout(fault_server, store, api_key, adapter_for) -> None:
    fault_server.always("silent", hang())
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "silent")
    start = time.monotonic()
    out = run_sync(execute(adapter, calls, store, CallPolicy(timeout_s=1.0, max_attempts=1)))
    elapsed = time.monotonic() - start
    assert out[calls[0].cache_key].kind == "timeout"
    assert 1.0 <= elapsed < 10.0  # the timeout, and not forever (10x margin on a loaded machine)


def test_budget_bounds_a_call_across_retries(fault_server, store, api_key, adapter_for) -> None:
    fault_server.always("silent", hang())
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "silent")
    start = time.monotonic()
    out = run_sync(execute(adapter, calls, store, CallPolicy(timeout_s=0.6, max_attempts=50, budget_s=1.5, **FAST)))
    elapsed = time.monotonic() - start
    assert out[calls[0].cache_key].kind == "timeout"
    # the budget stops it: 50 attempts of 0.6 s would take 30 s; 10x the 1.5 s budget is 15 s
    assert elapsed < 15.0 and 2 <= fault_server.hits["silent"] <= 3


def test_auth_error_is_not_retried(fault_server, store, api_key, adapter_for) -> None:
    fault_server.always("denied", status(401))
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "denied")
    out = run_sync(execute(adapter, calls, store, CallPolicy(**FAST)))
    assert out[calls[0].cache_key].kind == "auth"
    assert fault_server.hits["denied"] == 1
    assert [(e[1], e[3]) for e in errors_of(store)] == [("auth", 1)]


def test_concurrency_bound_is_respected_and_used(fault_server, store, api_key, adapter_for) -> None:
    fault_server.latency_s = 0.1
    adapter = adapter_for(fault_server)
    calls = plan(adapter, *[f"c{i}" for i in range(24)])
    out = run_sync(execute(adapter, calls, store, CallPolicy(concurrency=4)))
    assert all(isinstance(o, Response) for o in out.values())
    assert fault_server.max_in_flight == 4


def test_errors_are_not_cached(fault_server, store, api_key, adapter_for) -> None:
    fault_server.script("later", server_error(500))
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "later")
    first = run_sync(execute(adapter, calls, store, CallPolicy(max_attempts=1)))
    assert first[calls[0].cache_key].kind == "server"
    second = run_sync(execute(adapter, calls, store, CallPolicy(max_attempts=1)))
    assert second[calls[0].cache_key].text == "echo: later"
    assert fault_server.hits["later"] == 2
    assert len(errors_of(store)) == 1


def test_api_key_never_reaches_stored_errors(fault_server, store, api_key, adapter_for) -> None:
    from fault_server import Fault

    fault_server.always("leaky", Fault("status", status=400, echo_auth=True))
    fault_server.always("leaky-500", Fault("status", status=500, echo_auth=True))
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "leaky", "leaky-500")
    out = run_sync(execute(adapter, calls, store, CallPolicy(max_attempts=2, **FAST)))
    assert any(h.get("authorization") == f"Bearer {api_key}" for h in fault_server.headers)
    stored = errors_of(store)
    assert len(stored) == 2 and all("credentials sent" in e[2] for e in stored)  # the server did echo it
    for outcome in out.values():
        assert api_key not in str(outcome)
    dump = "\n".join(line for line in store.conn.iterdump())
    assert api_key not in dump and "SECRET123" not in dump


def test_cancel_keeps_finished_calls_and_stores_nothing_in_flight(fault_server, store, api_key, adapter_for) -> None:
    fault_server.always("stuck", hang())
    adapter = adapter_for(fault_server)
    calls = plan(adapter, "quick", "stuck")

    async def run_then_cancel() -> None:
        task = asyncio.create_task(execute(adapter, calls, store, CallPolicy(timeout_s=30)))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if store.cached_keys([calls[0].cache_key]):
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_sync(run_then_cancel())  # on the same loop as the other litellm tests
    assert store.cached_keys([c.cache_key for c in calls]) == {calls[0].cache_key}
    assert errors_of(store) == []
    assert store.claim_holders([c.cache_key for c in calls]) == {}  # another process need not wait out a lease


def test_progress_reports_done_errors_and_cost(fault_server, store, api_key) -> None:
    fault_server.always("bad", status(400))
    adapter = get_model("litellm/openai/fault-model", api_base=fault_server.url,
                        input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    calls = plan(adapter, "one two", "bad")
    seen: list[tuple[int, int, float]] = []

    class Recorder:
        def update(self, n_done: int, n_errors: int, cost_usd: float) -> None:
            seen.append((n_done, n_errors, cost_usd))

    run_sync(execute(adapter, calls, store, CallPolicy(), progress=Recorder()))
    assert seen[0] == (0, 0, 0.0) and seen[-1][:2] == (2, 1)
    assert seen[-1][2] == pytest.approx(2 * 1e-6 + 3 * 2e-6)  # 2 prompt words, "echo: one two" 3
    seen.clear()
    run_sync(execute(adapter, calls, store, CallPolicy(max_attempts=1), progress=Recorder()))
    assert seen[0] == (1, 0, 0.0)  # the cached call counts as done, and costs nothing now


# ---- generic behaviour with in-process adapters --------------------------------------------------
class BatchRecorder(FakeAdapter):
    """A local-model-like adapter: batches, never concurrent; records batches and overlap."""

    concurrent = False

    def __init__(self, batch: int):
        super().__init__("batchy", FakeOptions(batch=batch, latency_s=0.01))
        self.batches: list[list[str]] = []
        self.active = self.max_active = 0

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.batches.append([r.item_id for r in requests])
        try:
            return await super().generate(requests, timeout_s)
        finally:
            self.active -= 1


def test_non_concurrent_adapter_gets_length_sorted_batches_one_at_a_time(store) -> None:
    adapter = BatchRecorder(batch=3)
    texts = ["a" * n for n in (5, 1, 9, 3, 7, 2, 8)]
    calls = plan(adapter, *texts)
    out = run_sync(execute(adapter, calls, store, CallPolicy(concurrency=8)))
    assert all(isinstance(o, Response) for o in out.values())
    assert adapter.max_active == 1
    assert [[len(t) for t in b] for b in adapter.batches] == [[9, 8, 7], [5, 3, 2], [1]]


def test_adapter_that_raises_or_miscounts_becomes_item_errors(store) -> None:
    class Broken(FakeAdapter):
        async def generate(self, requests, timeout_s):
            if requests[0].item_id == "raise":
                raise RuntimeError("adapter bug")
            return []

    adapter = Broken("broken", FakeOptions())
    calls = plan(adapter, "raise", "short")
    out = run_sync(execute(adapter, calls, store, CallPolicy(**FAST)))
    assert out[calls[0].cache_key].kind == "unavailable" and "adapter bug" in str(out[calls[0].cache_key])
    assert out[calls[1].cache_key].kind == "bad_output"
    assert len(errors_of(store)) == 2


def test_retried_items_do_not_hold_a_concurrency_slot(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions(latency_s=0.05, fail_items=("fails",), fail_kind="server"))
    calls = plan(adapter, "fails", *[f"ok{i}" for i in range(4)])
    start = time.monotonic()
    out = run_sync(execute(adapter, calls, store, CallPolicy(concurrency=1, max_attempts=3,
                                                             backoff_base_s=0.15, backoff_max_s=0.15)))
    assert out[calls[0].cache_key].kind == "server"
    # With one slot, fresh items are called while "fails" waits out its 0.15 s backoff: its retry is not
    # the next call. (Seconds would only say so on a quiet machine: 7 calls of 0.05 s vs 0.65 s.)
    order = [r.item_id for r in adapter.calls]
    assert len(order) == 7 and order.count("fails") == 3 and order[:2] == ["fails", "ok0"]
    assert time.monotonic() - start < 10 * 0.65


def test_retries_jump_the_queue_of_fresh_calls(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions(latency_s=0.02, fail_items=("fails",)))
    calls = plan(adapter, "fails", *[f"ok{i}" for i in range(10)])
    run_sync(execute(adapter, calls, store, CallPolicy(concurrency=1, max_attempts=3, backoff_base_s=0.001,
                                                       backoff_max_s=0.001)))
    order = [r.item_id for r in adapter.calls]
    assert [i for i, item in enumerate(order) if item == "fails"] == [0, 2, 4]  # not behind ok9


def test_budget_spent_waiting_for_a_slot_gives_up_with_the_last_error(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions(latency_s=0.2, fail_items=("fails",)))
    calls = plan(adapter, "fails", "ok")
    out = run_sync(execute(adapter, calls, store, CallPolicy(concurrency=1, budget_s=0.25, backoff_base_s=0.01,
                                                             backoff_max_s=0.01)))
    assert out[calls[0].cache_key].kind == "server"
    assert [r.item_id for r in adapter.calls] == ["fails", "ok"]
    assert [(e[1], e[3]) for e in errors_of(store)] == [("server", 1)]


def test_the_adapter_is_told_the_time_left_not_the_full_timeout(store) -> None:
    """An adapter that watches its own deadline (hf/) must stop before the call layer's timeout:
    it gets what is left of the call's budget when that is shorter than timeout_s."""
    class Deadlines(FakeAdapter):
        def __init__(self) -> None:
            super().__init__("deadlines", FakeOptions(fail_items=("fails",), fail_kind="server"))
            self.told: list[float] = []

        async def generate(self, requests, timeout_s):
            self.told.append(timeout_s)
            await asyncio.sleep(0.05)
            return await super().generate(requests, timeout_s)

    adapter = Deadlines()
    calls = plan(adapter, "fails")
    run_sync(execute(adapter, calls, store, CallPolicy(timeout_s=60, budget_s=2.0, max_attempts=3,
                                                       backoff_base_s=0.01, backoff_max_s=0.01)))
    assert len(adapter.told) == 3
    assert adapter.told[0] <= 2.0  # the budget, not the 60 s timeout
    assert adapter.told[1] < adapter.told[0] - 0.04 and adapter.told[2] < adapter.told[1] - 0.04  # what is left
    run_sync(execute(adapter, plan(adapter, "ok"), store, CallPolicy(timeout_s=1.5)))
    assert adapter.told[-1] == 1.5  # the timeout, when it is the shorter of the two


def test_without_keeping_responses_answers_stay_in_the_store_and_failures_come_back(store) -> None:
    """Large runs: execute returns only the failed keys, so nothing per answer stays in memory."""
    adapter = FakeAdapter("fake", FakeOptions(fail_items=("bad",), fail_kind="auth"))
    calls = plan(adapter, "bad", *[f"ok{i}" for i in range(20)])
    counts = CallCounts()
    out = run_sync(execute(adapter, calls, store, CallPolicy(**FAST), counts=counts, keep_responses=False))
    assert list(out) == [calls[0].cache_key] and out[calls[0].cache_key].kind == "auth"
    assert counts.made == 21 and store.cached_keys([c.cache_key for c in calls]) == {c.cache_key for c in calls[1:]}
    adapter.calls.clear()
    again = CallCounts()
    out = run_sync(execute(adapter, calls, store, CallPolicy(**FAST), counts=again, keep_responses=False))
    assert list(out) == [calls[0].cache_key]  # errors are never cached: the failed call was made again
    assert again.cached == 20 and again.made == 1 and [r.item_id for r in adapter.calls] == ["bad"]
    full = run_sync(execute(adapter, calls[1:], store))
    assert all(isinstance(o, Response) for o in full.values()) and len(full) == 20  # default: every outcome


def test_a_failing_store_stops_execute_with_its_error(tmp_path) -> None:
    import sqlite3

    class FullDisk(Store):
        def put_response(self, *args, **kwargs) -> None:
            raise sqlite3.OperationalError("database or disk is full")

    adapter = FakeAdapter("fake", FakeOptions(latency_s=0.01))
    calls = plan(adapter, *[f"q{i}" for i in range(20)])
    with FullDisk(tmp_path / "full.sqlite") as store:
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            run_sync(execute(adapter, calls, store, CallPolicy(concurrency=2)))
    assert len(adapter.calls) < 20  # it stopped calling instead of answering into the void


# ---- claims: a call another process is making is not made here -----------------------------------
ELSEWHERE = "another-host/pid:[1]/4242/abc"  # an owner whose liveness this machine cannot judge: the lease decides
CLAIMS = dict(lease_s=30, poll_s=0.02)


def _settle_later(store: Store, delay: float, write) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        write()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_call_claimed_elsewhere_is_waited_for_and_served_from_the_store(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions())
    calls = plan(adapter, "theirs", "mine")
    assert store.claim_calls([calls[0].cache_key], ELSEWHERE, 30, time.time()) == {calls[0].cache_key}

    def answer() -> None:
        store.put_response(calls[0].cache_key, "fake", {}, Response(text="from elsewhere", cost_usd=1.0))
        store.release_claims(ELSEWHERE)

    writer = _settle_later(store, 0.3, answer)
    counts, seen = CallCounts(), []

    class Recorder:
        def update(self, n_done: int, n_errors: int, cost_usd: float) -> None:
            seen.append(cost_usd)

    out = run_sync(execute(adapter, calls, store, CallPolicy(**CLAIMS), Recorder(), counts))
    writer.join()
    assert [r.item_id for r in adapter.calls] == ["mine"]
    assert out[calls[0].cache_key].text == "from elsewhere"
    assert counts == CallCounts(made=1, answered_elsewhere=1) and seen[-1] == 0.0  # not paid here


def test_a_call_given_up_elsewhere_returns_that_error_and_is_not_made_again(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions())
    calls = plan(adapter, "theirs")
    key = calls[0].cache_key
    store.claim_calls([key], ELSEWHERE, 30, time.time())

    def give_up() -> None:
        store.record_error(key, "fake", "theirs", 0, "auth", "auth: OPENAI_API_KEY is not set", 1)
        store.release_claims(ELSEWHERE)

    writer = _settle_later(store, 0.2, give_up)
    counts = CallCounts()
    out = run_sync(execute(adapter, calls, store, CallPolicy(**CLAIMS), counts=counts))
    writer.join()
    assert adapter.calls == [] and counts == CallCounts(failed_elsewhere=1)
    assert out[key].kind == "auth" and str(out[key]) == "auth: OPENAI_API_KEY is not set"
    assert len(errors_of(store)) == 1  # recorded once, by the process that gave up


def test_an_error_from_before_this_run_is_retried(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions())
    calls = plan(adapter, "failed yesterday")
    store.record_error(calls[0].cache_key, "fake", "failed yesterday", 0, "server", "server: 500", 4)
    out = run_sync(execute(adapter, calls, store, CallPolicy(**CLAIMS)))
    assert isinstance(out[calls[0].cache_key], Response) and len(adapter.calls) == 1


def test_an_expired_claim_is_taken_over(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions())
    calls = plan(adapter, "abandoned")
    start = time.monotonic()  # before the claim: the wait below is at least the lease, however slow the machine
    store.claim_calls([calls[0].cache_key], ELSEWHERE, 0.4, time.time())  # its owner is never heard of again
    counts = CallCounts()
    out = run_sync(execute(adapter, calls, store, CallPolicy(**CLAIMS), counts=counts))
    assert isinstance(out[calls[0].cache_key], Response) and len(adapter.calls) == 1
    assert 0.35 < time.monotonic() - start < 10 * 0.4 and counts == CallCounts(made=1)
    assert store.claim_holders([calls[0].cache_key]) == {}


def test_a_claim_of_a_gone_process_on_this_machine_is_taken_over_at_once(store) -> None:
    import subprocess

    from workbench.generation import calls as calls_module

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # gone and reaped: its pid runs no more
    owner = calls_module._owner().rsplit("/", 2)[0] + f"/{child.pid}/feed"
    adapter = FakeAdapter("fake", FakeOptions())
    calls = plan(adapter, "orphan")
    store.claim_calls([calls[0].cache_key], owner, 30, time.time())
    start = time.monotonic()
    out = run_sync(execute(adapter, calls, store, CallPolicy(**CLAIMS)))
    assert isinstance(out[calls[0].cache_key], Response) and time.monotonic() - start < 3  # not 30 s


def test_a_live_call_keeps_its_claim_past_the_lease(store) -> None:
    # a 1 s lease renewed every 1/3 s: only a stall of a whole second could lose it (a 0.3 s lease
    # raced the machine's load)
    adapter = FakeAdapter("fake", FakeOptions(latency_s=3.0))
    calls = plan(adapter, "slow")
    key = calls[0].cache_key
    other = Store(store.path)

    async def race() -> set:
        task = asyncio.create_task(execute(adapter, calls, store, CallPolicy(lease_s=1.0, poll_s=0.02)))
        await asyncio.sleep(2.2)  # two leases later: renewed by the heartbeat, so still ours
        stolen = await asyncio.to_thread(other.claim_calls, [key], ELSEWHERE, 30, time.time())
        await task
        return stolen

    try:
        assert run_sync(race()) == set()
    finally:
        other.close()
    assert len(adapter.calls) == 1 and store.claim_holders([key]) == {}


def test_calls_refused_before_sending_are_counted_apart(store) -> None:
    class NoKey(FakeAdapter):
        async def generate(self, requests, timeout_s):
            self.calls.extend(requests)
            return [ModelCallError("auth", "OPENAI_API_KEY is not set", sent=False) if r.item_id != "sent"
                    else ModelCallError("auth", "401 from the server") for r in requests]

    adapter = NoKey("nokey", FakeOptions())
    counts = CallCounts()
    out = run_sync(execute(adapter, plan(adapter, "a", "b", "sent"), store, CallPolicy(**FAST), counts=counts))
    assert counts == CallCounts(not_sent=2, made=1) and len(adapter.calls) == 3  # auth: never retried
    assert all(o.kind == "auth" for o in out.values())


def test_refusals_before_sending_are_classified_as_not_sent() -> None:
    import litellm
    import openai

    from workbench.models.api_errors import classify

    try:  # what litellm raises for a missing OpenAI key: the SDK's refusal, wrapped as a "500"
        try:
            raise openai.OpenAIError("Missing credentials. Please pass an `api_key`, or set the `OPENAI_API_KEY` "
                                     "environment variable.")
        except openai.OpenAIError as root:
            raise litellm.InternalServerError(message="OpenAIException - Missing credentials", llm_provider="openai",
                                              model="gpt-4o-mini") from root
    except Exception as wrapped:  # noqa: BLE001
        missing_key = classify(wrapped)
    assert (missing_key.kind, missing_key.sent, str(missing_key)) == ("auth", False, "auth: OPENAI_API_KEY is not set")
    unsupported = classify(litellm.UnsupportedParamsError(message="anthropic does not support parameters: ['seed']",
                                                          llm_provider="anthropic", model="claude"))
    assert (unsupported.kind, unsupported.sent) == ("bad_request", False)
    server = classify(litellm.InternalServerError(message="boom", llm_provider="openai", model="x"))
    assert (server.kind, server.sent) == ("server", True)


def test_run_sync_works_inside_a_running_loop(store) -> None:
    adapter = FakeAdapter("fake", FakeOptions())
    calls = plan(adapter, "x")

    async def notebook_cell() -> dict:
        return run_sync(execute(adapter, calls, store))  # as a Jupyter cell would call it

    out = asyncio.run(notebook_cell())
    assert out[calls[0].cache_key].text == "fake: x"


def test_run_sync_reuses_one_loop_and_refuses_to_deadlock() -> None:
    async def current_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    first = run_sync(current_loop())
    assert run_sync(current_loop()) is first  # litellm's HTTP sessions stay valid between calls

    async def nested() -> None:
        run_sync(current_loop())

    with pytest.raises(RuntimeError, match="await"):
        run_sync(nested())


def test_run_sync_propagates_exceptions_from_the_thread() -> None:
    async def boom() -> None:
        raise ValueError("from the coroutine")

    async def inside_loop() -> None:
        run_sync(boom())

    with pytest.raises(ValueError, match="from the coroutine"):
        asyncio.run(inside_loop())


def test_run_sync_interrupt_in_a_notebook_cancels_the_work() -> None:
    import _thread
    import signal
    import threading

    # a kernel handles SIGINT; a test run started as a background job has it ignored (tests/interrupts.py)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    cancelled = threading.Event()

    async def long_call() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def cell() -> None:
        threading.Timer(0.3, _thread.interrupt_main).start()  # what a kernel interrupt does
        run_sync(long_call())

    loop = asyncio.new_event_loop()  # like Jupyter's: no asyncio SIGINT handler installed
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
    finally:
        loop.close()
        signal.signal(signal.SIGINT, previous)
    assert cancelled.is_set() and time.monotonic() - start < 5
