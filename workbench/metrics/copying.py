"""Input copying: how much of a response is the task input repeated back, and what reference
metrics say once copied answers are left out.

Why: a model that parrots the input earns credit from reference metrics (chrF, BLEU, ROUGE)
whenever the reference reuses the input's words, which support answers do all the time. A
few-shot base model that continues the prompt instead of answering can thus "lead" on chrF
by copying. `input_copy_share` measures the copying; `delta_without_copies` says whether a
metric lead survives without the copied items.

Copying is measured on content tokens: words for space-delimited scripts and single
characters for Japanese/Chinese/Korean (no spaces to split on), after NFKC and case folding,
with whitespace and punctuation dropped. A response token counts as copied when it lies in a
run of `n` consecutive tokens that also occurs in the input: four words, or four kana/kanji,
is a verbatim phrase, not a shared product name or particle.

Two shares, because either kind of parroting inflates reference metrics: `input_copy`, the share
of the response that is verbatim input (an echo, or the input continued), and
`input_reproduced`, the share of the input repeated in the response (the input echoed before an
answer). The thresholds are set high on purpose: a short review is legitimately summarised
with its own words (the bundled demo's reference summaries reach 0.91 and 0.86; one that is a
verbatim sentence of its review reaches 1.0 and does count as a copy), while an echo scores
about 1.0 on both; the support replies' references stay below 0.4 and 0.65.
"""
from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Mapping

import numpy as np
import pandas as pd

from workbench import stats
from workbench.errors import InputError, Problem
from workbench.items.codes import item_positions

COPY_NGRAM = 4
COPY_THRESHOLD = 0.95
"""A response with at least this share of its tokens verbatim from the input counts as a copy."""
REPRODUCED_THRESHOLD = 0.9
"""A response that repeats at least this share of the input's tokens counts as a copy."""

# Han (+ ext. A, compatibility), Hiragana, Katakana (+ ext., half-width), Hangul syllables.
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af"
_CONTENT = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)


def content_tokens(text: str) -> list[str]:
    """Words and single CJK characters of `text` (NFKC, case-folded); no spaces or punctuation."""
    return _CONTENT.findall(unicodedata.normalize("NFKC", text).casefold())


def input_copy_share(response: str, source: str, n: int = COPY_NGRAM) -> float:
    """Share of the response's content tokens inside a run of `n` tokens found verbatim in `source`.

    1.0 = the response only repeats the input; NaN for a response without content tokens. A
    response shorter than `n` tokens is compared as a whole (it is a copy when it occurs in the input).
    """
    if n < 1:
        raise InputError(Problem("input_copy_share", None, "n", f"n-gram length must be >= 1, got {n}"))
    resp, src = content_tokens(response), content_tokens(source)
    if not resp:
        return math.nan
    k = min(n, len(resp))
    grams = {tuple(src[i:i + k]) for i in range(len(src) - k + 1)}
    covered = np.zeros(len(resp), dtype=bool)
    for i in range(len(resp) - k + 1):
        if tuple(resp[i:i + k]) in grams:
            covered[i:i + k] = True
    return float(covered.mean())


def copy_measures(response: str | None, source: Any, *, threshold: float = COPY_THRESHOLD,
                  reproduced_threshold: float = REPRODUCED_THRESHOLD, n: int = COPY_NGRAM
                  ) -> tuple[float, float, bool | None]:
    """(input_copy, input_reproduced, copied) for one response; NaN, NaN, None without text or input."""
    if not isinstance(response, str) or not isinstance(source, str):
        return math.nan, math.nan, None
    copy, reproduced = input_copy_share(response, source, n), input_copy_share(source, response, n)
    if math.isnan(copy):
        return copy, reproduced, None
    return copy, reproduced, bool(copy >= threshold or (reproduced >= reproduced_threshold))


