"""Label log, blind assignment, fold/undo/resume, exports, agreement, and concurrent writers."""
from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections import Counter

import pandas as pd
import pytest

from workbench import labels as lab
from workbench.errors import InputError
from workbench.hashing import content_hash
from workbench.models.base import Response

A, B = "hf/base-model", "litellm/new-model"
ITEMS = [f"item-{k:03d}" for k in range(60)]


# ---- assignment -------------------------------------------------------------------------------
def test_sides_are_deterministic_balanced_and_per_rater():
    first = [lab.sides(3, i, "ann", A, B) for i in ITEMS]
    assert first == [lab.sides(3, i, "ann", A, B) for i in ITEMS]  # survives restarts
    assert set(first) == {(A, B), (B, A)}
    assert 15 <= first.count((A, B)) <= 45  # a fair coin over 60 items
    assert first != [lab.sides(3, i, "bob", A, B) for i in ITEMS]  # raters see different sides
    assert first != [lab.sides(4, i, "ann", A, B) for i in ITEMS]  # the seed matters


def test_item_order_is_a_seeded_permutation():
    order = lab.item_order(ITEMS, seed=1)
    assert sorted(order) == ITEMS and order != ITEMS
    assert order == lab.item_order(list(reversed(ITEMS)), seed=1)  # input order does not matter
    assert order != lab.item_order(ITEMS, seed=2)


def test_assign_raters_gives_each_item_k_raters_balanced_and_stable():
    items = [f"i{k}" for k in range(600)]
    raters = ["ann", "bob", "cy"]
    assigned = lab.assign_raters(items, raters, overlap=2, seed=5)
    assert all(len(set(r)) == 2 and set(r) <= set(raters) for r in assigned.values())
    load = Counter(r for rs in assigned.values() for r in rs)
    assert all(340 <= n <= 460 for n in load.values()), load  # expected 400 each
    assert assigned == lab.assign_raters(items, raters, overlap=2, seed=5)
    # A new rater only takes over items; the others keep theirs (rendezvous hashing).
    more = lab.assign_raters(items, [*raters, "dee"], overlap=2, seed=5)
    for item in items:
        assert set(more[item]) - {"dee"} <= set(assigned[item])
    assert 0 < sum("dee" in r for r in more.values()) < len(items)


def test_rater_queue_with_overlap_and_errors():
    raters = ["ann", "bob", "cy"]
    queues = {r: lab.rater_queue(ITEMS, r, 9, raters, overlap=2) for r in raters}
    assert Counter(i for q in queues.values() for i in q) == {i: 2 for i in ITEMS}
    order = lab.item_order(ITEMS, 9)
    assert all(q == [i for i in order if i in q] for q in queues.values())  # shared order
    assert lab.rater_queue(ITEMS, "zed", 9) == order  # no rater list: everyone labels all
    with pytest.raises(InputError, match="not in the rater list"):
        lab.rater_queue(ITEMS, "zed", 9, raters, 2)
    with pytest.raises(InputError, match="overlap"):
        lab.rater_queue(ITEMS, "ann", 9, raters, 4)
    with pytest.raises(InputError, match="overlap needs the list of raters"):
        lab.rater_queue(ITEMS, "ann", 9, None, 2)


# ---- log, fold, undo, resume ------------------------------------------------------------------
@pytest.fixture
def log(tmp_path):
    with lab.LabelLog(tmp_path / "store.db", "task-1") as label_log:
        yield label_log


def _decide(log, item, action, rater="ann", seed=0, note=None):
    left, right = lab.sides(seed, item, rater, A, B)
    return log.record(item, rater, left, right, action, seed, note)


def test_record_is_durable_and_resolves_the_winner(log, tmp_path):
    assert log.store.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert log.store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    label_id = log.record("i1", " ann ", B, A, "left", 11, note="  short  ")
    # Visible to an independent connection as soon as record returns: it is committed.
    other = sqlite3.connect(tmp_path / "store.db")
    row = other.execute("SELECT item_id, rater, left_model, right_model, action, winner_model, note,"
                        " assignment_seed, session_id FROM labels WHERE label_id=?", (label_id,)).fetchone()
    other.close()
    assert row == ("i1", "ann", B, A, "left", B, "short", 11, log.session_id)
    assert log.record("i2", "ann", A, B, "right", 11) and log.log().iloc[-1]["winner_model"] == B
    for action in ("tie", "both_bad", "skip"):
        log.record("i3", "ann", A, B, action, 11)
        assert pd.isna(log.log().iloc[-1]["winner_model"])


