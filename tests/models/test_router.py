"""`litellm/` with several deployments of one model: litellm's Router against real local servers.

Servers are tests/fault_server.py's, each with a fixed capacity (calls answered at once; the rest
wait in its queue), so "throughput of a deployment" means what it means for a real replica. Hits
are counted server-side; nothing is mocked.
"""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds fault_server.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # and tests/models/ asking.py
from asking import ask  # noqa: E402
from fault_server import FaultServer, hang, server_error  # noqa: E402

from workbench.generation.calls import CallPolicy, PlannedCall, execute  # noqa: E402
from workbench.errors import InputError, ModelCallError  # noqa: E402
from workbench.hashing import request_key  # noqa: E402
from workbench.models import Request, Response, Sampling, get_model  # noqa: E402

MODEL = "litellm/openai/fault-model"
pytestmark = pytest.mark.usefixtures("api_key")


class Replica(FaultServer):
    """A fault server that answers at most `capacity` calls at once, like a replica with a fixed
    number of slots, and remembers when each call arrived (time.time())."""

    def __init__(self, capacity: int = 4, latency_s: float = 0.0):
        super().__init__(latency_s=latency_s, record_bodies=True)
        self.capacity = capacity
        self.arrivals: list[float] = []
        self._slots: asyncio.Semaphore | None = None

    async def _chat(self, request: Any) -> Any:
        self.arrivals.append(time.time())
        if self._slots is None:  # created on the server's own loop
            self._slots = asyncio.Semaphore(self.capacity)
        async with self._slots:
            return await super()._chat(request)

    @property
    def per_second(self) -> float:
        """What this replica can answer per second when kept busy."""
        return self.capacity / self.latency_s


@pytest.fixture
def replicas():
    started: list[Replica] = []

    def start(capacity: int = 4, latency_s: float = 0.0) -> Replica:
        server = Replica(capacity, latency_s).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def routed(*servers: FaultServer, **options: Any):
    return get_model(MODEL, deployments=[{"api_base": s.url} for s in servers], **options)


def plan(adapter, n: int, prefix: str = "item") -> list[PlannedCall]:
    calls = []
    for i in range(n):
        request = Request(f"{prefix} {i}", messages=({"role": "user", "content": f"{prefix} {i}"},),
                          sampling=Sampling(max_tokens=16))
        calls.append(PlannedCall(request_key(adapter.identity(), request.payload()), request))
    return calls


# ---- options and identity ----------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    ({"deployments": []}, "at least 1 item"),
    ({"deployments": [{"api_base": "10.0.0.1:8000"}]}, "http"),
    ({"deployments": [{"api_base": "https://user:sk-live-123@host/v1"}]}, "without credentials"),
    ({"deployments": [{"api_base": "https://host/v1?key=sk-live-123"}]}, "without credentials"),
    ({"deployments": [{"api_base": "http://a/v1", "region": "eu"}]}, "region"),
    ({"deployments": [{"api_base": "http://a/v1", "api_key_env": "sk-live-123"}]}, "NAME of an environment"),
    ({"deployments": [{"api_base": "http://a/v1", "rpm": 0}]}, "rpm"),
    ({"deployments": [{"api_base": "http://a/v1"}, {"api_base": "http://a/v1/"}]}, r"deployments\[1\] repeats"),
    ({"deployments": [{"api_base": "http://a/v1"}], "api_base": "http://b/v1"}, "exclude each other"),
    ({"deployments": [{"api_base": "http://a/v1"}], "routing_strategy": "round-robin"}, "routing_strategy"),
    ({"cooldown_s": 5}, "cooldown_s applies only with deployments"),
    ({"allowed_fails": 1, "routing_strategy": "least-busy"}, "apply only with deployments"),
])
def test_router_options_are_strict(options, message) -> None:
    with pytest.raises(InputError, match=message) as raised:
        get_model(MODEL, **options)
    assert "sk-live-123" not in str(raised.value)  # a pasted key is never repeated


