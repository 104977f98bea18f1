"""`forked.map_forked`: jobs on several processes give what one process gives, in order; a child that
fails in any way has its block run again here, so errors are this process's; Ctrl-C leaves no child."""
from __future__ import annotations

import os
import signal
import sys
import time
import warnings

import pytest

from workbench import forked

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")

PARENT = os.getpid()


class Resource:
    """A stand-in for a store: what a child reopens, and where each job ran."""

    def __init__(self, name: str = "parent"):
        self.name, self.closed = name, False

    def reopened(self) -> "Resource":
        return Resource("child")

    def __enter__(self) -> "Resource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


def square(job: int, resource: Resource) -> tuple[int, str, int]:
    return job * job, resource.name, os.getpid()


@pytest.mark.parametrize("count,parts", [(0, 2), (1, 3), (2, 2), (3, 2), (7, 3), (10, 4), (5, 1)])
def test_blocks_cover_every_position_once_in_order_and_differ_by_one_at_most(count, parts):
    spans = forked.blocks(count, parts)
    assert [i for span in spans for i in span] == list(range(count))
    sizes = [len(span) for span in spans]
    assert max(sizes) - min(sizes) <= 1 and len(spans) == max(1, min(parts, count))


def test_worker_count_reads_the_environment_and_never_exceeds_the_jobs(monkeypatch):
    monkeypatch.setenv(forked.WORKERS_ENV, "3")
    assert [forked.worker_count(n) for n in (0, 1, 2, 3, 10)] == [1, 1, 2, 3, 3]
    cpus = min(len(os.sched_getaffinity(0)), forked.MAX_WORKERS)
    for value in ("", "0", "-2", "two", " "):
        monkeypatch.setenv(forked.WORKERS_ENV, value)
        assert forked.worker_count(100) == cpus
        assert forked.worker_count(3) == 1 and forked.worker_count(4) == min(cpus, 2)  # 2 jobs each at least
        assert forked.worker_count(7, min_each=4) == 1 and forked.worker_count(8, min_each=4) == min(cpus, 2)
        assert forked.worker_count(1, min_each=0) == 1 and forked.worker_count(100, min_each=0) == cpus


def test_the_results_are_in_order_each_block_ran_in_its_own_process_on_its_own_resource():
    results = forked.map_forked(square, list(range(10)), Resource(), workers=3)
    assert [value for value, _, _ in results] == [n * n for n in range(10)]
    where = [(name, pid == PARENT) for _, name, pid in results]
    assert where[:4] == [("parent", True)] * 4  # the first block here, the others in children
    assert where[4:] == [("child", False)] * 6
    assert len({pid for _, _, pid in results[4:7]}) == 1 and results[4][2] != results[7][2]


def failing_in_children(job: int, resource: Resource) -> int:
    if os.getpid() != PARENT and job == 5:
        raise RuntimeError("only a child fails")
    return job


def test_a_block_whose_child_raised_is_run_again_here():
    assert forked.map_forked(failing_in_children, list(range(8)), Resource(), workers=2) == list(range(8))


def crashing_in_children(job: int, resource: Resource) -> int:
    if os.getpid() != PARENT:
        os.kill(os.getpid(), signal.SIGKILL)
    return job + 1


def test_a_block_whose_child_was_killed_is_run_again_here():
    assert forked.map_forked(crashing_in_children, list(range(6)), Resource(), workers=3) == list(range(1, 7))


def unpicklable_in_children(job: int, resource: Resource):
    return (lambda: job) if os.getpid() != PARENT else job


def test_a_result_that_cannot_come_back_is_computed_here():
    assert forked.map_forked(unpicklable_in_children, [1, 2, 3, 4], Resource(), workers=2) == [1, 2, 3, 4]


def failing(job: int, resource: Resource) -> int:
    if job == 6:
        raise ValueError(f"job {job} is bad")
    return job


