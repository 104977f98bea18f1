"""A real local judge (SmolLM2-135M-Instruct on CPU) end to end, on three items.

A 135M model is a weak judge: the point is not its accuracy but that the pipeline reports what it
did honestly — every verdict is exactly what the model wrote, every failure is a recorded judge
error (never a default score or a tie), and a re-run is served from the store.
"""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.calls import CallPolicy, run_sync
from workbench.judges import JudgeSpec, judge_pairwise, judge_pointwise
from workbench.judges.engine import to_ab
from workbench.judges.pairwise import combine
from workbench.judges.parse import ParseError, parse_score, parse_verdict
from workbench.judges.templates import answer_text, get_template
from workbench.models import get_model
from workbench.models.base import Sampling

from .judge_helpers import responses

MODEL = "hf/smollm2-135m-instruct"
POLICY = CallPolicy(timeout_s=300, max_attempts=1)


@pytest.fixture(scope="module")
def judge():
    try:
        adapter = get_model(MODEL, batch_size=4)
    except Exception as exc:  # the bundled model package is missing: say so, do not pass silently
        pytest.skip(f"{MODEL} is not available here: {exc}")
    run_sync(adapter.prepare())  # load once, outside any call's timeout
    yield adapter
    run_sync(adapter.aclose())


def _stored_rows_match_the_raw_output(store, template_id):
    """Every stored verdict re-parses from the raw output the model wrote; every error does not."""
    template = get_template(template_id)
    rows = store.frame("SELECT kind, position, verdict, score, raw_output FROM judgments")
    for row in rows.itertuples():
        if row.kind == "pointwise":
            assert parse_score(answer_text(template, "pointwise", row.raw_output)).score == row.score
        else:
            parsed = parse_verdict(answer_text(template, "pairwise", row.raw_output)).verdict
            assert to_ab(parsed, row.position) == row.verdict
    for raw in store.frame("SELECT raw_output FROM judge_errors WHERE raw_output IS NOT NULL")["raw_output"]:
        kind_parser = parse_score if template.mode and "Score" in raw else None
        with pytest.raises(ParseError):
            (kind_parser or _any_parser(template))(raw)
    return rows


def _any_parser(template):
    def parse(raw):
        errors = 0
        for kind, parser in (("pointwise", parse_score), ("pairwise", parse_verdict)):
            try:
                parser(answer_text(template, kind, raw))
            except ParseError:
                errors += 1
        if errors == 2:
            raise ParseError("neither")
    return parse


@pytest.mark.slow
def test_local_model_judges_honestly(store, items, judge):
    spec = JudgeSpec(model=MODEL, template="completion-v1")
    base = responses("base", {"q1": "The capital of France is Paris.", "q2": "2+2 equals 4.", "q3": "Red."})
    cand = responses("cand", {"q1": "It is Lyon.", "q2": "five", "q3": "Blue is a primary colour."})

    point = judge_pointwise(store, spec, items, base, ["fluency", "correctness"], policy=POLICY, adapter=judge)
    scores = point.scores
    assert len(scores) == 6
    for row in scores.itertuples():
        if pd.isna(row.error):
            assert 1 <= row.score <= 5 and row.n_samples == 1 and row.n_errors == 0
        else:  # no score, and a reason on record
            assert pd.isna(row.score) and row.n_samples == 0
            assert row.error.startswith(("unparseable judge output", "judge model call failed", "criterion "))
    q3 = scores.set_index(["item_id", "criterion"]).loc[("q3", "correctness")]
    assert "needs a reference" in q3["error"]  # q3 has no reference: not judged, said so

    pair = judge_pairwise(store, spec, items, base, cand, criterion="fluency", policy=POLICY, adapter=judge)
    verdicts = pair.verdicts
    assert len(verdicts) == 3 and len(pair.orders) == 6
    for row in verdicts.itertuples():
        if pd.isna(row.error):
            assert (row.verdict, row.consistent) == combine(row.verdict_ab, row.verdict_ba)
        else:
            assert pd.isna(row.verdict) and row.n_errors >= 1

    rows = _stored_rows_match_the_raw_output(store, "completion-v1")
    n_errors = store.frame("SELECT count(DISTINCT judge_key) AS n FROM judge_errors")["n"][0]
    assert len(rows) + n_errors == 5 + 6  # each judgment is either a verdict or an error on record
    assert n_errors == point.stats.errors + pair.stats.errors

    again = judge_pairwise(store, spec, items, base, cand, criterion="fluency", policy=POLICY, adapter=judge)
    assert again.stats.model_calls == 0
    pd.testing.assert_frame_equal(again.verdicts, verdicts)
    print("\npointwise:\n", scores.to_string(), "\npairwise:\n", verdicts.to_string(), "\nstats:",
          point.stats.as_dict(), pair.stats.as_dict())


@pytest.mark.slow
def test_local_model_with_the_chat_template(store, items, judge):
    """The chat template asks for a rationale: a 135M model often fails the format; whatever it does
    must end as a score that re-parses from its output, or as a recorded error."""
    spec = JudgeSpec(model=MODEL, template="chat-v1", retries=1, sampling=Sampling(max_tokens=48))
    frame = responses("base", {"q1": "The capital of France is Paris."})
    result = judge_pointwise(store, spec, items, frame, "fluency", policy=POLICY, adapter=judge)
    row = result.scores.iloc[0]
    errors = store.frame("SELECT * FROM judge_errors")
    if pd.isna(row["score"]):
        assert len(errors) == 1 and "attempt(s)" in row["error"] and errors["raw_output"][0]
    else:
        assert len(errors) == 0 and 1 <= row["score"] <= 5
    _stored_rows_match_the_raw_output(store, "chat-v1")
    print("\nchat-v1:", row.to_dict())
