"""Counting real weight loads, and the behaviour before local models were shared (for comparison):
helpers for the tests that check a local model is loaded once per process (tests/optimize, tests/judges)."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.models.hf_adapter import HFAdapter
from workbench.models.loaded_models import release_local_models


def count_loads(monkeypatch: pytest.MonkeyPatch, converted: str | None = None) -> list[str]:
    """Every real `AutoModelForCausalLM.from_pretrained` of the process from now on (the folder it
    read), the weights still loaded for real. `converted` (an `hf/` model): its GGUF converted first,
    if this machine has not yet: the conversion reads the GGUF once, which is not a load for a run."""
    from transformers import AutoModelForCausalLM

    from workbench.models.local_models import resolve_local_model

    if converted is not None:
        resolve_local_model(converted.removeprefix("hf/"))

    real = AutoModelForCausalLM.from_pretrained
    loads: list[str] = []

    def counting(path, *args, **kwargs):
        loads.append(Path(str(path)).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", counting)
    return loads


def reload_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The behaviour before models were shared: a closed hf/ adapter's model is unloaded at once,
    so the next run (trial, judge call) loads it again."""
    close = HFAdapter.aclose

    async def close_and_unload(self: HFAdapter) -> None:
        await close(self)
        release_local_models()

    monkeypatch.setattr(HFAdapter, "aclose", close_and_unload)
