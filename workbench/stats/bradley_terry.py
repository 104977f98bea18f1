"""Bradley-Terry ratings for more than two models, with bootstrap CIs (Chatbot Arena's approach).

P(a beats b) = sigmoid(theta_a - theta_b). Ties count as half a win for each side. The MLE is fitted on
the aggregated win matrix (models x models), so its cost does not grow with the number of comparisons:
the point estimate with scipy's L-BFGS and an analytic gradient, the bootstrap replicates with a
vectorised Newton iteration over all replicates at once (checked against the scipy fit in the tests). When item ids are given the bootstrap resamples
items (all comparisons on an item together), which keeps the paired-by-item structure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.stats._validate import StatsInputError, as_scores, check_confidence
from workbench.stats.bootstrap import _index_chunks, _rng

ELO_SCALE = 400 / np.log(10)  # Elo points per unit of natural-log strength


@dataclass(frozen=True)
class BradleyTerry:
    """`table` is indexed by model, sorted best first, with columns rating, ci_low, ci_high (natural-log
    strength, centred at mean 0 or at the anchor), elo, elo_low, elo_high, n_comparisons, rank."""

    table: pd.DataFrame
    confidence: float
    n_resamples: int
    seed: int | None
    anchor: str | None

    def win_probability(self, a: str, b: str) -> float:
        """Model-implied probability that `a` beats `b` (ties as half)."""
        r = self.table["rating"]
        for m in (a, b):
            if m not in r.index:
                raise StatsInputError(f"unknown model {m!r}; known: {sorted(r.index)}")
        return float(1 / (1 + np.exp(-(r[a] - r[b]))))


def _win_matrix(ia: np.ndarray, ib: np.ndarray, s: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    won = np.bincount(ia * k + ib, weights=w * s, minlength=k * k)
    won += np.bincount(ib * k + ia, weights=w * (1 - s), minlength=k * k)
    return won.reshape(k, k)  # won[i, j] = (half-)wins of i over j


def _fit(won: np.ndarray, l2: float, start: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    total = won.sum()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[:, None] - theta[None, :]
        nll = float((won * np.logaddexp(0.0, -d)).sum()) / total + 0.5 * l2 * float(theta @ theta)
        a = won * (1 / (1 + np.exp(d)))  # won * (1 - sigmoid(d))
        grad = -(a.sum(axis=1) - a.sum(axis=0)) / total + l2 * theta
        return nll, grad

    res = minimize(objective, start, jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000, "gtol": 1e-11, "ftol": 1e-15})
    return res.x


def _fit_many(won: np.ndarray, l2: float, start: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Newton's method on many win matrices at once (bootstrap replicates), warm-started at `start`.

    Steps are capped at 2 log-units so separated replicates (a model that never loses) cannot overshoot;
    replicates that have not converged after `max_iter` are refitted with `_fit`.
    """
    reps, k, _ = won.shape
    total = won.sum(axis=(1, 2))
    games = won + won.transpose(0, 2, 1)
    theta = np.broadcast_to(start, (reps, k)).copy()
    eye, ones = np.eye(k), np.full((k, k), 1.0 / k)  # `ones` fixes the shift direction, which carries no information
    done = np.zeros(reps, dtype=bool)
    for _ in range(max_iter):
        d = theta[:, :, None] - theta[:, None, :]
        p = 0.5 * (1 + np.tanh(d / 2))  # sigmoid without overflow
        a = won * (1 - p)
        grad = a.sum(axis=2) - a.sum(axis=1) - l2 * total[:, None] * theta  # ascent direction of penalised LL
        done = np.abs(grad).max(axis=1) <= 1e-10 * total
        if done.all():
            break
        w = games * p * (1 - p)
        hess = -w + l2 * total[:, None, None] * eye + ones  # negative Hessian, shift direction pinned
        diag = np.arange(k)
        hess[:, diag, diag] += w.sum(axis=2)
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        scale = np.minimum(1.0, 2.0 / np.maximum(np.abs(step).max(axis=1), 1e-300))
        theta[~done] += (step * scale[:, None])[~done]
    for r in np.flatnonzero(~done):
        theta[r] = _fit(won[r], l2, start)
    return theta


def _check_connected(won: np.ndarray, models: list[str]) -> None:
    played = (won + won.T) > 0
    seen, frontier = {0}, [0]
    while frontier:
        i = frontier.pop()
        for j in np.flatnonzero(played[i]):
            if j not in seen:
                seen.add(int(j))
                frontier.append(int(j))
    if len(seen) < len(models):
        apart = sorted(models[i] for i in range(len(models)) if i not in seen)
        raise StatsInputError(
            f"the comparison graph is not connected: {apart} were never compared, directly or through others, "
            f"with {sorted(models[i] for i in seen)}; their ratings would not be on one scale"
        )


