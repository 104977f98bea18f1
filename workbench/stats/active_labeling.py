"""Active choice of what humans label, and the weighted estimate that keeps it honest
(active inference, Zrnic & Candès 2024).

Why: a label helps most where the judge is least trustworthy (the two presentation orders
disagree, a tie, a failed verdict, a slice with few labels). Choosing those items on purpose would
bias a plain average, so each item enters the queue with a recorded probability pi and the
estimator weights each label by 1/pi. The queue is shown in random order so a rater may stop at any
point: after k of the m queued items, each queued item has been labelled with probability k/m, and
the estimator uses pi * k / m. Ordering the queue by priority instead would make stopping early
leave some items with no chance of a label, and no weighting can undo that.

Flow: `propose_probabilities` -> `sample_queue` (store its `to_frame()` with the labels) ->
`active_win_rate(judge, human, probabilities, queue_size=...)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

import numpy as np

from workbench.stats._validate import StatsInputError
from workbench.stats.ppi import (
    PPIWinRate,
    RaterRule,
    _scores_by_id,
    _unique_ids,
    _z,
    align_labels,
    judge_scores_by_item,
    result_from_batch,
)

DEFAULT_WEIGHTS: dict[str, float] = {"decisive": 1.0, "tie": 1.25, "inconsistent": 1.5, "failed": 1.5}


@dataclass(frozen=True)
class LabelQueue:
    """Items to show a rater, front first, each with the probability it had of entering the queue."""

    item_ids: tuple
    probabilities: tuple
    queue_size: int
    n_total: int
    seed: int

    def to_frame(self):
        """position, item_id, probability, queue_size: the record the estimator needs later."""
        import pandas as pd

        return pd.DataFrame({"position": np.arange(self.queue_size), "item_id": list(self.item_ids),
                             "probability": list(self.probabilities), "queue_size": self.queue_size})


# ---- proposing probabilities --------------------------------------------------------------------
def uncertainty_class(judge_first: np.ndarray, judge_second: np.ndarray | None = None) -> np.ndarray:
    """Per item: "failed" (no verdict), "inconsistent" (the two orders disagree), "tie" or "decisive"."""
    a = np.asarray(judge_first, dtype=float)
    b = a if judge_second is None else np.asarray(judge_second, dtype=float)
    failed = np.isnan(a) | np.isnan(b)
    out = np.where(a != b, "inconsistent", np.where(a == 0.5, "tie", "decisive")).astype(object)
    out[failed] = "failed"
    return out


def _fit_to_budget(u: np.ndarray, budget: float, low: float) -> np.ndarray:
    """pi = clip(c * u, low, 1) with c chosen so that sum(pi) = budget (bisection; monotone in c)."""
    lo_c, hi_c = 0.0, 1.0
    while np.clip(hi_c * u, low, 1.0).sum() < budget:
        hi_c *= 2.0
    for _ in range(100):
        mid = (lo_c + hi_c) / 2
        if np.clip(mid * u, low, 1.0).sum() < budget:
            lo_c = mid
        else:
            hi_c = mid
    return np.clip(hi_c * u, low, 1.0)


def propose_probabilities(judge_first: Any, judge_second: Any = None, *, budget: float,
                          slices: Any = None, labeled: Iterable[Any] = (), min_per_slice: float = 10.0,
                          floor: float = 0.25, weights: Mapping[str, float] | None = None):
    """Inclusion probability per item for the next `budget` labels (expected count), from judge uncertainty.

    judge_first / judge_second: candidate-side score per item (Series or dict by item id) with the
    candidate shown first / second; pass one of them if only one order exists. NaN = failed.
    weights: relative priority per uncertainty class (default DEFAULT_WEIGHTS). Mild on purpose:
    the variance-optimal choice is pi proportional to the spread of (human - judge) on the item, and
    on real data (PandaLM) that spread is only ~1.4x larger where judges disagree than where they agree;
    weights of 3 cost 5-9% more labels there, and 6 let coverage at 50 labels fall to 0.92
    (docs/bench/ppi.md).
    slices: item -> slice name; a slice expected to end up with fewer than `min_per_slice` labels
    (counting `labeled`, the items already labelled) has its weights raised (at most 4x).
    floor: every pi is at least floor * budget / N, so no item is nearly impossible to draw (the
    1/pi weight of such an item would blow up the variance).
    Returns a pandas Series item_id -> probability in (0, 1] summing to `budget`.
    """
    import pandas as pd

    ids, first = judge_scores_by_item(judge_first)
    n = ids.size
    second = None
    if judge_second is not None:
        ids2, s2 = judge_scores_by_item(judge_second)
        lookup = dict(zip(ids2.astype(str), s2))
        missing = [i for i in ids.astype(str) if i not in lookup]
        if missing or ids2.size != n:
            raise StatsInputError(f"judge_second must score the same items as judge_first; "
                                  f"{len(missing)} missing, e.g. {missing[:3]}")
        second = np.array([lookup[i] for i in ids.astype(str)])
    b = float(budget)
    if not (math.isfinite(b) and 0 < b <= n):
        raise StatsInputError(f"budget must be a number of labels in (0, {n}] (the number of items), got {budget!r}")
    if not (math.isfinite(floor) and 0 < floor <= 1):
        raise StatsInputError(f"floor must be in (0, 1] (a share of the uniform rate budget/N), got {floor!r}")
    w = dict(DEFAULT_WEIGHTS, **(weights or {}))
    bad = {k: v for k, v in w.items() if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0)}
    if bad or set(w) - set(DEFAULT_WEIGHTS):
        raise StatsInputError(f"weights: classes are {sorted(DEFAULT_WEIGHTS)} with positive values; "
                              f"got {dict(weights or {})}")
    cls = uncertainty_class(first, second)
    u = np.array([w[c] for c in cls], dtype=float)
    if slices is not None:
        s_ids, s_raw = _slice_labels(slices)
        lookup = dict(zip(s_ids.astype(str), s_raw))
        missing = [i for i in ids.astype(str) if i not in lookup]
        if missing:
            raise StatsInputError(f"slices: no slice for {len(missing)} item(s), e.g. {missing[:3]}")
        names = np.array([lookup[i] for i in ids.astype(str)], dtype=object)
        done = set(map(str, labeled))
        already = np.isin(ids.astype(str), list(done))
        expected = b * u / u.sum()
        for name in pd.unique(names):
            member = names == name
            have = expected[member].sum() + already[member].sum()
            target = min(min_per_slice, member.sum())
            if have < target:
                u[member] *= min(target / max(have, 1e-9), 4.0)
    pi = np.ones(n) if b >= n else _fit_to_budget(u, b, floor * b / n)
    return pd.Series(pi, index=pd.Index(ids, name="item_id"), name="probability")


def _slice_labels(slices: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(slices, "index") and hasattr(slices, "to_numpy") and not hasattr(slices, "columns"):
        return np.asarray(slices.index, dtype=object), slices.to_numpy(dtype=object)
    if isinstance(slices, Mapping):
        return np.asarray(list(slices.keys()), dtype=object), np.asarray(list(slices.values()), dtype=object)
    raise StatsInputError("slices: expected a pandas Series or dict item_id -> slice name")


def sample_queue(probabilities: Any, *, seed: int) -> LabelQueue:
    """Draw each item into the queue with its probability (independent coin flips, seeded), then
    shuffle the queue. Labelling from the front and stopping anywhere keeps the estimate valid."""
    ids, pi = _scores_by_id(probabilities, "probabilities")
    _check_probabilities(ids, pi)
    _unique_ids(ids, "probabilities")
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(rng.random(pi.size) < pi)
    chosen = chosen[rng.permutation(chosen.size)]
    return LabelQueue(tuple(ids[chosen].tolist()), tuple(pi[chosen].tolist()), int(chosen.size), int(pi.size),
                      int(seed))


def _check_probabilities(ids: np.ndarray, pi: np.ndarray) -> None:
    bad = ~np.isfinite(pi) | (pi <= 0) | (pi > 1)
    if bad.any():
        shown = ", ".join(f"{ids[i]}={float(pi[i])!r}" for i in np.flatnonzero(bad)[:5])
        raise StatsInputError(f"probabilities must lie in (0, 1] (an item with probability 0 can never be "
                              f"labelled, so no weight can stand in for it); bad: {shown}")


# ---- the weighted estimator ---------------------------------------------------------------------
def active_batch(y: np.ndarray, f: np.ndarray, labeled: np.ndarray, pi_eff: np.ndarray, *,
                 confidence: float = 0.95, lam: float | None = None,
                 weighting: Literal["hajek", "ht"] = "hajek") -> dict[str, np.ndarray]:
    """Inverse-probability-weighted PPI++ for each row of `labeled` (R, N); pi_eff (R, N) or (N,)
    is each item's probability of having been labelled (pi * k / m).

    Z_i = lam * f_i + w_i * (y_i - lam * f_i - c), w_i = labelled_i / pi_i; estimate = mean(Z),
    SE = sd(Z) / sqrt(N) (Zrnic & Candès). weighting="ht": c = 0, exactly unbiased for a fixed lam
    (Horvitz-Thompson). "hajek" (default): c = the weighted mean residual, i.e. the correction is a
    weighted *average* of the labelled residuals; bias O(1/n), but its variance grows with the
    spread of the residuals rather than with their size, which for win rates (centred near 0.5,
    residuals y - lam*f far from 0 when lam < 1) is several times smaller under unequal pi.
    lam minimises the estimated Var(Z) and is clipped to [0, 1]."""
    L = np.atleast_2d(np.asarray(labeled, dtype=bool))
    f = np.asarray(f, dtype=np.float64)
    y0 = np.nan_to_num(np.asarray(y, dtype=np.float64))
    w = np.where(L, 1.0 / np.broadcast_to(pi_eff, L.shape), 0.0)
    n_all = L.shape[1]
    sw = w.sum(1)
    if weighting == "hajek":
        y_c = y0 - ((w * y0).sum(1) / sw)[:, None]
        f_c = f - ((w * f).sum(1) / sw)[:, None]
    elif weighting == "ht":
        y_c, f_c = np.broadcast_to(y0, L.shape), np.broadcast_to(f, L.shape)
    else:
        raise StatsInputError(f"weighting must be 'hajek' or 'ht', got {weighting!r}")
    a = w * y_c
    c = w * f_c - f
    if lam is None:
        a_d = a - a.mean(1, keepdims=True)
        c_d = c - c.mean(1, keepdims=True)
        var_c = (c_d ** 2).mean(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            lam_v = np.where(var_c > 1e-12, (a_d * c_d).mean(1) / var_c, 0.0)
        lam_v = np.clip(np.nan_to_num(lam_v), 0.0, 1.0)
    else:
        lam_v = np.full(L.shape[0], float(lam))
    lc = lam_v[:, None]
    e = y_c - lc * f_c
    z = lc * f + w * e
    # Hajek: Z is the linearisation (its mean is not the estimate, its variance is the estimate's).
    est = lam_v * f.mean() + (w * (y0 - lc * f)).sum(1) / sw if weighting == "hajek" else z.mean(1)
    var_z = z.var(1, ddof=1)
    se = np.sqrt(var_z / n_all)
    v_lab = np.minimum((w * e - (w * e).mean(1, keepdims=True)).var(1, ddof=1) / n_all, se ** 2)
    h_est = (w * y0).sum(1) / sw if weighting == "hajek" else (w * y0).mean(1)
    h_se = np.sqrt((w * y_c).var(1, ddof=1) / n_all)
    zq = _z(confidence)
    return {"estimate": est, "standard_error": se, "ci_low": est - zq * se, "ci_high": est + zq * se,
            "lam": lam_v, "variance_labeled": v_lab, "variance_fixed": se ** 2 - v_lab,
            "human_estimate": h_est, "human_standard_error": h_se}


def active_win_rate(judge: Any, human: Any, probabilities: Any, *, queue_size: int | None = None,
                    confidence: float = 0.95, lam: float | None = None,
                    rater_rule: RaterRule = "majority") -> PPIWinRate:
    """Human win rate from labels drawn with recorded probabilities (see `sample_queue`).

    judge, human: as in `ppi_win_rate` (judge on all items, NaN = failed, scored as a tie).
    probabilities: item_id -> the probability the item had of entering the queue; needed for every
    labelled item (extra items are ignored). queue_size: how many items the queue held; None means
    every queued item is labelled. The human-only figures in the result are the weighted (Hájek)
    mean of the labels: on an uncertainty-driven sample a plain average would be biased.
    """
    f_raw, y, ids = align_labels(judge, human, rater_rule)
    labeled = ~np.isnan(y)
    p_ids, p_raw = _scores_by_id(probabilities, "probabilities")
    _unique_ids(p_ids, "probabilities")
    lookup = dict(zip(p_ids.astype(str), p_raw))
    lab_keys = ids[labeled].astype(str)
    missing = [k for k in lab_keys if k not in lookup]
    if missing:
        raise StatsInputError(f"probabilities: none recorded for {len(missing)} labelled item(s), e.g. "
                              f"{missing[:3]}; labels from outside the sampled queue cannot be weighted")
    pi = np.ones(f_raw.size)
    pi[labeled] = [lookup[k] for k in lab_keys]
    _check_probabilities(ids[labeled], pi[labeled])
    k = int(labeled.sum())
    m = k if queue_size is None else queue_size
    if not (isinstance(m, (int, np.integer)) and m >= k):
        raise StatsInputError(f"queue_size must be an integer >= the {k} labelled items, got {queue_size!r}")
    if lam is not None and not math.isfinite(lam):
        raise StatsInputError(f"lam must be a finite number, got {lam!r}")
    missing_f = np.isnan(f_raw)
    f = np.where(missing_f, 0.5, f_raw)
    r = {key: float(v[0]) for key, v in active_batch(y, f, labeled, pi * k / m, confidence=confidence,
                                                     lam=lam).items()}
    return result_from_batch(r, f_raw, labeled, confidence, "active")
