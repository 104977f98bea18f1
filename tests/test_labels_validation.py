"""The label log takes only labels a report can use, and a report counts only those: labels for items
outside the comparison, or naming another pair of models, never reach the human win rate nor stop
later reports; an id that is None or empty, or a seed no store can hold, is a clear input error."""
import pytest

from tests.judge_server import JudgeServer
from tests.test_pipeline import _config, project  # noqa: F401  (the fixture)
from workbench.errors import InputError
from workbench.labels import LabelLog, sides
from workbench.pipeline import label_pairs, run_pipeline
from workbench.store import open_store


def _real_labels(config, log, pairs, n: int) -> None:
    for row in list(pairs.itertuples())[:n]:  # the rater prefers the candidate: 10 of 10
        left, right = sides(0, row.item_id, "alice", row.model_a, row.model_b)
        log.record(row.item_id, "alice", left, right, "left" if left == row.model_b else "right", 0)


def test_ghost_and_foreign_labels_are_refused_and_never_counted(project):  # noqa: F811
    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
        task, pairs = label_pairs(config)
        model_a, model_b = pairs["model_a"].iloc[0], pairs["model_b"].iloc[0]
        with LabelLog(config.store_path, task, items=pairs["item_id"], models=(model_a, model_b)) as log:
            _real_labels(config, log, pairs, 10)
            with pytest.raises(InputError, match="item 'ghost-1' is not one of task"):
                log.record("ghost-1", "alice", model_a, model_b, "left", 0)
            with pytest.raises(InputError, match="compares"):
                log.record(pairs["item_id"].iloc[0], "alice", model_a, "litellm/other", "left", 0)
            for bad in (None, "", "   "):
                with pytest.raises(InputError, match="an item id is required"):
                    log.record(bad, "alice", model_a, model_b, "left", 0)
            for seed in (2 ** 70, -(2 ** 64), 1.5, "0", True):
                with pytest.raises(InputError, match="seed"):
                    log.record(pairs["item_id"].iloc[1], "alice", model_a, model_b, "left", seed)
            with pytest.raises(InputError, match="seed"):
                log.undo_last("alice", 2 ** 64)
        with LabelLog(config.store_path, task) as log:  # no pair given: the task's own pair is kept
            with pytest.raises(InputError, match="compares"):
                log.record(pairs["item_id"].iloc[0], "alice", model_a, "litellm/other", "left", 0)
        # rows an older workbench (or raw SQL) wrote: 30 ghost items and another pair
        with open_store(config.store_path) as store:
            for k in range(30):
                store.append_label(task, f"ghost-{k}", "alice", model_a, model_b, "left", model_a, None, 0, "s")
            store.append_label(task, pairs["item_id"].iloc[20], "bob", model_a, "litellm/other", "left", model_a,
                               None, 0, "s")
        result = run_pipeline(config)
    name = result.candidates[0]
    human = result.labels[name]
    assert len(human) == 10 and set(human["item_id"]) <= set(pairs["item_id"])
    sources = result.comparisons[name].win_rates.set_index("source")
    row = sources[sources.index.str.startswith("human labels")].iloc[0]
    assert row["n"] == 10 and row["win_rate"] == pytest.approx(1.0)
