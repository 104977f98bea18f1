"""A real local judge (SmolLM2-135M-Instruct on CPU) end to end, on two items.

A 135M model is a weak judge: the point is not its accuracy but that the pipeline reports what it
did honestly — every verdict is exactly what the model wrote, every failure is a recorded judge
error (never a default score or a tie), and a re-run is served from the store.
Measured here: it answers "Score: 4.5" (rejected) to rubric prompts and "A] A]" to pairwise ones
in both orders (parsed as A; a position-biased judge, so the combined verdict is an inconsistent tie).
"""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.generation.calls import CallPolicy, run_sync
from workbench.judges import JudgeSpec, judge_pairwise, judge_pointwise
from workbench.judges.engine import to_ab
from workbench.judges.pairwise import combine
from workbench.judges.parse import ParseError, parse_score, parse_verdict
from workbench.judges.templates import answer_text, get_template
from workbench.models import get_model
from workbench.models.base import Sampling

from .judge_helpers import responses

MODEL = "hf/smollm2-135m-instruct"
POLICY = CallPolicy(timeout_s=600, budget_s=1200, max_attempts=1)


@pytest.fixture(scope="module")
def judge():
    adapter = get_model(MODEL, batch_size=8)  # fails loudly if the bundled model is not installed
    run_sync(adapter.prepare())  # load once, outside any call's timeout
    yield adapter
    run_sync(adapter.aclose())


def check_store_matches_raw_output(store, judged: dict[str, tuple[str, str]]) -> None:
    """Every stored verdict re-parses from the raw output the model wrote; every recorded
    unparseable output really does not parse. `judged`: judge_key -> (kind, template id)."""
    parsers = {"pointwise": parse_score, "pairwise": parse_verdict}
    for row in store.frame("SELECT judge_key, kind, position, verdict, score, raw_output FROM judgments").itertuples():
        kind, template_id = judged[row.judge_key]
        parsed = parsers[kind](answer_text(get_template(template_id), kind, row.raw_output))
        assert (parsed.score == row.score) if kind == "pointwise" else (to_ab(parsed.verdict, row.position) == row.verdict)
    for row in store.frame("SELECT judge_key, message, raw_output FROM judge_errors").itertuples():
        assert row.message.startswith(("unparseable judge output", "judge model call failed"))
        if row.message.startswith("unparseable"):
            kind, template_id = judged[row.judge_key]
            with pytest.raises(ParseError):
                parsers[kind](answer_text(get_template(template_id), kind, row.raw_output))


@pytest.mark.slow
def test_local_model_judges_honestly(store, items, judge):
    items = items.iloc[:2]
    spec = JudgeSpec(model=MODEL, template="completion-v1", retries=1)
    base = responses("base", {"q1": "The capital of France is Paris.", "q2": "2+2 equals 4."})
    cand = responses("cand", {"q1": "It is Lyon.", "q2": "five"})

    pair = judge_pairwise(store, spec, items, base, cand, criterion="correctness", policy=POLICY, adapter=judge)
    point = judge_pointwise(store, spec, items, base, "fluency", policy=POLICY, adapter=judge)
    chat_spec = JudgeSpec(model=MODEL, template="chat-v1", retries=0, sampling=Sampling(max_tokens=40))
    chat = judge_pointwise(store, chat_spec, items.iloc[:1], base.iloc[:1], "fluency", policy=POLICY, adapter=judge)
    print("\npairwise:\n", pair.verdicts.drop(columns=["rationale"]).to_string(),
          "\npointwise:\n", point.scores.drop(columns=["rationale"]).to_string(),
          "\nchat-v1:\n", chat.scores.drop(columns=["rationale"]).to_string(),
          "\nstats:", pair.stats.as_dict(), point.stats.as_dict(), chat.stats.as_dict())

    assert len(pair.verdicts) == 2 and len(pair.orders) == 4
    for row in pair.verdicts.itertuples():
        if pd.isna(row.error):
            assert (row.verdict, row.consistent) == combine(row.verdict_ab, row.verdict_ba)
            assert row.n_samples == 2
        else:  # no verdict, never a tie by default
            assert pd.isna(row.verdict) and pd.isna(row.consistent) and row.n_errors >= 1
    for scores in (point.scores, chat.scores):
        for row in scores.itertuples():
            if pd.isna(row.error):
                assert 1 <= row.score <= 5 and row.n_samples == 1
            else:
                assert pd.isna(row.score) and row.n_samples == 0 and row.n_errors == 1

    # the store holds exactly one verdict or one error per judgment, each true to the raw output
    judged = {k: ("pairwise", "completion-v1") for k in pair.orders["judge_key"]}
    judged.update({k: ("pointwise", "completion-v1") for k in point.samples["judge_key"]})
    judged.update({k: ("pointwise", "chat-v1") for k in chat.samples["judge_key"]})
    n_verdicts = store.frame("SELECT count(*) AS n FROM judgments")["n"][0]
    n_errors = store.frame("SELECT count(DISTINCT judge_key) AS n FROM judge_errors")["n"][0]
    assert n_verdicts + n_errors == len(judged) == 4 + 2 + 1
    assert n_errors == pair.stats.errors + point.stats.errors + chat.stats.errors
    check_store_matches_raw_output(store, judged)

    again = judge_pairwise(store, spec, items, base, cand, criterion="correctness", policy=POLICY, adapter=judge)
    assert again.stats.model_calls == 0
    pd.testing.assert_frame_equal(again.verdicts, pair.verdicts)
