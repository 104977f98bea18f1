"""Pointwise judging through the scripted fake judge: scores, caching, retries, errors on record."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from .judge_helpers import ScriptedJudge, attempt, prompt_text, responses

from workbench.errors import ModelCallError
from workbench.judges import JudgeSpec, judge_pointwise
from workbench.models.base import Sampling

SPEC = JudgeSpec(model="fake/scripted-judge")


def grade_by_content(request):
    """5 when the response mentions Paris or 4, else 2 — a deterministic 'judge'."""
    response = prompt_text(request).split("[Response]\n", 1)[1].split("\n[End of response]")[0]
    score = 5 if ("Paris" in response or response.strip() == "4") else 2
    return f"Judged '{response}'.\nScore: {score}"


def test_scores_rationales_and_stored_rows(store, items):
    judge = ScriptedJudge(grade_by_content)
    frame = responses("m1", {"q1": "Paris", "q2": "5", "q3": "Red"})
    result = judge_pointwise(store, SPEC, items, frame, ["fluency", "Is the reply polite to the customer?"],
                             adapter=judge)
    scores = result.scores.set_index(["item_id", "criterion"])
    assert list(result.scores.columns) == ["item_id", "model", "sample_index", "criterion", "score", "score_std",
                                           "n_samples", "n_errors", "rationale", "error"]
    assert scores.loc[("q1", "fluency"), "score"] == 5.0
    assert scores.loc[("q2", "fluency"), "score"] == 2.0
    assert scores.loc[("q1", "fluency"), "rationale"] == "Judged 'Paris'."
    assert math.isnan(scores.loc[("q1", "fluency"), "score_std"])  # one sample: no spread
    assert (result.scores["n_samples"] == 1).all() and result.scores["error"].isna().all()
    assert len(judge.calls) == 6 and result.stats.model_calls == 6
    stored = store.frame("SELECT * FROM judgments ORDER BY item_id, criterion")
    assert len(stored) == 6 and set(stored["kind"]) == {"pointwise"}
    assert set(stored["response_key_a"]) == {"m1:q1", "m1:q2", "m1:q3"}
    assert stored["raw_output"].str.endswith(("Score: 5", "Score: 2")).all()
    assert '"template":"chat-v1"' in stored["judge_spec_json"][0].replace(" ", "")
    # the judge's raw output is an ordinary cached model call
    assert store.frame("SELECT count(*) AS n FROM responses")["n"][0] == 6


def test_second_run_makes_no_model_call_and_spec_change_misses(store, items):
    judge = ScriptedJudge(grade_by_content)
    frame = responses("m1", {"q1": "Paris", "q2": "4"})
    first = judge_pointwise(store, SPEC, items, frame, "fluency", adapter=judge)
    assert len(judge.calls) == 2
    again = judge_pointwise(store, SPEC, items, frame, "fluency", adapter=judge)
    assert len(judge.calls) == 2 and again.stats.model_calls == 0 and again.stats.cached == 2
    assert again.samples["cached"].all()
    assert again.scores["score"].tolist() == first.scores["score"].tolist()

    changed = SPEC.model_copy(update={"sampling": Sampling(temperature=0.0, max_tokens=300)})
    judge_pointwise(store, JudgeSpec(**changed.model_dump()), items, frame, "fluency", adapter=judge)
    assert len(judge.calls) == 4  # new sampling -> new judge keys and new calls

    edited = responses("m1", {"q1": "Paris!", "q2": "4"})
    judge_pointwise(store, SPEC, items, edited, "fluency", adapter=judge)
    assert len(judge.calls) == 5  # only the changed response is judged again
    judge_pointwise(store, SPEC, items, frame, "instruction_following", adapter=judge)
    assert len(judge.calls) == 7  # another criterion is another judgment
    assert store.frame("SELECT count(*) AS n FROM judgments")["n"][0] == 7


def test_garbage_is_retried_then_recorded_as_a_judge_error(store, items):
    judge = ScriptedJudge(lambda r: "I think it is quite good overall.")
    result = judge_pointwise(store, SPEC, items, responses("m1", {"q1": "Paris"}), "fluency", adapter=judge)
    row = result.scores.iloc[0]
    assert math.isnan(row["score"]) and row["n_samples"] == 0 and row["n_errors"] == 1
    assert "unparseable judge output after 3 attempt(s)" in row["error"]
    assert [attempt(r) for r in judge.calls] == [0, 1, 2]  # the first ask and two re-asks
    assert store.frame("SELECT count(*) AS n FROM judgments")["n"][0] == 0
    errors = store.frame("SELECT * FROM judge_errors")
    assert len(errors) == 1 and errors["raw_output"][0] == "I think it is quite good overall."
    assert result.stats.errors == 1 and result.stats.retries == 2

    # a re-run replays the cached calls, makes none, and does not duplicate the error on record
    again = judge_pointwise(store, SPEC, items, responses("m1", {"q1": "Paris"}), "fluency", adapter=judge)
    assert len(judge.calls) == 3 and again.stats.model_calls == 0
    assert math.isnan(again.scores["score"][0])
    assert store.frame("SELECT count(*) AS n FROM judge_errors")["n"][0] == 1


def test_a_reask_that_succeeds_gives_a_score(store, items):
    judge = ScriptedJudge(lambda r: "Pretty good." if attempt(r) == 0 else "Fixed.\nScore: 4")
    result = judge_pointwise(store, SPEC, items, responses("m1", {"q1": "Paris"}), "fluency", adapter=judge)
    assert result.scores["score"][0] == 4.0 and pd.isna(result.scores["error"][0])
    assert len(judge.calls) == 2 and store.frame("SELECT count(*) AS n FROM judge_errors")["n"][0] == 0


def test_no_retries_when_retries_is_zero(store, items):
    judge = ScriptedJudge(lambda r: "nonsense")
    spec = JudgeSpec(model="fake/scripted-judge", retries=0)
    result = judge_pointwise(store, spec, items, responses("m1", {"q1": "Paris"}), "fluency", adapter=judge)
    assert len(judge.calls) == 1 and "after 1 attempt(s)" in result.scores["error"][0]


def test_model_call_failure_is_a_judge_error(store, items):
    judge = ScriptedJudge(lambda r: ModelCallError("bad_request", "context too long"))
    result = judge_pointwise(store, SPEC, items, responses("m1", {"q1": "Paris"}), "fluency", adapter=judge)
    assert "judge model call failed" in result.scores["error"][0] and "context too long" in result.scores["error"][0]
    assert store.frame("SELECT count(*) AS n FROM judge_errors")["n"][0] == 1


def test_several_samples_give_mean_and_spread(store, items):
    scores = {0: 5, 1: 3, 2: 4}
    judge = ScriptedJudge(lambda r: f"ok\nScore: {scores[r.sample_index]}")
    spec = JudgeSpec(model="fake/scripted-judge", samples=3, sampling=Sampling(temperature=0.8, max_tokens=64))
    result = judge_pointwise(store, spec, items, responses("m1", {"q1": "Paris"}), "fluency", adapter=judge)
    row = result.scores.iloc[0]
    assert row["score"] == 4.0 and row["score_std"] == pytest.approx(1.0) and row["n_samples"] == 3
    assert sorted(result.samples["judge_sample"]) == [0, 1, 2] and len(judge.calls) == 3


def test_partial_sample_failure_keeps_the_parsed_samples(store, items):
    judge = ScriptedJudge(lambda r: "garbage" if r.sample_index == 1 else "ok\nScore: 4")
    spec = JudgeSpec(model="fake/scripted-judge", samples=2, retries=1, sampling=Sampling(temperature=0.8))
    row = judge_pointwise(store, spec, items, responses("m1", {"q1": "Paris"}), "fluency", adapter=judge).scores.iloc[0]
    assert row["score"] == 4.0 and row["n_samples"] == 1 and row["n_errors"] == 1 and pd.isna(row["error"])


def test_missing_reference_missing_response_and_unmatched_items(store, items):
    judge = ScriptedJudge(grade_by_content)
    frame = responses("m1", {"q1": "Paris", "q2": None, "q3": "Red", "q9": "??"}, errors={"q2": "server: boom"})
    frame = pd.concat([frame, responses("m2", {"q1": "Lyon"})], ignore_index=True)
    result = judge_pointwise(store, SPEC, items, frame, "correctness", adapter=judge)
    by_key = result.scores.set_index(["item_id", "model"])
    assert by_key.loc[("q1", "m1"), "score"] == 5.0 and by_key.loc[("q1", "m2"), "score"] == 2.0
    assert "generation failed: server: boom" in by_key.loc[("q2", "m1"), "error"]
    assert "needs a reference" in by_key.loc[("q3", "m1"), "error"]
    assert math.isnan(by_key.loc[("q3", "m1"), "score"])
    assert len(judge.calls) == 2  # only the judgeable responses reach the judge
    unmatched = {(r.item_id, r.model, r.reason) for r in result.unmatched.itertuples()}
    assert ("q9", "m1", "item_id not found in items") in unmatched
    assert ("q2", "m2", "no response from this model") in unmatched and ("q3", "m2", "no response from this model") in unmatched


def test_identical_texts_share_one_judgment(store, items):
    judge = ScriptedJudge(grade_by_content)
    frame = pd.concat([responses("m1", {"q1": "Paris"}), responses("m2", {"q1": "Paris"})], ignore_index=True)
    result = judge_pointwise(store, SPEC, items, frame, "fluency", adapter=judge)
    assert len(judge.calls) == 1 and result.scores["score"].tolist() == [5.0, 5.0]


def test_adapter_must_match_the_spec(store, items):
    from workbench.errors import InputError

    with pytest.raises(InputError, match="judge spec names"):
        judge_pointwise(store, JudgeSpec(model="fake/other"), items, responses("m1", {"q1": "x"}), "fluency",
                        adapter=ScriptedJudge(grade_by_content))
