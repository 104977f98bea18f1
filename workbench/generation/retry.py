"""When to retry a failed model call and how long to wait: pure arithmetic, no I/O, no clock.

Exponential backoff with full jitter (a uniformly random wait up to the exponential cap) spreads
clients that failed together, so they do not hit a rate-limited API again in lockstep. A server's
Retry-After is a floor, and every wait is capped, so one call never stalls a run for long.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from workbench.errors import RETRYABLE_KINDS


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts the first call; `budget_s` bounds one call's total time, retries included."""

    max_attempts: int = 4
    base_s: float = 0.5
    max_delay_s: float = 30.0
    budget_s: float = 300.0

    def backoff_cap(self, attempt: int) -> float:
        """Upper bound of the wait after failed attempt `attempt` (1-based): base * 2^(attempt-1), capped."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        # min() before the power would overflow for large attempt numbers
        exponent = min(attempt - 1, 64)
        return min(self.max_delay_s, self.base_s * (2.0 ** exponent))

    def delay(self, attempt: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt `attempt`: full jitter, at least `retry_after`, at most max delay."""
        wait = rand() * self.backoff_cap(attempt)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay_s)

    def next_delay(self, kind: str, attempt: int, elapsed_s: float, retry_after: float | None = None,
                   rand: Callable[[], float] = random.random) -> float | None:
        """The wait before the next attempt, or None when the call should give up.

        Gives up for kinds a retry cannot fix, after `max_attempts` attempts, and when the wait
        would end at or past the call's time budget (`elapsed_s` counts from its first attempt).
        """
        if kind not in RETRYABLE_KINDS or attempt >= self.max_attempts:
            return None
        wait = self.delay(attempt, retry_after, rand)
        if elapsed_s + wait >= self.budget_s:
            return None
        return wait
