"""The contract every HTTP API adapter keeps (`litellm/` and `openai/`, each test runs for both):
what it sends, what it reads back, and how it classifies every failure. Real HTTP to the
in-process fault server; no retries here (the call layer owns them), so every failure must cost
exactly one hit."""
from __future__ import annotations

import socket
import sys
import time
from email.utils import formatdate
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds fault_server.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # and tests/models/ asking.py
from asking import ask  # noqa: E402
from fault_server import FaultServer, fault_server, hang, malformed, rate_limited, server_error, status  # noqa: E402,F401

from workbench.generation.calls import run_sync  # noqa: E402
from workbench.errors import InputError, ModelCallError  # noqa: E402
from workbench.models import get_model  # noqa: E402
from workbench.models.api_adapter import ApiAdapter  # noqa: E402
from workbench.models.api_errors import parse_retry_after  # noqa: E402
from workbench.models.base import Request, Response, Sampling  # noqa: E402

pytestmark = pytest.mark.usefixtures("api_key")

# What each adapter calls the fault server's model: litellm names the provider inside the model.
PREFIXES = ["litellm/openai", "openai"]


@pytest.fixture(params=PREFIXES)
def make(request: pytest.FixtureRequest) -> Callable[..., ApiAdapter]:
    def build(server: FaultServer | None, model: str = "fault-model", **options) -> ApiAdapter:
        if server is not None:
            options.setdefault("api_base", server.url)
        return get_model(f"{request.param}/{model}", **options)
    return build


# ---- options -------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", PREFIXES)
def test_unknown_option_is_an_input_error(prefix: str) -> None:
    with pytest.raises(InputError, match="api_bsae"):
        get_model(f"{prefix}/gpt-4o-mini", api_bsae="http://x")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_api_key_env_takes_a_name_and_never_echoes_a_pasted_key(prefix: str) -> None:
    with pytest.raises(InputError) as info:
        get_model(f"{prefix}/gpt-4o-mini", api_key_env="sk-live-DONOTSHOW12345")
    assert "NAME of an environment variable" in str(info.value)
    assert "DONOTSHOW" not in str(info.value)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_prices_come_in_pairs(prefix: str) -> None:
    with pytest.raises(InputError, match="both"):
        get_model(f"{prefix}/x", input_cost_per_token=1e-6)


def test_custom_prices_price_the_tokens(make, fault_server) -> None:
    priced = ask(make(fault_server, input_cost_per_token=1e-6, output_cost_per_token=3e-6), "hi")
    assert priced.cost_usd == pytest.approx(3 * 1e-6 + 2 * 3e-6)  # "be brief hi" in, "echo: hi" out


# ---- the success path ----------------------------------------------------------------------------
def test_answer_with_usage_latency_version_and_unknown_cost(make, fault_server) -> None:
    fault_server.latency_s = 0.1
    response = ask(make(fault_server), "hello there world")
    assert isinstance(response, Response)
    assert response.text == "echo: hello there world" and response.finish_reason == "stop"
    assert (response.prompt_tokens, response.completion_tokens) == (5, 4)  # "be brief" + 3 words
    assert 0.1 <= response.latency_s < 2.0
    assert response.model_version == "fault-model-2024-06-01"
    assert response.cost_usd is None


def test_sampling_and_options_are_sent_per_call(make, fault_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_GATEWAY_KEY", "gw-key-abcdef123456")
    a = make(fault_server, api_key_env="MY_GATEWAY_KEY", extra_headers={"X-Team": "evals"})
    ask(a, "one", temperature=0.7, top_p=0.9, max_tokens=12, seed=42, stop=("\n\n",))
    ask(a, "two")
    first, second = fault_server.bodies
    assert first["model"] == "fault-model"
    assert (first["temperature"], first["top_p"], first["max_tokens"], first["seed"], first["stop"]) == \
        (0.7, 0.9, 12, 42, ["\n\n"])
    assert first["messages"][0] == {"role": "system", "content": "be brief"}
    assert second["temperature"] == 0.0 and "top_p" not in second and "seed" not in second and "stop" not in second
    headers = fault_server.headers[0]
    assert headers["authorization"] == "Bearer gw-key-abcdef123456" and headers["x-team"] == "evals"


def test_max_tokens_cut_reports_length(make, fault_server) -> None:
    response = ask(make(fault_server), "a b c d e f", max_tokens=3)
    assert response.text == "echo: a b" and response.finish_reason == "length"


def test_plain_prompt_goes_to_the_completions_endpoint(make, fault_server) -> None:
    a = make(fault_server)
    request = Request(item_id="p", prompt="Q: capital of France?\nA:", sampling=Sampling(stop=("\n",)))
    response = run_sync(a.generate([request], 10.0))[0]
    assert response.text == "echo: Q: capital of France? A:"
    body = fault_server.bodies[0]
    assert body["prompt"] == "Q: capital of France?\nA:" and "messages" not in body and body["stop"] == ["\n"]


def test_missing_key_variable_is_an_auth_error_without_a_call(make, fault_server, monkeypatch) -> None:
    monkeypatch.delenv("ABSENT_KEY_VAR", raising=False)
    error = ask(make(fault_server, api_key_env="ABSENT_KEY_VAR"), "x")
    assert isinstance(error, ModelCallError) and error.kind == "auth" and "ABSENT_KEY_VAR" in str(error)
    assert fault_server.total_hits() == 0


# ---- failures: classified, one hit each (the SDK never retries) ---------------------------------
@pytest.mark.parametrize("fault, kind, code", [
    (server_error(500), "server", 500),
    (server_error(503), "server", 503),
    (status(502), "server", 502),
    (status(401), "auth", 401),
    (status(403), "auth", 403),
    (status(400), "bad_request", 400),
    (status(404), "bad_request", 404),
    (malformed(), "server", None),
])
def test_http_failures_are_classified_and_not_retried_by_the_sdk(make, fault_server, fault, kind, code) -> None:
    fault_server.always("item", fault)
    error = ask(make(fault_server), "item")
    assert isinstance(error, ModelCallError), error
    assert error.kind == kind
    if code is not None:
        assert error.status == code
    assert fault_server.hits["item"] == 1


def test_rate_limit_carries_retry_after(make, fault_server) -> None:
    fault_server.always("item", rate_limited(retry_after=7))
    error = ask(make(fault_server), "item")
    assert error.kind == "rate_limit" and error.retry_after == 7.0 and error.retryable
    assert fault_server.hits["item"] == 1


def test_hanging_server_is_a_timeout(make, fault_server) -> None:
    fault_server.always("item", hang())
    start = time.monotonic()
    error = ask(make(fault_server), "item", timeout_s=0.5)
    assert error.kind == "timeout" and time.monotonic() - start < 10 * 0.5  # the timeout, with a 10x margin


def test_refused_connection_is_a_connection_error(make) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    a = make(None, api_base=f"http://127.0.0.1:{port}/v1")
    error = ask(a, "item")
    assert isinstance(error, ModelCallError) and error.kind == "connection"


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 0.25 ") == 0.25
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
