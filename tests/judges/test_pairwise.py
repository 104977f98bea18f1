"""Pairwise judging through the scripted fake judge: both orders, mapping back, inconsistency -> tie."""
from __future__ import annotations

import pandas as pd
import pytest
from .judge_helpers import ScriptedJudge, attempt, shown, responses

from workbench.errors import InputError
from workbench.judges import JudgeSpec, judge_pairwise
from workbench.judges.pairwise import candidate_score, combine, majority
from workbench.models.base import Sampling

SPEC = JudgeSpec(model="fake/scripted-judge")


def prefers(word):
    """A fair judge: prefers the shown response containing `word`; tie when both or neither do."""
    def reply(request):
        a, b = shown(request)
        if (word in a) == (word in b):
            return "Equal.\nVerdict: [[C]]"
        return "Reason.\nVerdict: [[A]]" if word in a else "Reason.\nVerdict: [[B]]"
    return reply


def always_first(request):
    """A position-biased judge: whatever is shown first wins."""
    return "The first one.\nVerdict: [[A]]"


@pytest.fixture
def pair():
    return (responses("base", {"q1": "Paris GOOD", "q2": "five", "q3": "red"}),
            responses("cand", {"q1": "Lyon", "q2": "4 GOOD", "q3": "blue"}))


def test_both_orders_and_mapping_back(store, items, pair):
    judge = ScriptedJudge(prefers("GOOD"))
    result = judge_pairwise(store, SPEC, items, *pair, criterion="fluency", adapter=judge)
    v = result.verdicts.set_index("item_id")
    assert list(result.verdicts.columns) == ["item_id", "sample_index", "model_a", "model_b", "criterion", "verdict_ab",
                                             "verdict_ba", "verdict", "consistent", "longer", "n_samples", "n_errors",
                                             "rationale", "error"]
    assert v.loc["q1", ["verdict_ab", "verdict_ba", "verdict"]].tolist() == ["A", "A", "A"]
    assert v.loc["q2", ["verdict_ab", "verdict_ba", "verdict"]].tolist() == ["B", "B", "B"]
    assert v.loc["q3", "verdict"] == "tie" and v["consistent"].all()
    assert (v["model_a"] == "base").all() and (v["model_b"] == "cand").all()
    # each pair was shown both ways
    seen = {shown(r) for r in judge.calls}
    assert ("Paris GOOD", "Lyon") in seen and ("Lyon", "Paris GOOD") in seen and len(judge.calls) == 6
    orders = result.orders.set_index(["item_id", "position"])
    assert orders.loc[("q1", "ba"), "verdict"] == "A"  # the judge said [[B]] there: mapped back to a
    stored = store.frame("SELECT item_id, position, verdict, response_key_a, response_key_b FROM judgments "
                         "WHERE item_id='q1' ORDER BY position")
    assert stored.to_dict("records") == [
        {"item_id": "q1", "position": "ab", "verdict": "A", "response_key_a": "base:q1", "response_key_b": "cand:q1"},
        {"item_id": "q1", "position": "ba", "verdict": "A", "response_key_a": "base:q1", "response_key_b": "cand:q1"}]


def test_position_bias_is_a_tie_and_inconsistent(store, items, pair):
    result = judge_pairwise(store, SPEC, items, *pair, criterion="fluency", adapter=ScriptedJudge(always_first))
    v = result.verdicts
    assert (v["verdict_ab"] == "A").all() and (v["verdict_ba"] == "B").all()
    assert (v["verdict"] == "tie").all() and (~v["consistent"].astype(bool)).all()
    assert v["error"].isna().all()


def test_unparseable_is_an_error_never_a_tie(store, items, pair):
    def half_broken(request):
        a, _ = shown(request)
        return "no idea" if a == "Lyon" else "Reason.\nVerdict: [[A]]"  # order 'ba' of q1 never parses
    judge = ScriptedJudge(half_broken)
    result = judge_pairwise(store, SPEC, items, *pair, criterion="fluency", adapter=judge)
    q1 = result.verdicts.set_index("item_id").loc["q1"]
    assert pd.isna(q1["verdict"]) and pd.isna(q1["consistent"]) and q1["verdict_ab"] == "A" and pd.isna(q1["verdict_ba"])
    assert q1["error"].startswith("no verdict in order ba: unparseable judge output after 3 attempt(s)")
    assert q1["n_errors"] == 1 and q1["n_samples"] == 1
    assert sum(1 for r in judge.calls if shown(r)[0] == "Lyon") == 3 and max(attempt(r) for r in judge.calls) == 2
    errors = store.frame("SELECT item_id, raw_output FROM judge_errors")
    assert errors.to_dict("records") == [{"item_id": "q1", "raw_output": "no idea"}]