def test_cache_key_names_the_model_not_the_deployment() -> None:
    two = get_model(MODEL, deployments=[{"api_base": "http://10.0.0.1:8000/v1"}, {"api_base": "http://10.0.0.2:8000/v1"}])
    three = get_model(MODEL, deployments=[{"api_base": "http://10.0.0.3:8000/v1", "rpm": 100, "api_key_env": "K3"},
                                          {"api_base": "http://10.0.0.1:8000/v1"}, {"api_base": "http://10.0.0.2:8000/v1"}],
                      routing_strategy="simple-shuffle", cooldown_s=5)
    single = get_model(MODEL, api_base="http://10.0.0.1:8000/v1")
    other = get_model("litellm/openai/other-model", deployments=[{"api_base": "http://10.0.0.1:8000/v1"}])
    request = Request("q", messages=({"role": "user", "content": "hi"},), sampling=Sampling(max_tokens=8))
    key = {name: request_key(a.identity(), request.payload())
           for name, a in {"two": two, "three": three, "single": single, "other": other}.items()}
    assert two.identity() == {"provider": "litellm", "model": "openai/fault-model", "routed": True}
    assert key["two"] == key["three"]  # replicas, limits and routing never change an answer
    assert len({key["two"], key["single"], key["other"]}) == 3
    sampled = Request("q", messages=request.messages, sampling=Sampling(max_tokens=8, temperature=0.7))
    assert request_key(two.identity(), sampled.payload()) != key["two"]