def copy_flags(items_df: pd.DataFrame, responses_df: pd.DataFrame, *, threshold: float = COPY_THRESHOLD,
               reproduced_threshold: float = REPRODUCED_THRESHOLD, n: int = COPY_NGRAM) -> pd.DataFrame:
    """Per response: `input_copy`, `input_reproduced` (shares, see the module docstring) and
    `copied_input` (either share at or above its threshold).

    responses_df: ``item_id, model, response`` (+ any other columns, kept); items_df: ``item_id, input``.
    Missing responses or inputs give NaN / <NA>. Works for any number of models.
    """
    for name, frame, cols in (("items", items_df, ("item_id", "input")),
                              ("responses", responses_df, ("item_id", "model", "response"))):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError([Problem(name, None, c, "required column is missing") for c in missing])
    inputs = dict(zip(items_df["item_id"].astype(str), items_df["input"]))
    measures = [copy_measures(r, inputs.get(str(i)), threshold=threshold, reproduced_threshold=reproduced_threshold,
                              n=n) for i, r in zip(responses_df["item_id"], responses_df["response"])]
    out = responses_df.copy()
    out["input_copy"] = [m[0] for m in measures]
    out["input_reproduced"] = [m[1] for m in measures]
    out["copied_input"] = pd.array([pd.NA if m[2] is None else m[2] for m in measures], dtype="boolean")
    return out


# ---- does a metric lead survive without the copied answers? --------------------------------------
def _leader(delta: float, higher_is_better: bool | None) -> str | None:
    if higher_is_better is None or not np.isfinite(delta) or delta == 0:
        return None
    return "candidate" if (delta > 0) == higher_is_better else "baseline"


def _fmt(ci: Any, n: int) -> str:
    return f"Δ {ci.estimate:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}], n={n}"


def _split(paired: pd.DataFrame) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(items with both scores, copied mask, baseline scores, candidate scores) of one metric's frame."""
    cols = ("baseline", "candidate", "baseline_copied", "candidate_copied")
    missing = [c for c in cols if c not in paired.columns]
    if missing:
        raise InputError([Problem("paired", None, c, "required column is missing") for c in missing])
    data = paired.dropna(subset=["baseline", "candidate"])
    copied = (data["baseline_copied"].astype("boolean").fillna(False)
              | data["candidate_copied"].astype("boolean").fillna(False)).to_numpy(dtype=bool)
    return len(data), copied, data["baseline"].to_numpy(dtype=float), data["candidate"].to_numpy(dtype=float)


def _requests(key: Any, copied: np.ndarray, b: np.ndarray, c: np.ndarray) -> dict[Any, stats.BootstrapRequest]:
    """The delta CIs on all items and on those without a copied answer (each needs 2 items)."""
    out = {}
    for part, keep in (("full", slice(None)), ("kept", ~copied)):
        if len(c[keep]) >= 2:
            out[(key, part)] = stats.delta_request(c[keep], b[keep])
    return out


