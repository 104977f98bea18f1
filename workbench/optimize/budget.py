"""The optimisation budget: distinct model calls, their known cost, and wall time.

A call is counted once per distinct request (its cache key), whether a model answers it now or
the store answers it from an earlier (killed) attempt: so a resumed run spends exactly what an
uninterrupted one would, and ends at the same trial. Calls the held-out confirmation will need are
reserved up front, so the search can never eat them. Calls and time are hard limits (a call is
refused before it is made; the time left, counted from the start of the run, bounds the calls in
flight, which are cancelled at the deadline, their finished answers kept); cost is checked before
each batch with the highest cost per call seen so far (the test confirmation's share kept aside),
since a price is only known once a call returns: the starting prompt's first dev batch, which every
run needs, is the one step a cost budget cannot price beforehand.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping


class BudgetExhausted(Exception):
    """The next step would pass the budget; the run stops and reports what it found so far."""


@dataclass
class Budget:
    max_calls: int
    max_cost_usd: float | None = None
    max_wall_s: float | None = None
    reserved: int = 0  # calls kept for the held-out confirmation
    started: float = field(default_factory=time.perf_counter)
    used: dict[str, float | None] = field(default_factory=dict)  # cache key -> known cost

    @property
    def calls(self) -> int:
        return len(self.used)

    @property
    def cost_usd(self) -> float:
        return float(sum(c for c in self.used.values() if c is not None))

    @property
    def cost_known(self) -> bool:
        return all(c is not None for c in self.used.values())

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def time_left(self) -> float | None:
        return None if self.max_wall_s is None else self.max_wall_s - self.elapsed()

    def new_keys(self, keys: Iterable[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self.used]

    def require(self, n_new: int, what: str, *, use_reserve: bool = False) -> None:
        """Raise BudgetExhausted unless `n_new` more calls fit (the reserve only for the confirmation)."""
        limit = self.max_calls - (0 if use_reserve else self.reserved)
        if self.calls + n_new > limit:
            kept = "" if use_reserve else f" ({self.reserved} kept for the test confirmation)"
            raise BudgetExhausted(f"{what} needs {n_new} more call(s); {self.calls} of {self.max_calls} used{kept}")
        left = self.time_left()
        if left is not None and left <= 0:
            raise BudgetExhausted(f"{what}: the wall-time budget of {self.max_wall_s:g} s is used up")
        if self.max_cost_usd is not None and n_new:
            per_call = max((c for c in self.used.values() if c is not None), default=0.0)
            kept_usd = 0.0 if use_reserve else self.reserved * per_call
            if self.cost_usd + n_new * per_call > self.max_cost_usd - kept_usd:
                kept = f" (about ${kept_usd:.4f} kept for the test confirmation)" if kept_usd else ""
                raise BudgetExhausted(f"{what} would cost about ${n_new * per_call:.4f}; ${self.cost_usd:.4f} of "
                                      f"the ${self.max_cost_usd:g} cost budget spent{kept}")

    def record(self, costs: Mapping[str, float | None]) -> None:
        for key, cost in costs.items():
            if key not in self.used or self.used[key] is None:
                self.used[key] = None if cost is None or (isinstance(cost, float) and math.isnan(cost)) else float(cost)

    def summary(self) -> dict[str, object]:
        return {"calls": self.calls, "max_calls": self.max_calls, "cost_usd": self.cost_usd if self.cost_known else None,
                "cost_known_usd": self.cost_usd, "max_cost_usd": self.max_cost_usd,
                "wall_s": round(self.elapsed(), 2), "max_wall_s": self.max_wall_s}
