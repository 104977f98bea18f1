"""Judges see what the model saw: the retrieved passages, the conversation it continues and the calls
an answer made; `groundedness` judges against the passages and refuses items without them."""
from __future__ import annotations

import pandas as pd
from .judge_helpers import ScriptedJudge, prompt_text

from workbench.items.tool_calls import ToolCall
from workbench.judges import JudgeSpec, judge_pairwise, judge_pointwise

SPEC = JudgeSpec(model="fake/scripted-judge")
ITEMS = pd.DataFrame({
    "item_id": ["rag", "chat", "plain"],
    "input": ["When does it ship?", "And the refund?", "Hi"],
    "context": [["Orders ship in 2 days.", "Refunds take 14 days."], None, None],
    "messages": [None, [{"role": "user", "content": "Order 5?"},
                        {"role": "assistant", "content": None, "tool_calls": [{"name": "get_order",
                                                                               "arguments": {"order_id": 5}}]},
                        {"role": "tool", "content": "shipped"}, {"role": "user", "content": "And the refund?"}], None],
})


def _responses(model, texts, calls=None):
    return pd.DataFrame({"item_id": list(texts), "model": model, "response": list(texts.values()),
                         "tool_calls": [(calls or {}).get(i, ()) for i in texts]})


def test_groundedness_shows_the_passages_and_refuses_items_without_them(store):
    judge = ScriptedJudge(lambda request: "fine\nScore: 4")
    result = judge_pointwise(store, SPEC, ITEMS, _responses("m", {"rag": "In 2 days.", "plain": "Hello"}),
                             "groundedness", adapter=judge)
    scores = result.scores.set_index("item_id")
    assert scores.loc["rag", "score"] == 4.0
    assert "needs the retrieved passages" in scores.loc["plain", "error"]
    sent = prompt_text(judge.calls[0])
    assert "[1] Orders ship in 2 days." in sent and "[2] Refunds take 14 days." in sent and "When does it ship?" in sent


def test_pairwise_sees_the_history_and_each_sides_calls(store):
    judge = ScriptedJudge(lambda request: "same\nVerdict: [[C]]")
    base = _responses("base", {"chat": ""}, {"chat": (ToolCall.parse("refund", '{"order_id": 5}'),)})
    cand = _responses("cand", {"chat": "Refunds take 14 days."})
    judge_pairwise(store, SPEC, ITEMS, base, cand, "instruction_following", adapter=judge)
    sent = prompt_text(judge.calls[0])
    assert "[user] Order 5?" in sent and "[assistant] calls get_order(order_id=5)" in sent and "[tool] shipped" in sent
    assert "-> calls refund(order_id=5)" in sent and "Refunds take 14 days." in sent


def test_a_plain_items_judge_prompt_is_unchanged(store):
    judge = ScriptedJudge(lambda request: "ok\nScore: 3")
    judge_pointwise(store, SPEC, ITEMS, _responses("m", {"plain": "Hello"}), "fluency", adapter=judge)
    assert "[Task input]\nHi\n[End of task input]" in prompt_text(judge.calls[0])
