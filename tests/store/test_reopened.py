"""`store.reopened()`: a forked child's own connection to the same store, on both backends. The
child's writes and reads are the store's; the parent's connection still works after the child exits
(a connection that crossed the fork is never used, nor closed, by the child)."""
from __future__ import annotations

import os
import sys

import pytest

from workbench import forked
from workbench.store import open_store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")


def _scores(job: int) -> list[tuple]:
    return [("chrf", "1", f"resp-{job}-{k}", "ref", job + k / 10, None) for k in range(3)]


def write_and_read(job: int, store) -> tuple[int, int, dict]:
    """Write a job's scores, and read back every job's written so far, through `store`."""
    store.put_scores(_scores(job))
    keys = [(f"resp-{j}-{k}", "ref") for j in range(job + 1) for k in range(3)]
    return job, os.getpid(), store.stored_scores("chrf", "1", keys)


def test_a_child_writes_and_reads_through_its_own_connection_and_the_parent_s_still_works(any_store):
    results = forked.map_forked(write_and_read, [0, 1, 2, 3], any_store, workers=2)
    assert [pid == os.getpid() for _, pid, _ in results] == [True, True, False, False]
    assert len(results[2][2]) == 9  # the child reads what the parent wrote before, and its own
    every = [(f"resp-{j}-{k}", "ref") for j in range(4) for k in range(3)]
    assert any_store.stored_scores("chrf", "1", every) == {position: j + k / 10 for position, (j, k) in
                                                            enumerate((j, k) for j in range(4) for k in range(3))}
    any_store.put_scores(_scores(9))  # the parent's own connection, after the child has gone
    assert len(any_store.stored_scores("chrf", "1", [("resp-9-0", "ref")])) == 1


def test_a_reopened_store_is_read_only_where_its_origin_is(tmp_path):
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.put_scores(_scores(0))
    with open_store(path, create=False, read_only=True) as store, store.reopened() as again:
        assert again.read_only and again.path == store.path
        assert again.stored_scores("chrf", "1", [("resp-0-1", "ref")]) == {0: 0.1}  # by the key's position
