"""Win rate with ties as half a win, and its standard error.

Scores are from the candidate's side, one per item: 1 = candidate wins, 0.5 = tie, 0 = baseline wins
(a judge's probability in [0, 1] works too). The win rate is their mean and the standard error is the
sample standard deviation (ddof=1) over sqrt(n): the same estimator AlpacaEval publishes, so our
numbers can be checked against its leaderboard.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from workbench.stats._validate import StatsInputError, as_float_array, as_scores, is_missing


@dataclass(frozen=True)
class WinRate:
    """Win rate as a fraction in [0, 1]; `standard_error` is NaN when n < 2."""

    win_rate: float
    standard_error: float
    n: int
    n_wins: int
    n_losses: int
    n_ties: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def win_rate(scores: Sequence[float] | np.ndarray) -> WinRate:
    """Mean preference score (ties count 0.5) and its standard error (ddof=1)."""
    s = as_scores(scores)
    se = float(s.std(ddof=1) / np.sqrt(s.size)) if s.size > 1 else float("nan")
    return WinRate(
        win_rate=float(s.mean()),
        standard_error=se,
        n=int(s.size),
        n_wins=int((s > 0.5).sum()),
        n_losses=int((s < 0.5).sum()),
        n_ties=int((s == 0.5).sum()),
    )


def scores_from_verdicts(
    verdicts: Iterable[Any],
    *,
    candidate: Any,
    baseline: Any,
    tie: Iterable[Any] = ("tie",),
) -> np.ndarray:
    """Map verdict labels (e.g. 'B', 'A', 'tie') to candidate-side scores 1 / 0 / 0.5.

    Unknown or missing labels raise, listing them: a verdict the judge failed to give is not a tie.
    """
    ties = set(tie)
    out, unknown, missing = [], set(), []
    for i, v in enumerate(verdicts):
        if is_missing(v):
            missing.append(i)
        elif v == candidate:
            out.append(1.0)
        elif v == baseline:
            out.append(0.0)
        elif v in ties:
            out.append(0.5)
        else:
            unknown.add(repr(v))
    if missing:
        raise StatsInputError(f"verdicts: {len(missing)} missing verdict(s) at positions {missing[:5]}; drop them first")
    if unknown:
        raise StatsInputError(
            f"verdicts: unknown label(s) {sorted(unknown)}; expected candidate={candidate!r}, "
            f"baseline={baseline!r} or tie in {sorted(map(repr, ties))}"
        )
    if not out:
        raise StatsInputError("verdicts: is empty")
    return np.asarray(out, dtype=np.float64)


def alpaca_eval_scores(preferences: Sequence[Any]) -> tuple[np.ndarray, int]:
    """Convert AlpacaEval preferences (1 = baseline wins, 2 = model wins, 1.5 or 0 = draw) to scores.

    Values that are missing or outside [1, 2] after mapping draws are dropped, as AlpacaEval does;
    returns (scores, number dropped).
    """
    p = as_float_array([np.nan if is_missing(v) else v for v in preferences], "preferences", allow_nan=True)
    p = np.where(p == 0, 1.5, p)
    valid = (p >= 1) & (p <= 2)  # NaN compares False
    return p[valid] - 1.0, int((~valid).sum())


def alpaca_eval_winrate(preferences: Sequence[Any]) -> dict[str, float | int]:
    """AlpacaEval's head-to-head summary in its own units (percent) and field names.

    Exists so the win rate can be checked against AlpacaEval's published leaderboards.
    """
    scores, _ = alpaca_eval_scores(preferences)
    if scores.size == 0:
        raise StatsInputError("preferences: no valid preference in [1, 2]")
    raw = as_float_array([np.nan if is_missing(v) else v for v in preferences], "preferences", allow_nan=True)
    draws = (raw == 1.5) | (raw == 0)
    discrete = np.where(draws, 1.5, np.round(raw))
    discrete = discrete[(discrete >= 1) & (discrete <= 2)] - 1.0
    wr = win_rate(scores)
    return {
        "win_rate": wr.win_rate * 100,
        "standard_error": wr.standard_error * 100,
        "n_wins": wr.n_wins,
        "n_wins_base": wr.n_losses,
        "n_draws": int(draws.sum()),
        "n_total": wr.n,
        "discrete_win_rate": float(discrete.mean() * 100),
    }