@pytest.mark.parametrize("rater", ["", "   ", None])
def test_a_rater_id_is_required(log, rater):
    with pytest.raises(InputError, match="rater id"):
        log.record("i1", rater, A, B, "left", 0)
    with pytest.raises(InputError, match="rater id"):
        log.undo_last(rater, 0)
    assert log.log().empty


def test_bad_actions_and_sides_are_refused(log):
    with pytest.raises(InputError, match="unknown action"):
        log.record("i1", "ann", A, B, "undo", 0)  # undo only through undo_last
    with pytest.raises(InputError, match="same model"):
        log.record("i1", "ann", A, A, "left", 0)


def test_undo_appends_and_walks_back_like_a_stack(log):
    first = _decide(log, "i1", "left")
    second = _decide(log, "i1", "right")  # changed mind: the latest wins
    _decide(log, "i2", "tie", rater="bob")
    current = log.current()
    assert dict(zip(current["rater"], current["action"])) == {"ann": "right", "bob": "tie"}
    undo_id, item = log.undo_last("ann", 0)
    assert item == "i1"
    assert log.current("ann")["label_id"].tolist() == [first]  # the earlier answer is back
    assert log.undo_last("ann", 0)[1] == "i1"
    assert log.current("ann").empty
    assert log.undo_last("ann", 0) is None  # nothing left; bob's label is not touched
    assert log.current()["rater"].tolist() == ["bob"]
    rows = log.log()
    assert len(rows) == 5  # append-only: nothing deleted or updated
    undos = rows[rows["action"] == "undo"]
    assert undos["undoes_label_id"].astype(int).tolist() == [second, first]
    assert undo_id == int(undos["label_id"].iloc[0])


def test_resume_is_the_first_assigned_item_without_an_effective_decision(log):
    queue = lab.rater_queue(ITEMS[:6], "ann", 0)
    for item in queue[:3]:
        _decide(log, item, "left")
    _decide(log, queue[3], "skip")
    decided = set(log.current("ann")["item_id"])
    assert lab.next_item(queue, decided) == queue[4]
    log.undo_last("ann", 0)  # undo the skip: that item is first again
    assert lab.next_item(queue, set(log.current("ann")["item_id"])) == queue[3]
    # After relabeling an earlier item, move on after it, wrapping to undecided ones.
    assert lab.next_item(queue, decided | {queue[4]}, after=queue[1]) == queue[5]
    assert lab.next_item(queue, set(queue)) is None


def test_progress_per_rater(log):
    raters = ["ann", "bob"]
    queues = {r: lab.rater_queue(ITEMS[:10], r, 0, raters, 1) for r in raters}
    for item in queues["ann"][:2]:
        _decide(log, item, "left")
    _decide(log, queues["ann"][2], "skip")
    _decide(log, "not-assigned", "left")  # labels outside the queue do not count
    table = lab.progress(log.current(), queues).set_index("rater")
    assert table.loc["ann"].tolist() == [len(queues["ann"]), 2, 1, len(queues["ann"]) - 3]
    assert table.loc["bob"].tolist() == [len(queues["bob"]), 0, 0, len(queues["bob"])]
    assert len(queues["ann"]) + len(queues["bob"]) == 10


def test_export_gives_choices_in_model_terms_and_csv(log, tmp_path):
    log.record("i1", "ann", A, B, "left", 0, note="日本語のメモ")  # A on the left wins
    log.record("i2", "ann", A, B, "right", 0)  # B on the right wins
    log.record("i3", "ann", B, A, "left", 0)  # B on the left wins
    log.record("i4", "ann", B, A, "right", 0)  # A on the right wins
    log.record("i5", "ann", B, A, "tie", 0)
    log.record("i6", "ann", A, B, "both_bad", 0)
    log.record("i7", "ann", A, B, "skip", 0)
    export = lab.export_frame(log.current(), A, B)
    assert export["choice"].tolist() == ["A", "B", "B", "A", "tie", "both_bad", "skip"]
    assert export["winner_model"].tolist()[:4] == [A, B, B, A]
    assert str(export["time"].dtype).startswith("datetime64") and export["time"].notna().all()
    path = lab.write_csv(export, tmp_path / "out" / "labels.csv")
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back["choice"].tolist() == export["choice"].tolist()
    assert back.loc[0, "note"] == "日本語のメモ"
    with pytest.raises(InputError, match="not 'x' or 'y'"):
        lab.export_frame(log.current(), "x", "y")


# ---- agreement --------------------------------------------------------------------------------
def _label_all(log, rater, choices):
    for item, choice in choices.items():
        left, right = lab.sides(0, item, rater, A, B)
        winner = {"A": A, "B": B}.get(choice)
        action = choice if winner is None else ("left" if winner == left else "right")
        log.record(item, rater, left, right, action, 0)


