"""The explorer's data layer: pure pandas/numpy, no ipywidgets, so reports can use its HTML
without any widget.

`ExplorerData` validates the input frames once, builds per-item indexes (responses, scores,
judgments and labels sorted by item position, sliced by `searchsorted` bounds), computes
filters as vectorised boolean masks, and renders one item as a self-contained, escaped HTML
fragment (`render_item_html`).

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

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench import values
from workbench.comparison.compare import judge_distrust
from workbench.errors import InputError, Problem
from workbench.items.fields import APP_FIELDS
from workbench.labels import fold
from workbench.comparison.defaults import DEFAULT_GATE
from workbench.task.dataset import require_columns
from workbench.widgets.app_html import calls_html, item_rows_html
from workbench.widgets.explorer_store import StoreResponses, store_runs
from workbench.widgets.textdiff import DIFF_LEGEND, MIN_SHARED, diff_or_plain

VERDICTS = ("candidate_wins", "baseline_wins", "tie", "inconsistent")
ERROR_FILTERS = ("with_errors", "without_errors")
_ITEM_CORE = ("item_id", "input", "reference")
_RESPONSE_OPTIONAL = ("sample_index", "error", "latency_s", "cost_usd", "prompt_tokens",
                      "completion_tokens", "finish_reason", "tool_calls")

EXPLORER_CSS = """<style>
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
.wb-explorer ins.wb-ins{background:rgba(40,167,69,.3);text-decoration:none;border-radius:2px}
.wb-explorer del.wb-del{background:rgba(220,53,69,.25);text-decoration:line-through;border-radius:2px}
.wb-explorer del.wb-del+ins.wb-ins,.wb-explorer ins.wb-ins+del.wb-del{margin-left:.4em}
.wb-explorer .wb-legend{font-size:12px;opacity:.85}
.wb-explorer .wb-note{font-size:12px;font-style:italic;opacity:.75;margin-bottom:3px}
</style>"""


esc = values.esc  # missing values become an empty string
_missing = values.is_missing


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

    def __init__(self, items_df: pd.DataFrame, responses_df: pd.DataFrame | None,
                 scores_df: pd.DataFrame | None = None, judgments_df: pd.DataFrame | None = None,
                 labels_df: pd.DataFrame | None = None, models: Sequence[str] | None = None,
                 higher_is_better: Mapping[str, bool] | None = None, *, source: StoreResponses | None = None):
        self._index_items(items_df)
        self._source = source
        self._has_error: np.ndarray | None = None
        if source is None:
            self._index_responses(responses_df, models)
        else:
            self._use_source(source)
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
        items = require_columns(items_df, "items_df", ["item_id", "input"])
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
        self.slice_columns: list[str] = [str(c) for c in items.columns if c not in _ITEM_CORE and c not in APP_FIELDS]
        self._item_cols = _columns(items, list(items.columns))

    def _positions(self, ids: pd.Series) -> np.ndarray:
        return self._id_index.get_indexer(ids.astype(str))

    def _index_responses(self, responses_df: pd.DataFrame, models: Sequence[str] | None) -> None:
        resp = require_columns(responses_df, "responses_df", ["item_id", "model", "response"])
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
        self._has_error = np.bincount(self.responses["_pos"].to_numpy()[failed], minlength=self.n_items) > 0

    def _use_source(self, source: StoreResponses) -> None:
        """Responses read per item from a store (see explorer_store): nothing is read until shown."""
        self.models = source.models
        self.baseline, self.candidates = self.models[0], self.models[1:]
        self.responses = None
        self.unknown_response_items = 0
        self.sample_indexes = source.sample_indexes()

    @classmethod
    def from_store(cls, store: Any, models: Sequence[str] | None = None, *, runs: Mapping[str, int] | None = None,
                   **frames: Any) -> "ExplorerData":
        """Each of `models`' latest run on the newest dataset they all ran on (baseline first), or the
        given `runs` ({label: run id}), on that dataset's items; responses are read from the store one
        item at a time. `frames`: scores_df, judgments_df, labels_df, higher_is_better, as for the
        constructor."""
        source = StoreResponses(store, store_runs(store, models, runs))
        return cls(store.items_frame(source.dataset_id()), None, source=source, **frames)

    @property
    def rows_loaded(self) -> int:
        """Response rows held or read so far (all of them for frames; for a store, those shown)."""
        return len(self.responses) if self._source is None else self._source.rows_loaded

    @property
    def has_error(self) -> np.ndarray:
        """Per item position: some model's call failed (no response, or an error message)."""
        if self._has_error is None:
            assert self._source is not None
            self._has_error = np.zeros(self.n_items, dtype=bool)
            pos = self._positions(pd.Series(self._source.failed_items(), dtype=object))
            self._has_error[pos[pos >= 0]] = True
        return self._has_error

    def _item_rows(self, p: int) -> list[dict[str, Any]]:
        if self._source is None:
            return _records(self._resp_cols, self._resp_start[p], self._resp_stop[p])
        return self._source.rows(str(self.item_ids[p]))

    def _index_scores(self, scores_df: pd.DataFrame | None) -> None:
        """Mean value per (item, metric, model) as a dense (items x metric·model) float matrix,
        built with two `bincount`s instead of a groupby/unstack (several times faster)."""
        self.metrics: list[str] = []
        self._score_values = np.empty((self.n_items, 0))
        self._score_col: dict[tuple[str, str], int] = {}
        if scores_df is None:
            return
        scores = require_columns(scores_df, "scores_df", ["item_id", "model", "metric", "value"])
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
            j = require_columns(judgments_df, "judgments_df", ["item_id", "model_a", "model_b", "verdict"])
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
        self.untrusted_judge = self._judge_checks()

    def _judge_checks(self) -> dict[tuple[str, str], str]:
        """(model, model) sorted -> why the judge's verdicts on that pair of models are untrusted (the
        report's check: position consistency wholly below the default gate's minimum)."""
        pair = [tuple(sorted((str(a), str(b)))) for a, b in zip(self.judgments["model_a"], self.judgments["model_b"])]
        out = {}
        for key, group in self.judgments.groupby(pd.Series(pair, index=self.judgments.index, dtype=object), sort=False):
            why = judge_distrust(int(group["consistent"].sum()), len(group), DEFAULT_GATE["min_position_consistency"])
            if why:
                out[key] = why
        return out

    def _index_labels(self, labels_df: pd.DataFrame | None) -> None:
        cols = ["_pos", "rater", "winner_model", "left_model", "right_model"]
        if labels_df is None:
            self.labels = pd.DataFrame(columns=cols)
        else:
            lab = require_columns(labels_df, "labels_df", ["item_id", "rater", "winner_model"])
            if {"action", "label_id", "undoes_label_id"} <= set(lab.columns):
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
            texts = self.responses if self._source is None else self._source.texts()
            pos = texts["_pos"].to_numpy() if self._source is None else self._positions(texts["item_id"])
            texts, pos = texts[pos >= 0], pos[pos >= 0]
            columns += [(texts["response"], pos), (texts["error"], pos)]
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
        out = [EXPLORER_CSS, '<div class="wb-explorer">', self._header_html(item)]
        if note:
            out.append(f'<div class="wb-muted">{esc(note)}</div>')
        out.append(self._io_html(item))
        out.append(self._responses_html(p, sample, diff))
        out.append(self._judgments_html(p))
        out.append(self._labels_html(p))
        out.append("</div>")
        return "".join(out)

    def _header_html(self, item: Mapping[str, Any]) -> str:
        tags = "".join(f'<span class="wb-tag">{esc(c)}: {esc(item[c])}</span>'
                       for c in self.slice_columns if not _missing(item[c]))
        return f'<div><b>item {esc(item["item_id"])}</b> {tags}</div>'

    def _io_html(self, item: Mapping[str, Any]) -> str:
        rows = [f'<tr><th style="width:7em">input</th><td><div class="wb-text">{esc(item["input"])}</div></td></tr>']
        if not _missing(item.get("reference")):
            rows.append(f'<tr><th>reference</th><td><div class="wb-text">{esc(item["reference"])}</div></td></tr>')
        rows += item_rows_html(item)
        return f'<table class="wb-t">{"".join(rows)}</table>'

    def _responses_html(self, p: int, sample: int | None, diff: bool) -> str:
        rows = self._item_rows(p)
        by_model = {r["model"]: r for r in rows if sample is None or r["sample_index"] == sample}
        base = by_model.get(self.baseline)
        base_text = None if base is None or _missing(base["response"]) or not str(base["response"]).strip() \
            else str(base["response"])  # an empty text (the baseline only called a tool): nothing to diff against
        base_calls = None if base is None else base.get("tool_calls")
        head, meta, badges, texts = [], [], [], []
        any_diff = False
        for m in self.models:
            role = "baseline" if m == self.baseline else "candidate"
            head.append(f'<th>{esc(m)} <span class="wb-muted">({role})</span></th>')
            r = by_model.get(m)
            meta.append(f"<td>{_meta_html(r)}</td>")
            badges.append(f"<td>{self._badges_html(p, m)}</td>")
            body, diffed = _response_html(r, base_text if diff and m != self.baseline else None)
            if r is not None:
                body += calls_html(r.get("tool_calls"), base_calls if diff and m != self.baseline else None)
            any_diff |= diffed
            texts.append(f'<td><div class="wb-text">{body}</div></td>')
        sample_note = f' <span class="wb-muted">sample {sample}</span>' if len(self.sample_indexes) > 1 else ""
        badge_row = f'<tr>{"".join(badges)}</tr>' if self.metrics else ""
        legend = f"<div>{DIFF_LEGEND}</div>" if any_diff else ""
        return (f'{legend}<table class="wb-t"><tr>{"".join(head)}</tr><tr>{"".join(meta)}</tr>'
                f'{badge_row}<tr>{"".join(texts)}</tr></table>{sample_note}')

    def _badges_html(self, p: int, model: str) -> str:
        out = []
        for metric in self.metrics:
            j = self._score_col.get((metric, model))
            value = np.nan if j is None else self._score_values[p, j]
            if np.isnan(value):
                continue
            text = f"{esc(metric)}: {value:.3g}"
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
            verdict = f"{esc(winner)} wins" if winner else "tie"
            if not r["consistent"]:
                verdict += ' <span class="wb-err">(orders disagree: counted as tie)</span>'
            distrust = self.untrusted_judge.get(tuple(sorted((str(r["model_a"]), str(r["model_b"])))))
            if distrust:
                verdict += f' <span class="wb-err wb-untrusted" title="{esc(distrust)}">UNTRUSTED judge</span>'
            what = " · ".join(esc(x) for x in (r["judge"], r["criterion"]) if not _missing(x))
            body.append(f"<tr><td>{esc(r['model_a'])} vs {esc(r['model_b'])}</td><td>{what}</td>"
                        f"<td>{verdict}</td><td><div class=\"wb-text\">{esc(r['rationale'])}</div></td></tr>")
        return ('<table class="wb-t"><tr><th style="width:20%">judge: pair</th><th style="width:15%">judge · criterion</th>'
                f'<th style="width:20%">verdict</th><th>rationale</th></tr>{"".join(body)}</table>')

    def _labels_html(self, p: int) -> str:
        rows = _records(self._lab_cols, self._lab_start[p], self._lab_stop[p])
        if not rows:
            return ""
        parts = [f'<span class="wb-tag">{esc(r["rater"])}: '
                 f'{esc(r["winner_model"]) if not _missing(r["winner_model"]) else "tie / both bad"}</span>'
                 for r in rows]
        return f'<div><b>human labels</b> {"".join(parts)}</div>'

    def item_label(self, p: int, width: int = 60) -> str:
        """Short plain-text label for the item list (not HTML: the Select widget shows text)."""
        text = " ".join(str(self._item_cols["input"][p]).split())
        return f"{self.item_ids[p]} — {text[:width]}{'…' if len(text) > width else ''}"


