"""`workbench compare` reads the store a chunk of items at a time (`run_pipeline(texts=False)`): the
same tables as the read with every text held, at any chunk size, with a pairwise judge and human
labels, a pointwise judge, and tool calls; what is missing is counted over every chunk; the result
holds no answer text."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from tests.judge_server import JudgeServer, PointwiseJudgeServer
from tests.test_pipeline import N, _config, _label, project  # noqa: F401 (the fixture)
from tests.tool_candidate import CANDIDATE, tools_project_with_broken_candidate
from workbench import forked, pipeline
from workbench.comparison.compare import compact_responses, statistics_columns
from workbench.stats.pairing import sorted_codes
from workbench.errors import InputError
from workbench.pipeline import CHUNK_ENV, run_pipeline
from workbench.store import Store


def _record(result) -> dict:
    """Everything a comparison shows, and the manifest less what each run measures itself; of the
    behaviour diff, the columns its tables read (what a read in chunks keeps)."""
    manifest = {k: v for k, v in result.manifest.items() if k not in ("pipeline_wall_s", "environment", "git")}
    read = {name: statistics_columns(c.behaviour) for name, c in result.comparisons.items()}
    tables = {name: {**c.to_dict(), "behaviour": read[name].astype(object).where(read[name].notna(), None)
                     .to_dict(orient="records"), "errors": c.errors.to_dict(orient="records")}
              for name, c in result.comparisons.items()}
    return json.loads(json.dumps({"verdict": result.verdict_json(), "tables": tables, "manifest": manifest,
                                  "complete": result.complete, "labels": sorted(result.labels)},
                                 sort_keys=True, default=str))


def _sorted_scores(scores: pd.DataFrame) -> pd.DataFrame:
    keep = ["item_id", "model", "sample_index", "metric", "value"]
    frame = scores[keep].astype({"model": str, "metric": str, "item_id": str, "sample_index": "int64"})  # kept compact
    return frame.sort_values(["metric", "model", "item_id", "sample_index"]).reset_index(drop=True)


@pytest.fixture(autouse=True)
def children_succeed(monkeypatch):
    """A forked child that failed has its chunks read again by the parent, which would hide its bug."""
    collect = forked._Child.collect

    def checked(self):
        results = collect(self)
        assert results is not None, "a forked child of the read in chunks failed"
        return results

    monkeypatch.setattr(forked._Child, "collect", checked)


def _same_in_chunks(config, monkeypatch, sizes=(1, 7, 5000), workers=(1, 3)) -> None:
    held = run_pipeline(config, allow_calls=False)
    for size, processes in ((size, processes) for size in sizes for processes in workers):
        monkeypatch.setenv(CHUNK_ENV, str(size))
        monkeypatch.setenv(forked.WORKERS_ENV, str(processes))
        chunked = run_pipeline(config, allow_calls=False, texts=False)
        assert _record(chunked) == _record(held), f"chunks of {size} items on {processes} processes"
        pd.testing.assert_frame_equal(_sorted_scores(chunked.scores), _sorted_scores(held.scores))
        assert "response" not in chunked.responses.columns and "tool_calls" not in chunked.responses.columns
        assert {"input", "reference"}.isdisjoint(chunked.items.columns), "the items' texts go once they are read"
        assert len(chunked.items) == len(held.items) and held.comparisons and all(
            len(c.copy_checks) for c in chunked.comparisons.values()), "the copy checks outlive the inputs"
        assert len(chunked.responses) == len(held.responses)
        for name, comparison in chunked.comparisons.items():  # the descriptive columns no table reads are gone
            assert list(comparison.behaviour.columns) == list(statistics_columns(held.comparisons[name].behaviour))
            assert len(comparison.behaviour.columns) < len(held.comparisons[name].behaviour.columns)
        kept = [chunked.scores, chunked.responses, *(c.behaviour for c in chunked.comparisons.values())]
        assert all(sorted_codes(frame["item_id"]) is not None and frame["item_id"].cat.categories is
                   chunked.scores["item_id"].cat.categories for frame in kept), "ids kept as codes, their text once"
        assert chunked.run_stats.cached == held.run_stats.cached and chunked.run_stats.errors == held.run_stats.errors


def test_a_judged_and_labelled_comparison_is_the_same_read_in_chunks(project, monkeypatch):
    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)  # every answer and verdict made and stored
        _label(config, {"alice": 0, "bob": 5})
        calls = server.total_hits()
        _same_in_chunks(config, monkeypatch)
        assert server.total_hits() == calls  # read only: no judge call
    result = run_pipeline(config, allow_calls=False, texts=False)
    comparison = next(iter(result.comparisons.values()))
    assert comparison.n_paired == N and len(result.labels) == 1
    assert {"judge", "prediction-powered (judge on all items + human labels)"} <= set(comparison.win_rates["source"])


def test_a_pointwise_judge_is_the_same_read_in_chunks(project, monkeypatch):
    with PointwiseJudgeServer() as server:
        config = _config(project, server.url, judge_mode="pointwise", judge_criterion=["correctness", "fluency"],
                         gate={"min_items": 20, "metrics": {"judge:correctness": {"max_drop": 0.5,
                                                                                  "higher_is_better": True}}})
        run_pipeline(config)
        _same_in_chunks(config, monkeypatch, sizes=(3, 5000))


def test_tool_calls_are_the_same_read_in_chunks(tmp_path, monkeypatch):
    # text instead of a call every fourth item, arguments dropped every third
    config, _ = tools_project_with_broken_candidate(tmp_path / "tools", text_every=4, drop_arguments_every=3)
    run_pipeline(config)
    _same_in_chunks(config, monkeypatch, sizes=(1, 5, 5000))
    monkeypatch.setenv(CHUNK_ENV, "5")
    tool_errors = run_pipeline(config, allow_calls=False, texts=False).comparisons[CANDIDATE].tool_errors
    assert tool_errors["candidate"].sum() > tool_errors["baseline"].sum() > 0  # counted over every chunk


def test_what_is_missing_is_counted_over_every_chunk(project, monkeypatch):
    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
    with Store(config.store_path, create=False) as store:  # answers gone in the first and the last chunk
        store.execute("DELETE FROM responses WHERE cache_key IN (SELECT cache_key FROM run_items "
                      "WHERE item_id IN ('i00', 'i01', 'i38', 'i39'))")
    monkeypatch.setenv(CHUNK_ENV, "7")
    monkeypatch.setenv(forked.WORKERS_ENV, "2")  # the last chunks read by a forked child
    with pytest.raises(InputError) as error:
        run_pipeline(config, allow_calls=False, texts=False)
    text = str(error.value)
    assert f"4 of {N} responses are not in the store" in text and "generate them first" in text


def test_a_compact_frame_of_answers_holds_no_text():
    responses = pd.DataFrame({"item_id": ["a", "b", "c"], "model": ["m", "m", "m"], "sample_index": [0, 0, 0],
                              "response": ["four", None, "ten chars!"], "tool_calls": [(), (), ()],
                              "error": [None, "timeout", None], "cache_key": ["k1", "k2", "k3"],
                              "latency_s": [0.1, None, 0.3]})
    compact = compact_responses(responses)
    assert {"response", "tool_calls", "cache_key"}.isdisjoint(compact.columns)
    assert compact["answered"].tolist() == [True, False, True]
    assert compact["response_chars"].tolist()[::2] == [4.0, 10.0] and pd.isna(compact["response_chars"][1])
    assert compact_responses(compact) is compact  # compact already: as it is
    assert compact_responses(responses.iloc[:0])["answered"].tolist() == []


def test_rows_left_unscored_are_one_warning_over_every_chunk(project, monkeypatch, recwarn):
    import warnings

    from workbench.metrics import MetricWarning

    items = [json.loads(line) for line in (project / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    for k in (0, 1, 38):  # no reference on three items, in the first and the last chunk
        items[k].pop("reference")
    (project / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
    monkeypatch.setenv(CHUNK_ENV, "7")
    monkeypatch.setenv(forked.WORKERS_ENV, "2")  # the warnings of a forked child's chunks too
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_pipeline(config, allow_calls=False, texts=False)
    unscored = [str(w.message) for w in caught if issubclass(w.category, MetricWarning)]
    assert len(unscored) == 1  # one for the whole read, as one read of every item gives, not one per chunk
    assert unscored[0].startswith(f"metric 'chrf': 6 of {2 * N} rows have no reference; their value is NaN (items: i00")


def test_a_forked_reader_starts_only_where_its_items_pay_off_its_start(project, monkeypatch):
    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
    processes = []
    map_forked = forked.map_forked

    def counted(work, jobs, resource, workers, **kwargs):
        processes.append((len(jobs), workers))
        return map_forked(work, jobs, resource, workers, **kwargs)

    monkeypatch.setattr(forked, "map_forked", counted)
    monkeypatch.delenv(forked.WORKERS_ENV, raising=False)
    monkeypatch.setenv(CHUNK_ENV, "5")  # 8 chunks of 5 items
    held = _record(run_pipeline(config, allow_calls=False, texts=False))
    monkeypatch.setattr(pipeline, "MIN_ITEMS_EACH", N // 2)  # as if 20 items paid off a child's start
    assert _record(run_pipeline(config, allow_calls=False, texts=False)) == held
    monkeypatch.setattr(pipeline, "MIN_ITEMS_EACH", N // 2 + 1)  # 21 items each: 40 give one process
    run_pipeline(config, allow_calls=False, texts=False)
    cpus = min(len(os.sched_getaffinity(0)), forked.MAX_WORKERS)
    assert processes == [(8, 1), (8, min(cpus, 2)), (8, 1)], "by items, not by chunks: 8 chunks of 5 stay here"