def test_an_error_is_raised_here_as_one_process_raises_it():
    with pytest.raises(ValueError, match="job 6 is bad"):
        forked.map_forked(failing, list(range(8)), Resource(), workers=2)  # job 6 is in the child's block


def warning(job: int, resource: Resource) -> int:
    warnings.warn(f"job {job} in {resource.name}", UserWarning, stacklevel=1)
    return job


def test_a_child_s_warnings_are_shown_here_in_the_order_of_the_jobs():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forked.map_forked(warning, list(range(4)), Resource(), workers=2)
    assert [str(w.message) for w in caught] == ["job 0 in parent", "job 1 in parent", "job 2 in child",
                                                "job 3 in child"]


def slow_in_children(job: int, resource: Resource) -> int:
    if os.getpid() != PARENT:
        time.sleep(60)
    elif job == 0:
        raise KeyboardInterrupt
    return job


def test_ctrl_c_here_ends_every_child(monkeypatch):
    children = []
    fork = forked._Child.fork

    def recorded(*args):
        child = fork(*args)
        children.append(child.pid)
        return child

    monkeypatch.setattr(forked._Child, "fork", recorded)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        forked.map_forked(slow_in_children, list(range(6)), Resource(), workers=3)
    assert time.monotonic() - started < 30 and len(children) == 2
    for pid in children:  # killed and reaped: no zombie is left either
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_the_collector_is_left_as_it_was_found():
    import gc

    assert gc.get_freeze_count() == 0
    forked.map_forked(square, list(range(4)), Resource(), workers=2)
    assert gc.get_freeze_count() == 0  # what was frozen for the fork is unfrozen
    gc.freeze()  # a host application's own freeze
    try:
        frozen = gc.get_freeze_count()
        forked.map_forked(square, list(range(4)), Resource(), workers=2)
        assert gc.get_freeze_count() > frozen // 2  # still frozen (objects freed meanwhile leave the count)
    finally:
        gc.unfreeze()


def test_a_fork_the_system_refuses_leaves_its_block_to_this_process(monkeypatch):
    forks = []
    fork = os.fork

    def refused_once():
        if not forks:
            forks.append("refused")
            raise BlockingIOError(11, "Resource temporarily unavailable")
        forks.append("made")
        return fork()

    monkeypatch.setattr(os, "fork", refused_once)
    results = forked.map_forked(square, list(range(9)), Resource(), workers=3)
    assert [value for value, _, _ in results] == [n * n for n in range(9)] and forks == ["refused", "made"]
    assert [pid == PARENT for _, _, pid in results] == [True] * 6 + [False] * 3  # the refused block read here


class Held:
    """A job holding something until it is released."""

    def __init__(self, n: int):
        self.n, self.released = n, False


def release(job: Held) -> None:
    job.released = True


def test_each_process_lets_go_of_the_jobs_it_will_not_run():
    jobs = [Held(n) for n in range(6)]

    def seen(job: Held, resource: Resource):
        return job.n, os.getpid() == PARENT, [other.released for other in jobs]

    results = forked.map_forked(seen, jobs, Resource(), workers=3, release=release)
    assert [(n, here) for n, here, _ in results] == [(0, True), (1, True), (2, False), (3, False), (4, False),
                                                     (5, False)]
    assert [released for *_, released in results] == [[False, False, True, True, True, True]] * 2 + [
        [True, True, False, False, True, True]] * 2 + [[True, True, True, True, False, False]] * 2


def test_a_failed_child_s_released_jobs_are_run_here():
    jobs = [Held(n) for n in range(4)]

    def crashing(job: Held, resource: Resource):
        if os.getpid() != PARENT:
            os.kill(os.getpid(), signal.SIGKILL)
        return job.n, job.released

    assert forked.map_forked(crashing, jobs, Resource(), workers=2, release=release) == [
        (0, False), (1, False), (2, True), (3, True)]  # the child's block, released here, then run here
