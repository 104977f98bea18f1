"""The side-by-side explorer in a real JupyterLab: model output that carries markup is shown as
text and never runs (no script, no event handler), in the widget and in its static fallback."""
from __future__ import annotations

import time

import pytest

from jupyterlab_driver import open_notebook, run_all_cells

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=2">'

CELL = f'''
import pandas as pd
from workbench.widgets.explorer import Explorer

items = pd.DataFrame({{"item_id": ["x1", "x2"], "input": ["Reply to <b>this</b> " + {IMG!r}, "second"]}})
responses = pd.DataFrame({{
    "item_id": ["x1", "x1", "x2", "x2"],
    "model": ["base", "cand", "base", "cand"],
    "response": [{SCRIPT!r} + " visible-a", {IMG!r} + " visible-b", "fine", "fine too"],
}})
Explorer(items, responses)
'''


def run_in_lab(page, jupyter_lab, name: str, cell: str) -> None:
    """A notebook of one code cell, opened in the lab and run."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, jupyter_lab.root / name)
    open_notebook(page, jupyter_lab, name)
    run_all_cells(page)


def test_explorer_shows_hostile_model_output_as_text(jupyter_lab, page, artifacts):
    run_in_lab(page, jupyter_lab, "explorer_xss.ipynb", CELL)
    page.wait_for_selector(".jp-OutputArea .wb-explorer")
    page.get_by_text("visible-b").first.wait_for()
    time.sleep(1.0)  # an injected <img onerror> fires within milliseconds of insertion
    assert page.evaluate("window.__xss") is None
    text = page.locator(".jp-OutputArea").first.inner_text()
    assert SCRIPT in text and IMG in text, "hostile markup is shown as text"
    assert page.locator(".jp-OutputArea img[src='x']").count() == 0
    assert page.locator(".jp-OutputArea script").count() == 0
    page.locator(".jp-OutputArea .wb-explorer").first.screenshot(path=str(artifacts / "explorer.png"))


# ---- issue 11: a readable diff, and "reset filters" back to "(all)" --------------------------------
DIFF_CELL = '''
import pandas as pd
from workbench.widgets.explorer import Explorer

items = pd.DataFrame({"item_id": ["r1", "r2", "r3"],
                      "input": ["When does my refund arrive?", "How do I pair my earbuds?", "返金はいつですか？"],
                      "language": ["en", "en", "ja"]})
responses = pd.DataFrame({
    "item_id": ["r1", "r1", "r2", "r2", "r3", "r3"],
    "model": ["base", "cand"] * 3,
    "response": ["Your refund was issued and arrives in five business days.",
                 "Your refund was issued today and arrives in three business days.",
                 "Put both earbuds in the case and hold the button for five seconds.",
                 "<script>window.__xss=3</script> I cannot help with that request, sorry.",
                 "返金は五営業日以内に処理されます。", "返金は三営業日以内に処理されます。"],
})
Explorer(items, responses)
'''

# Selected option text of every ipywidgets dropdown, by its description ('' = blank selection).
_DROPDOWNS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('.jp-OutputArea .widget-dropdown'))
  .map(d => [d.querySelector('label').textContent.trim(),
             (() => { const s = d.querySelector('select'); return s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text; })()]))"""

# Horizontal gap in pixels between each removed run and the added run right after it.
_GAPS_JS = """() => Array.from(document.querySelectorAll('.widget-html-content .wb-explorer del.wb-del + ins.wb-ins'))
  .map(ins => ins.getBoundingClientRect().left - ins.previousElementSibling.getBoundingClientRect().right)"""


def _dropdown(page, description: str):
    return page.locator(".jp-OutputArea .widget-dropdown", has=page.locator("label", has_text=description)).locator("select")