def test_cache_hit_and_spec_change(store, items, pair):
    judge = ScriptedJudge(prefers("GOOD"))
    first = judge_pairwise(store, SPEC, items, *pair, criterion="fluency", adapter=judge)
    again = judge_pairwise(store, SPEC, items, *pair, criterion="fluency", adapter=judge)
    assert len(judge.calls) == 6 and again.stats.model_calls == 0 and again.stats.cached == 6
    assert again.verdicts.equals(first.verdicts)
    judge_pairwise(store, SPEC, items, *pair, criterion="safety", adapter=judge)
    assert len(judge.calls) == 12
    other = JudgeSpec(model="fake/scripted-judge", retries=1)
    judge_pairwise(store, other, items, *pair, criterion="fluency", adapter=judge)
    assert len(judge.calls) == 12  # a new spec misses the verdict cache, but the model calls are cached
    assert store.frame("SELECT count(*) AS n FROM judgments")["n"][0] == 18


def test_samples_vote_per_order(store, items, pair):
    votes = {0: "A", 1: "A", 2: "C"}

    def reply(request):
        a, _ = shown(request)
        vote = votes[request.sample_index]
        if a.startswith("Lyon") and vote != "C":  # a fair judge in order ba names the same response
            vote = "B"
        return f"r\nVerdict: [[{vote}]]"
    spec = JudgeSpec(model="fake/scripted-judge", samples=3, sampling=Sampling(temperature=0.7))
    base, cand = pair
    result = judge_pairwise(store, spec, items, base.iloc[:1], cand.iloc[:1], criterion="fluency",
                            adapter=ScriptedJudge(reply))
    row = result.verdicts.iloc[0]
    assert (row["verdict_ab"], row["verdict_ba"], row["verdict"], row["n_samples"]) == ("A", "A", "A", 6)
    assert len(result.orders) == 6


def test_unmatched_missing_and_longer(store, items):
    base = responses("base", {"q1": "Paris, the capital", "q2": None, "q4": "x"}, errors={"q2": "timeout: slow"})
    cand = responses("cand", {"q1": "Paris", "q2": "4", "q3": "blue"})
    judge = ScriptedJudge(prefers("Paris"))
    result = judge_pairwise(store, SPEC, items, base, cand, criterion="correctness", adapter=judge)
    v = result.verdicts.set_index("item_id")
    assert list(v.index) == ["q1", "q2"]
    assert v.loc["q1", "longer"] == "a" and v.loc["q1", "verdict"] == "tie"
    assert pd.isna(v.loc["q2", "longer"])
    assert pd.isna(v.loc["q2", "verdict"]) and v.loc["q2", "error"].startswith("baseline: no response to judge")
    reasons = {(r.item_id, r.model): r.reason for r in result.unmatched.itertuples()}
    assert reasons == {("q4", "base"): "item_id not found in items", ("q3", "cand"): "candidate only: no baseline response"}
    assert len(judge.calls) == 2


def test_input_checks(store, items, pair):
    base, cand = pair
    judge = ScriptedJudge(always_first)
    with pytest.raises(InputError, match="exactly one model"):
        judge_pairwise(store, SPEC, items, pd.concat([base, cand], ignore_index=True), cand, adapter=judge)
    with pytest.raises(InputError, match="duplicate response"):
        judge_pairwise(store, SPEC, items, pd.concat([base, base], ignore_index=True), cand, adapter=judge)
    with pytest.raises(InputError, match="missing column"):
        judge_pairwise(store, SPEC, items.drop(columns=["input"]), base, cand, adapter=judge)


@pytest.mark.parametrize("votes, expected", [
    ([], None), (["A"], "A"), (["A", "B"], "tie"), (["A", "A", "B"], "A"), (["tie", "tie", "B"], "tie"),
    (["A", "B", "tie"], "tie"),
])
def test_majority(votes, expected):
    assert majority(votes) == expected


def test_combine():
    assert combine("A", "A") == ("A", True)
    assert combine("A", "B") == ("tie", False)
    assert combine("A", "tie") == ("tie", False)
    assert combine("tie", "tie") == ("tie", True)
    assert combine(None, "A") == (None, None)


def test_candidate_score():
    assert [candidate_score(v) for v in ("A", "B", "tie")] == [0.0, 1.0, 0.5]
    assert all(pd.isna(candidate_score(v)) for v in (None, float("nan"), "C"))
