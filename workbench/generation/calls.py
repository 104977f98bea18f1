"""The one place that wraps model adapters with caching, retries, timeouts, concurrency and progress.

`execute` serves cached keys from the store, runs the rest with bounded concurrency and writes
every success to the store the moment it arrives, so a killed run loses only calls in flight and
a re-run picks up where it stopped. Errors are recorded in `call_errors` and never cached.
Adapters only translate requests; nothing here knows a provider.

Processes sharing a store never pay for one call twice: calls are claimed in the store a few at
a time just before they are made (a lease of `CallPolicy.lease_s`, renewed every third of it
while they are ours) and released after their answer or error is written (an answered key is
never claimed again, so its release waits for the next heartbeat). A key another process holds
is looked up every `poll_s` until it is answered there (then it is served like a cached one),
given up there (its error is this execute's answer: not paid again), or its lease runs out (a
killed process: the call is taken over). A holder on this machine whose process is gone
(kill -9) is taken over at once.

Store writes go through one writer thread per execute: SQLite releases the GIL while it writes,
and when the event loop thread wrote itself, litellm's helper threads took the GIL and the loop
stalled for milliseconds per write (measured: +15% wall time at 32 calls in flight).
"""
from __future__ import annotations

import asyncio
import atexit
import collections
import itertools
import logging
import os
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from workbench.errors import ModelCallError
from workbench.models.base import Adapter, Outcome, Request, Response
from workbench.generation.retry import RetryPolicy
from workbench.secrets import redact, redact_values, secret_values

logger = logging.getLogger(__name__)

__all__ = ["CallCounts", "CallPolicy", "PlannedCall", "Progress", "execute", "run_sync"]

T = TypeVar("T")


