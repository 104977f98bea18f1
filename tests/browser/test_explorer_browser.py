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


def test_explorer_shows_hostile_model_output_as_text(jupyter_lab, page, artifacts):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, jupyter_lab.root / "explorer_xss.ipynb")
    open_notebook(page, jupyter_lab, "explorer_xss.ipynb")
    run_all_cells(page)
    page.wait_for_selector(".jp-OutputArea .wb-explorer")
    page.get_by_text("visible-b").first.wait_for()
    time.sleep(1.0)  # an injected <img onerror> fires within milliseconds of insertion
    assert page.evaluate("window.__xss") is None
    text = page.locator(".jp-OutputArea").first.inner_text()
    assert SCRIPT in text and IMG in text, "hostile markup is shown as text"
    assert page.locator(".jp-OutputArea img[src='x']").count() == 0
    assert page.locator(".jp-OutputArea script").count() == 0
    page.locator(".jp-OutputArea .wb-explorer").first.screenshot(path=str(artifacts / "explorer.png"))
