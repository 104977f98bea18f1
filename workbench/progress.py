"""Progress of long phases (generating, judging, scoring, writing the report) on stderr.

A terminal gets a live bar with rate and ETA; a log (CI, a pipe) gets one line when a phase starts
and one when it ends, so it stays readable; `--quiet` gets nothing. Notebooks get tqdm's widget.
A phase that ends within QUIET_BELOW_S (a warm run: everything cached) shows nothing at all, unless
it had errors: "32 to do ... done in 0.0 s" tells the reader nothing.
Every phase reporter has the shape `reporter(description, total) -> Progress`, where a Progress has
`update(n_done, n_errors, cost_usd)` and `close()` (the protocol `calls.execute` already drives).
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Literal, TextIO

Mode = Literal["auto", "bar", "lines", "quiet", "notebook"]
PhaseReporter = Callable[[str, int], Any]
QUIET_BELOW_S = 1.0


class BarProgress:
    """A tqdm bar: rate, ETA, errors and cost as postfix."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, notebook: bool = False,
                 quiet_below_s: float = QUIET_BELOW_S):
        if notebook:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        self._bar = tqdm(total=total, desc=desc, unit="call", dynamic_ncols=True, file=stream or sys.stderr,
                         delay=quiet_below_s)  # drawn only once the phase has lasted that long
        self._started, self._quiet_below_s = time.perf_counter(), quiet_below_s

    def update(self, n_done: int, n_errors: int = 0, cost_usd: float = 0.0) -> None:
        self._bar.set_postfix_str(f"errors={n_errors}" + (f" cost=${cost_usd:.4f}" if cost_usd else ""), refresh=False)
        self._bar.update(n_done - self._bar.n)

    def close(self) -> None:
        if time.perf_counter() - self._started >= self._quiet_below_s:  # a bar that was never drawn stays so
            self._bar.refresh()
        self._bar.close()


class LineProgress:
    """One line when the phase starts and one when it ends (with rate and errors): readable in CI logs."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, quiet_below_s: float = QUIET_BELOW_S):
        self.total, self.desc, self.stream = total, desc, stream or sys.stderr
        self.done = self.errors = 0
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._announced = self._closed = False
        if quiet_below_s <= 0:
            self._announce()
            self._timer = None
        else:  # the start line waits: a phase over before then prints nothing
            self._timer = threading.Timer(quiet_below_s, self._announce)
            self._timer.daemon = True
            self._timer.start()

    def _announce(self) -> None:
        with self._lock:
            if self._closed or self._announced:
                return
            self._announced = True
            print(f"{self.desc}: {self.total} to do" if self.total > 1 else f"{self.desc} ...", file=self.stream,
                  flush=True)

    def update(self, n_done: int, n_errors: int = 0, cost_usd: float = 0.0) -> None:
        self.done, self.errors = n_done, n_errors

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            if not self._announced and not self.errors:
                return
        elapsed = time.perf_counter() - self.started
        if self.total <= 1:
            print(f"{self.desc}: {'failed' if self.errors else 'done'} in {elapsed:.1f} s", file=self.stream, flush=True)
            return
        rate = ""
        if elapsed >= 1 and self.done:  # a slow phase reads better per item than as "0.0/s"
            per_s = self.done / elapsed
            rate = f", {per_s:.1f}/s" if per_s >= 1 else f", {elapsed / self.done:.1f} s each"
        print(f"{self.desc}: {self.done}/{self.total} done in {elapsed:.1f} s{rate}, {self.errors} errors",
              file=self.stream, flush=True)


class _Silent:
    def update(self, n_done: int, n_errors: int = 0, cost_usd: float = 0.0) -> None:
        pass

    def close(self) -> None:
        pass


def reporter(mode: Mode = "auto", stream: TextIO | None = None, quiet_below_s: float = QUIET_BELOW_S) -> PhaseReporter:
    """A phase reporter: `auto` is a bar on a terminal and lines otherwise; phases shorter than
    `quiet_below_s` without errors show nothing."""
    out = stream or sys.stderr
    if mode == "auto":
        mode = "bar" if getattr(out, "isatty", lambda: False)() else "lines"
    if mode == "quiet":
        return lambda desc, total: _Silent()
    if mode == "lines":
        return lambda desc, total: LineProgress(total, desc, out, quiet_below_s)
    return lambda desc, total: BarProgress(total, desc, out, notebook=(mode == "notebook"), quiet_below_s=quiet_below_s)


def phase(report: PhaseReporter | None, desc: str, total: int) -> Any:
    """A progress object for one phase, silent when there is no reporter."""
    return report(desc, total) if report is not None else _Silent()
