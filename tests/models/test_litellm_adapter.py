"""The litellm adapter alone: options, identity, what it sends, what it reads back, and how it
classifies every failure. Real HTTP to the in-process fault server; no retries here (the call
layer owns them), so every failure must cost exactly one hit."""
from __future__ import annotations

import socket
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds fault_server.py
from fault_server import FaultServer, fault_server, hang, malformed, rate_limited, server_error, status  # noqa: E402,F401

from workbench.calls import run_sync  # noqa: E402
from workbench.errors import InputError, ModelCallError  # noqa: E402
from workbench.models import get_model  # noqa: E402
from workbench.models.base import Request, Response, Sampling  # noqa: E402
from workbench.models.litellm_adapter import LiteLLMAdapter, parse_retry_after  # noqa: E402


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "sk-test-SECRET1234567890abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


def ask(adapter: LiteLLMAdapter, text: str, timeout_s: float = 10.0, **sampling) -> Response | ModelCallError:
    request = Request(item_id=text, messages=({"role": "system", "content": "be brief"},
                                              {"role": "user", "content": text}),
                      sampling=Sampling(**sampling))
    return run_sync(adapter.generate([request], timeout_s))[0]


def adapter(server: FaultServer, model: str = "openai/fault-model", **options) -> LiteLLMAdapter:
    return get_model(f"litellm/{model}", api_base=server.url, **options)


# ---- options and identity ------------------------------------------------------------------------
def test_unknown_option_is_an_input_error() -> None:
    with pytest.raises(InputError, match="api_bsae"):
        get_model("litellm/openai/gpt-4o-mini", api_bsae="http://x")


def test_api_key_env_takes_a_name_and_never_echoes_a_pasted_key() -> None:
    with pytest.raises(InputError) as info:
        get_model("litellm/openai/gpt-4o-mini", api_key_env="sk-live-DONOTSHOW12345")
    assert "NAME of an environment variable" in str(info.value)
    assert "DONOTSHOW" not in str(info.value)


def test_prices_come_in_pairs() -> None:
    with pytest.raises(InputError, match="both"):
        get_model("litellm/openai/x", input_cost_per_token=1e-6)


def test_identity_names_provider_model_and_resolved_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = get_model("litellm/openai/gpt-4o-mini", api_base="http://127.0.0.1:8000/v1/",
                         extra_headers={"X-Secret-Token": "tok-123456789"})
    assert explicit.identity() == {"provider": "litellm", "model": "openai/gpt-4o-mini",
                                   "api_base": "http://127.0.0.1:8000/v1", "extra_headers": ["X-Secret-Token"]}
    assert explicit.name == "litellm/openai/gpt-4o-mini"
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    assert get_model("litellm/groq/llama3-8b").identity()["api_base"] == "https://api.groq.com/openai/v1"
    default = get_model("litellm/openai/gpt-4o-mini").identity()["api_base"]
    monkeypatch.setenv("OPENAI_API_BASE", "http://proxy.internal:4000/v1")
    moved = get_model("litellm/openai/gpt-4o-mini").identity()["api_base"]
    assert moved == "http://proxy.internal:4000/v1" and default != moved  # a different endpoint, a different key


def test_unknown_provider_is_an_input_error() -> None:
    with pytest.raises(InputError, match="litellm/openai/gpt-4o-mini"):
        get_model("litellm/nosuchprovider/model-x").identity()


# ---- the success path ----------------------------------------------------------------------------
def test_answer_with_usage_latency_version_and_unknown_cost(fault_server) -> None:
    fault_server.latency_s = 0.1
    response = ask(adapter(fault_server), "hello there world")
    assert isinstance(response, Response)
    assert response.text == "echo: hello there world" and response.finish_reason == "stop"
    assert (response.prompt_tokens, response.completion_tokens) == (5, 4)  # "be brief" + 3 words
    assert 0.1 <= response.latency_s < 2.0
    assert response.model_version == "fault-model-2024-06-01"
    assert response.cost_usd is None


def test_cost_from_litellm_prices_and_from_custom_prices(fault_server) -> None:
    known = ask(adapter(fault_server, "openai/gpt-4o-mini"), "hi")
    assert known.cost_usd is not None and known.cost_usd > 0  # litellm's local price list
    priced = ask(adapter(fault_server, input_cost_per_token=1e-6, output_cost_per_token=3e-6), "hi")
    assert priced.cost_usd == pytest.approx(3 * 1e-6 + 2 * 3e-6)


def test_sampling_and_options_are_sent_per_call(fault_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_GATEWAY_KEY", "gw-key-abcdef123456")
    a = adapter(fault_server, api_key_env="MY_GATEWAY_KEY", extra_headers={"X-Team": "evals"})
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


def test_max_tokens_cut_reports_length(fault_server) -> None:
    response = ask(adapter(fault_server), "a b c d e f", max_tokens=3)
    assert response.text == "echo: a b" and response.finish_reason == "length"


def test_plain_prompt_goes_to_the_completions_endpoint(fault_server) -> None:
    a = adapter(fault_server)
    request = Request(item_id="p", prompt="Q: capital of France?\nA:", sampling=Sampling(stop=("\n",)))
    response = run_sync(a.generate([request], 10.0))[0]
    assert response.text == "echo: Q: capital of France? A:"
    body = fault_server.bodies[0]
    assert body["prompt"] == "Q: capital of France?\nA:" and "messages" not in body and body["stop"] == ["\n"]


def test_missing_key_variable_is_an_auth_error_without_a_call(fault_server, monkeypatch) -> None:
    monkeypatch.delenv("ABSENT_KEY_VAR", raising=False)
    error = ask(adapter(fault_server, api_key_env="ABSENT_KEY_VAR"), "x")
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
def test_http_failures_are_classified_and_not_retried_by_the_sdk(fault_server, fault, kind, code) -> None:
    fault_server.always("item", fault)
    error = ask(adapter(fault_server), "item")
    assert isinstance(error, ModelCallError), error
    assert error.kind == kind
    if code is not None:
        assert error.status == code
    assert fault_server.hits["item"] == 1


def test_rate_limit_carries_retry_after(fault_server) -> None:
    fault_server.always("item", rate_limited(retry_after=7))
    error = ask(adapter(fault_server), "item")
    assert error.kind == "rate_limit" and error.retry_after == 7.0 and error.retryable
    assert fault_server.hits["item"] == 1


def test_hanging_server_is_a_timeout(fault_server) -> None:
    fault_server.always("item", hang())
    start = time.monotonic()
    error = ask(adapter(fault_server), "item", timeout_s=0.5)
    assert error.kind == "timeout" and time.monotonic() - start < 1.5


def test_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    a = get_model("litellm/openai/fault-model", api_base=f"http://127.0.0.1:{port}/v1")
    error = ask(a, "item")
    assert isinstance(error, ModelCallError) and error.kind == "connection"


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 0.25 ") == 0.25
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