def _nonempty(values: pd.Series) -> np.ndarray:
    return (values.notna() & (values.astype(str).str.strip() != "")).to_numpy(dtype=bool)


BATCHED_PROVIDERS = ("hf/", "vllm/")  # their latency is an item's time inside a shared batch


def _meta_html(r: Mapping[str, Any] | None) -> str:
    if r is None:
        return '<span class="wb-muted">no response</span>'
    parts = []
    if not _missing(r.get("latency_s")):
        if str(r.get("model") or "").startswith(BATCHED_PROVIDERS):  # a local model decodes many rows at once
            parts.append(f'<span title="time this answer spent in a batch decoded together with other items; '
                         f'not comparable to one API request">{float(r["latency_s"]):.2f} s in a batch</span>')
        else:
            parts.append(f"{float(r['latency_s']):.2f} s")
    parts.append(f"${float(r['cost_usd']):.6f}" if not _missing(r.get("cost_usd")) else "cost unknown")
    if not _missing(r.get("prompt_tokens")) or not _missing(r.get("completion_tokens")):
        fmt = lambda v: "?" if _missing(v) else str(int(v))  # noqa: E731
        parts.append(f"{fmt(r.get('prompt_tokens'))}→{fmt(r.get('completion_tokens'))} tok")
    if not _missing(r.get("finish_reason")):
        parts.append(esc(r["finish_reason"]))
    return '<span class="wb-muted">' + " · ".join(parts) + "</span>"


def _response_html(r: Mapping[str, Any] | None, base_text: str | None) -> tuple[str, bool]:
    """(HTML, diffed): the response, diffed against `base_text` when given and the two share
    enough; otherwise shown as plain text with a note saying why there are no marks."""
    if r is None:
        return "", False
    err = "" if _missing(r.get("error")) or not str(r["error"]).strip() else \
        f'<div class="wb-err">error: {esc(r["error"])}</div>'
    if _missing(r["response"]):
        return err or '<span class="wb-err">no response</span>', False
    text = str(r["response"])
    if base_text is None:
        return err + esc(text), False
    body, shared, diffed = diff_or_plain(base_text, text)
    if diffed:
        return err + body, True
    note = (f'<div class="wb-note">{shared:.0%} in common with the baseline (under {MIN_SHARED:.0%}): '
            'shown side by side without diff marks</div>')
    return err + note + body, False
