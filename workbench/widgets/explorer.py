"""Side-by-side explorer: browse items with every model's response, diffs, scores and verdicts.

Two layers, so that reports can use the HTML without any widget:

* `ExplorerData` (pure pandas/numpy, no ipywidgets): validates the input frames once, builds
  per-item indexes (responses, scores, judgments and labels sorted by item position, sliced by
  `searchsorted` bounds), computes filters as vectorised boolean masks, and renders one item as
  a self-contained, escaped HTML fragment (`render_item_html`).
* `Explorer` (ipywidgets): navigation, filters and the HTML view of the current item only.

Why this shape: 10,000 items must open in well under a second and every click must feel
instant, so nothing is computed per item except the one on screen. Model output is untrusted:
every text is passed through `html.escape` before it is placed in markup.

Input frames (extra columns are ignored unless said otherwise):

* items_df: ``item_id`` (str; other types are converted), ``input``; optional ``reference``.
  Every other column is a slice (metadata) column, e.g. ``language``, ``task``.
* responses_df (long): ``item_id, model, response``; optional ``sample_index`` (default 0),
  ``error``, ``latency_s``, ``cost_usd``, ``prompt_tokens``, ``completion_tokens``,
  ``finish_reason``. A missing ``response`` or a non-empty ``error`` marks a failed call.
  One row per (item_id, model, sample_index). To compare two prompt versions of one model,
  give each its own ``model`` label.
* scores_df (long, optional): ``item_id, model, metric, value``; several rows for one
  (item, model, metric), e.g. one per sample, are averaged.
* judgments_df (optional): ``item_id, model_a, model_b, verdict`` (A | B | tie, in a/b naming);
  optional ``consistent`` (bool, False when the two presentation orders disagreed: counted as
  a tie), ``rationale``, ``criterion``, ``judge``.
* labels_df (optional): ``item_id, rater, winner_model`` (empty for tie / both bad); optional
  ``left_model, right_model`` (the pair the rater saw; without them a label is read as
  baseline vs the selected candidate), ``action``. The raw `labels` table of the store works
  as is: it is folded with `workbench.labels.fold` (undo applied, latest decision per rater),
  and skip rows are dropped.
"""
from __future__ import annotations

import html
import math
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.errors import InputError, Problem
from workbench.widgets.textdiff import diff_html

VERDICTS = ("candidate_wins", "baseline_wins", "tie", "inconsistent")
ERROR_FILTERS = ("with_errors", "without_errors")
_ITEM_CORE = ("item_id", "input", "reference")
_RESPONSE_OPTIONAL = ("sample_index", "error", "latency_s", "cost_usd", "prompt_tokens",
                      "completion_tokens", "finish_reason")
_NEXT_KEYS = frozenset({"ArrowRight", "j", "n"})  # not Up/Down: they scroll the page
_PREV_KEYS = frozenset({"ArrowLeft", "k", "p"})
_FALLBACK_CLASS = "wb-static-fallback"

_CSS = """<style>
.wb-explorer{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;line-height:1.45}
.wb-explorer table.wb-t{border-collapse:collapse;width:100%;table-layout:fixed;margin:4px 0}
.wb-explorer table.wb-t th,.wb-explorer table.wb-t td{border:1px solid rgba(128,128,128,.35);
 padding:4px 6px;text-align:left;vertical-align:top}
.wb-explorer table.wb-t th{background:rgba(128,128,128,.12);font-weight:600}
.wb-explorer .wb-text{white-space:pre-wrap;word-break:break-word;max-height:28em;overflow:auto}
.wb-explorer .wb-tag{display:inline-block;border-radius:3px;padding:0 5px;margin:1px 3px 1px 0;
 background:rgba(128,128,128,.15);font-size:12px}
.wb-explorer .wb-good{background:rgba(40,167,69,.25)}
.wb-explorer .wb-bad{background:rgba(220,53,69,.25)}
.wb-explorer .wb-err{color:#c0392b;font-weight:600}
.wb-explorer .wb-muted{opacity:.7}
.wb-explorer ins.wb-ins{background:rgba(40,167,69,.3);text-decoration:none}
.wb-explorer del.wb-del{background:rgba(220,53,69,.25);text-decoration:line-through}
</style>"""


