"""Chance-corrected agreement: Cohen's kappa (two raters) and Krippendorff's alpha (any raters, missing).

Raw agreement flatters raters who mostly say the same common label; both statistics subtract the
agreement expected by chance from the label frequencies. Krippendorff's alpha also copes with
missing labels and more than two raters, which is what a labeling queue produces.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from workbench.stats._validate import StatsInputError, is_missing

Level = Literal["nominal", "ordinal", "interval", "ratio"]


def majority_label(labels_per_item: Sequence[Sequence[Any]]) -> list[Any]:
    """Strict-majority label per item (rows = items, columns = raters); None when there is none.

    Missing labels are ignored; a majority needs more than half of the labels given for that item.
    """
    out = []
    for row in labels_per_item:
        given = [v for v in row if not is_missing(v)]
        top = Counter(given).most_common(1)
        out.append(top[0][0] if top and top[0][1] * 2 > len(given) else None)
    return out


def _category_order(values: Iterable[Any], labels: Sequence[Any] | None) -> list[Any]:
    seen = list(dict.fromkeys(values))
    if labels is not None:
        unknown = [v for v in seen if v not in set(labels)]
        if unknown:
            raise StatsInputError(f"labels {unknown[:5]} are not in the given label set {list(labels)}")
        return list(labels)
    try:
        return sorted(seen)
    except TypeError:  # mixed types: keep first-appearance order
        return seen


def cohen_kappa(
    rater_a: Sequence[Any], rater_b: Sequence[Any], *, labels: Sequence[Any] | None = None,
    weights: Literal["linear", "quadratic"] | None = None,
) -> float:
    """Cohen's kappa over the items both raters labelled (items with a missing label are dropped).

    weights='linear'/'quadratic' give weighted kappa for ordered labels (order = `labels`, else sorted).
    Returns NaN when chance agreement is total (both raters used one and the same label only): kappa is
    undefined there, not 0 or 1.
    """
    a, b = list(rater_a), list(rater_b)
    if len(a) != len(b):
        raise StatsInputError(f"paired inputs must have the same length (one label per item): {len(a)} vs {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b) if not (is_missing(x) or is_missing(y))]
    if not pairs:
        raise StatsInputError("cohen_kappa: no item was labelled by both raters")
    cats = _category_order([v for p in pairs for v in p], labels)
    index = {c: i for i, c in enumerate(cats)}
    k = len(cats)
    observed = np.zeros((k, k))
    np.add.at(observed, ([index[x] for x, _ in pairs], [index[y] for _, y in pairs]), 1.0)
    n = observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights in ("linear", "quadratic"):
        w = np.abs(i - j) / max(k - 1, 1)
        w = w if weights == "linear" else w**2
    else:
        raise StatsInputError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    chance = float((w * expected).sum())
    if chance == 0:
        return float("nan")
    return float(1 - (w * observed).sum() / chance)


def reliability_matrix(frame: pd.DataFrame, *, unit: str, rater: str, value: str) -> pd.DataFrame:
    """Pivot long labels (one row per unit, rater, value) to Krippendorff's raters x units matrix."""
    for col in (unit, rater, value):
        if col not in frame.columns:
            raise StatsInputError(f"labels: missing column {col!r}; has {list(frame.columns)}")
    dup = frame.duplicated([unit, rater])
    if dup.any():
        first = frame.loc[dup, [unit, rater]].iloc[0].tolist()
        raise StatsInputError(
            f"labels: {int(dup.sum())} duplicate (unit, rater) row(s), e.g. {first}; keep one label per rater "
            "and unit (e.g. the latest decision) first"
        )
    return frame.pivot(index=rater, columns=unit, values=value)


