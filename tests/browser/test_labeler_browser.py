"""The blind labeler in a real JupyterLab: clicks and key presses land in the store with the right
item, side mapping, choice and rater; a killed kernel loses nothing and the labeler resumes."""
from __future__ import annotations

import importlib.util
import os
import random
import signal
import sqlite3
import time

import pytest

from jupyterlab_driver import copy_notebook, open_notebook, prefill_project, run_all_cells, wait_kernel

from workbench.pipeline import labels_task
from workbench.project.lookup import bundled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAMES = ("alpha", "beta")
RATER = "ann"
PAYLOAD = '<img src=x onerror="window.__xss=3">'
WORDS = "refund order ship damaged photo replace battery screen size return free address cancel soon".split()


def _data(n: int = 12):
    items = [(f"item-{k:02d}", f"Question {k}: what about my order? <b>#{k}</b>") for k in range(1, n + 1)]
    texts = {}
    for index, name in enumerate(NAMES):
        rng = random.Random(f"{name}-texts")
        texts[name] = {item: " ".join(rng.choice(WORDS) for _ in range(8)) + f" ({item})"
                       + (f" {PAYLOAD}" if index else "") for item, _ in items}
    return items, texts


def _screen(page) -> tuple[str, str, str]:
    return (page.locator(".wb-input .wb-item-id").inner_text().strip(),
            page.locator(".wb-left .wb-text").inner_text().strip(),
            page.locator(".wb-right .wb-text").inner_text().strip())


def _wait_counts(page, labeled: int, skipped: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator(".wb-progress")).to_contain_text(f"labeled {labeled}, skipped {skipped}", timeout=30_000)


def _labels(path, task: str) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM labels WHERE task = ? ORDER BY label_id", (task,))]
    conn.close()
    return rows


def _restart_after_kill(page, lab, name: str) -> None:
    pid = lab.kernel_pid(name)
    os.kill(pid, signal.SIGKILL)  # the kernel this test's server started: a crash mid-session
    try:
        # "The kernel appears to have died. It will restart automatically."
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=15_000)
    except Exception:  # noqa: BLE001 - the dialog is informational; no dialog is fine too
        pass
    deadline = time.monotonic() + 60
    while True:
        try:
            if lab.kernel_pid(name) != pid:
                break
        except (LookupError, ValueError):
            pass  # between the old kernel and the new one
        assert time.monotonic() < deadline, "the kernel did not restart"
        time.sleep(0.3)
    wait_kernel(lab, name)