class CallPolicy(BaseModel):
    """How calls are made. None of this changes a model's output, so none of it is in cache keys."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(8, ge=1)  # calls (batches) in flight at once
    timeout_s: float = Field(60, gt=0)  # hard limit of one API call
    max_attempts: int = Field(4, ge=1)  # first try included
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30, ge=0)
    budget_s: float = Field(300, gt=0)  # total time of one call, retries and waits included
    lease_s: float = Field(30, gt=0)  # a claim on a call in flight lasts this long unless renewed (every third of it)
    poll_s: float = Field(0.5, gt=0)  # how often calls claimed by another process are looked up

    def with_timeout(self, timeout_s: float) -> "CallPolicy":
        """This policy with another per-call limit, and a whole budget per call that still leaves room
        for a retry after a timeout (a budget shorter than two timeouts could never retry one)."""
        return self.model_copy(update={"timeout_s": timeout_s, "budget_s": max(self.budget_s, 2 * timeout_s)})

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, base_s=self.backoff_base_s,
                           max_delay_s=self.backoff_max_s, budget_s=self.budget_s)


@dataclass(frozen=True)
class PlannedCall:
    """One call to make, under the key its response is cached by (see `workbench.hashing.request_key`)."""

    cache_key: str
    request: Request


@dataclass
class CallCounts:
    """What one execute did with its distinct keys; the five counts add up to them."""

    cached: int = 0  # answered from the store when execute started
    made: int = 0  # sent by this execute (answered or failed)
    not_sent: int = 0  # failed before any request left the machine (e.g. no API key)
    answered_elsewhere: int = 0  # answered by another process sharing the store while this one waited
    failed_elsewhere: int = 0  # given up by another process meanwhile: its error is the outcome here


class Progress(Protocol):
    """Told after each finished call: calls done so far (cached, answered or failed), how many of
    them failed, and the known cost in USD of the calls made by this `execute` (cached ones were
    paid for earlier; calls of unknown price add nothing)."""

    def update(self, n_done: int, n_errors: int, cost_usd: float) -> None: ...


async def execute(adapter: Adapter, calls: Sequence[PlannedCall], store: Any, policy: CallPolicy | None = None,
                  progress: Progress | None = None, counts: CallCounts | None = None, *,
                  keep_responses: bool = True) -> dict[str, Outcome]:
    """Outcome of every planned call, keyed by cache key (in first-seen order).

    Keys already in the store are not called, nor keys another process is calling (their outcome
    there is the outcome here). A failure is returned as its ModelCallError and never raised;
    cancellation (and Ctrl-C) propagates, leaving calls in flight unstored and unclaimed.
    `counts`, when given, is filled with what happened to the distinct keys.
    `keep_responses=False` (large runs): answers stay in the store only and the result holds the
    failed keys alone, so memory does not grow with the calls made or found cached.
    """
    policy = policy or CallPolicy()
    counts = counts if counts is not None else CallCounts()
    since = time.time()  # an error recorded from now on by another process answers its key here
    unique: dict[str, PlannedCall] = {}
    weight: dict[str, int] = {}  # duplicates count towards progress, so total=len(calls) adds up
    for call in calls:
        unique.setdefault(call.cache_key, call)
        weight[call.cache_key] = weight.get(call.cache_key, 0) + 1
    outcomes: dict[str, Outcome] = dict(store.stored_responses(list(unique))) if keep_responses else {}
    cached = outcomes.keys() if keep_responses else store.cached_keys(list(unique))
    tally = _Tally(progress, weight)
    tally.done += sum(weight[k] for k in cached)
    counts.cached += len(cached)
    tally.report()
    todo = [call for key, call in unique.items() if key not in cached]
    del cached
    if todo:
        try:
            await adapter.prepare()  # load weights / slow imports before any call's timeout starts
        except Exception as exc:  # noqa: BLE001 - each call then fails and is recorded per item
            logger.warning("preparing %s failed (%s); its calls will be recorded as errors", adapter.name, redact(str(exc)))
        await _Runner(adapter, store, policy, tally, outcomes, counts, since, keep_responses).run(todo)
    return {key: outcomes[key] for key in unique if key in outcomes}


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine from synchronous code, also where an event loop already runs (Jupyter).

    It runs on one long-lived event loop in a daemon thread, started on first use: litellm binds
    its HTTP sessions to the loop, so a fresh loop per call would leak a session per call and
    warn each time. Ctrl-C (a kernel interrupt) cancels the coroutine, waits for its cleanup,
    and re-raises.
    """
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        if asyncio.iscoroutine(coro):
            coro.close()  # never awaited: close it so Python does not warn about it
        raise RuntimeError("run_sync() called from a coroutine it is running: await the coroutine instead")
    box: list[asyncio.Task[T]] = []
    created, finished = threading.Event(), threading.Event()

    def start() -> None:
        task = loop.create_task(_as_coroutine(coro))
        task.add_done_callback(lambda _: finished.set())
        box.append(task)
        created.set()

    loop.call_soon_threadsafe(start)
    try:
        while not finished.wait(0.1):  # short waits keep the caller interruptible
            pass
    except BaseException:  # KeyboardInterrupt: cancel the work, let it clean up, re-raise
        created.wait()
        loop.call_soon_threadsafe(box[0].cancel)
        finished.wait()
        raise
    return box[0].result()


# ---- internals ---------------------------------------------------------------------------------
class _Tally:
    def __init__(self, progress: Progress | None, weight: dict[str, int]):
        self.progress, self.weight = progress, weight
        self.done = self.errors = 0
        self.cost = 0.0

    def finished(self, key: str, outcome: Outcome, paid: bool = True) -> None:
        n = self.weight[key]
        self.done += n
        if isinstance(outcome, ModelCallError):
            self.errors += n
        elif outcome.cost_usd is not None and paid:
            self.cost += outcome.cost_usd
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress.update(self.done, self.errors, self.cost)


class _Item:
    __slots__ = ("call", "attempts", "started", "last_error", "sent")

    def __init__(self, call: PlannedCall):
        self.call = call
        self.attempts = 0
        self.started: float | None = None  # loop time of the first attempt (the budget's origin)
        self.last_error: ModelCallError | None = None
        self.sent = False  # some attempt got past the adapter's own checks (a request went out)


def _prompt_length(call: PlannedCall) -> int:
    request = call.request
    if request.prompt is not None:
        return len(request.prompt)
    return sum(len(str(m.get("content", ""))) for m in request.messages)


