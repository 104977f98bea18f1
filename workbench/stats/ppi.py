"""Prediction-powered human win rates (PPI++, Angelopoulos, Duchi & Zrnic 2024) and a stopping rule.

Why: a judge scores every item but is biased; humans are right but label few items. PPI uses the
judge on all items and the humans' labels to measure (and remove) the judge's bias, so the estimate
targets the *human* win rate while its interval is narrower than the humans' labels alone give.
Power tuning picks the weight `lam` on the judge from the data (clipped to [0, 1]): a useless judge
gets lam = 0 and the result is the human-only interval, never worse.

Conventions (as in the rest of `workbench.stats`): candidate-side scores, 1 = candidate wins,
0.5 = tie, 0 = baseline wins. The labelled items must be a uniformly random subset of the judged
items (the labeler's default random order); for an uncertainty-driven queue use
`workbench.stats.active_labeling.active_win_rate`, which weights by the recorded probabilities.
The estimand is the human win rate on the population the items were drawn from; intervals are
normal-approximation (CLT) intervals, the same construction as the `ppi_py` package, with one
documented floor: with few labels the CLT interval can have zero width (two labels that agree with
the judge), so the reported interval is never narrower than +/- `proportions.floor_half_width` of the
label count over the span of the corrected labels y - lam * f (up to 2; the human-only interval: 1).
Simulated coverage with this floor stays >= 93% at 5, 10 and 30 labels (tests/stats/test_coverage.py);
from a few dozen labels on, the floor no longer binds and the interval is ppi_py's. The stopping rule also refuses to call a decision before `min_labels`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal, Mapping

import numpy as np

from workbench.stats._validate import StatsInputError, _positions, check_confidence
from workbench.stats.proportions import floor_half_width

RaterRule = Literal["majority", "mean"]


@dataclass(frozen=True)
class PPIWinRate:
    """Prediction-powered human win rate, with the human-only estimate on the same labels beside it.

    `variance_labeled` is the part of standard_error**2 that shrinks as 1/n_labeled and
    `variance_fixed` the part that does not (the judge's own sampling noise); `labels_needed` uses
    them to project the interval width. `method` is "ppi++" (uniform labels) or "active"
    (labels drawn with recorded probabilities, inverse-probability weighted)."""

    estimate: float
    ci_low: float
    ci_high: float
    standard_error: float
    n_labeled: int
    n_total: int
    lam: float
    human_estimate: float
    human_ci_low: float
    human_ci_high: float
    human_standard_error: float
    judge_estimate: float  # judge-only win rate over all judged items (failed items left out)
    n_judge_missing: int  # items the judge failed on; scored as ties (0.5) inside the estimator
    confidence: float
    method: str
    variance_labeled: float
    variance_fixed: float

    @property
    def width(self) -> float:
        return self.ci_high - self.ci_low

    @property
    def human_width(self) -> float:
        return self.human_ci_high - self.human_ci_low

    def to_dict(self) -> dict:
        return {**asdict(self), "width": self.width, "human_width": self.human_width}


@dataclass(frozen=True)
class StoppingAdvice:
    """How many more labels, at the current estimate and variance, until the CI clears `threshold`.

    decided: the CI already lies wholly above or below the threshold (`side` says which).
    more_labels: labels still needed (0 when decided; None when no number of labels will do at the
    current estimate, e.g. it sits on the threshold or the judge's own noise already is too wide)."""

    decided: bool
    more_labels: int | None
    side: Literal["above", "below"] | None
    threshold: float
    reason: str


# ---- input normalisation ----------------------------------------------------------------------
def _scores_by_id(values: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) from a pd.Series indexed by item id, a Mapping id -> score, or (id, score) pairs."""
    if hasattr(values, "index") and hasattr(values, "to_numpy") and not hasattr(values, "columns"):
        ids, raw = np.asarray(values.index, dtype=object), values.to_numpy()
    elif isinstance(values, Mapping):
        ids, raw = np.asarray(list(values.keys()), dtype=object), list(values.values())
    else:
        try:
            pairs = list(values)
            ids = np.asarray([p[0] for p in pairs], dtype=object)
            raw = [p[1] for p in pairs]
        except (TypeError, IndexError, KeyError):
            raise StatsInputError(
                f"{name}: expected a pandas Series indexed by item id, a dict item_id -> score, "
                f"or (item_id, score) pairs; got {type(values).__name__}") from None
    try:
        scores = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise StatsInputError(f"{name}: scores must be numeric ({exc})") from None
    if scores.size != ids.size:
        raise StatsInputError(f"{name}: {ids.size} item ids but {scores.size} scores")
    return ids, scores


def _check_range(scores: np.ndarray, name: str) -> None:
    bad = ~np.isnan(scores) & ((scores < 0) | (scores > 1))
    if bad.any():
        raise StatsInputError(
            f"{name}: scores must lie in [0, 1] (1 = candidate wins, 0.5 = tie, 0 = baseline wins); "
            f"{int(bad.sum())} outside at positions [{_positions(bad)}]")


def _unique_ids(ids: np.ndarray, name: str) -> None:
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        dup = ", ".join(map(str, uniq[counts > 1][:5]))
        raise StatsInputError(f"{name}: item ids must be unique, repeated: {dup}")


def judge_scores_by_item(judge: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated (ids, scores) for the judge over all items; NaN marks an item the judge failed on."""
    ids, scores = _scores_by_id(judge, "judge")
    if ids.size < 2:
        raise StatsInputError(f"judge: {ids.size} judged item(s); at least 2 needed")
    _unique_ids(ids, "judge")
    if np.isinf(scores).any():
        raise StatsInputError("judge: infinite scores; use NaN for an item the judge failed on")
    _check_range(scores, "judge")
    return ids, scores


def human_scores_by_item(human: Any, rule: RaterRule = "majority") -> tuple[np.ndarray, np.ndarray]:
    """One human score per labelled item, several raters combined by `rule`.

    `human`: a DataFrame with `item_id` and `score` columns (one row per rater decision, as the
    label export gives), a Series indexed by item id (repeats = several raters), or a dict
    item_id -> score or -> list of rater scores. NaN is refused: drop skips before calling.

    rule="majority" (default): the strict-majority score among the raters, else 0.5 (a split panel
    is a tie). It estimates "what the panel decides", the quantity the gate and the judge-agreement
    table use. rule="mean": the raters' average, which estimates the preference of an average
    rater and is slightly less noisy. Either is a valid target; they differ only when raters split.
    """
    if rule not in ("majority", "mean"):
        raise StatsInputError(f"rater rule must be 'majority' or 'mean', got {rule!r}")
    if hasattr(human, "columns"):
        missing = {"item_id", "score"} - set(human.columns)
        if missing:
            raise StatsInputError(f"human: the labels frame needs columns item_id and score; missing {sorted(missing)}")
        ids = np.asarray(human["item_id"], dtype=object)
        raw = human["score"].to_numpy()
    elif isinstance(human, Mapping):
        ids_l, raw_l = [], []
        for key, value in human.items():
            many = np.atleast_1d(np.asarray(value, dtype=object))
            ids_l += [key] * many.size
            raw_l += list(many)
        ids, raw = np.asarray(ids_l, dtype=object), raw_l
    else:
        ids, raw = _scores_by_id(human, "human")
    try:
        scores = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise StatsInputError(f"human: scores must be numeric ({exc})") from None
    if np.isnan(scores).any() or np.isinf(scores).any():
        bad = ~np.isfinite(scores)
        raise StatsInputError(f"human: {int(bad.sum())} missing or infinite score(s) at positions "
                              f"[{_positions(bad)}]; drop skipped items before estimating")
    _check_range(scores, "human")
    keys = ids.astype(str)
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if uniq.size == keys.size:
        return ids[first], scores[first]
    if rule == "mean":
        combined = np.bincount(inverse, weights=scores) / np.bincount(inverse)
    else:
        combined = np.full(uniq.size, 0.5)
        counts = np.bincount(inverse)
        for level in (0.0, 0.5, 1.0):
            votes = np.bincount(inverse, weights=(scores == level).astype(float), minlength=uniq.size)
            combined = np.where(votes * 2 > counts, level, combined)
        odd = ~np.isin(scores, (0.0, 0.5, 1.0))
        if odd.any():
            raise StatsInputError("human: majority needs scores of 0, 0.5 or 1; use rule='mean' for graded scores")
    return ids[first], combined


def align_labels(judge: Any, human: Any, rule: RaterRule = "majority") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(judge scores for all items, human scores aligned to them with NaN where unlabelled, item ids).

    Refuses labels for items the judge never saw: the estimator cannot place them, and silently
    dropping them would hide a pipeline bug (e.g. labels from another run)."""
    j_ids, j_scores = judge_scores_by_item(judge)
    h_ids, h_scores = human_scores_by_item(human, rule)
    j_keys = j_ids.astype(str)
    order = np.argsort(j_keys)
    pos = np.searchsorted(j_keys[order], h_ids.astype(str))
    pos = np.minimum(pos, j_keys.size - 1)
    found = j_keys[order][pos] == h_ids.astype(str)
    if not found.all():
        unseen = ", ".join(map(str, h_ids[~found][:5])) + (", ..." if (~found).sum() > 5 else "")
        raise StatsInputError(f"human: {int((~found).sum())} label(s) for item(s) the judge never saw: {unseen}")
    y = np.full(j_scores.size, np.nan)
    y[order[pos]] = h_scores
    if h_scores.size < 2:
        raise StatsInputError(f"human: {h_scores.size} labelled item(s); at least 2 are needed for an interval")
    return j_scores, y, j_ids


def floored_interval(estimate: float, low: float, high: float, n_labeled: int, confidence: float, *,
                     span: float = 2.0) -> tuple[float, float]:
    """(low, high) widened to at least estimate +/- floor_half_width(n_labeled, span) (inside [0, 1])."""
    half = floor_half_width(n_labeled, span=span, confidence=confidence)
    return min(low, max(0.0, estimate - half)), max(high, min(1.0, estimate + half))


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + check_confidence(confidence) / 2)


# ---- the estimator (batched over rows so simulations run vectorised) --------------------------
def ppi_batch(y: np.ndarray, f: np.ndarray, labeled: np.ndarray, *, confidence: float = 0.95,
              lam: float | None = None) -> dict[str, np.ndarray]:
    """PPI++ mean for each row of the boolean mask `labeled` (shape (R, N) or (N,)).

    y: human scores (N,), read only where labelled; f: judge scores (N,), no NaN (the caller has
    already replaced judge failures). Mirrors `ppi_py.ppi_mean_ci` exactly: lam = cov(Y, f) /
    ((1 + n/N_u) var(f over all items)), clipped to [0, 1]; unlabelled items carry the judge term.
    Returns arrays: estimate, standard_error, ci_low, ci_high, lam, variance_labeled, variance_fixed,
    human_estimate, human_standard_error."""
    L = np.atleast_2d(np.asarray(labeled, dtype=bool))
    f = np.asarray(f, dtype=np.float64)
    yz = np.where(L, np.nan_to_num(np.asarray(y, dtype=np.float64)), 0.0)
    n = L.sum(axis=1).astype(float)
    n_u = L.shape[1] - n
    fl = np.where(L, f, 0.0)
    fu = np.where(L, 0.0, f)
    mean_y = yz.sum(1) / n
    mean_fl = fl.sum(1) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_fu = np.where(n_u > 0, fu.sum(1) / np.maximum(n_u, 1), 0.0)
        cov = (np.where(L, (yz - mean_y[:, None]) * (f - mean_fl[:, None]), 0.0)).sum(1) / n
        var_all = f.var(ddof=1)
        if lam is None:
            lam_v = np.where((n_u > 0) & (var_all > 0), cov / ((1 + n / np.maximum(n_u, 1)) * var_all), 0.0)
            lam_v = np.clip(np.nan_to_num(lam_v), 0.0, 1.0)
        else:
            lam_v = np.full(n.shape, float(lam))
            if (n_u == 0).any() and lam != 0:
                raise StatsInputError("lam must be 0 when every item is labelled (no judge-only items remain)")
        resid = np.where(L, yz - lam_v[:, None] * f, 0.0)
        mean_r = resid.sum(1) / n
        var_r = np.where(L, (resid - mean_r[:, None]) ** 2, 0.0).sum(1) / n
        var_fu = np.where(n_u > 0, np.where(L, 0.0, (f - mean_fu[:, None]) ** 2).sum(1) / np.maximum(n_u, 1), 0.0)
        v_lab = var_r / n
        v_fix = np.where(n_u > 0, lam_v ** 2 * var_fu / np.maximum(n_u, 1), 0.0)
    est = lam_v * mean_fu + mean_r
    se = np.sqrt(v_lab + v_fix)
    var_y = np.where(L, (yz - mean_y[:, None]) ** 2, 0.0).sum(1) / n
    h_se = np.sqrt(var_y / n)
    z = _z(confidence)
    return {"estimate": est, "standard_error": se, "ci_low": est - z * se, "ci_high": est + z * se,
            "lam": lam_v, "variance_labeled": v_lab, "variance_fixed": v_fix,
            "human_estimate": mean_y, "human_standard_error": h_se}


def ppi_win_rate(judge: Any, human: Any, *, confidence: float = 0.95, lam: float | None = None,
                 rater_rule: RaterRule = "majority") -> PPIWinRate:
    """Prediction-powered estimate of the human win rate from judge scores on all items and human
    labels on a uniformly random subset.

    judge: candidate-side score per item for ALL judged items (Series indexed by item id or dict);
    NaN = the judge failed on that item. Such items are scored 0.5 inside the estimator, on labelled
    and unlabelled items alike: PPI stays unbiased for any fixed prediction rule, so a failed
    verdict only costs precision, whereas dropping the items would shift the target to "items the
    judge can handle". human: see `human_scores_by_item` (several raters per item allowed).
    lam: None = power-tuned (PPI++); 1 = plain PPI; 0 = human-only.
    """
    f_raw, y, _ = align_labels(judge, human, rater_rule)
    missing = np.isnan(f_raw)
    f = np.where(missing, 0.5, f_raw)
    labeled = ~np.isnan(y)
    if lam is not None and not math.isfinite(lam):
        raise StatsInputError(f"lam must be a finite number, got {lam!r}")
    r = {k: float(v[0]) for k, v in ppi_batch(y, f, labeled, confidence=confidence, lam=lam).items()}
    return result_from_batch(r, f_raw, labeled, confidence, "ppi++")


def result_from_batch(r: Mapping[str, float], f_raw: np.ndarray, labeled: np.ndarray, confidence: float,
                      method: str) -> PPIWinRate:
    """The PPIWinRate of one batch row, both intervals widened to the small-sample floor."""
    z = _z(confidence)
    n = int(labeled.sum())
    missing = np.isnan(f_raw)
    ci_low, ci_high = floored_interval(r["estimate"], r["ci_low"], r["ci_high"], n, confidence)
    h_se = r["human_standard_error"]
    human_low, human_high = floored_interval(r["human_estimate"], r["human_estimate"] - z * h_se,
                                             r["human_estimate"] + z * h_se, n, confidence, span=1.0)
    return PPIWinRate(
        estimate=r["estimate"], ci_low=ci_low, ci_high=ci_high, standard_error=r["standard_error"],
        n_labeled=n, n_total=int(f_raw.size), lam=r["lam"],
        human_estimate=r["human_estimate"], human_ci_low=human_low, human_ci_high=human_high,
        human_standard_error=h_se,
        judge_estimate=float(np.nanmean(f_raw)) if (~missing).any() else float("nan"),
        n_judge_missing=int(missing.sum()), confidence=float(confidence), method=method,
        variance_labeled=r["variance_labeled"], variance_fixed=r["variance_fixed"],
    )


# ---- stopping rule -----------------------------------------------------------------------------
def labels_needed(result: PPIWinRate, threshold: float, *, max_labels: int | None = None,
                  min_labels: int = 1) -> StoppingAdvice:
    """Labels still needed for the CI to clear `threshold`, if the estimate and the per-label
    variance stay where they are now (the gate's non-inferiority bound is 0.5 - margin).

    Projection: SE(n)^2 = variance_labeled * n_now / n + variance_fixed. It is a planning figure,
    not a guarantee: the estimate moves as labels arrive, so re-ask after each label.
    max_labels caps the total (default: n_total, every item labelled once). min_labels: below it
    nothing is decided whatever the interval says (the gate's min_items counts labels too)."""
    t = float(threshold)
    if not math.isfinite(t):
        raise StatsInputError(f"threshold must be a finite number, got {threshold!r}")
    if result.n_labeled < min_labels:
        more = min_labels - result.n_labeled
        return StoppingAdvice(False, more, None, t, f"Not decided: {result.n_labeled} label(s) so far, and at least "
                              f"{min_labels} are needed before the interval "
                              f"[{result.ci_low:.3f}, {result.ci_high:.3f}] can decide; label {more} more.")
    if result.ci_low > t:
        return StoppingAdvice(True, 0, "above", t, f"Decided: the {result.confidence:.0%} interval "
                              f"[{result.ci_low:.3f}, {result.ci_high:.3f}] lies above {t:.3f}.")
    if result.ci_high < t:
        return StoppingAdvice(True, 0, "below", t, f"Decided: the {result.confidence:.0%} interval "
                              f"[{result.ci_low:.3f}, {result.ci_high:.3f}] lies below {t:.3f}.")
    cap = int(result.n_total if max_labels is None else max_labels)
    z = _z(result.confidence)
    gap = abs(result.estimate - t)
    room = (gap / z) ** 2 - result.variance_fixed
    side = "above" if result.estimate > t else "below"
    if gap == 0 or room <= 0 or result.variance_labeled <= 0:
        why = ("the estimate sits on the threshold" if gap == 0 else
               "the judge-only part of the uncertainty alone is wider than the gap")
        return StoppingAdvice(False, None, None, t, f"Not decidable at the current estimate "
                              f"{result.estimate:.3f}: {why}; more labels may move the estimate.")
    n_now = result.n_labeled
    n_target = math.ceil(result.variance_labeled * n_now / room - 1e-9)
    if n_target > cap:
        return StoppingAdvice(False, None, side, t, f"Not decidable within {cap} labels: at the current "
                              f"estimate {result.estimate:.3f} and variance, about {n_target} labels in all "
                              f"would be needed to put the interval {side} {t:.3f}.")
    more = max(n_target - n_now, 1)
    return StoppingAdvice(False, more, side, t, f"About {more} more label(s) ({n_now + more} in all) would put "
                          f"the {result.confidence:.0%} interval {side} {t:.3f} if the estimate stays at "
                          f"{result.estimate:.3f}.")