def test_label_with_clicks_and_keys_then_survive_a_killed_kernel(jupyter_lab, page, artifacts, tmp_path):
    assert importlib.util.find_spec("ipyevents"), "keyboard shortcuts need ipyevents (a workbench dependency)"
    items, texts = _data()
    params, models = prefill_project(tmp_path / "project", NAMES, items, texts)
    from workbench.task.config import build_config

    config = build_config(params)
    store_path, task = config.store_path, labels_task(config, 0)
    MODELS = models  # noqa: N806 - the arm names, as the labels record them
    owner = {text: models[NAMES.index(name)] for name, by_item in texts.items() for text in by_item.values()}
    name = copy_notebook(jupyter_lab, bundled("notebooks/label_pairs.ipynb"), "label_pairs_copy.ipynb", {
        "params_file": str(params), "rater": RATER, "seed": 7, "show_reference": True})
    open_notebook(page, jupyter_lab, name)
    run_all_cells(page)
    _wait_counts(page, 0, 0)
    outputs = "\n".join(page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts())
    assert f"{len(items)} items to label." in outputs
    page.get_by_text("Which response answers the input better?").first.wait_for()  # the task is told
    # Blind: no model name (nor its file name) anywhere on the rater's page, widgets and cell outputs.
    page_text = page.locator(".jp-Notebook").inner_text()
    assert not any(n in page_text for n in ("alpha.jsonl", "beta.jsonl", "replay/", " vs "))
    n_cells = page.locator(".jp-Notebook .jp-Cell").count()
    n_markdown = page.locator(".jp-Notebook .jp-MarkdownCell").count()

    expected: list[tuple[str, str, str, str, str | None]] = []  # item, left text, right text, action, note
    note = "typed 1 2 u s <b>here</b>"
    # Five decisions by clicking; the last one carries a note typed key by key into the note box.
    for button, action in [("Response 1 better", "left"), ("Response 2 better", "right"), ("Tie", "tie"),
                           ("Both bad", "both_bad"), ("Response 2 better", "right")]:
        item, left, right = _screen(page)
        typed = None
        if len(expected) == 4:
            page.locator(".wb-note textarea").click()
            page.keyboard.type(note)  # keys typed in the note are text, not shortcuts
            typed = note
        page.get_by_role("button", name=button, exact=True).click()
        expected.append((item, left, right, action, typed))
        _wait_counts(page, len(expected), 0)

    # Five decisions by keyboard, pointer over the item panel.
    page.locator(".wb-item-panel .wb-input").hover()
    for key, action in [("1", "left"), ("2", "right"), ("3", "tie"), ("4", "both_bad"), ("s", "skip")]:
        item, left, right = _screen(page)
        page.keyboard.press(key)
        expected.append((item, left, right, action, None))
        _wait_counts(page, sum(1 for e in expected if e[3] != "skip"), int(action == "skip"))
    skipped_item = expected[-1][0]
    page.keyboard.press("u")  # undo the skip: that item comes back
    _wait_counts(page, 9, 0)
    assert _screen(page)[0] == skipped_item
    page.keyboard.press("b")  # back to the previous item, which shows its current answer
    page.get_by_text("Your current answer: Both bad").wait_for()
    assert _screen(page)[0] == expected[-2][0]
    page.locator(".wb-labeler").screenshot(path=str(artifacts / "labeler.png"))

    # Shortcut keys never reached JupyterLab's command mode (1-4 make headings, b adds a cell, ...).
    assert page.locator(".jp-Notebook .jp-Cell").count() == n_cells
    assert page.locator(".jp-Notebook .jp-MarkdownCell").count() == n_markdown
    # Model text is shown as text, never run as HTML.
    assert page.evaluate("window.__xss") is None
    assert PAYLOAD in _screen(page)[1] + _screen(page)[2]  # shown as text
    # Model names never reach the page.
    body = page.locator(".jp-Notebook").inner_text()
    assert not any(m in body for m in MODELS) and "alpha.jsonl" not in body and "beta.jsonl" not in body

    rows = _labels(store_path, task)
    assert len(rows) == len(expected) + 1
    for row, (item, left, right, action, typed) in zip(rows, expected):
        assert (row["item_id"], row["rater"], row["action"], row["note"]) == (item, RATER, action, typed)
        assert item in left and item in right, "the responses shown belong to the item shown"
        assert (row["left_model"], row["right_model"]) == (owner[left], owner[right])
        assert row["winner_model"] == {"left": owner[left], "right": owner[right]}.get(action)
        assert row["assignment_seed"] == 7
    undo = rows[-1]
    assert (undo["action"], undo["undoes_label_id"], undo["item_id"]) == ("undo", rows[-2]["label_id"], skipped_item)
    sides = {(r["left_model"], r["right_model"]) for r in rows}
    assert sides == {MODELS, MODELS[::-1]}, "the blind assignment puts each model on both sides"

    # Kill the kernel mid-session, run the notebook again: nothing lost, resume at the right item.
    _restart_after_kill(page, jupyter_lab, name)
    assert _labels(store_path, task) == rows
    run_all_cells(page)
    _wait_counts(page, 9, 0)
    assert _screen(page)[0] == skipped_item
    page.get_by_role("button", name="Tie", exact=True).click()
    _wait_counts(page, 10, 0)
    after = _labels(store_path, task)
    assert after[:-1] == rows
    assert (after[-1]["item_id"], after[-1]["action"]) == (skipped_item, "tie")
    assert after[-1]["session_id"] != rows[-1]["session_id"]


def test_active_order_shows_the_recorded_queue_blind(jupyter_lab, page, artifacts, tmp_path):
    """order = "active" in the raters' notebook: the queue is drawn from the judge's stored verdicts,
    recorded in the store, and the rater labels it front first, still without any model name."""
    from playwright.sync_api import expect

    from tests.judge_server import JudgeServer
    from workbench.task.config import build_config
    from workbench.store import open_store

    items, texts = _data(40)
    for k, item in enumerate(texts["alpha"]):
        texts["alpha"][item] += " GOOD" if k % 3 == 0 else ""  # the judge prefers alpha on a third of the items
    with JudgeServer() as server:
        params, models = prefill_project(tmp_path / "project", NAMES, items, texts, judge_url=server.url)
    config = build_config(params)
    task = labels_task(config, 0)
    name = copy_notebook(jupyter_lab, bundled("notebooks/label_pairs.ipynb"), "label_active.ipynb", {
        "params_file": str(params), "rater": RATER, "seed": 2, "order": "active", "budget": 12})
    open_notebook(page, jupyter_lab, name)
    run_all_cells(page)
    _wait_counts(page, 0, 0)
    with open_store(config.store_path) as store:
        queue = [item for item, _ in store.label_queue(task)["queue"]]
    outputs = "\n".join(page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts())
    assert f"{len(queue)} items to label." in outputs and 3 <= len(queue) < 40
    expect(page.locator(".wb-progress")).to_contain_text(f"item 1 of {len(queue)}", timeout=30_000)
    shown = []
    for _ in range(3):
        shown.append(_screen(page)[0])
        page.get_by_role("button", name="Tie", exact=True).click()
        _wait_counts(page, len(shown), 0)
    assert shown == queue[:3] and [r["item_id"] for r in _labels(config.store_path, task)] == queue[:3]
    body = page.locator(".jp-Notebook").inner_text()
    assert not any(m in body for m in models) and "alpha.jsonl" not in body and "beta.jsonl" not in body
    # raters stay independent (issue 21): no live agreement with the automatic judge on their screen
    assert "automatic judge" not in page.locator(".wb-labeler").inner_text()
    page.locator(".wb-labeler").screenshot(path=str(artifacts / "labeler_active.png"))