def delta_without_copies(paired: pd.DataFrame, *, higher_is_better: bool | None = True, n_resamples: int = 1000,
                         seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """The paired delta (candidate - baseline) of one metric on all items and on the items where
    neither answer copied the input, and whether a lead disappears.

    paired: one row per item with ``baseline``, ``candidate`` (scores) and ``baseline_copied``,
    ``candidate_copied`` (bool; <NA> counts as not copied). A lead is a delta whose CI excludes 0;
    it disappears when, without the copied items, the delta changes sign or its CI covers 0.
    `lead_disappears` is <NA> when there was no lead or fewer than two items remain.
    """
    n, copied, b, c = _split(paired)
    cis = stats.paired_bootstraps(_requests(None, copied, b, c), n_resamples=n_resamples, seed=seed,
                                  confidence=confidence)
    return _reading(n, copied, cis.get((None, "full")), cis.get((None, "kept")), higher_is_better)


def _reading(n: int, copied: np.ndarray, full: Any, kept: Any, higher_is_better: bool | None) -> dict[str, Any]:
    nan = math.nan
    row: dict[str, Any] = {
        "n": n, "n_copied": int(copied.sum()), "n_kept": int((~copied).sum()),
        "delta": full.estimate if full else nan, "ci_low": full.low if full else nan, "ci_high": full.high if full else nan,
        "delta_kept": kept.estimate if kept else nan, "ci_low_kept": kept.low if kept else nan,
        "ci_high_kept": kept.high if kept else nan, "leader": None, "lead_disappears": pd.NA, "reading": ""}
    lead = full is not None and (full.low > 0 or full.high < 0)
    if not lead:
        row["reading"] = "no lead on all items" if full else "too few items"
        return row
    row["leader"] = _leader(full.estimate, higher_is_better) or ("higher" if full.estimate > 0 else "lower")
    who = f"the {row['leader']}'s lead" if row["leader"] in ("candidate", "baseline") else "the difference"
    if kept is None:
        row["reading"] = f"{who} ({_fmt(full, n)}) cannot be checked: fewer than 2 items without a copied answer"
        return row
    covers = kept.low <= 0 <= kept.high
    flipped = not covers and np.sign(kept.estimate) != np.sign(full.estimate)
    row["lead_disappears"] = bool(flipped or covers)
    if row["lead_disappears"]:
        why = "changes sign" if flipped else "is no longer distinguishable from 0"
        row["reading"] = (f"{who} ({_fmt(full, n)}) {why} without the {row['n_copied']} items where an "
                          f"answer copied the input: {_fmt(kept, row['n_kept'])}")
    else:
        row["reading"] = (f"{who} holds without the {row['n_copied']} items where an answer copied the input: "
                          f"{_fmt(kept, row['n_kept'])}")
    return row


def copy_checks(scores: pd.DataFrame, copies: pd.DataFrame, baseline: str, candidate: str, *,
                higher_is_better: Mapping[str, bool | None] | None = None, n_resamples: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> pd.DataFrame:
    """`delta_without_copies` for every metric, from the long frames compare already has.

    scores: ``item_id, model, metric, value`` (several rows per item and model, e.g. samples, are
    averaged); copies: ``item_id, model, copied_input`` (`copy_flags` output; an item counts as
    copied by a model when any of its samples did). `higher_is_better` maps metric -> direction
    (missing: True; None names no leader). One row per metric: ``metric`` and the keys of
    `delta_without_copies`.
    """
    for name, frame, cols in (("scores", scores, ("item_id", "model", "metric", "value")),
                              ("copies", copies, ("item_id", "model", "copied_input"))):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError([Problem(name, None, c, "required column is missing") for c in missing])
    scores = scores.assign(item_id=scores["item_id"].astype(str), value=pd.to_numeric(scores["value"], errors="coerce"))
    mine = copies[copies["model"].isin([baseline, candidate])]
    return copy_checks_paired(stats.metric_pairs(scores, baseline, candidate),
                              copied_items(mine["item_id"].astype(str), mine["copied_input"]),
                              higher_is_better=higher_is_better, n_resamples=n_resamples, seed=seed,
                              confidence=confidence)


def copied_items(item_ids: pd.Series, *copied: pd.Series) -> pd.Series:
    """item id -> whether any of its answers copied the input: `copied` holds one flag per row of
    `item_ids` per answer (a row per model and sample, or a row per item with each model's flag);
    <NA> counts as not copied."""
    either = np.zeros(len(item_ids), dtype=bool)
    for flags in copied:
        either |= flags.astype("boolean").fillna(False).to_numpy(dtype=bool)
    out = pd.Series(either, index=pd.Index(item_ids, name="item_id"))
    return out if out.index.is_unique else out.groupby(level=0, observed=True).any()  # (coded ids: those seen)


def _flags_at(copied: pd.Series, ids: pd.Index) -> np.ndarray:
    """`copied.reindex(ids, fill_value=False)` as a boolean array: by position where both hold ids coded
    over one dictionary (a read in chunks), so no hash table of 100,000 ids is built (7 MiB at 100k)."""
    at = item_positions(pd.Series(copied.index, copy=False), ids)
    if at is None:
        return copied.reindex(ids, fill_value=False).to_numpy(dtype=bool)
    values = copied.to_numpy(dtype=bool)
    return np.where(at >= 0, values[np.maximum(at, 0)], False) if len(values) else np.zeros(len(ids), dtype=bool)


def copy_checks_paired(pairs: Mapping[Any, stats.Paired], copied: pd.Series, *,
                       higher_is_better: Mapping[str, bool | None] | None = None, n_resamples: int = 1000,
                       seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """`copy_checks` on each metric's scores paired by item already (`stats.Paired`: baseline as a,
    candidate as b; what a comparison has made for its deltas), with `copied` (`copied_items`): no
    second grouping of every score, which at 100,000 items held 90 MiB."""
    parts, requests = [], {}
    for metric, paired in pairs.items():
        flags = _flags_at(copied, paired.item_ids)
        parts.append((metric, paired.n, flags))
        requests.update(_requests(metric, flags, paired.a, paired.b))
    # one draw of resample indices for all the metrics' CIs over the same number of items
    cis = stats.paired_bootstraps(requests, n_resamples=n_resamples, seed=seed, confidence=confidence)
    rows = [{"metric": metric, **_reading(n, flags, cis.get((metric, "full")), cis.get((metric, "kept")),
                                          (higher_is_better or {}).get(metric, True))}
            for metric, n, flags in parts]
    return pd.DataFrame(rows)
