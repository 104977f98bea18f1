"""A store written by the code before the warm read path was made fast (commit cb3740d) is read fully
warm by today's: every request key, score key, reference key and behaviour record key is the same, so a
compare makes no call and computes nothing a versioned metric or the behaviour diff kept.

tests/data/store_before_issue25 holds what that code wrote: 40 of the demo's items (English and
Japanese, references) and the tool-calling items (declared tools, expected calls, no reference), each
answered by `fake/base` and `fake/cand` and compared once, with every score kept (store.db.gz)."""
from __future__ import annotations

import gzip
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from workbench.metrics import behaviour
from workbench.pipeline import run_pipeline
from workbench.task.config import MigrationConfig

from tests.metrics.counting import count_computations

FIXTURE = Path(__file__).resolve().parent / "data" / "store_before_issue25"
GATE = {"min_items": 10, "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True}}}
PROJECTS = {"items.jsonl": ["chrf", "rouge_l", "bleu", "length_chars"],
            "tools.jsonl": ["tool_call_accuracy", "chrf", "length_chars"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in PROJECTS:
        shutil.copy(FIXTURE / name, tmp_path / name)
    with gzip.open(FIXTURE / "store.db.gz") as packed, (tmp_path / "store.db").open("wb") as out:
        shutil.copyfileobj(packed, out)
    return tmp_path


def _scores(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT metric, metric_version, response_key, reference_key, value, detail_json"
                            " FROM scores ORDER BY 1, 2, 3, 4").fetchall()


@pytest.mark.parametrize("dataset", list(PROJECTS))
def test_a_store_written_before_is_read_fully_warm(project, dataset, monkeypatch):
    computed = count_computations(monkeypatch)
    describe = behaviour._describe
    monkeypatch.setattr(behaviour, "_describe",
                        lambda text: (computed.update(["behaviour"]) if text is not None else None) or describe(text))
    before = _scores(project / "store.db")
    config = MigrationConfig(project_dir=str(project), dataset=dataset, baseline="fake/base", baseline_prompt=None,
                             candidates=["fake/cand"], candidate_prompts=[None], judge=None,
                             metrics=PROJECTS[dataset], sample_size=None, bootstrap_resamples=200, store="store.db",
                             gate=GATE)
    result = run_pipeline(config, allow_calls=True)  # calls allowed: a changed request key would make one
    assert result.run_stats.calls_made == 0 and result.run_stats.cached == 2 * len(result.items)
    assert set(computed) == {"length_chars"}  # unversioned, so never kept; everything else read
    assert _scores(project / "store.db") == before  # no new key: nothing was scored under another one
    assert Counter(result.scores["metric"])["length_chars"] == 2 * len(result.items)
