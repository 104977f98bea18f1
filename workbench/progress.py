"""Progress of long phases (generating, judging, scoring, writing the report) on stderr.

A terminal gets a live bar with rate and ETA; a log (CI, a pipe) gets one line when a phase starts
and one when it ends, so it stays readable; `--quiet` gets nothing. Notebooks get tqdm's widget.
Every phase reporter has the shape `reporter(description, total) -> Progress`, where a Progress has
`update(n_done, n_errors, cost_usd)` and `close()` (the protocol `calls.execute` already drives).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Literal, TextIO

Mode = Literal["auto", "bar", "lines", "quiet", "notebook"]
PhaseReporter = Callable[[str, int], Any]


class BarProgress:
    """A tqdm bar: rate, ETA, errors and cost as postfix."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, notebook: bool = False):
        if notebook:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        self._bar = tqdm(total=total, desc=desc, unit="call", dynamic_ncols=True, file=stream or sys.stderr)

    def update(self, n_done: int, n_errors: int = 0, cost_usd: float = 0.0) -> None:
        self._bar.set_postfix_str(f"errors={n_errors}" + (f" cost=${cost_usd:.4f}" if cost_usd else ""), refresh=False)
        self._bar.update(n_done - self._bar.n)

    def close(self) -> None:
        self._bar.refresh()
        self._bar.close()


class LineProgress:
    """One line when the phase starts and one when it ends (with rate and errors): readable in CI logs."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None):
        self.total, self.desc, self.stream = total, desc, stream or sys.stderr
        self.done = self.errors = 0
        self.started = time.perf_counter()
        print(f"{desc}: {total} to do" if total > 1 else f"{desc} ...", file=self.stream, flush=True)

    def update(self, n_done: int, n_errors: int = 0, cost_usd: float = 0.0) -> None:
        self.done, self.errors = n_done, n_errors

    def close(self) -> None:
        elapsed = time.perf_counter() - self.started
        if self.total <= 1:
            print(f"{self.desc}: {'failed' if self.errors else 'done'} in {elapsed:.1f} s", file=self.stream, flush=True)
            return
        rate = f", {self.done / elapsed:.1f}/s" if elapsed > 0 and self.done else ""
        print(f"{self.desc}: {self.done}/{self.total} done in {elapsed:.1f} s{rate}, {self.errors} errors",
              file=self.stream, flush=True)


class _Silent:
    def update(self, n_done: int, n_errors: int = 0, cost_usd: float = 0.0) -> None:
        pass

    def close(self) -> None:
        pass


def reporter(mode: Mode = "auto", stream: TextIO | None = None) -> PhaseReporter:
    """A phase reporter: `auto` is a bar on a terminal and lines otherwise."""
    out = stream or sys.stderr
    if mode == "auto":
        mode = "bar" if getattr(out, "isatty", lambda: False)() else "lines"
    if mode == "quiet":
        return lambda desc, total: _Silent()
    if mode == "lines":
        return lambda desc, total: LineProgress(total, desc, out)
    return lambda desc, total: BarProgress(total, desc, out, notebook=(mode == "notebook"))


def phase(report: PhaseReporter | None, desc: str, total: int) -> Any:
    """A progress object for one phase, silent when there is no reporter."""
    return report(desc, total) if report is not None else _Silent()
