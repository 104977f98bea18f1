"""The explorer shows a conversation as turns, the passages, the tools, and each side's calls with the
differences from the baseline marked; every value escaped."""
from __future__ import annotations

import pandas as pd

from workbench.items.tool_calls import ToolCall
from workbench.widgets.app_html import calls_html, item_rows_html
from workbench.widgets.explorer_data import ExplorerData

EVIL = "<script>alert(1)</script>"
CONVERSATION = [{"role": "user", "content": f"Order 5? {EVIL}"},
                {"role": "assistant", "content": None, "tool_calls": [{"name": "get_order", "arguments": {"order_id": 5}}]},
                {"role": "tool", "content": "shipped"}, {"role": "user", "content": "Refund it"}]


def test_item_rows_show_turns_passages_and_tools_escaped():
    html = "".join(item_rows_html({"messages": CONVERSATION, "context": ["Refunds take 14 days.", EVIL],
                                   "tools": [{"name": "refund", "description": EVIL}]}))
    assert EVIL not in html and "&lt;script&gt;" in html
    assert ">user</span>" in html and "calls get_order(order_id=5)" in html and ">tool</span>shipped" in html
    assert "[2]</span>" in html and ">refund</span>" in html
    assert item_rows_html({"input": "plain"}) == []


def test_calls_are_diffed_against_the_baselines():
    base = (ToolCall.parse("refund", '{"order_id": 5, "reason": "late"}'), ToolCall.parse("notify", "{}"))
    cand = (ToolCall.parse("refund", '{"order_id": "5", "amount": 10}'), ToolCall.parse("escalate", "{}"),
            ToolCall.parse("refund", "{oops"))
    html = calls_html(cand, base)
    assert '<del class="wb-del">order_id=5</del> <ins class="wb-ins">order_id=&quot;5&quot;</ins>' in html
    assert 'title="argument dropped">reason=&quot;late&quot;' in html and 'title="argument the baseline did not send"' in html
    assert "another tool / extra call</span><b>escalate</b>" in html
    assert "missing call</span><del class=\"wb-del\">notify()" in html and "unparseable call" in html
    assert "answered in text instead of calling" in calls_html((), base)
    assert calls_html((), ()) == "" and calls_html(float("nan")) == ""


def test_the_explorer_renders_an_app_item_side_by_side():
    items = pd.DataFrame({"item_id": ["a"], "input": ["Refund it"], "messages": [CONVERSATION],
                          "tools": [[{"name": "refund"}]], "task": ["support"]})
    responses = pd.DataFrame({"item_id": ["a", "a"], "model": ["base", "cand"], "response": ["", f"No. {EVIL}"],
                              "tool_calls": [(ToolCall.parse("refund", '{"order_id": 5}'),), ()]})
    data = ExplorerData(items, responses)
    assert data.slice_columns == ["task"]  # the app's fields are not slices
    html = data.render_item_html("a")
    assert EVIL not in html and "conversation</th>" in html and "<b>refund</b>(order_id=5)" in html
    assert "answered in text instead of calling" in html