class _Runner:
    """One execute's worker pool: `n` workers pull batches from a ready queue; a failed item goes
    back on the queue after its backoff, so waiting never holds a concurrency slot. Retries jump
    the queue (priority 0 before fresh calls' 1), so a long run never eats a retried call's budget."""

    def __init__(self, adapter: Adapter, store: Any, policy: CallPolicy, tally: _Tally, outcomes: dict[str, Outcome],
                 counts: CallCounts, since: float, keep_responses: bool = True):
        self.adapter, self.store, self.policy, self.tally, self.outcomes = adapter, store, policy, tally, outcomes
        self.counts, self.since, self.keep_responses = counts, since, keep_responses
        self.owner = _owner()  # this execute, as named on its claims
        self.secrets = tuple(secret_values())  # read once: the environment is hundreds of us per read
        self.fresh: collections.deque[_Item] = collections.deque()  # not yet claimed, in calling order
        self.waiting: dict[str, _Item] = {}  # keys another process holds, looked up every poll_s
        self.held: set[str] = set()  # keys this execute claimed and has not finished
        self.answered: list[str] = []  # held keys answered since the last heartbeat: released by it
        self.hungry = asyncio.Event()  # a worker took from the ready queue: claim more
        self.retry = policy.retry_policy()
        self.identity = adapter.identity()
        self.batch = max(1, int(adapter.max_batch))
        # Claimed at once (one store transaction) and kept ready: a quarter of the workers' appetite.
        self.chunk = self.batch * max(1, policy.concurrency // 4)
        self.ready: asyncio.PriorityQueue[tuple[int, int, _Item]] = asyncio.PriorityQueue()
        self.seq = itertools.count()  # ties keep planned (or length-sorted) order
        self.timers: set[asyncio.TimerHandle] = set()
        self.remaining = 0
        self.done = asyncio.Event()
        self.failure: BaseException | None = None

    async def run(self, todo: list[PlannedCall]) -> None:
        if not self.adapter.concurrent:  # local models: one batch at a time, similar lengths together
            todo = sorted(todo, key=_prompt_length, reverse=True)
            n_workers = 1
        else:
            n_workers = min(self.policy.concurrency, -(-len(todo) // self.batch))
        self.fresh.extend(_Item(call) for call in todo)
        self.remaining = len(todo)
        self.writer = _StoreWriter(self.store)
        self.hungry.set()
        tasks = [asyncio.create_task(self._worker()) for _ in range(n_workers)]
        tasks += [asyncio.create_task(self._guarded(loop())) for loop in (self._feed, self._heartbeat, self._watch)]
        try:
            await self.done.wait()
        finally:
            for handle in self.timers:
                handle.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.writer.close()  # completed calls are on disk before execute returns or raises
            self._release_all()
        if self.failure is not None:
            raise self.failure
        if self.writer.error is not None:
            raise self.writer.error

    async def _worker(self) -> None:
        try:
            while True:
                batch = [(await self.ready.get())[2]]
                while len(batch) < self.batch and not self.ready.empty():
                    batch.append(self.ready.get_nowait()[2])
                self.hungry.set()
                await self._attempt(batch)
        except Exception as exc:  # a store or programming error: stop the whole execute with it
            self.failure = exc
            self.done.set()

    async def _guarded(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:  # the store failing under the heartbeat or the watcher: stop with it
            self.failure = exc
            self.done.set()

    # ---- claims: one process per call, across every process sharing the store ----------------------
    async def _feed(self) -> None:
        """Keeps the ready queue stocked with calls this execute claimed; the others wait."""
        while True:
            while self.fresh and self.ready.qsize() < self.chunk:
                items = [self.fresh.popleft() for _ in range(min(self.chunk, len(self.fresh)))]
                got = await asyncio.to_thread(self.store.claim_calls, [item.call.cache_key for item in items],
                                              self.owner, self.policy.lease_s, self.since)
                for item in items:
                    if item.call.cache_key in got:
                        self.held.add(item.call.cache_key)
                        self.ready.put_nowait((1, next(self.seq), item))
                    else:
                        self.waiting[item.call.cache_key] = item
            self.hungry.clear()
            await self.hungry.wait()

    async def _heartbeat(self) -> None:
        """Renews the leases of calls in flight or waiting for a retry, and releases answered ones;
        through the writer, so a release never overtakes the answer's write."""
        while True:
            await asyncio.sleep(self.policy.lease_s / 3)
            if self.answered:
                self.writer.submit(self.store.release_claims, self.owner, self.answered)
                self.answered = []
            if self.held:
                self.writer.submit(self.store.renew_claims, self.owner, self.policy.lease_s)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.policy.poll_s)
            if not self.waiting:
                continue
            stored, failed, free = await asyncio.to_thread(self._look_up, list(self.waiting))
            for key, response in stored.items():
                self.counts.answered_elsewhere += 1
                self._finish_elsewhere(key, response)
            for key, (kind, message) in failed.items():
                self.counts.failed_elsewhere += 1
                prefix = f"{kind}: "
                self._finish_elsewhere(key, ModelCallError(kind, message[len(prefix):] if message.startswith(prefix)
                                                           else message))
            for key in free:  # its holder gave up without a record, was killed, or its lease ran out
                self.fresh.appendleft(self.waiting.pop(key))
            if free:
                self.hungry.set()

    def _look_up(self, keys: list[str]) -> tuple[dict[str, Response], dict[str, tuple[str, str]], list[str]]:
        """(answered, given up, free) among keys held elsewhere when last seen; runs off the loop."""
        stored = self.store.stored_responses(keys)
        rest = [k for k in keys if k not in stored]
        failed = self.store.errors_since(rest, self.since) if rest else {}
        rest = [k for k in rest if k not in failed]
        holders = self.store.claim_holders(rest) if rest else {}
        for owner in {o for o in holders.values() if _owner_is_gone(o)}:
            logger.warning("taking over the calls of %s: its process is gone", owner)
            self.store.release_claims(owner)
            holders = {k: o for k, o in holders.items() if o != owner}
        return stored, failed, [k for k in rest if k not in holders]

    def _finish_elsewhere(self, key: str, outcome: Outcome) -> None:
        del self.waiting[key]
        self._finish(key, outcome, paid=False)

    def _release_all(self) -> None:
        """Claims left at the end: answered calls, and calls cancelled in flight (so no other
        process waits out their lease)."""
        try:
            self.store.release_claims(self.owner)
        except Exception as exc:  # noqa: BLE001 - the store is failing: its lease frees them later
            logger.warning("could not release claims in %s (%s); they expire in %g s",
                           getattr(self.store, "path", "the store"), exc, self.policy.lease_s)

    async def _attempt(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        live = []
        for item in batch:
            if item.started is None:
                item.started = now
            elif now - item.started >= self.retry.budget_s and item.last_error is not None:
                self._give_up(item, item.last_error)  # budget spent waiting for a slot
                continue
            item.attempts += 1
            live.append(item)
        if not live:
            return
        batch = live
        # The hard limit is the timeout, shortened so no call overruns its total budget; the adapter
        # is told the same remaining time, so one that watches its own deadline (hf/) stops first.
        left = min(self.retry.budget_s - (now - item.started) for item in batch)  # type: ignore[operator]
        limit = max(0.001, min(self.policy.timeout_s, left))
        requests = [item.call.request for item in batch]
        start = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                results: list[Any] = list(await self.adapter.generate(requests, limit))
            if len(results) != len(batch):
                results = [ModelCallError("bad_output", f"adapter {self.adapter.name} returned {len(results)} "
                                          f"outcomes for {len(batch)} requests")] * len(batch)
        except TimeoutError:
            results = [ModelCallError("timeout", f"no answer from {self.adapter.name} within {limit:.3g} s")] * len(batch)
        except Exception as exc:  # adapters should return errors, but one bad adapter must not sink the run
            results = [ModelCallError("unavailable", f"adapter {self.adapter.name} raised "
                                      f"{type(exc).__name__}: {exc}")] * len(batch)
        latency = time.perf_counter() - start
        for item, result in zip(batch, results):
            if not (isinstance(result, ModelCallError) and not result.sent):
                item.sent = True
            if isinstance(result, Response):
                self._succeeded(item, result if result.latency_s is not None else result.with_latency(latency))
            else:
                if not isinstance(result, ModelCallError):
                    result = ModelCallError("bad_output", f"adapter {self.adapter.name} returned {type(result).__name__}")
                self._failed(item, result, loop)

    def _succeeded(self, item: _Item, response: Response) -> None:
        call = item.call
        text = redact_values(response.text, self.secrets)  # a server echoing the caller's key: never stored
        if not text.isascii():  # a lone surrogate (JSON "\ud800") is no text any store or frame holds: U+FFFD
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if text != response.text:
            response = replace(response, text=text)
        record = {"adapter": self.identity, "request": call.request.payload()}
        self.writer.submit(self.store.put_response, call.cache_key, self.adapter.name, record, response)
        self.answered.append(call.cache_key)  # no one claims an answered key: released by the heartbeat
        self._count(item)
        self._finish(call.cache_key, response)

    def _failed(self, item: _Item, error: ModelCallError, loop: asyncio.AbstractEventLoop) -> None:
        item.last_error = error
        elapsed = loop.time() - item.started  # type: ignore[operator]
        wait = self.retry.next_delay(error.kind, item.attempts, elapsed, error.retry_after)
        if wait is not None:
            self._requeue_later(item, wait, loop)
        else:
            self._give_up(item, error)

    def _give_up(self, item: _Item, error: ModelCallError) -> None:
        call = item.call
        self.writer.submit(self.store.record_error, call.cache_key, self.adapter.name, call.request.item_id,
                           call.request.sample_index, error.kind, redact(str(error)), item.attempts)
        # Released now, after the error's write (same writer, in order): a process waiting for the
        # key finds the error, never a free key without a record.
        self.writer.submit(self.store.release_claims, self.owner, [call.cache_key])
        self._count(item)
        self._finish(call.cache_key, error)

    def _count(self, item: _Item) -> None:
        self.held.discard(item.call.cache_key)
        if item.sent:
            self.counts.made += 1
        else:
            self.counts.not_sent += 1

    def _requeue_later(self, item: _Item, wait: float, loop: asyncio.AbstractEventLoop) -> None:
        handle: asyncio.TimerHandle

        def fire() -> None:
            self.timers.discard(handle)
            self.ready.put_nowait((0, next(self.seq), item))

        handle = loop.call_later(wait, fire)
        self.timers.add(handle)

    def _finish(self, key: str, outcome: Outcome, paid: bool = True) -> None:
        if self.writer.error is not None:  # the store is failing (disk full, ...): stop calling
            raise self.writer.error
        if self.keep_responses or isinstance(outcome, ModelCallError):
            self.outcomes[key] = outcome
        self.tally.finished(key, outcome, paid)
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class _StoreWriter:
    """Runs store writes in order on its own thread, each as soon as it is submitted."""

    def __init__(self, store: Any):
        self.store = store
        self.error: BaseException | None = None
        self._jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="workbench-store-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Callable[..., None], *args: Any) -> None:
        self._jobs.put((write, args))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self.error is None:
                try:
                    job[0](*job[1])
                except BaseException as exc:  # surfaced by execute on the loop thread
                    self.error = exc

    def close(self) -> None:
        """Wait until every submitted write is done (milliseconds: writes never wait for calls)."""
        self._jobs.put(None)
        self._thread.join()


def _owner() -> str:
    """A claim's owner: host / pid namespace / pid / a nonce per execute."""
    return f"{socket.gethostname()}/{_pid_namespace()}/{os.getpid()}/{secrets.token_hex(6)}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")  # e.g. pid:[4026531836]; processes in containers differ
    except OSError:
        return ""  # not Linux: pids cannot be compared, the lease alone decides


def _owner_is_gone(owner: str) -> bool:
    """True only when the owner certainly stopped: a process on this host, in this pid namespace,
    whose pid runs no more (or is a zombie: killed, not yet reaped). Anywhere else the lease decides."""
    try:
        host, namespace, pid_text, _nonce = owner.rsplit("/", 3)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname() or not namespace or namespace != _pid_namespace() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: is it there (Linux only here, see above)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # another user's live process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


class _LoopThread:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="workbench-calls-loop", daemon=True)
        self.thread.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """At exit: cancel what is left on the loop (e.g. litellm's logging worker) and close it."""
        if self.pid != os.getpid() or not self.thread.is_alive():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(5)
        except Exception:  # shutting down anyway: never block or fail the exit
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


_loop_thread: _LoopThread | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """The process's run_sync loop (a new one after fork: threads do not survive it)."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is None or _loop_thread.pid != os.getpid() or not _loop_thread.thread.is_alive():
            _loop_thread = _LoopThread()
        return _loop_thread.loop