def _centre(theta: np.ndarray, anchor_index: int | None) -> np.ndarray:
    ref = theta[..., anchor_index] if anchor_index is not None else theta.mean(axis=-1)
    return theta - np.expand_dims(ref, -1)


def bradley_terry(
    comparisons: pd.DataFrame,
    *,
    model_a: str = "model_a",
    model_b: str = "model_b",
    score: str = "score_a",
    item: str | None = "item_id",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    anchor: str | None = None,
    l2: float = 1e-6,
    elo_base: float = 1000.0,
) -> BradleyTerry:
    """Fit BT ratings from one row per comparison: `score` is 1 if model_a won, 0.5 tie, 0 if model_b won.

    item: column of item ids to resample whole items (None, or a missing column, resamples rows).
    n_resamples=0 skips the bootstrap (CI columns NaN). `l2` is a tiny ridge on the per-comparison
    log-likelihood that keeps ratings finite when a model never loses; pass 0 for the plain MLE.
    anchor: report ratings relative to this model (its rating 0, its Elo `elo_base`) instead of the mean.
    """
    confidence = check_confidence(confidence)
    for col in (model_a, model_b, score):
        if col not in comparisons.columns:
            raise StatsInputError(f"comparisons: missing column {col!r}; has {list(comparisons.columns)}")
    if len(comparisons) == 0:
        raise StatsInputError("comparisons: is empty")
    a = comparisons[model_a].astype(str).to_numpy()
    b = comparisons[model_b].astype(str).to_numpy()
    if comparisons[[model_a, model_b]].isna().any().any():
        raise StatsInputError(f"comparisons: missing model names in {model_a!r}/{model_b!r}")
    if (a == b).any():
        raise StatsInputError(f"comparisons: {int((a == b).sum())} row(s) compare a model with itself")
    s = as_scores(comparisons[score].to_numpy(), score)
    models = sorted(set(a) | set(b))
    if len(models) < 2:
        raise StatsInputError("comparisons: need at least two models")
    code = {m: i for i, m in enumerate(models)}
    ia = np.array([code[m] for m in a])
    ib = np.array([code[m] for m in b])
    k = len(models)
    if anchor is not None and anchor not in code:
        raise StatsInputError(f"anchor {anchor!r} is not among the models {models}")
    anchor_index = code[anchor] if anchor is not None else None

    won = _win_matrix(ia, ib, s, np.ones(s.size), k)
    _check_connected(won, models)
    theta_hat = _fit(won, l2, np.zeros(k))
    rating = _centre(theta_hat, anchor_index)

    low = high = np.full(k, np.nan)
    if n_resamples:
        if item is not None and item in comparisons.columns:
            units, unit_of_row = np.unique(comparisons[item].astype(str).to_numpy(), return_inverse=True)
            n_units = units.size
        else:
            unit_of_row, n_units = np.arange(s.size), s.size
        if n_units < 2:
            raise StatsInputError("bootstrap needs at least 2 items (or comparisons)")
        reps = []
        for idx in _index_chunks(n_units, int(n_resamples), _rng(seed)):
            rows = idx.shape[0]
            counts = np.bincount((idx + np.arange(rows)[:, None] * n_units).ravel(),
                                 minlength=rows * n_units).reshape(rows, n_units)
            won_many = np.stack([_win_matrix(ia, ib, s, w.astype(np.float64), k) for w in counts[:, unit_of_row]])
            reps.append(_fit_many(won_many, l2, theta_hat))
        boot = _centre(np.concatenate(reps), anchor_index)
        tail = (1 - confidence) / 2
        low, high = np.quantile(boot, [tail, 1 - tail], axis=0)

    games = np.bincount(ia, minlength=k) + np.bincount(ib, minlength=k)
    table = pd.DataFrame(
        {
            "rating": rating,
            "ci_low": low,
            "ci_high": high,
            "elo": elo_base + ELO_SCALE * rating,
            "elo_low": elo_base + ELO_SCALE * low,
            "elo_high": elo_base + ELO_SCALE * high,
            "n_comparisons": games,
        },
        index=pd.Index(models, name="model"),
    ).sort_values("rating", ascending=False)
    table["rank"] = np.arange(1, k + 1)
    return BradleyTerry(table, confidence, int(n_resamples), seed, anchor)