def test_each_deployment_sends_its_own_key(replicas, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = replicas(latency_s=0.01), replicas(latency_s=0.01)
    monkeypatch.setenv("REPLICA_KEY_1", "sk-one-111111111111")
    monkeypatch.setenv("DEFAULT_KEY", "sk-default-22222222")
    adapter = get_model(MODEL, api_key_env="DEFAULT_KEY", routing_strategy="simple-shuffle",
                        deployments=[{"api_base": first.url, "api_key_env": "REPLICA_KEY_1"}, {"api_base": second.url}])
    for i in range(12):
        assert isinstance(ask(adapter, f"q{i}"), Response)
    assert first.total_hits() and second.total_hits()  # both used
    assert {h["authorization"] for h in first.headers} == {"Bearer sk-one-111111111111"}
    assert {h["authorization"] for h in second.headers} == {"Bearer sk-default-22222222"}
    monkeypatch.delenv("REPLICA_KEY_1")
    unset = get_model(MODEL, deployments=[{"api_base": first.url, "api_key_env": "REPLICA_KEY_1"}])
    failed = ask(unset, "q")
    assert isinstance(failed, ModelCallError) and failed.kind == "auth"
    assert "REPLICA_KEY_1" in str(failed) and "deployments[0]" in str(failed)


def test_rpm_limits_hold_per_deployment_and_a_full_group_is_a_rate_limit(replicas) -> None:
    """usage-based-routing-v2 (the default once a deployment has a limit) leaves a deployment out
    when its minute is used up; when all are, the call fails as a retryable rate limit."""
    big, small = replicas(latency_s=0.01), replicas(latency_s=0.01)
    adapter = get_model(MODEL, deployments=[{"api_base": big.url, "rpm": 4}, {"api_base": small.url, "rpm": 2}])
    outcomes = [ask(adapter, f"q{i}") for i in range(10)]
    answered = [o for o in outcomes if isinstance(o, Response)]
    refused = [o for o in outcomes if isinstance(o, ModelCallError)]
    print(f"\nhits: big {big.total_hits()}, small {small.total_hits()}; answered {len(answered)}")
    assert big.total_hits() <= 4 and small.total_hits() <= 2
    assert len(answered) == big.total_hits() + small.total_hits() >= 4
    assert refused and all(o.kind == "rate_limit" for o in refused)


def test_text_completion_goes_through_the_router(replicas) -> None:
    server = replicas(latency_s=0.0)
    adapter = routed(server)
    [answer] = asyncio.run(adapter.generate([Request("p", prompt="Q: 2+2?\nA:", sampling=Sampling(max_tokens=8))], 10))
    assert isinstance(answer, Response) and answer.text.startswith("echo:")
    assert "prompt" in server.bodies[0] and "messages" not in server.bodies[0]


# ---- failover, cooldown, throughput --------------------------------------------------------------
def test_failing_deployment_cools_down_slow_one_helps_every_item_answered(replicas, store) -> None:
    """Three replicas: fast (4 slots, 0.1 s), slow (4 slots, 0.2 s) and one that answers every
    call with 500. Through the call layer with 16 calls in flight: every item is answered, the
    failing replica gets no call once its cooldown began, each item reaches a healthy replica
    exactly once (no retry loop besides the call layer's), and the run goes at close to the sum
    of the healthy replicas' rates."""
    fast, slow, failing = replicas(4, 0.1), replicas(4, 0.2), replicas(4, 0.0)
    n = 360
    for i in range(n):
        failing.always(f"item {i}", server_error(500), times=3)
    adapter = routed(fast, slow, failing, allowed_fails=2, cooldown_s=120)
    calls = plan(adapter, n)
    policy = CallPolicy(concurrency=16, timeout_s=10, max_attempts=4, backoff_base_s=0.05, backoff_max_s=0.2)

    async def run() -> tuple[dict, float, dict[str, float]]:
        await adapter.prepare()
        started = time.perf_counter()
        outcomes = await execute(adapter, calls, store, policy)
        return outcomes, time.perf_counter() - started, adapter.cooling_down()

    outcomes, elapsed, cooling = asyncio.run(run())
    healthy = fast.per_second + slow.per_second
    rate = n / elapsed
    print(f"\n{n} items in {elapsed:.2f} s = {rate:.1f}/s (healthy replicas {fast.per_second:.0f} + "
          f"{slow.per_second:.0f} = {healthy:.0f}/s); hits fast {fast.total_hits()}, slow {slow.total_hits()}, "
          f"failing {failing.total_hits()}; cooling down: {cooling}")
    assert all(isinstance(o, Response) for o in outcomes.values())
    assert failing.url in cooling
    began = cooling[failing.url]
    late = [t - began for t in failing.arrivals if t > began + 0.05]  # routed before, arrived after: ms
    assert not late, f"{len(late)} calls reached the failing replica after its cooldown began"
    assert 3 <= failing.total_hits() <= policy.concurrency + 3
    assert fast.total_hits() + slow.total_hits() == n  # one healthy hit per item: no hidden retries
    assert slow.total_hits() >= n / 10  # the slow replica helped
    assert rate >= 0.7 * healthy and rate > 1.1 * fast.per_second


def test_a_hanging_deployment_times_out_then_cools_down(replicas, store) -> None:
    """Timeouts count like 5xx: after allowed_fails + 1 of them the hanging replica is left out,
    and the call layer's retries of the timed-out items reach the healthy one."""
    healthy, stuck = replicas(8, 0.02), replicas(8, 0.0)
    n = 40
    for i in range(n):
        stuck.always(f"item {i}", hang(), times=3)
    adapter = routed(healthy, stuck, allowed_fails=1, cooldown_s=120)
    policy = CallPolicy(concurrency=4, timeout_s=0.5, max_attempts=4, backoff_base_s=0.05, backoff_max_s=0.1)
    outcomes = asyncio.run(execute(adapter, plan(adapter, n), store, policy))
    print(f"\nhits: healthy {healthy.total_hits()}, stuck {stuck.total_hits()}")
    assert all(isinstance(o, Response) for o in outcomes.values())
    assert healthy.total_hits() == n
    # before the second timeout registers, every worker can be waiting on the stuck replica once and
    # the retry of a timed-out item can land there once more; after that the cooldown keeps it out
    assert 2 <= stuck.total_hits() <= 2 + 2 * policy.concurrency
