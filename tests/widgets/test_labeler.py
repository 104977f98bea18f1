"""The blind labeler driven through its widgets and key handlers like a rater would."""
from __future__ import annotations

import html

import re
import sqlite3

import pandas as pd
import pytest

from workbench import labels as lab
from workbench.errors import InputError
from workbench.widgets.labeler import PairLabeler

A, B = "hf/base-model", "litellm/new-model"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def pairs():
    n = 8
    return pd.DataFrame({
        "item_id": [f"i{k}" for k in range(n)],
        "input": [f"question {k} <b>bold</b>" if k else "注文をキャンセルできますか？" for k in range(n)],
        "response_a": [f"first answer {k} {XSS}" for k in range(n)],
        "response_b": [f"second answer {k}" for k in range(n)],
        "model_a": A, "model_b": B,
    })


@pytest.fixture
def path(tmp_path):
    return tmp_path / "store.db"


def _make(path, pairs, rater="ann", **kw):
    kw.setdefault("seed", 3)
    return PairLabeler(path, "t1", pairs, rater=rater, keyboard=kw.pop("keyboard", "none"), **kw)


def _rows(path):
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT item_id, rater, left_model, right_model, action, winner_model, note, "
                        "undoes_label_id FROM labels ORDER BY label_id").fetchall()
    conn.close()
    return rows


def _side(labeler, side):
    """The (escaped) response text shown on one side."""
    match = re.search(rf"<div class='wb-{side}'[^>]*><b>[^<]*</b><div class='wb-text'[^>]*>(.*?)</div></div>",
                      labeler.view.value, re.S)
    assert match, labeler.view.value
    return match.group(1)


def _shown(labeler):
    return " ".join([labeler.view.value, labeler.status.value, labeler.keys_hint.value]
                    + [b.description + b.tooltip for b in labeler.buttons.values()])


def test_an_empty_rater_id_labels_nothing_until_one_is_given(path, pairs):
    labeler = _make(path, pairs, rater="  ")
    assert "enter your rater id" in labeler.status.value
    assert labeler.rater_box in labeler.widget.children and labeler.item_panel not in labeler.widget.children
    assert labeler.choose("left") is None and labeler.undo() is None
    assert _rows(path) == []
    labeler.rater_box.value = ""
    labeler.start_button.click()
    assert labeler.rater is None and "enter your rater id" in labeler.status.value
    labeler.rater_box.value = "bob"
    labeler.start_button.click()
    assert labeler.rater == "bob" and labeler.item_panel in labeler.widget.children
    labeler.buttons["left"].click()
    assert [r[1] for r in _rows(path)] == ["bob"]


def test_blind_and_escaped(path, pairs):
    labeler = _make(path, pairs)
    while labeler.current_item is not None:
        shown = _shown(labeler)
        assert A not in shown and B not in shown and "base-model" not in shown and "new-model" not in shown
        assert "<script>" not in shown and "<img" not in shown and "<b>bold" not in shown
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in _side(labeler, "left") + _side(labeler, "right")
        assert "<b>Response 1</b>" in labeler.view.value and "<b>Response 2</b>" in labeler.view.value
        if labeler.current_item != "i0":
            assert "&lt;b&gt;bold&lt;/b&gt;" in labeler.view.value
        labeler.choose("tie")


def test_each_choice_is_committed_before_the_next_item_shows(path, pairs, monkeypatch):
    labeler = _make(path, pairs)
    seen = []
    real_record = labeler.log.record

    def record(item_id, *args, **kwargs):
        seen.append((item_id, labeler.current_item))  # the item is still on screen while writing
        label_id = real_record(item_id, *args, **kwargs)
        assert _rows(path)[-1][0] == item_id  # committed: another connection sees it
        return label_id

    monkeypatch.setattr(labeler.log, "record", record)
    first = labeler.current_item
    left, right = labeler.sides(first)
    labeler.note.value = "  close call "
    labeler.choose("right")
    assert seen == [(first, first)]
    assert _rows(path) == [(first, "ann", left, right, "right", right, "close call", None)]
    assert labeler.current_item != first and labeler.note.value == ""
    assert "Saved" in labeler.status.value


