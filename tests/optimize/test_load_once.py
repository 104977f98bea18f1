"""A real local target (SmolLM2-135M-Instruct on CPU) is loaded once for a whole optimisation, not
once per trial, and the trials find exactly what they found when every run loaded it again."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.models.loads import count_loads, reload_every_run
from tests.optimize.helpers import rule_items, write_items
from workbench.models import release_local_models
from workbench.optimize import OptimizeConfig, optimize
from workbench.store import Store

MODEL = "hf/smollm2-135m-instruct"


def optimise(folder) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Demonstrations on 5 dev / 5 test items with greedy 8-token answers; the trial table and
    every answer the store holds."""
    folder.mkdir()
    write_items(folder / "items.jsonl", rule_items()[:10])
    (folder / "prompts" / "plain").mkdir(parents=True)
    (folder / "prompts" / "plain" / "v1.toml").write_text(
        'description = "plain"\nmode = "chat"\nsystem = "Answer in capitals."\nuser = "{input}"\n', encoding="utf-8")
    config = OptimizeConfig(dataset=str(folder / "items.jsonl"), target=MODEL, start_prompt="plain@v1",
                            objective="reference", metric="chrf", baseline=None, baseline_prompt=None, dev_size=5,
                            test_size=5, strata=["group"], moves=["fewshot"], max_demos=1, fewshot_candidates=2,
                            max_tokens=8, max_calls=100, bootstrap_resamples=100, timeout_s=600,
                            store=str(folder / "store.db"), prompts_dir=str(folder / "prompts"),
                            project_dir=str(folder))
    result = optimize(config)
    with Store(folder / "store.db") as store:
        answers = store.frame("SELECT cache_key, text FROM responses ORDER BY cache_key")
    return result.trials, answers


@pytest.mark.slow
def test_an_optimisation_loads_its_local_target_once_with_the_same_results(tmp_path, monkeypatch):
    release_local_models()
    loads = count_loads(monkeypatch, converted=MODEL)
    trials, answers = optimise(tmp_path / "shared")
    runs = (trials["calls_made"] > 0).sum()
    print(f"\n{len(trials)} trials, {runs} with calls, {len(answers)} answers; loads: {loads}")
    assert runs >= 4 and len(loads) == 1  # start, demonstration sets, held-out start and best: one load

    release_local_models()
    loads.clear()
    reload_every_run(monkeypatch)
    before_trials, before_answers = optimise(tmp_path / "reloaded")
    assert len(loads) >= runs  # the old way: a load per run of the target
    assert answers.equals(before_answers)  # greedy: the same answer to every request
    columns = ["trial", "split", "move", "n_items", "score", "delta", "calls_made"]
    assert trials[columns].equals(before_trials[columns])
