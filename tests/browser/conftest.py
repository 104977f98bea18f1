"""Fixtures for the real-browser tests: a JupyterLab server, a headless Chromium, a page."""
from __future__ import annotations

from pathlib import Path

import pytest

from jupyterlab_driver import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, Lab
from tests.real_parts import missing as report_missing


def _require_browser() -> None:
    missing = [] if CHROMIUM.exists() else [str(CHROMIUM)]
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (python)")
    if missing:
        # CI must run them: a missing browser must not pass silently
        report_missing(f"browser tests need {', '.join(missing)}: run scripts/setup_browser.sh")


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory) -> Lab:
    _require_browser()
    lab = Lab(tmp_path_factory.mktemp("jupyter"))
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def browser(jupyter_lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def page(browser, request, artifacts):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    if getattr(request.node, "failed_call", False):  # what the browser showed when it failed
        page.screenshot(path=str(artifacts / f"{request.node.name}-failure.png"), full_page=True)
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = REPO_ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