def test_a_failed_write_keeps_the_item_and_says_why(path, pairs, monkeypatch):
    labeler = _make(path, pairs)
    item = labeler.current_item

    def fail(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(labeler.log, "record", fail)
    labeler.note.value = "keep me"
    assert labeler.choose("left") is None
    assert labeler.current_item == item and labeler.note.value == "keep me"
    assert "disk I/O error" in labeler.status.value
    assert _rows(path) == []


def test_sides_on_screen_match_the_rows(path, pairs):
    labeler = _make(path, pairs)
    text_owner = {**{t: A for t in pairs["response_a"]}, **{t: B for t in pairs["response_b"]}}
    swapped = 0
    while labeler.current_item is not None:
        left_text = html.unescape(_side(labeler, "left"))
        left_model = text_owner[left_text]
        swapped += left_model == B
        labeler.choose("left")
        row = _rows(path)[-1]
        assert row[2] == left_model and row[5] == left_model
    assert 0 < swapped < len(pairs)


def test_keys_ipyevents_events_and_text_fallback(path, pairs):
    from tests.real_parts import need_module

    need_module("ipyevents", "the labeler's keyboard shortcuts (a workbench dependency)")
    labeler = _make(path, pairs, keyboard="ipyevents")
    assert labeler._keyboard.watched_events == ["keydown"] and labeler._keyboard.source is labeler.item_panel
    assert labeler.note not in labeler.item_panel.children  # typing a note is never a shortcut
    for key, action in [("1", "left"), ("2", "right"), ("3", "tie"), ("4", "both_bad"), ("s", "skip")]:
        labeler._on_key_event({"type": "keydown", "key": key})
        assert _rows(path)[-1][4] == action
    labeler._on_key_event({"type": "keydown", "key": "1", "ctrlKey": True})  # Ctrl+1 is not ours
    labeler._on_key_event({"type": "keydown", "key": "1", "repeat": True})  # a held key labels once
    labeler._on_key_event({"type": "keydown", "key": "x"})
    assert len(_rows(path)) == 5
    labeler._on_key_event({"type": "keydown", "key": "u"})
    assert _rows(path)[-1][4] == "undo"
    labeler.close()

    text = _make(path, pairs, keyboard="text")
    box = text._keyboard
    assert box in text.item_panel.children
    item = text.current_item
    box.value = "2"
    assert box.value == "" and _rows(path)[-1][:1] + _rows(path)[-1][4:5] == (item, "right")
    with pytest.raises(InputError, match="keyboard"):
        _make(path, pairs, keyboard="mouse")


def test_back_undo_and_relabel(path, pairs):
    labeler = _make(path, pairs)
    order = list(labeler.queue)
    labeler.choose("left")
    labeler.choose("right")
    assert labeler.back() == order[1]
    assert "Your current answer: Response 2 is better" in labeler.view.value
    labeler.choose("tie")  # replaces the answer, then moves to the next undecided item
    assert labeler.current_item == order[2]
    assert labeler.undo() == order[1]  # the tie is undone: the earlier answer is back
    assert "earlier answer is back: Response 2 is better" in labeler.status.value
    assert "Response 2 is better" in labeler.view.value
    current = labeler.log.current("ann").set_index("item_id")["action"].to_dict()
    assert current == {order[0]: "left", order[1]: "right"}
    assert labeler.back() == order[0]
    assert labeler.back() == order[0] and "first item" in labeler.status.value


def test_resume_after_restart_and_done_state(path, pairs):
    first = _make(path, pairs)
    order = list(first.queue)
    for action in ("left", "skip", "both_bad"):
        first.choose(action)
    first.undo()
    first.close()  # the kernel goes away
    again = _make(path, pairs)
    assert again.current_item == order[2]
    assert "labeled 1, skipped 1, remaining 6" in again.view.value
    while again.current_item is not None:
        again.choose("tie")
    assert "All 8 items are done" in again.view.value and again.buttons["left"].disabled
    assert again.choose("left") is None
    assert again.back() == order[-1]
    progress = again.progress().set_index("rater").loc["ann"].tolist()
    assert progress == [8, 7, 1, 0]


def test_raters_and_overlap_split_the_items(path, pairs):
    raters = ["ann", "bob", "cy"]
    queues = {r: _make(path, pairs, rater=r, raters=raters, overlap=2).queue for r in raters}
    assert sorted(i for q in queues.values() for i in q) == sorted(list(pairs["item_id"]) * 2)
    labeler = _make(path, pairs, rater="ann", raters=raters, overlap=2)
    assert set(labeler.progress()["rater"]) == set(raters)
    outsider = _make(path, pairs, rater="zed", raters=raters, overlap=2)
    assert outsider.rater is None and "not in the rater list" in outsider.status.value


def test_export_and_live_agreement(path, pairs):
    ann, bob = _make(path, pairs, rater="ann"), _make(path, pairs, rater="bob")
    for labeler in (ann, bob):
        while labeler.current_item is not None:
            item = labeler.current_item
            left, _right = labeler.sides(item)
            # both prefer model A, except on one item where bob says tie
            action = "tie" if (labeler is bob and item == "i5") else ("left" if left == A else "right")
            labeler.choose(action)
    export = ann.export()
    assert set(export["choice"]) == {"A", "tie"} and len(export) == 16
    table = ann.agreement()
    assert (table.loc[0, "rater_a"], table.loc[0, "rater_b"]) == ("ann", "bob")
    assert table.loc[0, "n"] == 8 and table.loc[0, "agreed"] == 7
    assert table.loc[0, "degenerate"]  # ann used one label only: kappa says nothing, raw agreement does
    judge = pd.DataFrame({"item_id": pairs["item_id"], "choice": "A"})
    with_judge = ann.agreement(judge)
    vs_ann = with_judge[(with_judge["rater_a"] == "ann") & (with_judge["rater_b"] == "judge")]
    assert vs_ann["agreed"].item() == 8


def test_a_task_compares_one_pair_of_models(path, pairs):
    _make(path, pairs).choose("left")
    other = pairs.assign(model_b="hf/other")
    with pytest.raises(InputError, match="name a new task") as refused:
        _make(path, other)
    assert "t1" not in str(refused.value) and "hf/other" not in str(refused.value)  # raters see no model name
    with pytest.raises(InputError, match="response_b"):
        _make(path, pairs.drop(columns="response_b"))
    assert lab.validate_pairs(pairs)["model_a"].iloc[0] == A


def test_the_judge_agreement_is_kept_from_the_rater_and_the_stopping_rule_waits(path, pairs):
    judge = pd.DataFrame({"item_id": pairs["item_id"], "choice": "A"})
    labeler = _make(path, pairs, judge=judge, gate_threshold=0.4, min_labels=4)
    assert labeler.judge_agreement() == (0, 0) and labeler.feedback.value == ""
    for k in range(6):
        left, _right = labeler.sides(labeler.current_item)
        labeler.choose("tie" if k == 5 else ("left" if left == A else "right"))  # agrees 5 times, then a tie
    assert labeler.judge_agreement() == (5, 6)  # for label_analysis.ipynb, never on the rater's screen
    assert "agree" not in labeler.feedback.value.lower() and "83%" not in labeler.feedback.value
    advice = labeler.labels_needed()
    assert advice is not None and ("gate to decide" in labeler.feedback.value or "more labels" in labeler.feedback.value)
    assert A not in labeler.feedback.value and B not in labeler.feedback.value  # still blind


# ---- active order: a recorded queue drawn where the judge is least trustworthy -----------------------
@pytest.fixture
def big_pairs():
    n = 60
    return pd.DataFrame({"item_id": [f"i{k:02d}" for k in range(n)], "input": [f"question {k}" for k in range(n)],
                         "response_a": [f"a{k}" for k in range(n)], "response_b": [f"b{k}" for k in range(n)],
                         "model_a": A, "model_b": B, "slice": ["en", "ja"] * (n // 2)})


def _two_order_judge(pairs):
    """Consistent on most items; the two orders disagree on six (the active queue favours those)."""
    ids = pairs["item_id"].tolist()
    ab = ["A" if k % 2 else "B" for k in range(len(ids))]
    ba = ["B" if k % 5 == 0 else v for k, v in zip(range(len(ids)), ab)]
    choice = ["tie" if x != y else x for x, y in zip(ab, ba)]
    return pd.DataFrame({"item_id": ids, "choice": choice, "choice_ab": ab, "choice_ba": ba})


def test_active_order_labels_the_recorded_queue_for_every_rater(path, big_pairs):
    judge = _two_order_judge(big_pairs)
    ann = _make(path, big_pairs, rater="ann", judge=judge, order="active", budget=20)
    recorded = lab.LabelLog(path, "t1").store.label_queue("t1")
    assert recorded["budget"] == 20 and recorded["n_total"] == 60 and recorded["seed"] == 3
    queue = [item for item, _ in recorded["queue"]]
    assert ann.queue == queue and 5 <= len(queue) <= 40  # the drawn order, front first
    probabilities = dict(recorded["queue"])
    inconsistent = set(judge.loc[judge["choice_ab"] != judge["choice_ba"], "item_id"])
    assert len(inconsistent) == 6
    assert all(0 < p <= 1 for p in probabilities.values())
    assert min(probabilities[i] for i in queue if i in inconsistent) > max(
        probabilities[i] for i in queue if i not in inconsistent)
    assert "of %d" % len(queue) in ann.view.value  # the rater sees the queue's length, no model, no probability
    assert A not in ann.view.value and "probab" not in ann.view.value
    first = ann.current_item
    ann.choose("left")
    # another rater (another kernel, another budget) labels from the same recorded queue
    bob = _make(path, big_pairs, rater="bob", judge=judge, order="active", budget=50, seed=9)
    assert bob.queue == queue and bob.current_item == first
    # a restarted kernel resumes after the labelled item
    again = _make(path, big_pairs, rater="ann", judge=judge, order="active")
    assert again.current_item == queue[1]
    assert set(again.progress()["assigned"]) == {len(queue)}


def test_a_task_keeps_one_order(path, big_pairs):
    judge = _two_order_judge(big_pairs)
    _make(path, big_pairs, rater="ann").choose("left")  # uniform labels exist
    with pytest.raises(InputError, match="already has labels in uniform order"):
        _make(path, big_pairs, rater="ann", judge=judge, order="active")
    other = path.with_name("other.db")
    _make(other, big_pairs, rater="ann", judge=judge, order="active", budget=10)
    with pytest.raises(InputError, match="labels in active order"):
        _make(other, big_pairs, rater="bob")  # uniform would mix unweighted labels in
    with pytest.raises(InputError, match="needs the judge's verdicts"):
        _make(path.with_name("third.db"), big_pairs, order="active")
    with pytest.raises(InputError, match="unknown order"):
        _make(path.with_name("fourth.db"), big_pairs, order="smart")
    with pytest.raises(InputError, match="budget"):
        _make(path.with_name("fifth.db"), big_pairs, judge=judge, order="active", budget=0)
    assert not lab.LabelLog(path.with_name("fifth.db"), "t1").store.label_queue("t1")  # nothing recorded


def test_active_stopping_rule_uses_the_weighted_estimate(path, big_pairs):
    judge = _two_order_judge(big_pairs)
    labeler = _make(path, big_pairs, judge=judge, order="active", budget=30, gate_threshold=0.4, min_labels=10)
    for _ in range(12):
        left, _right = labeler.sides(labeler.current_item)
        labeler.choose("left" if left == A else "right")  # the human always prefers the baseline (A)
    advice = labeler.labels_needed()
    assert advice is not None and advice.decided and advice.side == "below"
    assert "enough for the gate to decide" in labeler.feedback.value
