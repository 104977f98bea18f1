"""The report's HTML as an analyst reads it, in a real browser: text columns left-aligned and numbers
right-aligned and rounded, no cut character anywhere, and every model name of the quality-vs-latency
plot inside the plot. A screenshot is kept in test-artifacts/ to look at."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jupyterlab_driver import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    rows = [{"item_id": f"i{k:02d}", "input": f"tell me about topic {k}", "reference": f"base: tell me about topic {k}",
             "language": ("en", "ja")[k % 2], "task": ("support_reply", "review_summary")[(k // 2) % 2]}
            for k in range(40)]
    (root / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "params.toml").write_text(
        'dataset = "items.jsonl"\nbaseline = "fake/base"\nbaseline_prompt = ""\ncandidates = ["fake/cand"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf", "length_chars"]\nbootstrap_resamples = 200\n'
        'report_name = "t"\n[gate]\nmin_items = 30\n[gate.metrics.chrf]\nmax_drop = 5.0\nhigher_is_better = true\n',
        encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "report", "-q"], cwd=root, capture_output=True,
                          text=True, timeout=900, env=env)
    assert proc.returncode in (0, 1, 2), proc.stderr[-3000:]
    return root / "reports" / "t" / "report.html"


def test_the_report_reads_well_in_a_browser(report_html, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"needs {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(report_html.as_uri())
        page.wait_for_selector(".js-plotly-plot")
        cells = page.eval_on_selector_all(".wb-table td", "tds => tds.map(td => [td.innerText.trim(), "
                                          "getComputedStyle(td).textAlign])")
        assert cells
        for text, align in cells:
            if re.fullmatch(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?", text):
                assert align == "right", (text, align)
                mantissa = text.split("e")[0].lstrip("+-").replace(",", "")
                decimals = mantissa.split(".")[1] if "." in mantissa else ""
                significant = mantissa.replace(".", "").lstrip("0")
                # rounded for reading: never -68.76020424539921; a small p-value keeps 3 significant digits
                assert len(decimals) <= 3 or len(significant) <= 3, text
            elif text and text != "—":
                assert align == "left", (text, align)
        body = page.inner_text("body")
        assert "\ufffd" not in body
        # every text label of the quality-vs-latency plot lies inside its plot
        boxes = page.evaluate("""() => {
            const plots = [...document.querySelectorAll('.js-plotly-plot')]
                .filter(p => (p.querySelector('.gtitle') || {}).textContent?.includes('vs latency'));
            return plots.map(p => {
                const frame = p.querySelector('.main-svg').getBoundingClientRect();
                return [...p.querySelectorAll('.scatterlayer .textpoint text')].map(t => {
                    const b = t.getBoundingClientRect();
                    return {text: t.textContent, left: b.left - frame.left, right: frame.right - b.right};
                });
            });
        }""")
        labels = [label for plot in boxes for label in plot]
        assert {label["text"] for label in labels} >= {"fake/base", "fake/cand"}
        for label in labels:
            assert label["left"] >= 0 and label["right"] >= 0, label
        page.screenshot(path=str(artifacts / "report-html.png"), full_page=True)
        browser.close()
