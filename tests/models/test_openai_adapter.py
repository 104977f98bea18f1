"""What only the `openai/` adapter does: where it sends calls, which key it sends, where its
prices come from, and that it works without litellm. The contract it shares with `litellm/`
(what it sends, how failures are classified) is in test_api_adapter.py."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds fault_server.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # and tests/models/ asking.py
from asking import ask  # noqa: E402
from fault_server import fault_server  # noqa: E402,F401

from workbench.generation.calls import run_sync  # noqa: E402
from workbench.errors import ModelCallError  # noqa: E402
from workbench.models import get_model, takes_api_base  # noqa: E402
from workbench.models.base import Request, Response  # noqa: E402
from workbench.models.openai_adapter import OPENAI_API_BASE  # noqa: E402
from workbench.generation.runner import ModelSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_identity_names_the_endpoint_calls_really_go_to(monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = get_model("openai/my-model", api_base="http://127.0.0.1:8000/v1/",
                         extra_headers={"X-Secret-Token": "tok-123456789"})
    assert explicit.name == "openai/my-model"
    assert explicit.identity() == {"provider": "openai", "model": "my-model", "api_base": "http://127.0.0.1:8000/v1",
                                   "extra_headers": ["X-Secret-Token"]}  # header names only, never values
    assert get_model("openai/gpt-4o-mini").identity()["api_base"] == OPENAI_API_BASE
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway.internal:4000/v1")
    assert get_model("openai/gpt-4o-mini").identity()["api_base"] == "http://gateway.internal:4000/v1"


def test_api_base_from_the_cli_reaches_api_models_only() -> None:
    assert takes_api_base("openai/x") and takes_api_base("litellm/openai/x")
    assert not takes_api_base("hf/smollm2-135m-instruct") and not takes_api_base("nosuch/x")
    assert ModelSpec.with_endpoint("openai/x", None, "http://h/v1").options == {"api_base": "http://h/v1"}
    assert ModelSpec.with_endpoint("replay/x.jsonl", None, "http://h/v1").options == {}


def test_openai_itself_needs_a_key_and_fails_per_item_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    error = ask(get_model("openai/gpt-4o-mini"), "x")  # never reaches the network: no key, no call
    assert isinstance(error, ModelCallError) and error.kind == "auth" and "OPENAI_API_KEY" in str(error)


def test_own_server_gets_the_key_when_set_and_a_placeholder_when_not(fault_server, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert isinstance(ask(get_model("openai/fault-model", api_base=fault_server.url), "one"), Response)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-own-server-123456")
    assert isinstance(ask(get_model("openai/fault-model", api_base=fault_server.url), "two"), Response)
    assert [h["authorization"] for h in fault_server.headers] == ["Bearer EMPTY", "Bearer sk-test-own-server-123456"]


def test_openai_itself_gets_max_completion_tokens_other_servers_max_tokens(fault_server, monkeypatch) -> None:
    import workbench.models.openai_adapter as openai_adapter

    ask(get_model("openai/fault-model", api_base=fault_server.url), "own server", max_tokens=7)
    monkeypatch.setattr(openai_adapter, "OPENAI_API_BASE", fault_server.url)  # the server plays OpenAI
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-plays-openai-1234")
    ask(get_model("openai/fault-model"), "openai itself", max_tokens=7)
    own, official = fault_server.bodies
    assert own["max_tokens"] == 7 and "max_completion_tokens" not in own
    assert official["max_completion_tokens"] == 7 and "max_tokens" not in official


def test_list_prices_only_for_openai_itself() -> None:
    official = get_model("openai/gpt-4o-mini")
    run_sync(official.prepare())
    import litellm

    entry = litellm.model_cost["gpt-4o-mini"]
    assert official._prices() == (entry["input_cost_per_token"], entry["output_cost_per_token"])
    unknown = get_model("openai/no-such-model-x")
    run_sync(unknown.prepare())
    assert unknown._prices() is None  # unknown price: cost None, never 0
    own = get_model("openai/gpt-4o-mini", api_base="http://127.0.0.1:9/v1")  # same name, someone's server
    run_sync(own.prepare())
    assert own._prices() is None
    custom = get_model("openai/gpt-4o-mini", input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    run_sync(custom.prepare())
    assert custom._prices() == (1e-6, 2e-6)


def test_one_adapter_serves_several_event_loops(fault_server) -> None:
    """A client's connection pool belongs to its loop: a second loop gets its own client."""
    adapter = get_model("openai/fault-model", api_base=fault_server.url)

    async def one(text: str) -> object:
        try:
            return (await adapter.generate([Request(item_id=text, messages=({"role": "user", "content": text},))],
                                           10))[0]
        finally:
            await adapter.aclose()

    first, second = asyncio.run(one("loop one")), asyncio.run(one("loop two"))
    assert (first.text, second.text) == ("echo: loop one", "echo: loop two")


def test_calls_go_out_without_importing_litellm(fault_server, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        import workbench
        from workbench.generation.calls import CallPolicy, PlannedCall, execute, run_sync
        from workbench.hashing import request_key
        from workbench.models import get_model
        from workbench.models.base import Request
        from workbench.store import Store
        adapter = get_model("openai/fault-model", api_base={fault_server.url!r})
        requests = [Request(item_id=f"q{{i}}", messages=({{"role": "user", "content": f"q{{i}}"}},)) for i in range(4)]
        calls = [PlannedCall(request_key(adapter.identity(), r.payload()), r) for r in requests]
        out = run_sync(execute(adapter, calls, Store(sys.argv[1]), CallPolicy()))
        print(sorted(o.text for o in out.values()), "litellm" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "s.db")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['echo: q0', 'echo: q1', 'echo: q2', 'echo: q3'] False"
