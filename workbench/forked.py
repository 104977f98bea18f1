"""Independent jobs on several cores, with what one process gives.

The jobs are split into contiguous blocks; the first block runs here, each other block in a process
forked from this one. Forking (not spawning) shares what this process has already loaded and checked
(the items, the plan, the imports) at no cost. Each child opens its own connection to the store (a
connection never crosses a fork) and sends its results back, pickled, through a pipe. Each process
lets go of what the jobs it will not run hold (`release`): a page both hold becomes private to the
one that keeps it once the other frees its copy, so at 100k items every chunk's texts were still held
by the process that did not read them at the end of the read (13 MiB in each).

Whenever a child fails in any way (an exception, a crash, a kill, a result that does not unpickle),
this process runs that child's block itself. So the results, the errors and their order are always
those of a run in one process; a child only ever saves time.
"""
from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
import warnings
from typing import Any, Callable, Sequence, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

WORKERS_ENV = "WORKBENCH_READ_WORKERS"  # processes for a read in chunks; 1: this process alone
MAX_WORKERS = 4  # past this, joining the results costs more than a further core saves
MIN_JOBS_EACH = 2  # by default: a child's start (its connection, its first-use costs) is paid off by 2 jobs


def worker_count(jobs: int, min_each: int = MIN_JOBS_EACH) -> int:
    """Processes for `jobs` jobs: `WORKBENCH_READ_WORKERS`, else the CPUs this process may use, at most
    `MAX_WORKERS` and with `min_each` jobs each (the jobs that pay off a child's start and its pages:
    a read in chunks asks for 10,000 items' worth, `pipeline.MIN_ITEMS_EACH`). One off Linux: macOS's
    system libraries are not safe to fork, Windows cannot."""
    if jobs < 2 or not sys.platform.startswith("linux"):
        return 1
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return min(int(value), jobs)
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS, jobs // max(1, min_each)))


def blocks(count: int, parts: int) -> list[range]:
    """`count` positions in `parts` contiguous blocks whose sizes differ by one at most."""
    parts = max(1, min(parts, count))
    size, extra = divmod(count, parts)
    starts = [i * size + min(i, extra) for i in range(parts + 1)]
    return [range(starts[i], starts[i + 1]) for i in range(parts)]


def map_forked(work: Callable[[Job, Any], Result], jobs: Sequence[Job], resource: Any, workers: int, *,
               release: Callable[[Job], None] | None = None) -> list[Result]:
    """`[work(job, resource) for job in jobs]`, on `workers` processes. `resource` (a store) has
    `reopened()`, the same resource for a forked child, and is a context manager that closes it.
    `release(job)`: let go of what a job holds (a chunk's texts) where it will not run: a child calls it
    first on each job of the other blocks, this process on each child's block once the children are
    forked, so no copy outlives the process that runs the job. `work` must then run a released job
    too (this process reruns a failed child's block)."""
    spans = blocks(len(jobs), workers)
    frozen = len(spans) > 1 and not gc.get_freeze_count()  # (one frozen by the host application stays so)
    if frozen:
        gc.freeze()  # what exists now is never scanned by a collection, here or in a child: fewer pages copied
    children: list[_Child | None] = []
    try:
        for span in spans[1:]:
            others = [job for i, job in enumerate(jobs) if i not in span] if release else []
            try:
                children.append(_Child.fork(work, [jobs[i] for i in span], resource, others, release))
            except OSError:  # no process to be had (a process limit, memory): read here, like a failed child
                children.append(None)
        if release is not None:  # each child's block is its own now (a failed child's is rerun from a released job)
            for child, span in zip(children, spans[1:]):
                for i in span if child is not None else ():
                    release(jobs[i])
        results = [work(jobs[i], resource) for i in spans[0]]
        for child, span in zip(children, spans[1:]):
            done = child.collect() if child is not None else None
            results.extend(done if done is not None else [work(jobs[i], resource) for i in span])
        return results
    finally:
        for child in children:
            if child is not None:
                child.stop()
        if frozen:
            gc.unfreeze()


class _Child:
    """One forked process running one block of jobs."""

    def __init__(self, pid: int, pipe: int):
        self.pid: int | None = pid
        self.pipe: int | None = pipe

    @classmethod
    def fork(cls, work: Callable[[Any, Any], Any], jobs: list[Any], resource: Any, others: Sequence[Any] = (),
             release: Callable[[Any], None] | None = None) -> "_Child":
        readable, writable = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(readable)
            os.close(writable)
            raise
        if pid == 0:  # the child: never returns
            os.close(readable)
            _run_block(work, jobs, resource, writable, others, release)
        os.close(writable)
        return cls(pid, readable)

    def collect(self) -> list[Any] | None:
        """The child's results, its warnings shown here; None when it failed (its block is then rerun)."""
        assert self.pipe is not None and self.pid is not None
        with os.fdopen(self.pipe, "rb") as pipe:  # closed before the wait: a child still writing then stops
            self.pipe = None
            try:
                results, caught = pickle.load(pipe)  # from the stream: the pickled bytes are never held whole
            except Exception:  # noqa: BLE001 - a child that stopped mid-way: its block is rerun
                results = caught = None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if os.waitstatus_to_exitcode(status) != 0 or results is None:
            return None
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        return results

    def stop(self) -> None:
        """Ends a child this process no longer waits for (it failed, or was interrupted)."""
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = None


def _run_block(work: Callable[[Any, Any], Any], jobs: list[Any], resource: Any, pipe: int,
               others: Sequence[Any] = (), release: Callable[[Any], None] | None = None) -> None:
    """In the child: the block's results and warnings down the pipe, then exit at once (`os._exit`: the
    parent's buffers, handlers and connections are the parent's to flush and close). Any failure,
    Ctrl-C included, exits non-zero with nothing sent: the parent reruns the block or stops itself."""
    code = 1
    try:
        for job in others if release is not None else ():
            release(job)
        with resource.reopened() as own, warnings.catch_warnings(record=True) as caught:
            results = [work(job, own) for job in jobs]
        with os.fdopen(pipe, "wb") as out:  # pickled into the pipe as the parent reads it: never held whole
            pickle.dump((results, [(w.message, w.category, w.filename, w.lineno) for w in caught]), out,
                        protocol=pickle.HIGHEST_PROTOCOL)
        code = 0
    except BaseException:  # noqa: BLE001 - reported by the rerun in the parent, never from here
        pass
    finally:
        os._exit(code)
