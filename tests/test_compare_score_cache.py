"""`workbench compare`'s pipeline with scores kept in the store: the same tables with and without the
cache (the demo's items and metrics, and the tool-calling example), a warm compare that scores nothing
the store holds, and a store written by schema version 5 that opens, migrates and keeps its answers."""
from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from workbench.generation.calls import CallPolicy
from workbench.generation.runner import generate
from workbench.metrics import behaviour
from workbench.metrics.score_cache import SCORE_CACHE_ENV
from workbench.pipeline import model_specs, prepare, run_pipeline
from workbench.pipeline import sampling as config_sampling
from workbench.store import MIGRATIONS, Store
from workbench.task.config import MigrationConfig
from workbench.task.dataset import load_items

from tests.metrics.counting import count_computations
from tests.tool_candidate import tools_project_with_broken_candidate

REPO = Path(__file__).resolve().parents[1]
GATE = {"min_items": 30, "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True}}}


@pytest.fixture
def computed(monkeypatch):
    counted = count_computations(monkeypatch)
    describe = behaviour._describe

    def described(text):  # the behaviour diff's per-answer measures
        if text is not None:
            counted["behaviour"] += 1
        return describe(text)

    monkeypatch.setattr(behaviour, "_describe", described)
    return counted


def _tables(result) -> dict:
    """Every table a comparison shows (its record), the scores, and the verdict."""
    return {"verdict": result.verdict_json(), "scores": result.scores,
            "tables": {name: c.to_dict() for name, c in result.comparisons.items()}}


def _same(a: dict, b: dict) -> None:
    pd.testing.assert_frame_equal(a["scores"], b["scores"])
    assert json.dumps(a["verdict"], sort_keys=True, default=str) == json.dumps(b["verdict"], sort_keys=True, default=str)
    assert json.dumps(a["tables"], sort_keys=True, default=str) == json.dumps(b["tables"], sort_keys=True, default=str)


def _stored(config: MigrationConfig) -> Counter:
    with Store(config.store_path, create=False) as store:
        return Counter(dict(store.execute("SELECT metric, count(*) FROM scores GROUP BY metric").fetchall()))


def _cold_warm_and_off(config: MigrationConfig, computed: Counter, monkeypatch) -> tuple[dict, dict, dict]:
    prepare(config)  # every call made (no score yet)
    monkeypatch.setenv(SCORE_CACHE_ENV, "0")
    off = _tables(run_pipeline(config, allow_calls=False))  # today's behaviour: everything scored, nothing kept
    assert _stored(config) == Counter()
    monkeypatch.delenv(SCORE_CACHE_ENV)
    cold = _tables(run_pipeline(config, allow_calls=False))
    computed.clear()
    warm = _tables(run_pipeline(config, allow_calls=False))
    return off, cold, warm


def test_the_demo_compares_the_same_with_and_without_the_cache(tmp_path, computed, monkeypatch):
    shutil.copy(REPO / "data" / "support_reviews.jsonl", tmp_path / "items.jsonl")
    config = MigrationConfig(project_dir=str(tmp_path), dataset="items.jsonl", baseline="fake/base",
                             baseline_prompt=None, candidates=["fake/cand"], candidate_prompts=[None], judge=None,
                             metrics=["chrf", "rouge_l", "bleu", "length_chars"], sample_size=None,
                             bootstrap_resamples=200, gate=GATE)
    off, cold, warm = _cold_warm_and_off(config, computed, monkeypatch)
    _same(off, cold)
    _same(off, warm)
    n = len(load_items(tmp_path / "items.jsonl"))
    # the behaviour diff's per-answer measures are kept beside the scores
    assert _stored(config) == Counter({"chrf": 2 * n, "rouge_l": 2 * n, "bleu": 2 * n, "behaviour": 2 * n})
    assert set(computed) == {"length_chars"}  # warm: the cached metrics read, nothing else scored


def test_a_tool_calling_app_compares_the_same_with_and_without_the_cache(tmp_path, computed, monkeypatch):
    # the candidate answers in text every fifth item, drops arguments every third
    config, cand = tools_project_with_broken_candidate(tmp_path / "tools", text_every=5, drop_arguments_every=3)
    off, cold, warm = _cold_warm_and_off(config, computed, monkeypatch)
    _same(off, cold)
    _same(off, warm)
    stored = _stored(config)
    # one row per distinct (answer, item): where the candidate answered as the baseline did, one score serves both
    changed = sum(1 for k, _ in enumerate(cand) if k % 5 == 0 or k % 3 == 0)
    assert len(cand) < stored["tool_call_accuracy"] <= len(cand) + changed and "length_chars" not in stored
    assert len(cand) <= stored["behaviour"] <= 2 * len(cand)  # by answer text and input: the calls are not read
    assert {"tool_name_match", "tool_arg_value_match"} <= set(stored)  # the app metrics joined, and are kept too
    assert set(computed) == {"length_chars"}
    delta = next(d for d in warm["verdict"]["candidates"]["replay/data/cand.jsonl"]["metric_deltas"]
                 if d["metric"] == "tool_call_accuracy")
    assert delta["delta"] < 0  # the broken calls are seen, from the store as when scored


def test_a_version_5_store_opens_migrates_and_keeps_its_answers(tmp_path, computed):
    shutil.copy(REPO / "data" / "support_reviews.jsonl", tmp_path / "items.jsonl")
    items = load_items(tmp_path / "items.jsonl")
    path = tmp_path / "store.db"
    config = MigrationConfig(project_dir=str(tmp_path), dataset="items.jsonl", baseline="fake/base",
                             baseline_prompt=None, candidates=["fake/cand"], candidate_prompts=[None], judge=None,
                             metrics=["chrf"], sample_size=None, bootstrap_resamples=200, store="store.db", gate=GATE)
    models, sampling = model_specs(config), config_sampling(config)  # what the pipeline looks up
    with Store(path) as store:
        _, made = generate(items, models, store, policy=CallPolicy(max_attempts=1), sampling=sampling, progress=False)
        assert made.calls_made == 2 * len(items)
    conn = sqlite3.connect(path, isolation_level=None)  # as the version-5 code left it: no scores table
    conn.execute("DROP TABLE scores")
    conn.execute("PRAGMA user_version=5")
    conn.close()
    fresh5 = sqlite3.connect(tmp_path / "fresh5.db", isolation_level=None)
    for script in MIGRATIONS[:5]:
        fresh5.executescript(script)
    schema = "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    assert sqlite3.connect(path).execute(schema).fetchall() == fresh5.execute(schema).fetchall()

    result = run_pipeline(config, allow_calls=False)  # what `workbench compare` runs: no call, the store migrated
    assert result.comparisons["fake/cand"].n_paired == len(items)
    with Store(path, create=False) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.execute("SELECT count(*) FROM scores WHERE metric = 'chrf'").fetchone()[0] == 2 * len(items)
        _, again = generate(items, models, store, policy=CallPolicy(max_attempts=1), sampling=sampling, progress=False)
    assert again.calls_made == 0 and again.cached == 2 * len(items)  # its answers are still the cache
    computed.clear()
    warm = run_pipeline(config, allow_calls=False)
    assert "chrf" not in computed
    pd.testing.assert_frame_equal(warm.scores, result.scores)