def test_explorer_diff_is_readable_and_reset_restores_the_dropdowns(jupyter_lab, page, artifacts):
    from playwright.sync_api import expect

    run_in_lab(page, jupyter_lab, "explorer_diff.ipynb", DIFF_CELL)
    view = page.locator(".jp-OutputArea .widget-html-content .wb-explorer").first
    view.wait_for()
    status = page.locator(".jp-OutputArea .widget-html", has_text="item ").first

    # related answers: word-level marks, a legend, the removed and the added words apart
    assert "item 1 of 3" in status.inner_text()
    assert "added by the candidate" in view.inner_text() and "baseline text the candidate dropped" in view.inner_text()
    assert view.locator("del.wb-del", has_text="five").count() == 1
    assert view.locator("ins.wb-ins", has_text="three").count() == 1
    assert view.locator("ins.wb-ins").filter(has_text="today").inner_text() == "today "  # its space kept
    gaps = page.evaluate(_GAPS_JS)
    assert gaps and min(gaps) >= 3, gaps
    view.screenshot(path=str(artifacts / "explorer-diff-related.png"))

    # unrelated answers: side by side, no marks, and the view says why; the <script> answer is text
    page.get_by_role("button", name="next").first.click()
    page.get_by_text("without diff marks").first.wait_for()
    expect(status).to_contain_text("item 2 of 3")  # its own widget: its update may land after the view's
    assert view.locator("ins.wb-ins, del.wb-del").count() == 0
    assert "added by the candidate" not in view.inner_text()
    assert "<script>window.__xss=3</script> I cannot help" in view.inner_text()
    assert page.evaluate("window.__xss") is None
    view.screenshot(path=str(artifacts / "explorer-diff-unrelated.png"))

    # filter by a slice, then reset: every dropdown shows its "(all)" choice again, none is blank
    _dropdown(page, "slice").select_option(label="language")
    _dropdown(page, "value").select_option(label="ja (1)")
    page.get_by_text("item 1 of 1 shown (filtered from 3)").first.wait_for()
    expect(view.locator("del.wb-del", has_text="五")).to_have_count(1)  # per character; the view may land later
    page.locator(".jp-OutputArea").first.screenshot(path=str(artifacts / "explorer-filtered.png"))
    page.get_by_role("button", name="reset filters").first.click()
    page.get_by_text("item 3 of 3").first.wait_for()
    shown = page.evaluate(_DROPDOWNS_JS)
    assert shown["slice"] == "(all)" and shown["value"] == "(all)" and shown["errors"] == "(all)", shown
    assert "" not in shown.values(), shown
    assert "filtered from" not in status.inner_text()
    page.locator(".jp-OutputArea").first.screenshot(path=str(artifacts / "explorer-after-reset.png"))


# ---- issue 20: a conversation as turns, tool calls as readable calls, the two sides' calls diffed ------
TOOLS_CELL = '''
import pandas as pd
from workbench.items.tool_calls import ToolCall
from workbench.widgets.explorer import Explorer

conversation = [{"role": "user", "content": "Where is order 1042?"},
                {"role": "assistant", "content": None,
                 "tool_calls": [{"name": "get_order_status", "arguments": {"order_id": 1042}}]},
                {"role": "tool", "content": "<img src=x onerror=window.__xss=4> delivered, box crushed"},
                {"role": "user", "content": "It arrived broken. I want a refund."}]
items = pd.DataFrame({"item_id": ["conv-1"], "input": ["It arrived broken. I want a refund."],
                      "messages": [conversation], "context": [["Refunds take 14 days."]],
                      "tools": [[{"name": "request_refund"}, {"name": "get_order_status"}]], "intent": ["refund"]})
responses = pd.DataFrame({
    "item_id": ["conv-1", "conv-1"], "model": ["base", "cand"], "response": ["", "Sorry to hear that!"],
    "tool_calls": [(ToolCall.parse("request_refund", '{"order_id": 1042, "reason": "damaged"}'),),
                   (ToolCall.parse("request_refund", '{"order_id": "1042"}'),)],
})
Explorer(items, responses)
'''


def test_explorer_shows_a_conversation_and_diffs_the_calls(jupyter_lab, page, artifacts):
    run_in_lab(page, jupyter_lab, "explorer_tools.ipynb", TOOLS_CELL)
    view = page.locator(".jp-OutputArea .widget-html-content .wb-explorer").first
    view.wait_for()
    page.get_by_text("Sorry to hear that!").first.wait_for()
    time.sleep(1.0)
    text = view.inner_text()
    assert "calls get_order_status(order_id=1042)" in text and "Refunds take 14 days." in text
    assert "<img src=x onerror=window.__xss=4>" in text and page.evaluate("window.__xss") is None
    assert view.locator("del.wb-del", has_text="order_id=1042").count() == 1  # the value's type changed
    assert view.locator("ins.wb-ins", has_text='order_id="1042"').count() == 1
    assert view.locator("del.wb-del[title='argument dropped']", has_text="reason").count() == 1
    view.screenshot(path=str(artifacts / "explorer-tools.png"))
