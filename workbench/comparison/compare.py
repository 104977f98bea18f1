"""Evidence for one baseline -> candidate comparison, paired by item: metric deltas with CIs,
judge win rates (raw and length-controlled), judge reliability, human labels, slices, behaviour,
cost and latency, errors, and the gate verdict. Used by `workbench compare` and the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping

import numpy as np
import pandas as pd

from workbench import memory, stats
from workbench.comparison.defaults import CONFIDENCE, DEFAULT_GATE
from workbench.comparison.gate import Estimate, GateConfig, GateEvidence, GateResult, MetricDelta, evaluate_gate
from workbench.errors import InputError
from workbench.hashing import json_safe
from workbench.items.codes import item_positions
from workbench.items.fields import APP_FIELDS
from workbench.judges import candidate_score
from workbench.metrics import SUMMARIZED, behaviour_diff, copying, metric_info, summarize_behaviour
from workbench.metrics.behaviour import KEYS as BEHAVIOUR_KEYS
from workbench.metrics.tool_calls import ERROR_KINDS, verdict_frame
from workbench.stats.agreement import agreement_table

SLICE_COLUMNS_EXCLUDED = {"item_id", "input", "reference", "instruction", *APP_FIELDS}


@dataclass
class Comparison:
    baseline: str
    candidate: str
    n_items: int
    n_paired: int
    only_baseline: list[str]
    only_candidate: list[str]
    metric_deltas: pd.DataFrame
    win_rates: pd.DataFrame
    judge_reliability: pd.DataFrame
    slices: pd.DataFrame
    behaviour: pd.DataFrame
    behaviour_summary: pd.DataFrame
    cost_latency: pd.DataFrame
    ratios: pd.DataFrame
    errors: pd.DataFrame
    binary_checks: pd.DataFrame
    copy_checks: pd.DataFrame
    gate: GateResult | None
    notes: list[str] = field(default_factory=list)
    tool_errors: pd.DataFrame = field(default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return json_safe(frame.to_dict(orient="records")) if frame is not None else []

        return {
            "baseline": self.baseline, "candidate": self.candidate, "n_items": self.n_items,
            "n_paired": self.n_paired, "only_baseline": self.only_baseline, "only_candidate": self.only_candidate,
            "metric_deltas": records(self.metric_deltas), "win_rates": records(self.win_rates),
            "judge_reliability": records(self.judge_reliability), "cost_latency": records(self.cost_latency),
            "ratios": records(self.ratios), "binary_checks": records(self.binary_checks),
            "copy_checks": records(self.copy_checks), "error_count": int(len(self.errors)),
            "tool_errors": records(self.tool_errors),
            "flagged_slices": records(self.slices[self.slices["verdict"] == "regression"]) if len(self.slices) else [],
            "behaviour_summary": records(self.behaviour_summary.reset_index()),
            "gate": self.gate.to_dict() if self.gate else None, "notes": self.notes,
        }


# what a compact frame of answers leaves out: the texts, and keys the statistics never read
LEFT_OUT = ("response", "tool_calls", "cache_key", "dataset_id", "run_id", "finish_reason")
REPEATED = ("model", "prompt_version", "model_version")  # a few values over many rows: categories
COUNTS = ("prompt_tokens", "completion_tokens")  # whole numbers kept in the fewest bytes that hold them


def compact_responses(responses: pd.DataFrame) -> pd.DataFrame:
    """The answers as the statistics read them: no texts, plus `answered` (an answer came back) and
    `response_chars` (its length; NaN without one); repeated labels as categories, token counts in
    the fewest bytes that hold them, prices as numbers (NaN where unknown, as None was). What a
    comparison keeps of 100,000 answers read in chunks (about 45 bytes each); a frame that is
    compact already is returned as it is."""
    if "answered" in responses.columns:
        return responses
    texts = responses["response"]
    out = responses.drop(columns=[c for c in LEFT_OUT if c in responses.columns]).assign(
        answered=texts.notna().to_numpy(),
        response_chars=texts.str.len().astype(float) if len(texts) else pd.Series(dtype=float))
    numbers = {c: pd.to_numeric(out[c], downcast="integer") for c in COUNTS
               if c in out.columns and pd.api.types.is_integer_dtype(out[c].dtype)}  # the same, 4 bytes or fewer
    if "cost_usd" in out.columns and out["cost_usd"].dtype == object and _holds_only(out["cost_usd"], float, int):
        numbers["cost_usd"] = out["cost_usd"].astype(float)  # a price per answer: 8 bytes, not a float object (32)
    # a copy: its columns would otherwise stay views of the answers' blocks, and keep the tool calls
    # beside them (and every other row of a slice) alive
    return out.assign(**numbers).astype({c: "category" for c in REPEATED if c in out.columns}).copy()


def compact_items(items: pd.DataFrame) -> pd.DataFrame:
    """The items as a comparison reads them once their answers are read (`AnswerEvidence`): the ids
    and the columns a slice may use, no texts (the inputs, references and app fields of 100,000
    items are 22 MiB and more); a text column of a few values over many items as a category (a
    byte an item instead of 10 to 16)."""
    kept = items[[c for c in items.columns if c == "item_id" or c not in SLICE_COLUMNS_EXCLUDED]]
    repeated = {c: "category" for c in kept.columns if _label(c, kept[c]) and kept[c].nunique() * 2 < len(kept)}
    return kept.astype(repeated) if repeated else kept


def statistics_columns(behaviour: pd.DataFrame) -> pd.DataFrame:
    """The behaviour diff's columns a comparison's statistics read: its keys and what its summary
    reads (`behaviour.SUMMARIZED`: every rate's flag, the binary checks' and the copy checks' among
    them). What a comparison read in chunks keeps: 100,000 items' diff without the lengths, formats,
    phrases, detected languages, copy shares and calls the tables never read is 5.4 MiB smaller."""
    return behaviour[[c for c in behaviour.columns if c in BEHAVIOUR_KEYS or c in SUMMARIZED]]


def compact_behaviour(behaviour: pd.DataFrame) -> pd.DataFrame:
    """The behaviour diff as a comparison read in chunks keeps it: its labels (languages, formats,
    refusal phrases, which side is missing: a few values over many rows, or none) as categories, a
    byte a row instead of 8 to 18, and its flags without a missing value a byte a row instead of two;
    100,000 items' diff goes from 21 to 10 MiB. Values stay as they were; a column of anything but
    text and missing values (the tool calls' lists) is left alone."""
    kinds = {c: "category" for c in behaviour.columns if _label(c, behaviour[c])}
    kinds.update({c: bool for c in behaviour.columns
                  if isinstance(behaviour[c].dtype, pd.BooleanDtype) and not behaviour[c].hasnans})
    return behaviour.astype(kinds) if kinds else behaviour


def join_labels(name: str, pieces: list[pd.Series]) -> pd.Series:
    """One column of a behaviour diff joined from its chunks' `compact_behaviour` as `compact_behaviour`
    keeps the whole: labels compacted per chunk (each with the categories it saw) joined into one
    category over all their values (sorted, as a whole column's `astype("category")` gives), not into
    text; any other column as `pd.concat` joins it."""
    labels = [isinstance(piece.dtype, pd.CategoricalDtype) for piece in pieces]
    if all(labels) and len({piece.dtype for piece in pieces}) > 1:
        seen = pd.concat([pd.Series(piece.dtype.categories, dtype=object) for piece in pieces], ignore_index=True)
        dtype = seen.drop_duplicates().astype("category").dtype
        codes = [np.append(dtype.categories.get_indexer(piece.dtype.categories), -1)[piece.cat.codes.to_numpy()]
                 for piece in pieces]  # each chunk's codes read into the whole's (its -1, missing, stays -1)
        return pd.Series(pd.Categorical.from_codes(np.concatenate(codes), dtype=dtype), name=pieces[0].name)
    if any(labels) and not all(labels):  # labels in some chunks only: their values as they were
        pieces = [piece.astype(object).where(piece.notna(), None) if isinstance(piece.dtype, pd.CategoricalDtype)
                  else piece for piece in pieces]
    column = pd.concat(pieces, ignore_index=True)
    return column.astype("category") if _label(name, column) else column


def _label(name: str, column: pd.Series) -> bool:
    return name not in BEHAVIOUR_KEYS and (
        isinstance(column.dtype, pd.StringDtype) or (column.dtype == object and _holds_only(column, str)))


def _holds_only(values: pd.Series, *kinds: type) -> bool:
    """Every value is one of `kinds` or None."""
    return set(map(type, values.tolist())) <= {*kinds, type(None)}


def concat_columns(frames: list[pd.DataFrame],
                   join: Callable[[str, list[pd.Series]], pd.Series] | None = None) -> pd.DataFrame:
    """`pd.concat(frames, ignore_index=True)`, joined a column at a time (`join(name, pieces)`, by
    default `pd.concat`), each frame's column let go of as soon as it is joined; `frames` is emptied.
    Why: a whole-frame concat holds every part and the whole together, twice the evidence of 100,000
    items where the read in chunks peaks; a column at a time, the parts shrink as the whole grows.
    Frames whose columns differ (or that have none) are joined whole."""
    names = list(frames[0].columns) if frames else []
    if not names or len(set(names)) < len(names) or any(list(f.columns) != names for f in frames[1:]):
        joined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        frames.clear()
        return joined
    parts = [dict(frame.items()) for frame in frames]  # each column apart: it goes once joined (a block
    frames.clear()  # shared by several columns, with the last of them)
    columns = {}
    for name in names:
        pieces = [part.pop(name) for part in parts]
        columns[name] = join(name, pieces) if join else pd.concat(pieces, ignore_index=True)
        del pieces
    return pd.DataFrame(columns, copy=False)


def split_rows(columns: dict[str, pd.Series], bounds: list[tuple[int, int]],
               attrs: dict[str, Any] | None = None) -> list[pd.DataFrame]:
    """`[frame.take(np.arange(start, stop)) for start, stop in bounds]` (with the frame's `attrs`) from
    the frame's columns (`columns`: `dict(frame.items())`, emptied), made a column at a time, each
    column let go of once its pieces are made: `concat_columns`' inverse. Why: a frame's rows copied
    whole hold every text twice (100,000 items' texts are 26 MiB) until the frame goes; where the
    caller holds the frame no more, only one column is held twice at a time."""
    names = list(columns)
    if not names:  # rows without columns: their index alone
        return [_with_attrs(pd.DataFrame(index=pd.RangeIndex(start, stop)), attrs) for start, stop in bounds]
    pieces = {}
    for name in names:
        column = columns.pop(name)
        pieces[name] = [column.take(np.arange(start, stop)) for start, stop in bounds]
        del column
    return [_with_attrs(pd.DataFrame({name: pieces[name][k] for name in names}, copy=False), attrs)
            for k in range(len(bounds))]


def _with_attrs(frame: pd.DataFrame, attrs: dict[str, Any] | None) -> pd.DataFrame:
    frame.attrs = dict(attrs or {})
    return frame


def answered(responses: pd.DataFrame) -> pd.DataFrame:
    """The rows with an answer, from a frame of answers or a compact one."""
    return responses[compact_responses(responses)["answered"].to_numpy(bool)]


def latency_cost_summary(*responses: pd.DataFrame) -> pd.DataFrame:
    """Per model (of each frame of answers in turn): calls, errors, p50/p95 latency, tokens and cost
    (cost null when any price is unknown). Each model's rows are read by position, a column at a time:
    no copy of 100,000 answers per model."""
    rows = []
    for frame in responses:
        frame = compact_responses(frame)
        fine = (frame["error"].isna() & frame["answered"]).to_numpy()
        for model, at in frame.groupby("model", sort=False).indices.items():
            ok = at[fine[at]]
            latency = frame["latency_s"].iloc[ok].dropna()
            cost = frame["cost_usd"].iloc[ok]
            rows.append({
                "model": model,
                "items": stats.distinct_count(frame["item_id"].iloc[at]),
                "answered": int(len(ok)),
                "errors": int(len(at) - len(ok)),
                "error_rate": float((len(at) - len(ok)) / len(at)) if len(at) else float("nan"),
                "latency_p50_s": float(latency.quantile(0.5)) if len(latency) else float("nan"),
                "latency_p95_s": float(latency.quantile(0.95)) if len(latency) else float("nan"),
                "prompt_tokens": float(frame["prompt_tokens"].iloc[ok].sum(min_count=1)) if len(ok) else float("nan"),
                "completion_tokens": float(frame["completion_tokens"].iloc[ok].sum(min_count=1)) if len(ok)
                else float("nan"),
                "cost_usd": float(cost.sum()) if len(ok) and cost.notna().all() else None,
            })
    return pd.DataFrame(rows)


def slice_columns(items: pd.DataFrame, max_values: int = 20) -> list[str]:
    cols = []
    for col in items.columns:
        if col in SLICE_COLUMNS_EXCLUDED or col.startswith("_"):
            continue
        values = items[col].dropna()
        labels = isinstance(values.dtype, pd.StringDtype) or np.asarray(values.map(  # a text column holds only str
            lambda v: isinstance(v, (str, bool, int, np.integer))), dtype=bool).all()  # (a category maps to one)
        if len(values) and labels and 1 < values.nunique() <= max_values:
            cols.append(col)
    return cols


def with_slices(items: pd.DataFrame, columns: list[str], ids: pd.Index | pd.Series, **values: Any) -> pd.DataFrame:
    """`values` (one per id; names that begin with `_`, which no slice column has) beside the slice
    `columns` of the items `ids` name: what a left join on `item_id` of the items gives. Taken by
    position where each id is one item's: the join of 100,000 coded ids builds hash tables of every id
    (12 MiB and 0.8 s, for each metric with slices)."""
    at = item_positions(items["item_id"], ids)
    if at is None or (at < 0).any():  # a repeated or unknown id: the join's rows
        return pd.DataFrame({"item_id": ids, **values}).merge(items[["item_id", *columns]], on="item_id", how="left")
    return items[columns].take(at).reset_index(drop=True).assign(**values)


JUDGE_METRIC = "judge:"  # a pointwise judge's scores enter the comparison as the metric judge:<criterion>
JUDGE_SCALE = (1.0, 5.0)


def describe_metrics(names: list[str]) -> pd.DataFrame:
    """`metrics.metric_info` for the reference metrics, plus the pointwise judge's `judge:<criterion>`
    scores (1 to 5, higher is better), so the judge's scores are compared exactly like a metric."""
    registry = [n for n in names if not str(n).startswith(JUDGE_METRIC)]
    judged = [{"metric": n, "higher_is_better": True, "aggregation": "mean", "needs_reference": False,
               "value_range": JUDGE_SCALE, "description": f"pointwise judge score for {n[len(JUDGE_METRIC):]!r}"}
              for n in names if str(n).startswith(JUDGE_METRIC)]
    info = metric_info(registry) if registry else pd.DataFrame(columns=["metric"])
    return pd.concat([info, pd.DataFrame(judged)], ignore_index=True) if judged else info


def rate_scale(info: Mapping[str, Any]) -> tuple[float, float] | None:
    """The scale of a rate (a metric whose per-item values are pass / fail: aggregation 'rate'), whose
    paired difference gets the small-sample floor; None for graded metrics (chrF, ROUGE, judge
    scores), whose CIs are the paired bootstrap and whose rules count items against min_items."""
    scale = info.get("value_range")
    if info.get("aggregation") != "rate" or not isinstance(scale, (tuple, list)) or len(scale) != 2:
        return None
    return float(scale[0]), float(scale[1])


def metric_deltas(items: pd.DataFrame, pairs: Mapping[Any, stats.Paired], *,
                  n_resamples: int, seed: int, confidence: float = CONFIDENCE,
                  margins: dict[str, float] | None = None, also: Mapping[Hashable, Any] | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[Hashable, Any]]:
    """Paired delta (candidate - baseline) per metric (`pairs`: `stats.metric_pairs`) with bootstrap
    CI and sign test, and for metrics the gate bounds (`margins`: metric -> max_drop) the one-sided
    non-inferiority p-value at that margin; and the per-slice deltas of each metric. `also`: other
    bootstrap CIs over the same items (`stats.BootstrapRequest`s, e.g. the cost and latency ratios),
    drawn with the metrics' deltas: one draw of the resample indices per item count
    (`stats.paired_bootstraps`); their CIs come back third."""
    rows, slice_tables = [], []
    if not pairs:
        return pd.DataFrame(), pd.DataFrame(), stats.paired_bootstraps(dict(also or {}), n_resamples=n_resamples,
                                                                      confidence=confidence, seed=seed)
    info = describe_metrics(list(pairs)).set_index("metric")
    slices = slice_columns(items)
    requests = {(DELTA, metric): stats.delta_request(paired.b, paired.a, value_range=rate_scale(info.loc[metric]))
                for metric, paired in pairs.items() if paired.n >= 2}
    cis = stats.paired_bootstraps({**requests, **(also or {})}, n_resamples=n_resamples, confidence=confidence,
                                  seed=seed)
    for metric, paired in pairs.items():
        direction = info.loc[metric, "higher_is_better"]
        higher = True if direction is None or pd.isna(direction) else bool(direction)
        descriptive = direction is None or pd.isna(direction)  # e.g. length: no better side
        scale = rate_scale(info.loc[metric])
        row: dict[str, Any] = {"metric": metric, "higher_is_better": None if descriptive else higher, "n": paired.n,
                               "baseline_mean": float(np.mean(paired.a)) if paired.n else np.nan,
                               "candidate_mean": float(np.mean(paired.b)) if paired.n else np.nan}
        if paired.n >= 2:
            ci = cis[(DELTA, metric)]
            sign = stats.sign_test(paired.b if higher else -paired.b, paired.a if higher else -paired.a)
            worse, better = (ci.high < 0, ci.low > 0) if higher else (ci.low > 0, ci.high < 0)
            changed = "changed" if (worse or better) else "no significant change"
            if not descriptive and metric in (margins or {}):
                test = stats.noninferiority_test(paired.b, paired.a, margin=float(margins[metric]),
                                                 higher_is_better=higher, confidence=confidence)
                row["noninferiority_p"] = test.p_value
            if info.loc[metric, "aggregation"] == "rate" and _binary(paired.a) and _binary(paired.b):
                row["mcnemar_p"] = stats.mcnemar_test(paired.b == 1, paired.a == 1).p_value
            row.update(delta=ci.estimate, ci_low=ci.low, ci_high=ci.high, sign_test_p=sign.p_value,
                       n_better=sign.n_better, n_worse=sign.n_worse,
                       verdict=f"descriptive: {changed}" if descriptive else
                       "regression" if worse else "improvement" if better else "no significant change")
            if slices and not descriptive:
                frame = with_slices(items, slices, paired.item_ids, _baseline=paired.a, _candidate=paired.b)
                table = stats.slice_deltas(frame, slices, candidate="_candidate", baseline="_baseline",
                                           higher_is_better=higher, n_resamples=n_resamples, seed=seed,
                                           include_all=False, min_items=10, value_range=scale)
                table.insert(0, "metric", metric)
                slice_tables.append(table)
                memory.release_unused()  # a slice table's groups and draws, before the next metric's
        else:
            row.update(delta=np.nan, ci_low=np.nan, ci_high=np.nan, verdict="too few items")
        rows.append(row)
    slices_frame = pd.concat(slice_tables, ignore_index=True) if slice_tables else pd.DataFrame()
    return pd.DataFrame(rows), slices_frame, {key: cis[key] for key in also or {}}


DELTA = "metric delta"  # the key of a metric's delta CI among the comparison's bootstrap CIs


def _binary(values: np.ndarray) -> bool:
    """Pass/fail per item (0 or 1): a rate metric with one sample per item, where McNemar's test applies."""
    return bool(np.isin(values, (0.0, 1.0)).all())


UNTRUSTED = "untrusted judge"  # the verdict of a judge slice, and the start of the win-rate rows' check


def judge_distrust(n_consistent: int, n: int, min_consistency: float) -> str:
    """Why the judge's own numbers cannot be trusted ('' when they can): the CI of its position
    consistency (same verdict in both orders on n_consistent of n pairs) lies wholly below the
    minimum (the gate's rule, or the default gate's), as the gate decides."""
    if not n:
        return ""
    ci = stats.proportion_ci(n_consistent, n, confidence=CONFIDENCE)
    if ci.high < min_consistency:
        return (f"position consistency {ci.estimate:.2f} ({CONFIDENCE:.0%} CI {ci.low:.2f} to {ci.high:.2f}, n={n}) "
                f"is below {min_consistency:g}: its verdicts follow the order the answers are shown in")
    return ""


def _mark_untrusted(win_rows: list[dict[str, Any]], slice_rows: pd.DataFrame, why: str) -> None:
    """Every number that rests on the judge's verdicts alone carries the mark (the prediction-powered
    and human rows do not: humans correct or replace the judge there)."""
    for row in win_rows:
        if str(row["source"]).startswith("judge"):
            row["judge_check"] = f"{UNTRUSTED}: {why}"
    if len(slice_rows):
        slice_rows["verdict"] = np.where(slice_rows["verdict"] == "too few items", slice_rows["verdict"], UNTRUSTED)
        slice_rows["judge_check"] = f"{UNTRUSTED}: {why}"


def judge_evidence(verdicts: pd.DataFrame | None, baseline_resp: pd.DataFrame, candidate_resp: pd.DataFrame,
                   items: pd.DataFrame, *, n_resamples: int, seed: int, human: pd.DataFrame | None = None,
                   label_queue: Mapping[str, Any] | None = None, min_consistency: float = 0.6
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any], Estimate | None]:
    """Win rates (judge raw, judge length-controlled, humans, prediction-powered), the judge-reliability
    panel, and the win-rate estimates by source (judge, human, ppi, and the PPI result itself).
    A judge whose position consistency lies wholly below `min_consistency` is marked untrusted on
    every row and slice built from its verdicts alone (`judge_check`)."""
    win_rows, reliability, slice_rows = [], [], pd.DataFrame()
    estimates: dict[str, Any] = {}
    consistency_est = None
    if verdicts is not None and len(verdicts):
        judged = verdicts.copy()
        judged["score"] = judged["verdict"].map(candidate_score)
        judged["score_ab"] = judged["verdict_ab"].map(candidate_score)
        judged["score_ba"] = judged["verdict_ba"].map(candidate_score)
        n_errors = int(judged["score"].isna().sum())
        per = judged.dropna(subset=["score"]).groupby("item_id", as_index=False)["score"].mean()
        lengths = _lengths(baseline_resp, candidate_resp)
        per = per.merge(lengths, on="item_id", how="inner")
        reliability.append({"measure": "judgments without a verdict (errors)", "value": float(n_errors),
                            "ci_low": np.nan, "ci_high": np.nan, "n": int(len(judged)),
                            "reading": "unparseable or failed judge answers; never counted as ties"})
        if len(per) >= 2:
            scores = per["score"].to_numpy(float)
            wr = stats.win_rate(scores)
            ci = stats.win_rate_ci(scores, n_resamples=n_resamples, seed=seed, confidence=CONFIDENCE)
            estimates["judge"] = Estimate.from_ci(ci)
            win_rows.append({"source": "judge", "win_rate": wr.win_rate, "ci_low": ci.low, "ci_high": ci.high,
                             "standard_error": wr.standard_error, "n": wr.n, "wins": wr.n_wins,
                             "losses": wr.n_losses, "ties": wr.n_ties})
            try:
                lc = stats.length_controlled_win_rate(scores, per["candidate_len"].to_numpy(float),
                                                      per["baseline_len"].to_numpy(float), n_resamples=200, seed=seed)
                win_rows.append({"source": "judge, length-controlled", "win_rate": lc.lc_win_rate, "ci_low": lc.ci_low,
                                 "ci_high": lc.ci_high, "standard_error": lc.standard_error, "n": lc.n})
            except stats.StatsInputError as exc:
                win_rows.append({"source": "judge, length-controlled", "win_rate": np.nan, "n": len(per),
                                 "note": str(exc)})
            try:
                pref = stats.length_preference(scores, per["candidate_len"].to_numpy(float),
                                               per["baseline_len"].to_numpy(float))
                reliability.append({"measure": "P(judge prefers the longer answer)", "value": pref.rate,
                                    "ci_low": pref.ci_low, "ci_high": pref.ci_high, "n": pref.n,
                                    "reading": "0.5 = no length bias; far above 0.5 = rewards length"})
            except stats.StatsInputError:
                decisive_orders = int(((judged["score_ab"] != 0.5) & judged["score_ab"].notna()).sum()
                                      + ((judged["score_ba"] != 0.5) & judged["score_ba"].notna()).sum())
                why = ("every decisive verdict was on a pair of answers of equal length" if (scores != 0.5).any()
                       else "no decisive combined verdict; in each order the judge did pick a side, but the two "
                       "orders never agreed (see position consistency)" if decisive_orders
                       else "the judge called every pair a tie in both orders")
                reliability.append({"measure": "P(judge prefers the longer answer)", "value": np.nan,
                                    "ci_low": np.nan, "ci_high": np.nan, "n": 0, "reading": f"undefined: {why}"})
            cols = slice_columns(items)
            if cols:
                frame = with_slices(items, cols, per["item_id"], _score=per["score"].to_numpy())
                slice_rows = stats.slice_win_rates(frame, cols, score="_score", n_resamples=n_resamples, seed=seed,
                                                   include_all=False, min_items=10)
                slice_rows.insert(0, "metric", "judge win rate")
        both = judged.dropna(subset=["score_ab", "score_ba"])
        if len(both):
            pc = stats.position_consistency(both["score_ba"].to_numpy(float), both["score_ab"].to_numpy(float),
                                            confidence=CONFIDENCE)
            consistency_est = Estimate(pc.consistency, pc.ci_low, pc.ci_high, pc.n, CONFIDENCE)
            reliability.append({"measure": "position consistency (same verdict in both orders)", "value": pc.consistency,
                                "ci_low": pc.ci_low, "ci_high": pc.ci_high, "n": pc.n,
                                "reading": "1.0 = never swayed by order; 0.5 or less = verdicts mostly follow position"})
            reliability.append({"measure": "P(judge prefers the response shown first)", "value": pc.prefers_first,
                                "ci_low": np.nan, "ci_high": np.nan, "n": pc.n_decisive,
                                "reading": "0.5 = no position bias; among single-order verdicts that picked a side"})
            untrusted = judge_distrust(pc.n_consistent, pc.n, min_consistency)
            reliability.append({"measure": "judge check", "value": np.nan if untrusted else 1.0,
                                "ci_low": np.nan, "ci_high": np.nan, "n": pc.n,
                                "reading": f"UNTRUSTED: {untrusted}" if untrusted else
                                f"passed: position consistency not below {min_consistency:g}"})
            if untrusted:
                _mark_untrusted(win_rows, slice_rows, untrusted)
    if human is not None and len(human):
        human_rows = _human_win_rate(human, n_resamples=n_resamples, seed=seed)
        ppi, left_out = (None, 0) if verdicts is None or not len(verdicts) else prediction_powered_win_rate(
            judge_item_scores(verdicts), human, label_queue)
        if label_queue is not None and human_rows:
            # labels drawn by the active queue: a plain mean over-weights the items the queue favoured
            human_rows[0].update(_weighted_human_row(ppi, human) if ppi is not None else
                                 {"win_rate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                                  "note": "labels from an active queue need the judge's verdicts to be weighted"})
        win_rows.extend(human_rows)
        if human_rows and np.isfinite(human_rows[0]["win_rate"]):
            row = human_rows[0]
            estimates["human"] = Estimate(row["win_rate"], row["ci_low"], row["ci_high"], row["n"], CONFIDENCE)
        if verdicts is not None and len(verdicts):
            reliability.extend(_judge_human_agreement(human, verdicts))
            if ppi is not None:
                # the gate's min_items counts what decides: the labelled items, not the judged ones
                estimates["ppi"] = Estimate(ppi.estimate, ppi.ci_low, ppi.ci_high, ppi.n_labeled, CONFIDENCE)
                estimates["ppi_result"] = ppi
                if label_queue is not None:  # the active queue holds all the labels there can be
                    estimates["labels_cap"] = label_queue["queue_size"]
                note = (f"{ppi.n_labeled} labelled items; interval {ppi.width / ppi.human_width:.2f}x "
                        "the width of the human-only one" if ppi.human_width else "")
                if ppi.method == "active":
                    note += "; labels weighted by their items' queue probabilities (active order)"
                if left_out:
                    note += (f"; {left_out} label(s) on items outside the task's queue left out (they cannot be weighted)"
                             if label_queue is not None else f"; {left_out} label(s) on items the judge did not "
                             "judge left out")
                win_rows.append({"source": "prediction-powered (judge on all items + human labels)",
                                 "win_rate": ppi.estimate, "ci_low": ppi.ci_low, "ci_high": ppi.ci_high,
                                 "standard_error": ppi.standard_error, "n": ppi.n_total, "note": note})
    return pd.DataFrame(win_rows), pd.DataFrame(reliability), slice_rows, estimates, consistency_est


def _human_win_rate(human: pd.DataFrame, *, n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """The humans' win rate: per item the mean over its raters (ties and "both bad" count 0.5)."""
    per_item = human.assign(score=human["choice"].map(candidate_score)).dropna(subset=["score"])
    per_item = per_item.groupby("item_id")["score"].mean()
    if len(per_item) < 2:
        return []
    scores = per_item.to_numpy(float)
    wr = stats.win_rate(scores)
    ci = stats.win_rate_ci(scores, n_resamples=n_resamples, seed=seed, confidence=CONFIDENCE)
    return [{"source": f"human labels ({human['rater'].nunique()} raters)", "win_rate": wr.win_rate, "ci_low": ci.low,
             "ci_high": ci.high, "standard_error": wr.standard_error, "n": wr.n, "wins": wr.n_wins,
             "losses": wr.n_losses, "ties": wr.n_ties}]


def judge_item_scores(verdicts: pd.DataFrame) -> pd.Series:
    """item_id -> the judge's candidate-side score (both orders combined) on every judged item; NaN
    where the judge gave no verdict (the estimators score those as ties and keep them)."""
    return verdicts.assign(score=verdicts["verdict"].map(candidate_score)).groupby("item_id")["score"].mean()


def prediction_powered_win_rate(judge: pd.Series, human: pd.DataFrame, label_queue: Mapping[str, Any] | None = None
                                ) -> tuple[Any, int]:
    """(PPI++ estimate of the humans' win rate or None, labels left out): the judge on every item,
    corrected by the human labels (item_id, choice; one row per rater) on the labelled ones.

    Uniform order (no queue): the labelled items are a uniform random subset (the labeler's seeded
    order gives that), Angelopoulos et al. With the task's active queue (`store.label_queue`), each
    label is weighted by the probability its item had of entering the queue (Zrnic & Candès). Labels
    on items outside the judged items (or the queue) cannot enter and are left out (counted)."""
    labels = human.assign(score=human["choice"].map(candidate_score)).dropna(subset=["score"])
    known = set(judge.index) if label_queue is None else set(judge.index) & {i for i, _ in label_queue["queue"]}
    outside = ~labels["item_id"].isin(known)
    left_out, labels = int(outside.sum()), labels[~outside]
    if labels["item_id"].nunique() < 2:
        return None, left_out
    if label_queue is None:
        return stats.ppi_win_rate(judge, labels[["item_id", "score"]], confidence=CONFIDENCE), left_out
    probabilities = dict(label_queue["queue"])
    return stats.active_win_rate(judge, labels[["item_id", "score"]], probabilities,
                                 queue_size=label_queue["queue_size"], confidence=CONFIDENCE), left_out


def _weighted_human_row(ppi: Any, human: pd.DataFrame) -> dict[str, Any]:
    return {"win_rate": ppi.human_estimate, "ci_low": ppi.human_ci_low, "ci_high": ppi.human_ci_high,
            "standard_error": ppi.human_standard_error, "n": ppi.n_labeled,
            "source": f"human labels ({human['rater'].nunique()} raters, weighted: active order)"}


def _judge_human_agreement(human: pd.DataFrame, verdicts: pd.DataFrame) -> list[dict[str, Any]]:
    """Judge vs each rater and vs the raters' majority, on categories (A / B / tie; a human's "both
    bad" is a tie, as in the win rate), never on per-item means. Raw agreement and n come with kappa,
    and a degenerate kappa says why."""
    judge = verdicts[["item_id", "verdict"]].dropna().rename(columns={"verdict": "choice"}).assign(rater="judge")
    humans = human[["item_id", "rater", "choice"]].replace({"choice": {"both_bad": "tie"}})
    if judge.empty or humans.empty:
        return []
    table = agreement_table(pd.concat([humans, judge], ignore_index=True), label="choice", non_voting=["judge"])
    rows = []
    for rec in table[(table["rater_a"] == "judge") | (table["rater_b"] == "judge")].to_dict(orient="records"):
        other = rec["rater_b"] if rec["rater_a"] == "judge" else rec["rater_a"]
        rows.append({"measure": f"judge vs {other}: agreement", "value": rec["agreement"], "ci_low": np.nan,
                     "ci_high": np.nan, "n": rec["n"], "reading": rec["reading"]})
    return rows


def pointwise_reliability(pointwise: pd.DataFrame, baseline: str, candidate: str,
                          human: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """The reliability panel of a pointwise judge, per criterion: how much of its 1-5 scale it uses
    (a judge that gives every answer the same score cannot tell them apart), how often its scores
    order the pair as the human labels do (where there are labels), and how far its own samples of
    one answer agree (when it was sampled more than once)."""
    rows: list[dict[str, Any]] = []
    for criterion, group in pointwise.groupby("criterion", sort=False):
        what = f"[{criterion}] "
        ok = group.dropna(subset=["score"])
        values = pd.to_numeric(ok["score"])
        n_errors = int(len(group) - len(ok))
        rows.append({"measure": what + "judgments without a score (errors)", "value": float(n_errors), "ci_low": np.nan,
                     "ci_high": np.nan, "n": int(len(group)), "reading": "unparseable or failed judge answers"})
        for model in (baseline, candidate):
            mine = values[ok["model"] == model]
            rows.append({"measure": what + f"score spread: {model}", "value": float(mine.std(ddof=1)) if len(mine) > 1
                         else np.nan, "ci_low": float(mine.min()) if len(mine) else np.nan,
                         "ci_high": float(mine.max()) if len(mine) else np.nan, "n": int(len(mine)),
                         "reading": "standard deviation (ci_low / ci_high: lowest and highest score); "
                         + ("UNINFORMATIVE: every answer got the same score" if len(mine) > 1 and mine.nunique() == 1
                            else f"{mine.nunique()} distinct scores used")})
        per_item = ok.groupby(["item_id", "model"])["score"].mean().unstack("model")
        if human is not None and len(human) and {baseline, candidate} <= set(per_item.columns):
            diff = (per_item[candidate] - per_item[baseline]).dropna()
            implied = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
            judge_pref = pd.Series(implied, index=diff.index)
            labels = human.assign(score=human["choice"].map(candidate_score)).dropna(subset=["score"])
            labels = labels.groupby("item_id")["score"].mean()
            both = labels.index.intersection(judge_pref.index)
            if len(both):
                human_side = np.sign(labels[both].to_numpy() - 0.5)
                judge_side = np.sign(judge_pref[both].to_numpy() - 0.5)
                agreed = int((human_side == judge_side).sum())
                ci = stats.proportion_ci(agreed, len(both), confidence=CONFIDENCE)
                rows.append({"measure": what + "agreement with human labels", "value": ci.estimate, "ci_low": ci.low,
                             "ci_high": ci.high, "n": len(both),
                             "reading": "share of labelled items where the higher score is the answer the humans "
                             "preferred (equal scores = tie)"})
        sampled = ok[pd.to_numeric(ok["n_samples"], errors="coerce") > 1] if "n_samples" in ok.columns else ok.iloc[:0]
        if len(sampled):
            spread = pd.to_numeric(sampled["score_std"], errors="coerce").dropna()
            rows.append({"measure": what + "repeatability (sd of the judge's samples of one answer)",
                         "value": float(spread.mean()) if len(spread) else np.nan, "ci_low": np.nan,
                         "ci_high": float(spread.max()) if len(spread) else np.nan, "n": int(len(sampled)),
                         "reading": "0 = the same score every time; ci_high: the largest"})
        else:
            rows.append({"measure": what + "repeatability", "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                         "n": 0, "reading": "unknown: each answer was judged once (sample the judge to measure it)"})
    return rows


def _labeling_advice(gate: GateConfig, estimates: dict[str, Any]) -> list[str]:
    """How many more human labels would let the win-rate rule decide (PPI's stopping rule)."""
    if gate.win_rate is None:
        return []
    ppi = estimates.get("ppi_result")
    if ppi is None:
        if gate.win_rate.source == "judge":
            return []
        return [f"The gate reads the {gate.win_rate.source} win rate, and there are no human labels for this "
                "comparison yet: label pairs with label_pairs.ipynb (same task name as this report)."]
    advice = stats.labels_needed(ppi, gate.win_rate.threshold, max_labels=estimates.get("labels_cap"),
                                 min_labels=gate.min_items)
    more = "" if advice.more_labels in (None, 0) else f" About {advice.more_labels} more labels would decide it."
    return [f"Human labels (prediction-powered win rate vs the gate's bound {gate.win_rate.threshold:g}): "
            f"{advice.reason}{more}"]


def _copy_checks(read: AnswerEvidence, pairs: Mapping[Any, stats.Paired], deltas: pd.DataFrame, *,
                 n_resamples: int, seed: int) -> pd.DataFrame:
    """Does a metric lead survive without the items where an answer copied the input? The copy flags
    are the behaviour diff's (each answer is measured once), the scores the deltas' pairs."""
    if not pairs or deltas.empty or not read.copies:
        return pd.DataFrame()
    behaviour = read.behaviour
    copied = copying.copied_items(behaviour["item_id"], behaviour["baseline_copied_input"],
                                  behaviour["candidate_copied_input"])
    directions = {r["metric"]: r["higher_is_better"] for r in deltas.to_dict(orient="records")}
    return copying.copy_checks_paired(pairs, copied, higher_is_better=directions, n_resamples=n_resamples, seed=seed,
                                      confidence=CONFIDENCE)


def binary_checks(behaviour: pd.DataFrame) -> pd.DataFrame:
    """Pass/fail checks that each answer either meets or not (refuses, answers in the wrong language,
    makes a tool call, makes an unparseable one), compared on the same items with McNemar's test: does
    the switch change how often it happens?"""
    rows = []
    labels = {"called": "made a tool call", "unparseable": "unparseable tool call"}
    for check in ("refusal", "wrong_language", "called", "unparseable"):
        cols = [f"baseline_{check}", f"candidate_{check}"]
        if not set(cols) <= set(behaviour.columns):
            continue
        both = behaviour[cols].dropna()
        if len(both) < 2:
            continue
        base, cand = both[cols[0]].astype(bool).to_numpy(), both[cols[1]].astype(bool).to_numpy()
        test = stats.mcnemar_test(cand, base)
        rows.append({"check": labels.get(check, check.replace("_", " ")), "baseline_rate": float(base.mean()),
                     "candidate_rate": float(cand.mean()), "n": int(len(both)),
                     "only_candidate": test.n_candidate_only, "only_baseline": test.n_baseline_only, "p_value": test.p_value, "method": test.method})
    return pd.DataFrame(rows)


def tool_error_table(items: pd.DataFrame, baseline_resp: pd.DataFrame, candidate_resp: pd.DataFrame
                     ) -> pd.DataFrame:
    """Kinds of tool-call error (wrong tool, missing argument, wrong type or value, extra call, missing
    call, text instead of a call, ...) counted for the baseline and the candidate, over answers to items
    with expected calls; empty when the items expect none. Columns: error, baseline, candidate. The
    examples behind it: `workbench.metrics.tool_calls.verdict_frame`."""
    if "expected_calls" not in items.columns:
        return pd.DataFrame()
    counts = {side: verdict_frame(items, frame)["error"].value_counts()
              for side, frame in (("baseline", baseline_resp), ("candidate", candidate_resp))}
    rows = [{"error": kind, "baseline": int(counts["baseline"].get(kind, 0)),
             "candidate": int(counts["candidate"].get(kind, 0))}
            for kind in ERROR_KINDS if kind in counts["baseline"].index or kind in counts["candidate"].index]
    return pd.DataFrame(rows, columns=["error", "baseline", "candidate"])


@dataclass
class AnswerEvidence:
    """What a comparison reads from the answers' texts themselves: the behaviour diff (one row per
    item) and the tool-call error counts. Built per chunk of items and joined (`join`), so a
    comparison of 100,000 items never holds every text at once."""

    behaviour: pd.DataFrame
    tool_errors: pd.DataFrame
    copies: bool = True  # the items have inputs an answer can copy: the copy checks apply

    @classmethod
    def join(cls, parts: list["AnswerEvidence"]) -> "AnswerEvidence":
        """The parts' evidence as one; their behaviour frames (`compact_behaviour` of each chunk's) are
        taken from them, and let go of a column at a time as they are joined."""
        keys = [k for k in BEHAVIOUR_KEYS if k in parts[0].behaviour.columns]
        frames = [part.behaviour for part in parts]
        for part in parts:
            part.behaviour = pd.DataFrame(columns=part.behaviour.columns)
        behaviour = concat_columns(frames, join_labels)
        if len(parts) > 1 and not stats.increasing_ids(behaviour["item_id"]):
            # in the order of one behaviour diff over every item (its outer merge sorts the keys);
            # one row per item, in order already: no copy
            behaviour = behaviour.sort_values(keys, kind="stable").reset_index(drop=True)
        counts = [p.tool_errors for p in parts if len(p.tool_errors)]
        if not counts:
            return cls(behaviour, parts[0].tool_errors, parts[0].copies)
        summed = pd.concat(counts).groupby("error", sort=False)[["baseline", "candidate"]].sum()
        order = [kind for kind in ERROR_KINDS if kind in summed.index]
        return cls(behaviour, summed.loc[order].reset_index()[["error", "baseline", "candidate"]].astype(
            {"baseline": int, "candidate": int}), parts[0].copies)


def answer_evidence(items: pd.DataFrame, baseline_resp: pd.DataFrame, candidate_resp: pd.DataFrame, *,
                    store: Any | None = None) -> AnswerEvidence:
    """The behaviour diff and the tool-call error counts of baseline vs candidate, from their texts."""
    keys = ["item_id", "sample_index", "response"]
    if "tool_calls" in baseline_resp.columns and "tool_calls" in candidate_resp.columns:
        keys.append("tool_calls")
    behaviour = behaviour_diff(items, baseline_resp[keys].dropna(subset=["response"]),
                               candidate_resp[keys].dropna(subset=["response"]), store=store)
    return AnswerEvidence(behaviour, tool_error_table(items, baseline_resp, candidate_resp), "input" in items.columns)


def _lengths(baseline_resp: pd.DataFrame, candidate_resp: pd.DataFrame) -> pd.DataFrame:
    def length(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        ok = answered(frame)
        return ok.assign(**{name: compact_responses(ok)["response_chars"]}).groupby("item_id", as_index=False,
                                                                                    observed=True)[name].mean()

    return length(baseline_resp, "baseline_len").merge(length(candidate_resp, "candidate_len"), on="item_id")


RATIOS = (("cost_usd", "sum", "cost ratio"), ("latency_s", "p95", "p95 latency ratio"))  # column, statistic, label


def ratio_requests(baseline_resp: pd.DataFrame, candidate_resp: pd.DataFrame) -> dict[Hashable, Any]:
    """The bootstrap CI of each candidate / baseline ratio (total cost, p95 latency) that the answers
    allow, paired by item (`stats.BootstrapRequest`s, keyed by label); `cost_latency_ratios` reads them."""
    requests = {}
    for column, statistic, label in RATIOS:
        a = stats.per_item(answered(baseline_resp), column).dropna()
        b = stats.per_item(answered(candidate_resp), column).dropna()
        paired = stats.pair_by_item(a, b, value=column) if len(a) and len(b) else None
        if paired is not None and paired.n >= 2 and np.all(paired.a >= 0) and float(np.sum(paired.a)) != 0:
            requests[label] = stats.ratio_request(paired.b, paired.a, statistic=statistic)
    return requests


def cost_latency_ratios(cis: Mapping[Hashable, Any]) -> tuple[pd.DataFrame, Estimate | None, Estimate | None]:
    """Candidate / baseline ratios of total cost and p95 latency with their bootstrap CIs (`cis`: those
    of `ratio_requests`, by label), or why there is none."""
    rows, cost_est, latency_est = [], None, None
    for column, _statistic, label in RATIOS:
        if label not in cis:
            reason = "price unknown for at least one model" if column == "cost_usd" else "latency not recorded"
            rows.append({"measure": label, "value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0, "note": reason})
            continue
        ci = cis[label]
        rows.append({"measure": label, "value": ci.estimate, "ci_low": ci.low, "ci_high": ci.high, "n": ci.n, "note": ""})
        if column == "cost_usd":
            cost_est = Estimate.from_ci(ci)
        else:
            latency_est = Estimate.from_ci(ci)
    return pd.DataFrame(rows), cost_est, latency_est


def compare(items: pd.DataFrame, baseline_resp: pd.DataFrame, candidate_resp: pd.DataFrame, *,
            scores: pd.DataFrame | None = None, verdicts: pd.DataFrame | None = None,
            human: pd.DataFrame | None = None, gate: GateConfig | None = None,
            n_resamples: int = 1000, seed: int = 0, label_queue: Mapping[str, Any] | None = None,
            judge: str | None = None, pointwise: pd.DataFrame | None = None,
            retirement: Any = None, store: Any | None = None,
            read: "AnswerEvidence | None" = None) -> Comparison:
    """All evidence for baseline vs candidate. `human`: the label export of this comparison (item_id,
    rater, choice A / B / tie / both_bad, B being the candidate), one row per item and rater.
    `label_queue`: the task's active labeling queue when its labels were drawn by one. `judge`: the
    judge model's name, to flag a judge that is one of the two models it judges. `pointwise`: a
    pointwise judge's scores (`PointwiseResult.scores`), for its reliability panel; the scores
    themselves are compared as metrics through `scores` (judge:<criterion>). `retirement`: the
    candidate's `gate.Retirement`, for the gate's min_days_to_retirement rule. `store`: where the
    behaviour diff keeps its per-answer measures (None: measured every time). `read`: what the answers'
    texts gave (`answer_evidence`), when the responses are compact (`compact_responses`: a comparison
    read in chunks, whose texts are gone); None reads it from the texts here."""
    read = read or answer_evidence(items, baseline_resp, candidate_resp, store=store)
    baseline_resp, candidate_resp = compact_responses(baseline_resp), compact_responses(candidate_resp)
    baseline, candidate = _model_name(baseline_resp, "baseline"), _model_name(candidate_resp, "candidate")
    overlap = stats.id_overlap(baseline_resp["item_id"][baseline_resp["answered"].to_numpy(bool)],
                               candidate_resp["item_id"][candidate_resp["answered"].to_numpy(bool)])
    notes = []
    if overlap.only_a or overlap.only_b:
        notes.append(f"{overlap.both} items have responses from both models and are paired; "
                     f"{len(overlap.only_a)} only from the baseline, {len(overlap.only_b)} only from the candidate.")
    if scores is not None and len(scores):
        mine = scores["model"].isin([baseline, candidate])
        scores = scores if mine.all() else scores[mine]  # no copy of 400k rows for one candidate
    margins = {name: rule.max_drop for name, rule in gate.metrics.items()} if gate is not None else None
    pairs = stats.metric_pairs(scores, baseline, candidate)
    memory.release_unused()  # the pairing's per-item frames of every score, before the deltas' arrays
    deltas, metric_slices, ratio_cis = metric_deltas(  # the ratios' CIs drawn with the deltas': same items, same draw
        items, pairs, n_resamples=n_resamples, seed=seed, margins=margins,
        also=ratio_requests(baseline_resp, candidate_resp))
    min_consistency = (gate.min_position_consistency if gate is not None and gate.min_position_consistency
                       is not None else DEFAULT_GATE["min_position_consistency"])
    win_rates, reliability, judge_slices, win_estimates, consistency_est = judge_evidence(
        verdicts, baseline_resp, candidate_resp, items, n_resamples=n_resamples, seed=seed, human=human,
        label_queue=label_queue, min_consistency=min_consistency)
    if pointwise is not None and len(pointwise):
        mine = pointwise[pointwise["model"].isin([baseline, candidate])]
        reliability = pd.concat([reliability, pd.DataFrame(pointwise_reliability(mine, baseline, candidate, human))],
                                ignore_index=True)
    own = self_judged(judge, baseline, candidate)
    if own:
        notes.append(f"The judge {judge} is the {own}, one of the two models compared: it judges its own answers, "
                     "and judges tend to prefer their own. Use a judge that is neither model.")
        reliability = pd.concat([reliability, pd.DataFrame([{
            "measure": "judge is a compared model", "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
            "n": np.nan, "reading": f"WARNING: the judge is the {own} ({judge}): self-preference is likely"}])],
            ignore_index=True)
    ratios, cost_est, latency_est = cost_latency_ratios(ratio_cis)
    sides = (baseline_resp, candidate_resp)  # each read on its own: no third copy of every answer
    # ids as text: concatenating coded ids (a read in chunks) would have pandas check all the ids again
    errors = pd.concat([side.loc[~side["answered"], ["item_id", "model", "sample_index", "error"]].astype(
        {"item_id": str}) for side in sides], ignore_index=True)
    behaviour = read.behaviour
    behaviour_summary = summarize_behaviour(behaviour)
    gate_result = None
    if gate is not None:
        cand_calls = len(candidate_resp)
        n_err = int((~candidate_resp["answered"]).sum())
        err_ci = stats.proportion_ci(n_err, cand_calls, confidence=CONFIDENCE) if cand_calls else None
        evidence = GateEvidence(
            win_rate=win_estimates.get(gate.win_rate.source if gate.win_rate else "judge"),
            metric_deltas={r["metric"]: MetricDelta(r["delta"], r["ci_low"], r["ci_high"], bool(r["higher_is_better"]),
                                                    int(r["n"]), CONFIDENCE)
                           for r in deltas.to_dict(orient="records")
                           if r.get("higher_is_better") is not None and np.isfinite(r.get("delta", np.nan))},
            error_rate=Estimate.from_ci(err_ci) if err_ci else None,
            cost_ratio=cost_est, p95_latency_ratio=latency_est, position_consistency=consistency_est,
            retirement=retirement)
        gate_result = evaluate_gate(gate, evidence)
        notes.extend(_labeling_advice(gate, win_estimates))
    copies = _copy_checks(read, pairs, deltas, n_resamples=n_resamples, seed=seed)
    for reading in copies.get("reading", pd.Series(dtype=object))[copies.get("lead_disappears", pd.Series(dtype=bool))
                                                                   .fillna(False).astype(bool)]:
        notes.append(f"Input copying: {reading}")
    slices = pd.concat([t for t in (metric_slices, judge_slices) if t is not None and len(t)], ignore_index=True) \
        if (len(metric_slices) or len(judge_slices)) else pd.DataFrame(columns=["metric", "verdict"])
    return Comparison(baseline, candidate, stats.distinct_count(items["item_id"]), overlap.both, overlap.only_a,
                      overlap.only_b, deltas, win_rates, reliability, slices, behaviour, behaviour_summary,
                      latency_cost_summary(*sides), ratios, errors, binary_checks(behaviour), copies, gate_result,
                      notes, read.tool_errors)


def self_judged(judge: str | None, baseline: str, candidate: str) -> str:
    """'baseline' or 'candidate' when the judge model is that arm's model ('' when neither); an arm
    label is the model name, or 'model [prompt]' when one model runs with several prompts."""
    if not judge:
        return ""
    for role, label in (("baseline", baseline), ("candidate", candidate)):
        if label == judge or label.startswith(f"{judge} ["):
            return role
    return ""


def _model_name(frame: pd.DataFrame, role: str) -> str:
    names = frame["model"].dropna().unique()
    if len(names) != 1:
        raise InputError(f"{role} responses must come from exactly one model, got {list(names)}")
    return str(names[0])


def worst_regressions(items: pd.DataFrame, baseline_resp: pd.DataFrame, candidate_resp: pd.DataFrame,
                      scores: pd.DataFrame, metric: str, k: int = 5, higher_is_better: bool = True) -> pd.DataFrame:
    """The k items where the candidate lost most on `metric`, with both texts (to show escaped)."""
    if scores is None or scores.empty or metric not in set(scores["metric"]):
        return pd.DataFrame()
    s = scores[scores["metric"] == metric]
    base = stats.per_item(s[s["model"] == _model_name(baseline_resp, "baseline")].dropna(subset=["value"]), "value")
    cand = stats.per_item(s[s["model"] == _model_name(candidate_resp, "candidate")].dropna(subset=["value"]), "value")
    both = base.merge(cand, on="item_id", suffixes=("_baseline", "_candidate"))
    both["delta"] = both["value_candidate"] - both["value_baseline"]
    both = both.sort_values("delta", ascending=higher_is_better).head(k)
    texts_a = baseline_resp.drop_duplicates("item_id").set_index("item_id")["response"]
    texts_b = candidate_resp.drop_duplicates("item_id").set_index("item_id")["response"]
    item_cols = [c for c in ("item_id", "input", "reference") if c in items.columns]
    out = both.merge(items[item_cols], on="item_id", how="left")
    out["baseline_response"] = out["item_id"].map(texts_a)
    out["candidate_response"] = out["item_id"].map(texts_b)
    return out
