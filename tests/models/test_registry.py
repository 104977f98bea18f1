"""The provider registry: the `fake/` test double is no provider a user can select; the test suite
switches it on (tests/conftest.py), and without that switch the name is refused like any unknown one."""
import json
import os
import subprocess
import sys

import pytest

from workbench.errors import UnknownModelError
from workbench.models import TEST_PROVIDERS_ENV, get_model, providers, split_name


def test_fake_is_selectable_only_with_the_test_switch(monkeypatch):
    assert os.environ[TEST_PROVIDERS_ENV] == "1"  # conftest: every unit test may use fake/
    assert "fake" in providers() and split_name("fake/a") == ("fake", "a")
    monkeypatch.delenv(TEST_PROVIDERS_ENV)
    assert "fake" not in providers()
    assert {"litellm", "openai", "hf", "vllm", "replay"} <= set(providers())
    with pytest.raises(UnknownModelError, match="unknown model provider 'fake'"):
        get_model("fake/a")
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "yes")  # only the exact switch
    with pytest.raises(UnknownModelError):
        split_name("fake/a")


def test_a_user_cannot_generate_with_fake(tmp_path):
    (tmp_path / "items.jsonl").write_text(json.dumps({"item_id": "a", "input": "hi"}) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != TEST_PROVIDERS_ENV}
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "generate", "items.jsonl", "--model", "fake/a", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 3 and "unknown model provider 'fake'" in proc.stderr, proc.stderr
    assert "fake" not in proc.stderr.split("known:")[1]  # the list of providers offered does not name it
    assert not (tmp_path / ".workbench").exists()