def _esc(value: Any) -> str:
    """Escape anything for HTML; missing values become an empty string."""
    return "" if _missing(value) else html.escape(str(value), quote=True)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def _require(frame: Any, name: str, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(Problem(name, None, None, f"expected a pandas DataFrame, got {type(frame).__name__}"))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError([Problem(name, None, c, f"missing column (has: {', '.join(map(str, frame.columns))})")
                          for c in missing])
    return frame


def _duplicates(frame: pd.DataFrame, name: str, keys: list[str]) -> None:
    dup = frame.duplicated(subset=keys, keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:5]
        raise InputError([Problem(name, int(r) + 1, ",".join(keys),
                                  "duplicate key " + ", ".join(f"{k}={frame[k].iloc[r]!r}" for k in keys))
                          for r in rows])


def _columns(frame: pd.DataFrame, names: Sequence[Any]) -> dict[str, np.ndarray]:
    """Columns as object arrays, so rendering one item reads plain Python values: pandas row
    access (`iloc`, `to_dict`) costs ~0.1 ms per call, which adds up to most of a click."""
    return {str(c): frame[c].to_numpy(dtype=object) for c in names}


def _records(cols: Mapping[str, np.ndarray], start: int, stop: int) -> list[dict[str, Any]]:
    return [{c: a[i] for c, a in cols.items()} for i in range(start, stop)]


def _bounds(sorted_pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start/stop row of each item position in rows sorted by position."""
    grid = np.arange(n)
    return np.searchsorted(sorted_pos, grid, "left"), np.searchsorted(sorted_pos, grid, "right")


@dataclass(frozen=True)
class Filters:
    """What the explorer shows. Every active criterion must hold (AND).

    `candidate` names the model the delta, verdict and disagreement filters compare with the
    baseline (default: the first candidate). `slices` maps a metadata column to allowed values.
    A `metric` makes the delta filter active: items lacking that metric on either model are
    hidden, and `delta_min`/`delta_max` (candidate minus baseline, inclusive) bound the rest.
    `verdict` is one of VERDICTS, `errors` one of ERROR_FILTERS, `search` a case-insensitive
    substring of the input, reference, responses or error messages.
    """

    candidate: str | None = None
    slices: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    metric: str | None = None
    delta_min: float | None = None
    delta_max: float | None = None
    verdict: str | None = None
    disagreement: bool = False
    errors: str | None = None
    search: str = ""


class ExplorerData:
    """Validated, indexed view of the evaluation frames; no widgets. See the module docstring
    for the frame columns. `models[0]` is the baseline (default: order of first appearance in
    responses_df). `higher_is_better` maps metric -> direction, used to colour deltas."""

    def __init__(self, items_df: pd.DataFrame, responses_df: pd.DataFrame,
                 scores_df: pd.DataFrame | None = None, judgments_df: pd.DataFrame | None = None,
                 labels_df: pd.DataFrame | None = None, models: Sequence[str] | None = None,
                 higher_is_better: Mapping[str, bool] | None = None):
        self._index_items(items_df)
        self._index_responses(responses_df, models)
        self._index_scores(scores_df)
        self._index_judgments(judgments_df)
        self._index_labels(labels_df)
        self.higher_is_better = dict(higher_is_better or {})
        self._delta_cache: dict[tuple[str, str], np.ndarray] = {}
        self._outcome_cache: dict[str, tuple[np.ndarray, ...]] = {}
        self._human_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._corpus: list[tuple[pd.Series, np.ndarray | None]] | None = None

    # ---- indexing ------------------------------------------------------------------------------
    def _index_items(self, items_df: pd.DataFrame) -> None:
        items = _require(items_df, "items_df", ["item_id", "input"])
        if items["item_id"].isna().any():
            row = int(np.flatnonzero(items["item_id"].isna().to_numpy())[0]) + 1
            raise InputError(Problem("items_df", row, "item_id", "missing item id"))
        items = items.reset_index(drop=True).copy()
        items["item_id"] = items["item_id"].astype(str)
        _duplicates(items, "items_df", ["item_id"])
        self.items = items
        self.item_ids: np.ndarray = items["item_id"].to_numpy(dtype=object)
        self.n_items = len(items)
        self._id_index = pd.Index(self.item_ids)
        self._id_pos = dict(zip(self.item_ids, range(self.n_items)))  # O(1) lookups per click
        self.slice_columns: list[str] = [str(c) for c in items.columns if c not in _ITEM_CORE]
        self._item_cols = _columns(items, list(items.columns))

    def _positions(self, ids: pd.Series) -> np.ndarray:
        return self._id_index.get_indexer(ids.astype(str))

    def _index_responses(self, responses_df: pd.DataFrame, models: Sequence[str] | None) -> None:
        resp = _require(responses_df, "responses_df", ["item_id", "model", "response"])
        present = [str(m) for m in pd.unique(resp["model"].dropna().astype(str).to_numpy(dtype=object))]
        self.models: list[str] = [str(m) for m in models] if models is not None else present
        if not self.models:
            raise InputError(Problem("responses_df", None, "model", "no model to show: the frame is empty"))
        absent = [m for m in self.models if m not in present]
        if absent:
            raise InputError(Problem("responses_df", None, "model",
                                     f"no responses for model(s) {absent} (present: {present})"))
        if len(set(self.models)) != len(self.models):
            raise InputError(Problem("models", None, None, f"models listed twice: {self.models}"))
        self.baseline, self.candidates = self.models[0], self.models[1:]
        rank = {m: i for i, m in enumerate(self.models)}
        resp = resp.copy()
        resp["model"] = resp["model"].astype(str)
        resp["item_id"] = resp["item_id"].astype(str)
        for col in _RESPONSE_OPTIONAL:
            if col not in resp.columns:
                resp[col] = 0 if col == "sample_index" else None
        resp = resp[resp["model"].isin(rank)]
        pos = self._positions(resp["item_id"])
        self.unknown_response_items = int((pos < 0).sum())
        resp = resp[pos >= 0].assign(_pos=pos[pos >= 0])
        resp["sample_index"] = resp["sample_index"].fillna(0).astype(int)
        resp["_rank"] = resp["model"].map(rank).astype(int)
        _duplicates(resp, "responses_df", ["item_id", "model", "sample_index"])
        order = np.lexsort((resp["sample_index"].to_numpy(), resp["_rank"].to_numpy(), resp["_pos"].to_numpy()))
        self.responses = resp.iloc[order].reset_index(drop=True)
        self._resp_start, self._resp_stop = _bounds(self.responses["_pos"].to_numpy(), self.n_items)
        self._resp_cols = _columns(self.responses, ["model", "response", *_RESPONSE_OPTIONAL])
        self.sample_indexes: list[int] = sorted(int(s) for s in self.responses["sample_index"].unique())
        failed = self.responses["response"].isna().to_numpy() | _nonempty(self.responses["error"])
        self.has_error = np.bincount(self.responses["_pos"].to_numpy()[failed], minlength=self.n_items) > 0

    def _index_scores(self, scores_df: pd.DataFrame | None) -> None:
        """Mean value per (item, metric, model) as a dense (items x metric·model) float matrix,
        built with two `bincount`s instead of a groupby/unstack (several times faster)."""
        self.metrics: list[str] = []
        self._score_values = np.empty((self.n_items, 0))
        self._score_col: dict[tuple[str, str], int] = {}
        if scores_df is None:
            return
        scores = _require(scores_df, "scores_df", ["item_id", "model", "metric", "value"])
        pos = self._positions(scores["item_id"])
        model = pd.Index(self.models).get_indexer(scores["model"].astype(str))
        value = pd.to_numeric(scores["value"], errors="coerce").to_numpy(dtype=float)
        keep = (pos >= 0) & (model >= 0) & ~np.isnan(value)
        codes, names = pd.factorize(scores["metric"].astype(str).to_numpy(dtype=object)[keep])
        if not len(names):
            return
        k = len(self.models)
        width = len(names) * k
        flat = pos[keep] * width + codes * k + model[keep]
        sums = np.bincount(flat, weights=value[keep], minlength=self.n_items * width)
        counts = np.bincount(flat, minlength=self.n_items * width)
        with np.errstate(invalid="ignore", divide="ignore"):
            self._score_values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).reshape(self.n_items, width)
        self.metrics = [str(m) for m in names]
        self._score_col = {(m, mod): i * k + j for i, m in enumerate(self.metrics) for j, mod in enumerate(self.models)}

    def _index_judgments(self, judgments_df: pd.DataFrame | None) -> None:
        cols = ["_pos", "model_a", "model_b", "verdict", "consistent", "rationale", "criterion", "judge"]
        if judgments_df is None:
            self.judgments = pd.DataFrame(columns=cols)
        else:
            j = _require(judgments_df, "judgments_df", ["item_id", "model_a", "model_b", "verdict"])
            verdict = j["verdict"].astype(str).str.strip().str.lower().map({"a": "A", "b": "B", "tie": "tie"})
            bad = np.flatnonzero(verdict.isna().to_numpy())
            if bad.size:
                raise InputError([Problem("judgments_df", int(r) + 1, "verdict",
                                          f"verdict {j['verdict'].iloc[r]!r} is not A, B or tie") for r in bad[:5]])
            pos = self._positions(j["item_id"])
            consistent = (j["consistent"].fillna(True).astype(bool) if "consistent" in j.columns
                          else pd.Series(True, index=j.index))
            frame = pd.DataFrame({
                "_pos": pos, "model_a": j["model_a"].astype(str).to_numpy(), "model_b": j["model_b"].astype(str).to_numpy(),
                "verdict": verdict.to_numpy(), "consistent": consistent.to_numpy(dtype=bool),
                "rationale": j["rationale"].to_numpy() if "rationale" in j.columns else None,
                "criterion": j["criterion"].to_numpy() if "criterion" in j.columns else None,
                "judge": j["judge"].to_numpy() if "judge" in j.columns else None})
            frame = frame[frame["_pos"] >= 0]
            self.judgments = frame.iloc[np.argsort(frame["_pos"].to_numpy(), kind="stable")].reset_index(drop=True)
        self._judg_start, self._judg_stop = _bounds(self.judgments["_pos"].to_numpy(dtype=int), self.n_items)
        self._judg_cols = _columns(self.judgments, cols[1:])

    def _index_labels(self, labels_df: pd.DataFrame | None) -> None:
        cols = ["_pos", "rater", "winner_model", "left_model", "right_model"]
        if labels_df is None:
            self.labels = pd.DataFrame(columns=cols)
        else:
            lab = _require(labels_df, "labels_df", ["item_id", "rater", "winner_model"])
            if {"action", "label_id", "undoes_label_id"} <= set(lab.columns):
                from workbench.labels import fold  # the one definition of undo and "latest decision"

                lab = fold(lab)
            if "action" in lab.columns:
                lab = lab[~lab["action"].isin(["skip", "undo"])]
            pos = self._positions(lab["item_id"])
            frame = pd.DataFrame({
                "_pos": pos, "rater": lab["rater"].astype(str).to_numpy(),
                "winner_model": lab["winner_model"].to_numpy(dtype=object),
                "left_model": lab["left_model"].to_numpy(dtype=object) if "left_model" in lab.columns else None,
                "right_model": lab["right_model"].to_numpy(dtype=object) if "right_model" in lab.columns else None})
            frame = frame[frame["_pos"] >= 0]
            self.labels = frame.iloc[np.argsort(frame["_pos"].to_numpy(), kind="stable")].reset_index(drop=True)
        self._lab_start, self._lab_stop = _bounds(self.labels["_pos"].to_numpy(dtype=int), self.n_items)
        self._lab_cols = _columns(self.labels, cols[1:])

    # ---- per-item vectors (cached) --------------------------------------------------------------
    def delta(self, metric: str, candidate: str) -> np.ndarray:
        """candidate - baseline per item position for `metric` (NaN where either is missing)."""
        key = (metric, candidate)
        if key not in self._delta_cache:
            a, b = self._score_col.get((metric, self.baseline)), self._score_col.get((metric, candidate))
            if a is None or b is None:
                self._delta_cache[key] = np.full(self.n_items, np.nan)
            else:
                self._delta_cache[key] = self._score_values[:, b] - self._score_values[:, a]
        return self._delta_cache[key]

    def _pair_rows(self, frame: pd.DataFrame, a_col: str, b_col: str, candidate: str) -> np.ndarray:
        a, b = frame[a_col].to_numpy(dtype=object), frame[b_col].to_numpy(dtype=object)
        return ((a == self.baseline) & (b == candidate)) | ((a == candidate) & (b == self.baseline))

    def judge_outcomes(self, candidate: str) -> tuple[np.ndarray, ...]:
        """Per item, for baseline vs `candidate`: (candidate_wins, baseline_wins, tie, inconsistent,
        judged, judge_sign) where the first five are 'any judgment row says so' masks and
        judge_sign is the sign of (candidate wins - baseline wins), inconsistent rows counting as ties."""
        if candidate not in self._outcome_cache:
            j, n = self.judgments, self.n_items
            rows = self._pair_rows(j, "model_a", "model_b", candidate)
            pos = j["_pos"].to_numpy(dtype=int)[rows]
            verdict = j["verdict"].to_numpy(dtype=object)[rows]
            winner = np.where(verdict == "A", j["model_a"].to_numpy(dtype=object)[rows],
                              np.where(verdict == "B", j["model_b"].to_numpy(dtype=object)[rows], None))
            consistent = j["consistent"].to_numpy(dtype=bool)[rows]
            cand = (winner == candidate) & consistent
            base = (winner == self.baseline) & consistent
            tie = ~cand & ~base
            any_of = lambda m: np.bincount(pos[m], minlength=n) > 0  # noqa: E731
            sign = np.sign(np.bincount(pos, weights=cand.astype(float) - base.astype(float), minlength=n))
            self._outcome_cache[candidate] = (any_of(cand), any_of(base), any_of(tie), any_of(~consistent),
                                              np.bincount(pos, minlength=n) > 0, sign)
        return self._outcome_cache[candidate]

    def human_outcomes(self, candidate: str) -> tuple[np.ndarray, np.ndarray]:
        """(labeled, sign of majority) per item for baseline vs `candidate`; ties and both-bad count 0."""
        if candidate not in self._human_cache:
            lab, n = self.labels, self.n_items
            if lab["left_model"].notna().any():
                rows = self._pair_rows(lab, "left_model", "right_model", candidate)
            else:
                rows = np.ones(len(lab), dtype=bool)
            pos = lab["_pos"].to_numpy(dtype=int)[rows]
            winner = lab["winner_model"].to_numpy(dtype=object)[rows]
            vote = (winner == candidate).astype(float) - (winner == self.baseline).astype(float)
            self._human_cache[candidate] = (np.bincount(pos, minlength=n) > 0,
                                            np.sign(np.bincount(pos, weights=vote, minlength=n)))
        return self._human_cache[candidate]

    def disagreement(self, candidate: str) -> np.ndarray:
        """Items judged and labeled where the judge's majority differs from the humans' majority."""
        *_, judged, judge_sign = self.judge_outcomes(candidate)
        labeled, human_sign = self.human_outcomes(candidate)
        return judged & labeled & (judge_sign != human_sign)

    def search(self, query: str) -> np.ndarray:
        """Items whose input, reference, any response or any error message contains `query`
        (case-insensitive substring). Each text column is lower-cased once, on the first search
        (arrow-native), and searched as a whole; response hits map to items by position."""
        if self._corpus is None:
            columns = [(self.items["input"], None)]
            if "reference" in self.items.columns:
                columns.append((self.items["reference"], None))
            pos = self.responses["_pos"].to_numpy()
            columns += [(self.responses["response"], pos), (self.responses["error"], pos)]
            self._corpus = [(text.fillna("").astype(str).str.lower(), p) for text, p in columns]
        hit = np.zeros(self.n_items, dtype=bool)
        needle = query.strip().lower()
        for text, pos in self._corpus:
            found = text.str.contains(needle, regex=False).to_numpy(dtype=bool)
            if pos is None:
                hit |= found
            else:
                hit[pos[found]] = True
        return hit

    # ---- filtering -----------------------------------------------------------------------------
    def validate(self, filters: Filters) -> Filters:
        """Check names in `filters` and fill in the default candidate."""
        problems = []
        candidate = filters.candidate or (self.candidates[0] if self.candidates else None)
        if candidate is not None and candidate not in self.candidates:
            problems.append(Problem("filters", None, "candidate", f"{candidate!r} is not a candidate ({self.candidates})"))
        for col in filters.slices:
            if col not in self.slice_columns:
                problems.append(Problem("filters", None, "slices", f"no metadata column {col!r} ({self.slice_columns})"))
        if filters.metric is not None and filters.metric not in self.metrics:
            problems.append(Problem("filters", None, "metric", f"no metric {filters.metric!r} ({self.metrics})"))
        if filters.verdict is not None and filters.verdict not in VERDICTS:
            problems.append(Problem("filters", None, "verdict", f"{filters.verdict!r} is not one of {VERDICTS}"))
        if filters.errors is not None and filters.errors not in ERROR_FILTERS:
            problems.append(Problem("filters", None, "errors", f"{filters.errors!r} is not one of {ERROR_FILTERS}"))
        needs_candidate = filters.metric or filters.verdict or filters.disagreement
        if needs_candidate and candidate is None:
            problems.append(Problem("filters", None, "candidate", "comparing needs at least two models"))
        if problems:
            raise InputError(problems)
        return replace(filters, candidate=candidate)

    def mask(self, filters: Filters) -> np.ndarray:
        """Boolean mask over item positions (items_df order) for `filters`, all vectorised."""
        f = self.validate(filters)
        keep = np.ones(self.n_items, dtype=bool)
        for col, allowed in f.slices.items():
            keep &= self.items[col].isin(list(allowed)).to_numpy()
        if f.metric is not None:
            d = self.delta(f.metric, f.candidate)
            keep &= ~np.isnan(d)
            if f.delta_min is not None:
                keep &= d >= f.delta_min - 1e-12
            if f.delta_max is not None:
                keep &= d <= f.delta_max + 1e-12
        if f.verdict is not None:
            keep &= self.judge_outcomes(f.candidate)[VERDICTS.index(f.verdict)]
        if f.disagreement:
            keep &= self.disagreement(f.candidate)
        if f.errors == "with_errors":
            keep &= self.has_error
        elif f.errors == "without_errors":
            keep &= ~self.has_error
        if f.search.strip():
            keep &= self.search(f.search)
        return keep

    def filter_positions(self, filters: Filters) -> np.ndarray:
        return np.flatnonzero(self.mask(filters))

    def filter_ids(self, filters: Filters) -> list[str]:
        return list(self.item_ids[self.mask(filters)])

    def position(self, item_id: str) -> int:
        """Position of `item_id` in items_df order; InputError when unknown."""
        pos = self._id_pos.get(str(item_id), -1)
        if pos < 0:
            raise InputError(Problem("items_df", None, "item_id", f"no item with id {str(item_id)!r}"))
        return int(pos)

    # ---- rendering -----------------------------------------------------------------------------
    def render_item_html(self, item_id: str, sample_index: int | None = None, diff: bool = True,
                         note: str = "") -> str:
        """One item as a self-contained HTML fragment: input, reference, responses side by side
        (candidates diffed against the baseline), metric badges, latency, cost, judge verdicts and
        human labels. Every value is escaped; `note` is plain text shown under the header."""
        p = self.position(item_id)
        item = {c: a[p] for c, a in self._item_cols.items()}
        sample = self.sample_indexes[0] if sample_index is None and self.sample_indexes else sample_index
        out = [_CSS, '<div class="wb-explorer">', self._header_html(item)]
        if note:
            out.append(f'<div class="wb-muted">{_esc(note)}</div>')
        out.append(self._io_html(item))
        out.append(self._responses_html(p, sample, diff))
        out.append(self._judgments_html(p))
        out.append(self._labels_html(p))
        out.append("</div>")
        return "".join(out)

    def _header_html(self, item: Mapping[str, Any]) -> str:
        tags = "".join(f'<span class="wb-tag">{_esc(c)}: {_esc(item[c])}</span>'
                       for c in self.slice_columns if not _missing(item[c]))
        return f'<div><b>item {_esc(item["item_id"])}</b> {tags}</div>'

    def _io_html(self, item: Mapping[str, Any]) -> str:
        rows = [f'<tr><th style="width:7em">input</th><td><div class="wb-text">{_esc(item["input"])}</div></td></tr>']
        if not _missing(item.get("reference")):
            rows.append(f'<tr><th>reference</th><td><div class="wb-text">{_esc(item["reference"])}</div></td></tr>')
        return f'<table class="wb-t">{"".join(rows)}</table>'

    def _responses_html(self, p: int, sample: int | None, diff: bool) -> str:
        rows = _records(self._resp_cols, self._resp_start[p], self._resp_stop[p])
        by_model = {r["model"]: r for r in rows if sample is None or r["sample_index"] == sample}
        base = by_model.get(self.baseline)
        base_text = None if base is None or _missing(base["response"]) else str(base["response"])
        head, meta, badges, texts = [], [], [], []
        for m in self.models:
            role = "baseline" if m == self.baseline else "candidate"
            head.append(f'<th>{_esc(m)} <span class="wb-muted">({role})</span></th>')
            r = by_model.get(m)
            meta.append(f"<td>{_meta_html(r)}</td>")
            badges.append(f"<td>{self._badges_html(p, m)}</td>")
            texts.append(f'<td><div class="wb-text">{_response_html(r, base_text if diff and m != self.baseline else None)}</div></td>')
        sample_note = f' <span class="wb-muted">sample {sample}</span>' if len(self.sample_indexes) > 1 else ""
        badge_row = f'<tr>{"".join(badges)}</tr>' if self.metrics else ""
        return (f'<table class="wb-t"><tr>{"".join(head)}</tr><tr>{"".join(meta)}</tr>'
                f'{badge_row}<tr>{"".join(texts)}</tr></table>{sample_note}')

    def _badges_html(self, p: int, model: str) -> str:
        out = []
        for metric in self.metrics:
            j = self._score_col.get((metric, model))
            value = np.nan if j is None else self._score_values[p, j]
            if np.isnan(value):
                continue
            text = f"{_esc(metric)}: {value:.3g}"
            css = "wb-tag"
            if model != self.baseline:
                jb = self._score_col.get((metric, self.baseline))
                base = np.nan if jb is None else self._score_values[p, jb]
                if not np.isnan(base):
                    d = value - base
                    text += f" ({d:+.3g})"
                    direction = self.higher_is_better.get(metric)
                    if direction is not None and d != 0:
                        css += " wb-good" if (d > 0) == bool(direction) else " wb-bad"
            out.append(f'<span class="{css}">{text}</span>')
        return "".join(out) or '<span class="wb-muted">no scores</span>'

    def _judgments_html(self, p: int) -> str:
        rows = _records(self._judg_cols, self._judg_start[p], self._judg_stop[p])
        if not rows:
            return ""
        body = []
        for r in rows:
            winner = r["model_a"] if r["verdict"] == "A" else r["model_b"] if r["verdict"] == "B" else None
            verdict = f"{_esc(winner)} wins" if winner else "tie"
            if not r["consistent"]:
                verdict += ' <span class="wb-err">(orders disagree: counted as tie)</span>'
            what = " · ".join(_esc(x) for x in (r["judge"], r["criterion"]) if not _missing(x))
            body.append(f"<tr><td>{_esc(r['model_a'])} vs {_esc(r['model_b'])}</td><td>{what}</td>"
                        f"<td>{verdict}</td><td><div class=\"wb-text\">{_esc(r['rationale'])}</div></td></tr>")
        return ('<table class="wb-t"><tr><th style="width:20%">judge: pair</th><th style="width:15%">judge · criterion</th>'
                f'<th style="width:20%">verdict</th><th>rationale</th></tr>{"".join(body)}</table>')

    def _labels_html(self, p: int) -> str:
        rows = _records(self._lab_cols, self._lab_start[p], self._lab_stop[p])
        if not rows:
            return ""
        parts = [f'<span class="wb-tag">{_esc(r["rater"])}: '
                 f'{_esc(r["winner_model"]) if not _missing(r["winner_model"]) else "tie / both bad"}</span>'
                 for r in rows]
        return f'<div><b>human labels</b> {"".join(parts)}</div>'

    def item_label(self, p: int, width: int = 60) -> str:
        """Short plain-text label for the item list (not HTML: the Select widget shows text)."""
        text = " ".join(str(self._item_cols["input"][p]).split())
        return f"{self.item_ids[p]} — {text[:width]}{'…' if len(text) > width else ''}"


def _nonempty(values: pd.Series) -> np.ndarray:
    return (values.notna() & (values.astype(str).str.strip() != "")).to_numpy(dtype=bool)


def _meta_html(r: Mapping[str, Any] | None) -> str:
    if r is None:
        return '<span class="wb-muted">no response</span>'
    parts = []
    if not _missing(r.get("latency_s")):
        parts.append(f"{float(r['latency_s']):.2f} s")
    parts.append(f"${float(r['cost_usd']):.6f}" if not _missing(r.get("cost_usd")) else "cost unknown")
    if not _missing(r.get("prompt_tokens")) or not _missing(r.get("completion_tokens")):
        fmt = lambda v: "?" if _missing(v) else str(int(v))  # noqa: E731
        parts.append(f"{fmt(r.get('prompt_tokens'))}→{fmt(r.get('completion_tokens'))} tok")
    if not _missing(r.get("finish_reason")):
        parts.append(_esc(r["finish_reason"]))
    return '<span class="wb-muted">' + " · ".join(parts) + "</span>"


def _response_html(r: Mapping[str, Any] | None, base_text: str | None) -> str:
    if r is None:
        return ""
    err = "" if _missing(r.get("error")) or not str(r["error"]).strip() else \
        f'<div class="wb-err">error: {_esc(r["error"])}</div>'
    if _missing(r["response"]):
        return err or '<span class="wb-err">no response</span>'
    text = str(r["response"])
    return err + (diff_html(base_text, text) if base_text is not None else _esc(text))


# ---- the widget --------------------------------------------------------------------------------
class Explorer:
    """Interactive side-by-side explorer (ipywidgets) over `ExplorerData`.

    Display it with `display(explorer)` or as a cell's last expression. Besides the live widget
    this emits the current item as static HTML, hidden while the widget renders (the widget
    carries the CSS that hides it) and visible in exported HTML, where widgets cannot load
    offline. Reports that want no widget at all use `render_item_html` or `ExplorerData`.

    Keyboard: ipywidgets has no global key events. When the optional `ipyevents` package is
    installed, arrow keys and j/k (n/p) navigate while the pointer is over the item view;
    otherwise the buttons are focusable (Tab to "next", then Enter/Space repeats) and the
    "go to" box jumps on Enter. State for code and tests: `current_id`, `filtered_ids`,
    `filters`; actions: `next()`, `prev()`, `go_to(item_id)`, `handle_key(key)`.
    """

    def __init__(self, items_df: pd.DataFrame, responses_df: pd.DataFrame,
                 scores_df: pd.DataFrame | None = None, judgments_df: pd.DataFrame | None = None,
                 labels_df: pd.DataFrame | None = None, models: Sequence[str] | None = None, *,
                 higher_is_better: Mapping[str, bool] | None = None, page_size: int = 20,
                 combobox_limit: int = 1000):
        self.data = ExplorerData(items_df, responses_df, scores_df, judgments_df, labels_df, models,
                                 higher_is_better)
        self.page_size = page_size
        self.combobox_limit = combobox_limit
        self.filters = self.data.validate(Filters())
        self.filtered_pos: np.ndarray = np.arange(self.data.n_items)
        self.current_pos: int | None = 0 if self.data.n_items else None
        self.message = ""
        self._busy = False
        self._build_widgets()
        self._refresh(list_changed=True)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def current_id(self) -> str | None:
        return None if self.current_pos is None else str(self.data.item_ids[self.current_pos])

    @property
    def filtered_ids(self) -> list[str]:
        return list(self.data.item_ids[self.filtered_pos])

    def _index_in_filtered(self) -> int | None:
        if self.current_pos is None:
            return None
        i = int(np.searchsorted(self.filtered_pos, self.current_pos))
        return i if i < len(self.filtered_pos) and self.filtered_pos[i] == self.current_pos else None

    # ---- actions -------------------------------------------------------------------------------
    def next(self) -> None:
        """Move to the next item in the filter (also from an item outside it, by items_df order)."""
        i = int(np.searchsorted(self.filtered_pos, -1 if self.current_pos is None else self.current_pos, "right"))
        if i < len(self.filtered_pos):
            self._move(int(self.filtered_pos[i]))

    def prev(self) -> None:
        if self.current_pos is None:
            return
        i = int(np.searchsorted(self.filtered_pos, self.current_pos, "left")) - 1
        if i >= 0:
            self._move(int(self.filtered_pos[i]))

    def go_to(self, item_id: str) -> None:
        """Show `item_id`, even when the filters hide it (the status line says so)."""
        self._move(self.data.position(item_id))

    def handle_key(self, key: str) -> bool:
        """Navigate for a key name (DOM `KeyboardEvent.key`); True when the key was used."""
        if key in _NEXT_KEYS:
            self.next()
        elif key in _PREV_KEYS:
            self.prev()
        else:
            return False
        return True

    def render_item_html(self, item_id: str | None = None) -> str:
        """Static HTML of `item_id` (default: the current item) with the widget's view options."""
        item_id = self.current_id if item_id is None else item_id
        if item_id is None:
            return f'{_CSS}<div class="wb-explorer"><i>No item matches the filters.</i></div>'
        return self.data.render_item_html(item_id, sample_index=self.sample.value, diff=self.diff_toggle.value)

    def static_html(self) -> str:
        return self.render_item_html()

    _repr_html_ = static_html

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        display(self.widget)
        display(HTML(f'<div class="{_FALLBACK_CLASS}">{self.static_html()}</div>'))

    # ---- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        import ipywidgets as w

        d = self.data
        narrow = {"description_width": "5.5em"}

        def button(description: str, icon: str, tooltip: str) -> Any:
            return w.Button(description=description, icon=icon, tooltip=tooltip, layout=w.Layout(width="auto"))

        def dropdown(description: str, options: Any, **kw: Any) -> Any:
            return w.Dropdown(description=description, options=options, style=narrow,
                              layout=w.Layout(width="17em"), **kw)

        def shown(flag: bool) -> dict:  # a control with nothing to choose is left out, not greyed
            return {} if flag else {"display": "none"}

        self.prev_button = button("prev", "arrow-left", "previous item (k, ←)")
        self.next_button = button("next", "arrow-right", "next item (j, →)")
        self.prev_page_button = button("page", "angle-double-left", "previous page of the list")
        self.next_page_button = button("page", "angle-double-right", "next page of the list")
        self.goto_box = w.Combobox(placeholder="go to item id (Enter)", ensure_option=False,
                                   continuous_update=False, layout=w.Layout(width="16em"))
        self.status = w.HTML()
        self.item_list = w.Select(options=[], rows=6, layout=w.Layout(width="100%"))
        self.candidate = dropdown("candidate", d.candidates or [None], value=self.filters.candidate,
                                  disabled=len(d.candidates) < 2)
        self.candidate.layout = w.Layout(width="17em", **shown(len(d.candidates) > 1))
        self.slice_column = dropdown("slice", [("(all)", None)] + [(c, c) for c in d.slice_columns])
        self.slice_value = dropdown("value", [("(all)", None)], disabled=True)
        has_metrics = bool(d.metrics and d.candidates)
        self.metric = dropdown("Δ metric", [("(none)", None)] + [(m, m) for m in d.metrics], disabled=not has_metrics)
        self.delta_range = w.FloatRangeSlider(description="Δ range", min=-1.0, max=1.0, value=(-1.0, 1.0), step=0.01,
                                              continuous_update=False, disabled=True, readout_format=".3g",
                                              style=narrow, layout=w.Layout(width="30em"))
        has_judge = not d.judgments.empty and bool(d.candidates)
        self.verdict = dropdown("judge", [("(any)", None), ("candidate wins", "candidate_wins"),
                                          ("baseline wins", "baseline_wins"), ("tie", "tie"),
                                          ("orders disagree", "inconsistent")], disabled=not has_judge)
        self.disagree = w.Checkbox(description="judge ≠ humans", indent=False, layout=w.Layout(width="auto"),
                                   disabled=not has_judge or d.labels.empty)
        self.errors = dropdown("errors", [("(all)", None), ("with errors", "with_errors"),
                                          ("without errors", "without_errors")])
        self.search = w.Text(description="search", placeholder="text in input, responses, errors (Enter)",
                             continuous_update=False, style=narrow, layout=w.Layout(width="30em"))
        self.reset_button = button("reset filters", "times", "clear every filter")
        self.diff_toggle = w.Checkbox(description="diff vs baseline", value=True, indent=False,
                                      layout=w.Layout(width="auto"))
        self.sample = dropdown("sample", d.sample_indexes or [0], value=(d.sample_indexes or [0])[0],
                               disabled=len(d.sample_indexes) < 2)
        self.sample.layout.display = shown(len(d.sample_indexes) > 1).get("display")
        self.view = w.HTML()
        # Live widgets render this style, which hides the static fallback emitted beside them.
        hide_fallback = w.HTML(f"<style>.{_FALLBACK_CLASS}{{display:none}}</style>", layout=w.Layout(height="0px"))

        self.prev_button.on_click(lambda _: self.prev())
        self.next_button.on_click(lambda _: self.next())
        self.prev_page_button.on_click(lambda _: self._page(-1))
        self.next_page_button.on_click(lambda _: self._page(+1))
        self.reset_button.on_click(lambda _: self.reset_filters())
        self.goto_box.observe(self._on_goto, "value")
        self.item_list.observe(self._on_list, "value")
        self.slice_column.observe(self._on_slice_column, "value")
        self.metric.observe(self._on_metric, "value")
        self.candidate.observe(self._on_metric, "value")  # the Δ range depends on the candidate
        for wid in (self.slice_value, self.delta_range, self.verdict, self.disagree, self.errors, self.search):
            wid.observe(self._on_filter, "value")
        for wid in (self.diff_toggle, self.sample):
            wid.observe(lambda _: self._render(), "value")

        nav = w.HBox([self.prev_button, self.next_button, self.goto_box, self.prev_page_button,
                      self.next_page_button, self.status], layout=w.Layout(flex_flow="row wrap", align_items="center"))
        row = lambda *children, show=True: w.HBox(list(children), layout=w.Layout(  # noqa: E731
            flex_flow="row wrap", align_items="center", grid_gap="0 1em", **shown(show)))
        filters = w.VBox([row(self.slice_column, self.slice_value, self.errors, self.candidate),
                          row(self.metric, self.delta_range, show=has_metrics),
                          row(self.verdict, self.disagree, show=has_judge),
                          row(self.search, self.reset_button, self.diff_toggle, self.sample)])
        self.widget = w.VBox([hide_fallback, nav, filters, self.item_list, self.view])
        self._keyboard = self._attach_keyboard(self.view)

    def _attach_keyboard(self, source: Any) -> Any:
        try:
            from ipyevents import Event  # optional: only when the user has it installed
        except ImportError:
            return None
        event = Event(source=source, watched_events=["keydown"])
        event.on_dom_event(lambda e: self.handle_key(str(e.get("key", ""))))
        return event

    # ---- widget callbacks ----------------------------------------------------------------------
    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """While the explorer updates its own widgets, their observers must not react."""
        previous, self._busy = self._busy, True
        try:
            yield
        finally:
            self._busy = previous

    def _on_goto(self, change: dict) -> None:
        value = str(change["new"] or "").strip()
        if self._busy or not value:
            return
        try:
            self.go_to(value)
        except InputError:
            self.message = f"no item with id {value!r}"
            self._render_status()

    def _on_list(self, change: dict) -> None:
        if not self._busy and change["new"] is not None and change["new"] != self.current_id:
            self._move(self.data.position(change["new"]))

    def _on_slice_column(self, change: dict) -> None:
        if self._busy:
            return
        col = change["new"]
        with self._quiet():
            if col is None:
                self.slice_value.options, self.slice_value.disabled = [("(all)", None)], True
            else:
                counts = self.data.items[col].value_counts(dropna=True)
                self.slice_value.options = [("(all)", None)] + [(f"{v} ({counts[v]})", v) for v in counts.index[:200]]
                self.slice_value.disabled = False
            self.slice_value.value = None
        self._apply_widget_filters()

    def _on_metric(self, change: Any) -> None:
        if self._busy:
            return
        with self._quiet():
            self._update_delta_range()
        self._apply_widget_filters()

    def _update_delta_range(self) -> None:
        """Reset the Δ slider to the full range of the chosen metric's deltas (= no bound yet)."""
        metric = self.metric.value
        self.delta_range.disabled = metric is None
        if metric is None:
            return
        d = self.data.delta(metric, self.candidate.value)
        lo, hi = (float(np.nanmin(d)), float(np.nanmax(d))) if np.isfinite(d).any() else (-1.0, 1.0)
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        with self.delta_range.hold_sync():
            self.delta_range.min, self.delta_range.max = -1e300, 1e300  # never min > max on the way
            self.delta_range.min, self.delta_range.max = lo, hi
            self.delta_range.step = (hi - lo) / 200
            self.delta_range.value = (lo, hi)

    def _on_filter(self, _change: Any) -> None:
        if not self._busy:
            self._apply_widget_filters()

    def _apply_widget_filters(self) -> None:
        metric = self.metric.value
        lo, hi = self.delta_range.value if metric is not None else (None, None)
        col, val = self.slice_column.value, self.slice_value.value
        self.set_filters(Filters(
            candidate=self.candidate.value, slices={col: [val]} if col is not None and val is not None else {},
            metric=metric, delta_min=lo, delta_max=hi, verdict=self.verdict.value,
            disagreement=self.disagree.value, errors=self.errors.value, search=self.search.value))

    def set_filters(self, filters: Filters) -> None:
        """Apply `filters` (validated) without touching the filter widgets; stays on the current
        item when it still matches, else moves to the first match."""
        self.filters = self.data.validate(filters)
        self.filtered_pos = self.data.filter_positions(self.filters)
        if self._index_in_filtered() is None:
            self.current_pos = int(self.filtered_pos[0]) if len(self.filtered_pos) else None
        self.message = ""
        self._refresh(list_changed=True)

    def reset_filters(self) -> None:
        with self._quiet():
            self.slice_column.value = None
            self.slice_value.options, self.slice_value.value, self.slice_value.disabled = [("(all)", None)], None, True
            self.metric.value = None
            self.delta_range.disabled = True
            self.verdict.value = None
            self.disagree.value = False
            self.errors.value = None
            self.search.value = ""
        self._apply_widget_filters()

    def _page(self, step: int) -> None:
        n = len(self.filtered_pos)
        if not n:
            return
        i = self._index_in_filtered()
        i = int(np.searchsorted(self.filtered_pos, self.current_pos)) if i is None else i
        target = min(max((i // self.page_size + step) * self.page_size, 0), n - 1)
        self._move(int(self.filtered_pos[target]))

    def _move(self, pos: int) -> None:
        self.current_pos = pos
        self.message = ""
        self._refresh(list_changed=False)

    # ---- rendering -----------------------------------------------------------------------------
    def _refresh(self, list_changed: bool) -> None:
        with self._quiet():
            self._render_list(list_changed)
            self._render_status()
            self._render()

    def _render(self) -> None:
        if self.current_pos is None:
            self.view.value = self.render_item_html()
            return
        note = "" if self._index_in_filtered() is not None else "This item is outside the current filters."
        self.view.value = self.data.render_item_html(self.current_id, sample_index=self.sample.value,
                                                     diff=self.diff_toggle.value, note=note)

    def _render_status(self) -> None:
        n, total = len(self.filtered_pos), self.data.n_items
        i = self._index_in_filtered()
        where = f"{i + 1:,} / {n:,}" if i is not None else f"– / {n:,}"
        text = f"{where} filtered · {total:,} items"
        if self.message:
            text += f" · {self.message}"
        self.status.value = f"<span>{_esc(text)}</span>"
        at_start = i == 0 if i is not None else self.current_pos is None or not (self.filtered_pos < self.current_pos).any()
        at_end = i == n - 1 if i is not None else self.current_pos is None or not (self.filtered_pos > self.current_pos).any()
        self.prev_button.disabled = bool(n == 0 or at_start)
        self.next_button.disabled = bool(n == 0 or at_end)

    def _render_list(self, list_changed: bool) -> None:
        n = len(self.filtered_pos)
        i = self._index_in_filtered()
        anchor = i if i is not None else min(int(np.searchsorted(self.filtered_pos, self.current_pos or 0)), max(n - 1, 0))
        start = anchor // self.page_size * self.page_size
        page = self.filtered_pos[start:start + self.page_size]
        options = [(self.data.item_label(int(p)), str(self.data.item_ids[p])) for p in page]
        if [v for _, v in options] != [v for _, v in self.item_list.options]:
            self.item_list.options = options
        self.item_list.value = self.current_id if i is not None else None
        if list_changed:
            self.goto_box.options = [str(x) for x in self.data.item_ids[self.filtered_pos[:self.combobox_limit]]]
        self.prev_page_button.disabled = bool(start == 0)
        self.next_page_button.disabled = bool(start + self.page_size >= n)
