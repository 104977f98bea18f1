"""Scores kept in the store: a warm scoring reads them and computes nothing it has; the numbers are the
same with and without the cache; a changed answer, item, language, version or parameter is scored
again; unversioned metrics are never stored; a read-only store is read and never written."""
from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import pytest

from workbench.items.tool_calls import ToolCall
from workbench.metrics import score_responses
from workbench.metrics.base import Metric
from workbench.metrics.score_cache import metric_version, reference_key, response_key
from workbench.store import open_store

from tests.metrics.counting import count_computations


@pytest.fixture
def items():
    return pd.DataFrame({"item_id": ["ja1", "en1", "en2", "noref"], "input": ["q"] * 4,
                         "reference": ["返金は五営業日以内に処理されます。", "Refunds are processed within five business days.",
                                       "Your order ships tomorrow.", None],
                         "language": ["ja", "en", "en", "en"]})


@pytest.fixture
def responses():
    return pd.DataFrame({"item_id": ["ja1", "en1", "en2", "noref", "ja1", "en1", "en2", "noref"],
                         "model": ["a"] * 4 + ["b"] * 4, "sample_index": [0] * 8,
                         "response": ["返金の処理は五営業日以内に行われます。", "Your refund takes five business days.",
                                      "Ships tomorrow.", "x", None, "Refunds are processed within five business days.",
                                      "", "y"]})


@pytest.fixture
def calls(monkeypatch):
    """How many rows each metric computed (the cache's reads are not computations)."""
    return count_computations(monkeypatch)


METRICS = ["chrf", "bleu", "rouge_l", "length_chars", "exact_match"]


def _score(items, responses, metrics=METRICS, store=None):
    with pytest.warns(Warning):  # no reference, no response: warned either way
        return score_responses(items, responses, metrics, store=store)


def _rows(store) -> int:
    return int(store.execute("SELECT count(*) FROM scores").fetchone()[0])


def test_warm_scoring_reads_the_store_and_gives_the_same_numbers(tmp_path, items, responses, calls):
    plain = _score(items, responses)
    with open_store(tmp_path / "s.db") as store:
        cold = _score(items, responses, store=store)
        assert _rows(store) == 3 * 5  # chrf, bleu, rouge_l on the 5 answered rows with a reference
        calls.clear()
        warm = _score(items, responses, store=store)
        assert _rows(store) == 3 * 5
    pd.testing.assert_frame_equal(cold, plain)
    pd.testing.assert_frame_equal(warm, plain)
    # computed again: only the metrics that are not cached (cheap ones)
    assert calls == Counter({"length_chars": 7, "exact_match": 5})


def test_what_a_metric_read_keys_its_score(tmp_path, items, responses, calls):
    with open_store(tmp_path / "s.db") as store:
        _score(items, responses, ["chrf"], store=store)
        changed = responses.copy()
        changed.loc[1, "response"] = "Another answer entirely."  # one answer changed
        calls.clear()
        _score(items, changed, ["chrf"], store=store)
        assert calls["chrf"] == 1
        moved = items.copy()
        moved.loc[2, "reference"] = "Your order ships on Monday."  # one reference changed: both models' rows
        moved.loc[0, "language"] = "en"  # one language changed: the same text scored another way
        calls.clear()
        _score(moved, responses, ["chrf"], store=store)
        assert calls["chrf"] == 3  # en2 x 2 models, ja1 x model a (model b failed there)


def test_a_new_version_or_parameter_is_scored_again(tmp_path, items, responses, calls):
    def exclaim(responses, _refs, _langs):
        return [float(r.count("!")) for r in responses]

    v1 = Metric("bangs", exclaim, None, "mean", False, "bangs", params={"p": 1}, version="1")
    v2 = Metric("bangs", exclaim, None, "mean", False, "bangs", params={"p": 1}, version="2")
    p2 = Metric("bangs", exclaim, None, "mean", False, "bangs", params={"p": 2}, version="1")
    assert len({metric_version(v1), metric_version(v2), metric_version(p2)}) == 3
    with open_store(tmp_path / "s.db") as store:
        for metric, expected in ((v1, 7), (v1, 0), (v2, 7), (p2, 7), (p2, 0)):
            calls.clear()
            _score(items, responses, [metric], store=store)
            assert calls["bangs"] == expected


def test_an_unversioned_metric_is_never_stored(tmp_path, items, responses, calls):
    custom = Metric("mine", lambda r, _f, _l: [1.0] * len(r), None, "mean", False, "custom, no version")
    with open_store(tmp_path / "s.db") as store:
        _score(items, responses, [custom, "length_chars", "contains:five"], store=store)
        calls.clear()
        _score(items, responses, [custom, "length_chars", "contains:five"], store=store)
        assert _rows(store) == 0 and calls == Counter({"mine": 7, "length_chars": 7, "contains:five": 7})


def test_a_read_only_store_is_read_and_never_written(tmp_path, items, responses, calls):
    path = tmp_path / "s.db"
    with open_store(path) as store:
        _score(items, responses, ["chrf"], store=store)
        store.execute("DELETE FROM scores WHERE rowid IN (SELECT rowid FROM scores LIMIT 2)")
    plain = _score(items, responses, ["chrf", "bleu"])
    with open_store(path, create=False, read_only=True) as store:
        calls.clear()
        scored = _score(items, responses, ["chrf", "bleu"], store=store)  # no error
        assert calls == Counter({"chrf": 2, "bleu": 5}) and _rows(store) == 3
    pd.testing.assert_frame_equal(scored, plain)