def test_agreement_of_folded_labels_by_hand(log):
    from workbench.stats.agreement import agreement_table

    _label_all(log, "ann", {"i1": "A", "i2": "A", "i3": "B", "i4": "B", "i5": "tie", "i6": "A"})
    _label_all(log, "bob", {"i1": "A", "i2": "B", "i3": "B", "i4": "B", "i5": "tie"})
    log.record("i6", "bob", A, B, "skip", 0)  # a skip is not a rating
    export = lab.export_frame(log.current(), A, B)
    table = agreement_table(export[export["choice"] != "skip"], label="choice")
    # By hand: p_o = 4/5; marginals ann A2 B2 T1, bob A1 B3 T1 -> p_e = 9/25; (0.8 - 0.36) / 0.64
    assert table.loc[0, "n"] == 5 and table.loc[0, "agreed"] == 4
    assert table.loc[0, "kappa"] == pytest.approx(0.6875)


def test_rater_ids_are_normalised_and_remembered(tmp_path):
    assert lab.require_rater("  Alice   Smith ") == lab.require_rater("alice smith") == "alice smith"
    path = tmp_path / "last_rater"
    assert lab.remembered_rater(path) == ""
    lab.remember_rater(path, "alice")
    assert lab.remembered_rater(path) == "alice"


# ---- pairs --------------------------------------------------------------------------------------
def test_validate_pairs_lists_every_problem():
    bad = pd.DataFrame({"item_id": ["1", "1"], "input": ["q", None], "response_a": ["a", "b"]})
    with pytest.raises(InputError) as err:
        lab.validate_pairs(bad, model_a=A)
    text = str(err.value)
    assert "response_b" in text and "model_b" in text
    dup = pd.DataFrame({"item_id": [1, 1], "input": ["q", "r"], "response_a": ["a", "b"], "response_b": ["c", "d"]})
    with pytest.raises(InputError) as err:
        lab.validate_pairs(dup, A, A)
    assert "duplicate item id '1'" in str(err.value) and "both sides" in str(err.value)
    ok = lab.validate_pairs(dup.iloc[:1], A, B)
    assert ok.loc[0, "item_id"] == "1" and ok.loc[0, "model_b"] == B


# ---- concurrent writers -----------------------------------------------------------------------
def _writer(path, rater, n, barrier):
    with lab.LabelLog(path, "task-1") as log:
        barrier.wait()
        for k in range(n):
            _decide(log, f"item-{k:03d}", "left" if k % 2 else "right", rater=rater)
        for _ in range(n // 4):
            log.undo_last("shared-undo", 0)


def test_two_processes_labeling_at_once_lose_nothing(tmp_path):
    path = tmp_path / "store.db"
    with lab.LabelLog(path, "task-1") as log:  # migrate once, and leave labels for both to undo
        for k in range(40):
            _decide(log, f"u{k}", "tie", rater="shared-undo")
    ctx = multiprocessing.get_context("fork")  # no store is open in this process here
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, rater, 80, barrier)) for rater in ("ann", "bob")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with lab.LabelLog(path, "task-1") as log:
        rows = log.log()
        assert len(rows) == 40 + 2 * 80 + 2 * 20
        assert rows["label_id"].is_unique
        for rater in ("ann", "bob"):
            assert log.current(rater)["item_id"].nunique() == 80
        undone = rows.loc[rows["action"] == "undo", "undoes_label_id"]
        assert undone.is_unique  # concurrent undos never cancel the same label twice
        assert len(log.current("shared-undo")) == 0


def test_threads_with_their_own_logs_lose_nothing(tmp_path):
    path = tmp_path / "store.db"
    lab.LabelLog(path, "task-1").close()
    barrier = threading.Barrier(4)
    threads = [threading.Thread(target=_writer, args=(path, f"r{k}", 30, barrier)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    with lab.LabelLog(path, "task-1") as log:
        assert len(log.log()) == 4 * 30
        assert sorted(log.current()["rater"].unique()) == ["r0", "r1", "r2", "r3"]


def test_incremental_rater_state_matches_the_fold(log):
    import random

    rng = random.Random(4)
    state = lab.RaterState()
    for step in range(300):
        if rng.random() < 0.25:
            log.undo_last("ann", 0)
        else:
            _decide(log, f"i{rng.randrange(12)}", rng.choice(lab.DECISIONS))
        if step % 7 == 0:  # apply in uneven batches, sometimes overlapping, like a polling kernel
            state.apply(log.rows_after("ann", max(0, state.last_label_id - 3)))
    state.apply(log.rows_after("ann", state.last_label_id))
    folded = log.current("ann").set_index("item_id")["label_id"].astype(int).to_dict()
    assert {item: int(row["label_id"]) for item, row in state.effective.items()} == folded
    assert len(folded) > 3