def _delta2(level: str, values: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    i, j = np.indices((values.size, values.size))
    if level == "nominal":
        return (i != j).astype(float)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ratio":
        total = values[:, None] + values[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(total == 0, 0.0, (values[:, None] - values[None, :]) / total)
        return d**2
    if level == "ordinal":  # values are sorted ranks; distance uses the marginal frequencies between them
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        return (cum[hi + 1] - cum[lo] - (n_c[i] + n_c[j]) / 2) ** 2
    raise StatsInputError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")


def krippendorff_alpha(
    reliability_data: Any, *, level: Level = "nominal", value_order: Sequence[Any] | None = None
) -> float:
    """Krippendorff's alpha for a raters x units matrix (rows = raters, columns = units).

    Missing labels (None/NaN) are allowed; units with fewer than two labels are not pairable and are
    ignored, as the coefficient prescribes. For 'ordinal' with non-numeric labels pass `value_order`.
    Returns NaN when the pairable values show no variation at all (alpha undefined).
    """
    if isinstance(reliability_data, pd.DataFrame):
        rows = reliability_data.to_numpy(dtype=object)
    else:
        rows = np.array([list(r) for r in reliability_data], dtype=object)
    if rows.ndim != 2 or rows.size == 0:
        raise StatsInputError("reliability_data: expected a non-empty raters x units matrix")
    present = ~np.vectorize(is_missing, otypes=[bool])(rows)
    observed_values = [v for v in rows[present]]
    if level == "nominal" or (level == "ordinal" and value_order is not None):
        cats = _category_order(observed_values, value_order)
        numeric = np.arange(len(cats), dtype=float)
    else:
        try:
            cats = sorted(set(float(v) for v in observed_values))
        except (TypeError, ValueError):
            raise StatsInputError(f"level {level!r} needs numeric labels (or value_order for ordinal)") from None
        numeric = np.asarray(cats, dtype=float)
    index = {c: i for i, c in enumerate(cats)}
    codes = np.full(rows.shape, -1)
    for r, u in zip(*np.nonzero(present)):
        v = rows[r, u]
        codes[r, u] = index[v if level == "nominal" or value_order is not None else float(v)]
    counts = np.stack([(codes == c).sum(axis=0) for c in range(len(cats))], axis=1).astype(float)  # units x cats
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if counts.shape[0] == 0:
        raise StatsInputError("krippendorff_alpha: no unit has two or more labels; nothing is pairable")
    scaled = counts / (m - 1)[:, None]
    coincidence = scaled.T @ counts - np.diag(scaled.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    d2 = _delta2(level, numeric, n_c)
    expected = float((np.outer(n_c, n_c) * d2).sum()) / (n - 1)
    if expected == 0:
        return float("nan")
    return float(1 - (coincidence * d2).sum() / expected)


# ---- one table for the labeling panel and the report -------------------------------------------------
AGREEMENT_COLUMNS = ("comparison", "kind", "rater_a", "rater_b", "n", "agreed", "agreement", "kappa",
                     "degenerate", "reason", "reading")


def _one_label_reason(name: str, used: list[Any]) -> str:
    return f"{name} used one label only ({used[0]!r})"


def _reading(row: dict[str, Any]) -> str:
    """One line for a panel or a report, so both say the same thing."""
    if row["n"] == 0:
        return "no item labelled by both"
    kappa = "undefined" if np.isnan(row["kappa"]) else f"{row['kappa']:.2f}"
    text = f"agreed on {row['agreed']} of {row['n']} ({row['agreement']:.0%}); Cohen's kappa {kappa}"
    return text + (f" (not meaningful: {row['reason']})" if row["degenerate"] else "")


def _pair_row(kind: str, a_name: str, b_name: str, a: pd.Series, b: pd.Series) -> dict[str, Any]:
    """`_pair_stats` plus its one-line reading."""
    row = _pair_stats(kind, a_name, b_name, a, b)
    row["reading"] = _reading(row)
    return row


def _pair_stats(kind: str, a_name: str, b_name: str, a: pd.Series, b: pd.Series) -> dict[str, Any]:
    """Raw agreement, n and kappa for two aligned label series (NaN where a rater gave none).

    Why the `degenerate` flag: kappa subtracts the agreement expected from each rater's label
    frequencies. When a rater used one label only, that expectation equals the raw agreement, so
    kappa is 0 (or undefined when both did) however often they agreed: 3 of 5 agreed reads as
    "kappa 0.0". The panel must then show raw agreement and say why kappa says nothing.
    """
    both = a.notna() & b.notna()
    x, y = a[both].tolist(), b[both].tolist()
    n = len(x)
    agreed = sum(u == v for u, v in zip(x, y))
    row = {"comparison": f"{a_name} vs {b_name}", "kind": kind, "rater_a": a_name, "rater_b": b_name, "n": n,
           "agreed": agreed, "agreement": agreed / n if n else float("nan"), "kappa": float("nan"),
           "degenerate": True, "reason": None}
    if n == 0:
        row["reason"] = "no item labelled by both"
        return row
    used_a, used_b = list(dict.fromkeys(x)), list(dict.fromkeys(y))
    if len(used_a) == 1 and len(used_b) == 1:
        row["reason"] = (f"both used one label only ({used_a[0]!r}): kappa is undefined" if used_a == used_b
                         else f"{a_name} used only {used_a[0]!r}, {b_name} only {used_b[0]!r}: kappa is 0 by construction")
        row["kappa"] = cohen_kappa(x, y)
        return row
    row["kappa"] = cohen_kappa(x, y)
    lone = [(name, used) for name, used in ((a_name, used_a), (b_name, used_b)) if len(used) == 1]
    if lone:
        row["reason"] = _one_label_reason(*lone[0]) + ": kappa cannot exceed 0 whatever the raw agreement"
    else:
        row["degenerate"] = False
    return row


def _strict_majority(values: pd.Series) -> Any:
    return majority_label([values.tolist()])[0]


def agreement_table(labels: pd.DataFrame, *, item: str = "item_id", rater: str = "rater", label: str = "choice",
                    non_voting: Sequence[str] = ()) -> pd.DataFrame:
    """Per rater pair and per rater vs the majority: n, agreed, raw agreement, Cohen's kappa, and
    whether kappa is degenerate (with the reason), as one frame for the labeling panel and the report.

    `labels`: one row per (item, rater) with the label (e.g. A | B | tie in model terms; missing
    labels and skips left out or NaN); fold undo/relabel first (`workbench.labels.fold`).
    Majority rows compare each rater with the strict majority of the *other* voting raters on each
    item (items without one are left out of that row's n), so a rater never agrees with themself;
    they appear only with three or more voting raters, since with two the majority of the others is
    the pair row again. `non_voting` raters (e.g. "judge" added as a rater) get pair rows and a
    majority row but never vote in any majority. Columns: AGREEMENT_COLUMNS; kind is "pair" or
    "vs majority".
    """
    for col in (item, rater, label):
        if col not in labels.columns:
            raise StatsInputError(f"labels: missing column {col!r}; has {list(labels.columns)}")
    rated = labels.dropna(subset=[label])
    matrix = reliability_matrix(rated, unit=item, rater=rater, value=label)  # raters x items; raises on duplicates
    raters = [str(r) for r in matrix.index]
    matrix.index = raters
    unknown = sorted(set(map(str, non_voting)) - set(raters))
    if unknown:
        raise StatsInputError(f"non_voting raters {unknown} have no labels (raters: {raters})")
    rows = [_pair_row("pair", a, b, matrix.loc[a], matrix.loc[b])
            for i, a in enumerate(raters) for b in raters[i + 1:]]
    voters = [r for r in raters if r not in set(map(str, non_voting))]
    for r in raters:
        others = [v for v in voters if v != r]
        if (len(voters) < 3 and r in voters) or not others:
            continue
        majority = matrix.loc[others].apply(_strict_majority, axis=0)
        rows.append(_pair_row("vs majority", r, "majority", matrix.loc[r], majority))
    out = pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
    return out.astype({"n": int, "agreed": int, "degenerate": bool})
