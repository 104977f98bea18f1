"""Length-controlled win rate (the idea of AlpacaEval 2's LC win rate, simplified).

LLM judges favour longer answers, so a verbose candidate can "win" without being better. We fit a
logistic regression of the judge's preference on the normalised length difference,
    logit P(candidate preferred) = b0 + b1 * tanh((len_c - len_b) / sd(len_c - len_b)) [+ covariates],
with soft labels (ties and judge probabilities are used as they are), then predict every item at zero
length difference and average. AlpacaEval adds per-instruction difficulty and regularises towards gamed
baselines; pass your own per-item covariates to add terms like difficulty.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from workbench.stats._validate import (
    StatsInputError,
    as_float_array,
    as_scores,
    check_confidence,
    same_length,
)
from workbench.stats.bootstrap import _index_chunks, _rng


@dataclass(frozen=True)
class LengthControlled:
    """lc_win_rate and raw_win_rate are fractions in [0, 1]; length_coef is b1 (log-odds per unit of the
    tanh feature; > 0 means longer candidates are preferred). CI fields are NaN without a bootstrap."""

    lc_win_rate: float
    raw_win_rate: float
    length_coef: float
    intercept: float
    n: int
    ci_low: float
    ci_high: float
    standard_error: float
    n_resamples: int

    def to_dict(self) -> dict:
        return asdict(self)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float, start: np.ndarray) -> np.ndarray:
    """Weighted soft-label logistic regression; column 0 of x is the (unpenalised) intercept."""
    from scipy.optimize import minimize

    total = w.sum()
    penal = np.ones(x.shape[1])
    penal[0] = 0.0

    def objective(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ beta
        # -[y log s(z) + (1-y) log(1-s(z))] = logaddexp(0, z) - y z
        loss = float(w @ (np.logaddexp(0.0, z) - y * z)) / total + 0.5 * l2 * float((penal * beta) @ beta)
        grad = x.T @ (w * (_sigmoid(z) - y)) / total + l2 * penal * beta
        return loss, grad

    return minimize(objective, start, jac=True, method="L-BFGS-B",
                    options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-15}).x


def _fit_many(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float, start: np.ndarray,
              max_iter: int = 50) -> np.ndarray:
    """Newton's method for many weight vectors (bootstrap replicates) at once; stragglers use `_fit`."""
    reps = w.shape[0]
    total = w.sum(axis=1)
    penal = np.ones(x.shape[1])
    penal[0] = 0.0
    beta = np.broadcast_to(start, (reps, x.shape[1])).copy()
    done = np.zeros(reps, dtype=bool)
    for _ in range(max_iter):
        prob = _sigmoid(beta @ x.T)  # replicates x items
        grad = (w * (prob - y)) @ x / total[:, None] + l2 * penal * beta
        done = np.abs(grad).max(axis=1) <= 1e-10
        if done.all():
            break
        hess = np.einsum("bn,ni,nj->bij", w * prob * (1 - prob), x, x) / total[:, None, None]
        hess += l2 * np.diag(penal) + 1e-12 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        scale = np.minimum(1.0, 5.0 / np.maximum(np.abs(step).max(axis=1), 1e-300))
        beta[~done] -= (step * scale[:, None])[~done]
    for r in np.flatnonzero(~done):
        beta[r] = _fit(x, y, w[r], l2, start)
    return beta


def length_controlled_win_rate(
    scores: Sequence[float],
    candidate_length: Sequence[float],
    baseline_length: Sequence[float],
    *,
    covariates: np.ndarray | None = None,
    l2: float = 1e-4,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> LengthControlled:
    """LC win rate next to the raw one, with a paired bootstrap CI (refit per resample; 0 skips it).

    covariates: optional (items x k) per-item features kept at their observed values when predicting.
    l2: small ridge on the non-intercept coefficients so a judge that always picks the longer answer
    still yields finite coefficients.
    """
    confidence = check_confidence(confidence)
    y = as_scores(scores, min_size=2)
    lc = as_float_array(candidate_length, "candidate_length")
    lb = as_float_array(baseline_length, "baseline_length")
    n = same_length(scores=y, candidate_length=lc, baseline_length=lb)
    delta = lc - lb
    raw = float(y.mean())
    if np.all(delta == 0):  # nothing to control for
        return LengthControlled(raw, raw, 0.0, float("nan"), n, float("nan"), float("nan"), float("nan"), 0)
    sd = float(delta.std(ddof=1))
    if np.all(delta == delta[0]):
        raise StatsInputError("length differences are all equal; their effect cannot be told from the win rate")
    columns = [np.ones(n), np.tanh(delta / sd)]
    if covariates is not None:
        cov = np.asarray(covariates, dtype=np.float64)
        cov = cov[:, None] if cov.ndim == 1 else cov
        if cov.ndim != 2 or cov.shape[0] != n or not np.isfinite(cov).all():
            raise StatsInputError(f"covariates: need a finite (items x k) array with {n} rows, got shape {cov.shape}")
        columns.extend(cov.T)
    x = np.column_stack(columns)
    x0 = x.copy()
    x0[:, 1] = 0.0  # every item at zero length difference

    beta = _fit(x, y, np.ones(n), l2, np.zeros(x.shape[1]))
    lc_rate = float(_sigmoid(x0 @ beta).mean())

    low = high = se = float("nan")
    if n_resamples:
        reps = []
        for idx in _index_chunks(n, int(n_resamples), _rng(seed)):
            rows = idx.shape[0]
            w = np.bincount((idx + np.arange(rows)[:, None] * n).ravel(), minlength=rows * n).reshape(rows, n)
            w = w.astype(np.float64)
            b = _fit_many(x, y, w, l2, beta)
            reps.append((w * _sigmoid(b @ x0.T)).sum(axis=1) / n)
        boot = np.concatenate(reps)
        tail = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(boot, [tail, 1 - tail]))
        se = float(boot.std(ddof=1))
    return LengthControlled(lc_rate, raw, float(beta[1]), float(beta[0]), n, low, high, se, int(n_resamples))
