"""How far an LLM judge can be trusted: position consistency, length bias, agreement with humans.

Verdicts are candidate-side scores (1 = candidate wins, 0.5 = tie, 0 = baseline wins) so that both
presentation orders are directly comparable: a position-consistent judge gives the same score whether
the candidate was shown first or second.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import numpy as np

from workbench.stats._distributions import binomtest_p
from workbench.stats._validate import StatsInputError, as_float_array, as_scores, is_missing, same_length
from workbench.stats.agreement import cohen_kappa
from workbench.stats.proportions import proportion_ci


@dataclass(frozen=True)
class PositionConsistency:
    """consistency: share of pairs whose verdict is the same in both orders.
    prefers_first: among decisive (non-tie) verdicts over both orders, the share that picked the answer
    shown first (0.5 = no position bias); NaN when there are no decisive verdicts."""

    consistency: float
    n: int
    n_consistent: int
    prefers_first: float
    n_decisive: int
    ci_low: float  # Wilson CI of `consistency`
    ci_high: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LengthPreference:
    """rate: P(judge prefers the longer answer) among decisive verdicts on pairs of unequal length."""

    rate: float
    n: int
    ci_low: float  # Clopper-Pearson exact CI
    ci_high: float
    p_value: float  # exact binomial test of rate = 0.5
    n_excluded: int  # ties and equal-length pairs

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HumanAgreement:
    accuracy: float
    kappa: float
    n: int
    n_dropped: int  # items where the judge or the human label is missing

    def to_dict(self) -> dict:
        return asdict(self)


def position_consistency(
    candidate_first: Sequence[float], candidate_second: Sequence[float], *, confidence: float = 0.95
) -> PositionConsistency:
    """Compare a judge's candidate-side scores with the candidate shown first vs shown second."""
    s1 = as_scores(candidate_first, "candidate_first")
    s2 = as_scores(candidate_second, "candidate_second")
    n = same_length(candidate_first=s1, candidate_second=s2)
    same = int((s1 == s2).sum())
    ci = proportion_ci(same, n, confidence=confidence)
    # Order 1: first shown = candidate, so a first-position pick is s1 > 0.5; order 2: it is s2 < 0.5.
    picks_first = int((s1 > 0.5).sum() + (s2 < 0.5).sum())
    decisive = int((s1 != 0.5).sum() + (s2 != 0.5).sum())
    return PositionConsistency(
        consistency=same / n, n=n, n_consistent=same,
        prefers_first=picks_first / decisive if decisive else float("nan"), n_decisive=decisive,
        ci_low=ci.low, ci_high=ci.high,
    )


def combine_orders(
    candidate_first: Sequence[float], candidate_second: Sequence[float],
    *, rule: Literal["tie_on_disagreement", "mean"] = "tie_on_disagreement",
) -> np.ndarray:
    """One score per pair from both orders: a disagreement counts as a tie (default) or the mean."""
    s1 = as_scores(candidate_first, "candidate_first")
    s2 = as_scores(candidate_second, "candidate_second")
    same_length(candidate_first=s1, candidate_second=s2)
    if rule == "tie_on_disagreement":
        return np.where(s1 == s2, s1, 0.5)
    if rule == "mean":
        return (s1 + s2) / 2
    raise StatsInputError(f"rule must be 'tie_on_disagreement' or 'mean', got {rule!r}")


def length_preference(
    scores: Sequence[float], candidate_length: Sequence[float], baseline_length: Sequence[float],
    *, confidence: float = 0.95,
) -> LengthPreference:
    """P(judge prefers the longer answer), ties and equal-length pairs excluded, with exact CI and test."""
    s = as_scores(scores)
    lc = as_float_array(candidate_length, "candidate_length")
    lb = as_float_array(baseline_length, "baseline_length")
    n_all = same_length(scores=s, candidate_length=lc, baseline_length=lb)
    usable = (s != 0.5) & (lc != lb)
    k_longer = int((((s > 0.5) & (lc > lb)) | ((s < 0.5) & (lb > lc)))[usable].sum())
    n = int(usable.sum())
    if n == 0:
        raise StatsInputError("length_preference: no decisive verdict on a pair of unequal lengths")
    ci = proportion_ci(k_longer, n, confidence=confidence, method="exact")
    return LengthPreference(k_longer / n, n, ci.low, ci.high, binomtest_p(k_longer, n, 0.5), n_all - n)


def human_agreement(
    judge_labels: Sequence[Any], human_labels: Sequence[Any], *, labels: Sequence[Any] | None = None
) -> HumanAgreement:
    """Accuracy and Cohen's kappa of a judge against one human label per item (missing pairs dropped)."""
    j, h = list(judge_labels), list(human_labels)
    if len(j) != len(h):
        raise StatsInputError(f"paired inputs must have the same length (one label per item): {len(j)} vs {len(h)}")
    keep = [(x, y) for x, y in zip(j, h) if not (is_missing(x) or is_missing(y))]
    if not keep:
        raise StatsInputError("human_agreement: no item has both a judge label and a human label")
    acc = float(np.mean([x == y for x, y in keep]))
    kappa = cohen_kappa([x for x, _ in keep], [y for _, y in keep], labels=labels)
    return HumanAgreement(acc, kappa, len(keep), len(j) - len(keep))
