"""A real local judge (SmolLM2-135M-Instruct on CPU) is loaded once for several pairwise rounds, each
of which builds its own adapter (as a notebook judging candidates one after another does, or the
optimizer's judge objective per trial), and gives the verdicts it gave when each round loaded it."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.models.loads import count_loads, reload_every_run
from workbench.calls import CallPolicy
from workbench.judges import JudgeSpec, judge_pairwise
from workbench.models import Sampling, loaded_local_models, release_local_models
from workbench.store import open_store

from .judge_helpers import responses

MODEL = "hf/smollm2-135m-instruct"
POLICY = CallPolicy(timeout_s=600, budget_s=1200, max_attempts=1)
ROUNDS = {"terse": {"q1": "Paris.", "q2": "4"}, "wrong": {"q1": "It is Lyon.", "q2": "five"},
          "chatty": {"q1": "France's capital city is Paris, of course.", "q2": "Two plus two makes four."}}


def judge_rounds(store_path, items: pd.DataFrame) -> pd.DataFrame:
    spec = JudgeSpec(model=MODEL, template="completion-v1", retries=0, sampling=Sampling(max_tokens=6))
    base = responses("base", {"q1": "The capital of France is Paris.", "q2": "2+2 equals 4."})
    orders = []
    with open_store(store_path) as store:
        for name, texts in ROUNDS.items():  # no adapter given: each round builds (and closes) its own
            result = judge_pairwise(store, spec, items.iloc[:2], base, responses(name, texts), "correctness", POLICY)
            assert result.stats.model_calls == 4  # two items, both orders, none from the store
            orders.append(result.orders.assign(round=name))
        raw = store.frame("SELECT judge_key, raw_output FROM judgments ORDER BY judge_key")
    return pd.concat(orders, ignore_index=True).merge(raw, on="judge_key", how="left")


@pytest.mark.slow
def test_pairwise_rounds_load_the_local_judge_once_with_the_same_verdicts(tmp_path, items, monkeypatch):
    release_local_models()
    loads = count_loads(monkeypatch, converted=MODEL)
    shared = judge_rounds(tmp_path / "shared.db", items)
    print(f"\n{len(ROUNDS)} rounds, {len(shared)} judgments; loads: {loads}; loaded now: {loaded_local_models()}")
    assert len(loads) == 1
    assert [m["users"] for m in loaded_local_models()] == [0]  # every round's adapter closed; kept for the next

    release_local_models()
    loads.clear()
    reload_every_run(monkeypatch)
    before = judge_rounds(tmp_path / "reloaded.db", items)
    assert len(loads) == len(ROUNDS)  # the old way: a load per round
    columns = ["round", "item_id", "position", "verdict", "error", "raw_output"]
    assert shared[columns].equals(before[columns])  # greedy: the same outputs, the same verdicts
