"""What only the litellm adapter does: resolve a provider's endpoint and price a call from
litellm's price list. The contract it shares with `openai/` is in test_api_adapter.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds fault_server.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # and tests/models/ asking.py
from asking import ask  # noqa: E402
from fault_server import FaultServer, fault_server, server_error  # noqa: E402,F401

from workbench.errors import InputError  # noqa: E402
from workbench.models import get_model  # noqa: E402
from workbench.models.litellm_adapter import LiteLLMAdapter  # noqa: E402

pytestmark = pytest.mark.usefixtures("api_key")


def adapter(server: FaultServer, model: str = "openai/fault-model", **options) -> LiteLLMAdapter:
    return get_model(f"litellm/{model}", api_base=server.url, **options)


# ---- identity and prices: what litellm resolves -----------------------------------------------
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


def test_cost_from_litellm_prices(fault_server) -> None:
    known = ask(adapter(fault_server, "openai/gpt-4o-mini"), "hi")
    assert known.cost_usd is not None and known.cost_usd > 0  # litellm's local price list




def test_failed_calls_print_nothing(fault_server, capfd: pytest.CaptureFixture[str]) -> None:
    """An endpoint that is down fails per item, quietly: no litellm help banner per call."""
    fault_server.always("down", server_error(500))
    assert ask(adapter(fault_server), "down").kind == "server"
    out, _ = capfd.readouterr()
    assert "Give Feedback" not in out and "LiteLLM.Info" not in out