def test_not_applicable_is_kept_as_nan_with_its_note(tmp_path):
    items = pd.DataFrame({"item_id": ["w", "plain"], "input": ["weather?", "hi"],
                          "expected_calls": [[{"get_weather": {"city": ["Paris"]}}], None]})
    responses = pd.DataFrame({"item_id": ["w", "plain"], "model": ["a", "a"], "response": ["", "hello"],
                              "tool_calls": [(ToolCall("get_weather", {"city": "Paris"}),), ()]})
    plain = score_responses(items, responses, ["tool_call_accuracy"])
    with open_store(tmp_path / "s.db") as store:
        score_responses(items, responses, ["tool_call_accuracy"], store=store)
        warm = score_responses(items, responses, ["tool_call_accuracy"], store=store)
        assert store.execute("SELECT value FROM scores ORDER BY value").fetchall() == [(None,), (1.0,)]
    pd.testing.assert_frame_equal(warm, plain)
    assert math.isnan(warm["value"].iloc[1]) and warm["note"].iloc[1] == "no_expected_calls"


def test_keys_separate_what_metrics_read():
    call = (ToolCall("get_weather", {"city": "Paris"}),)
    assert response_key("x") != response_key("x", call, reads_calls=True)
    assert response_key("x", call, reads_calls=False) == response_key("x")  # text metrics ignore calls
    assert response_key("", (), reads_calls=True) != response_key("", None, reads_calls=True)
    assert response_key("", call, True) != response_key("", (ToolCall("get_weather", {"city": "Rome"}),), True)
    assert reference_key("en", "r", {}) != reference_key("ja", "r", {})
    assert reference_key("en", "r", {"tools": None}) != reference_key("en", "r", {"tools": []})


@pytest.mark.parametrize("language, reference, key", [
    ("ja", 'a "quoted"\n\\ 日本 \u2028\x00\x1f', "425631f0bff1f34b280b0c16b59e0e00779aec2212e86253e4b01059087188c2"),
    ("en", None, "6d986c0e3378e2fb33af16ba73181f115a4a76366f5cfd63b9bdf24c54c45c58"),
    ("en", "", "97ef0d5f99e72d9979eb8962d03832473c2f3771b2e6a06b76396f1d203598f3"),
])
def test_a_text_metrics_reference_key_is_the_key_stores_hold(language, reference, key):
    """Pinned: what the code before issue 25's read path work stored (canonical JSON of the pair)."""
    from workbench.hashing import canonical_json
    from workbench.metrics.score_cache import _digest

    assert reference_key(language, reference, {}) == key
    assert _digest(canonical_json({"language": language, "reference": reference})) == key


@pytest.mark.parametrize("value, key", [
    ('in "put"\n日本\x7f', "74d1c2ea1858edfe0e710dd84945c2b80bcae69399a488b942b908e00b5baf90"),
    ("", "12ae32cb1ec02d01eda3581b127c1fee3b0dc53572ed6baf239721a03d82e126"),
])
def test_a_record_key_of_text_is_the_key_stores_hold(value, key):
    from workbench.metrics.score_cache import record_key

    assert record_key(value) == key


def test_collection_is_paused_inside_the_block_and_restored_after_it_even_on_an_error():
    import gc

    from workbench.metrics.score_cache import collection_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        assert not gc.isenabled()
        raise RuntimeError("the block failed")
    assert gc.isenabled()
    gc.disable()  # a caller that turned collection off keeps it off
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_text_answer_is_hashed_once_for_the_scoring_and_the_behaviour_diff(tmp_path, monkeypatch):
    """Each answer's text key is remembered (`_text_key`): the behaviour diff after the scoring hashes
    no answer again, and its keys are those `response_key` gives."""
    from workbench.metrics import behaviour_diff, score_cache

    items = pd.DataFrame({"item_id": ["a", "b"], "input": ["Where is my order?", "Refund please"],
                          "reference": ["It ships today.", "Refunded."], "language": ["en", "en"]})
    answers = pd.DataFrame({"item_id": ["a", "b", "a", "b"], "model": ["m1", "m1", "m2", "m2"],
                            "response": ["It ships today!", "Done.", "Tomorrow it ships, I think.", "No refund."]})
    hashed: list[str] = []
    digest = score_cache._digest
    monkeypatch.setattr(score_cache, "_digest", lambda text: hashed.append(text) or digest(text))
    score_cache._text_key.cache_clear()
    with open_store(tmp_path / "s.db") as store:
        score_responses(items, answers, ["chrf"], store=store)
        texts = [h for h in hashed if h.startswith("t")]
        assert sorted(texts) == sorted("t" + r for r in answers["response"])  # each answer once
        behaviour_diff(items, answers[answers.model == "m1"], answers[answers.model == "m2"], store=store)
    assert [h for h in hashed if h.startswith("t")] == texts  # none hashed again
    assert score_cache._text_key("Done.") == digest("tDone.") == response_key("Done.")


def test_forget_answers_drops_the_remembered_keys_and_the_same_text_keeps_its_key():
    from workbench.metrics import score_cache

    key = response_key("an answer read in one chunk")
    assert score_cache._text_key.cache_info().currsize >= 1
    score_cache.forget_answers()
    assert score_cache._text_key.cache_info().currsize == 0
    assert response_key("an answer read in one chunk") == key  # a key is the text's digest, remembered or not
