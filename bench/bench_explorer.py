"""Benchmark: the side-by-side explorer on 10,000 items x 2 models (synthetic, offline).

Measures the time to construct the explorer until it is display-ready (indexes built, widgets
created, first item rendered) and the time of each navigation and filter step, each against a
naive baseline measured in the same run:

* construction vs grouping the responses into a dict of per-item frames (the obvious approach),
* a navigation step vs looking the item's rows up with a boolean mask over all responses,
* a text search vs a Python loop over the items.

Run: .venv/bin/python bench/bench_explorer.py [--items 10000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from workbench.widgets.explorer import Explorer  # noqa: E402
from workbench.widgets.explorer_data import ExplorerData, _records  # noqa: E402

WORDS_EN = "the order ships today please check your account settings and contact support if the refund is late".split()
WORDS_JA = list("ご注文の商品は本日発送されます返品はマイページから受け付けています")


def synthetic(n: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Items with en/ja slices, two models' responses (~40 words, 1% failed calls), three metrics,
    a judge verdict per item and two human labels on 10% of the items."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"item-{i:05d}" for i in range(n)])
    lang = rng.choice(["en", "ja"], n)

    def text(i: int, lang_: str, salt: int) -> str:
        r = np.random.default_rng(i * 7 + salt)
        if lang_ == "ja":
            return "".join(r.choice(WORDS_JA, 60))
        return " ".join(r.choice(WORDS_EN, 40))

    items = pd.DataFrame({"item_id": ids, "input": [text(i, lang[i], 0) for i in range(n)],
                          "reference": [text(i, lang[i], 1) for i in range(n)], "language": lang,
                          "task": rng.choice(["support_reply", "review_summary"], n),
                          "difficulty": rng.choice(["easy", "medium", "hard"], n)})
    frames = []
    for k, model in enumerate(("provider/baseline", "provider/candidate")):
        responses = [text(i, lang[i], 2 + (k if i % 3 else 0)) for i in range(n)]  # a third identical
        failed = rng.random(n) < 0.01
        frames.append(pd.DataFrame({
            "item_id": ids, "model": model, "sample_index": 0,
            "response": np.where(failed, None, responses), "error": np.where(failed, "timeout: no answer", None),
            "latency_s": rng.gamma(2.0, 0.4, n), "cost_usd": rng.random(n) * 1e-3,
            "prompt_tokens": rng.integers(20, 200, n), "completion_tokens": rng.integers(20, 300, n),
            "finish_reason": "stop"}))
    responses = pd.concat(frames, ignore_index=True)
    scores = pd.concat([pd.DataFrame({"item_id": ids, "model": m, "metric": metric, "value": rng.random(n)})
                        for m in ("provider/baseline", "provider/candidate") for metric in ("chrf", "rougeL", "judge")],
                       ignore_index=True)
    judgments = pd.DataFrame({"item_id": ids, "model_a": "provider/baseline", "model_b": "provider/candidate",
                              "verdict": rng.choice(["A", "B", "tie"], n), "consistent": rng.random(n) > 0.15,
                              "rationale": "The second answer is more specific."})
    labeled = rng.choice(ids, n // 10, replace=False)
    labels = pd.DataFrame({"item_id": np.repeat(labeled, 2), "rater": np.tile(["ann", "bob"], len(labeled)),
                           "winner_model": rng.choice(["provider/baseline", "provider/candidate", None], 2 * len(labeled)),
                           "left_model": "provider/baseline", "right_model": "provider/candidate"})
    return {"items_df": items, "responses_df": responses, "scores_df": scores, "judgments_df": judgments,
            "labels_df": labels}


class Timing(NamedTuple):
    """Median wall-clock and CPU seconds. On a shared, loaded machine wall time includes waiting
    for a core; CPU time (this process) is the work itself and is the steadier of the two."""

    wall: float
    cpu: float


def measure(fn: Callable[[], object], repeat: int, before: Callable[[], object] | None = None) -> Timing:
    """Median over `repeat` runs of `fn`; `before` runs untimed ahead of each run."""
    walls, cpus = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return Timing(statistics.median(walls), statistics.median(cpus))


def ratio(ours: Timing, baseline: Timing) -> str:
    return f"{ours.cpu / baseline.cpu:.3f}x CPU, {ours.wall / baseline.wall:.3f}x wall"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frames = synthetic(args.items)
    resp = frames["responses_df"]
    print(f"{args.items:,} items x 2 models ({len(resp):,} responses), median of {args.repeat} runs "
          f"(50 for navigation); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    import ipywidgets  # noqa: F401  (import cost is paid once per kernel; keep it out of the numbers)

    rows: list[tuple[str, Timing, str]] = []

    # construction
    t_data = measure(lambda: ExplorerData(**frames), args.repeat)
    t_full = measure(lambda: Explorer(**frames), args.repeat)
    t_dict = measure(lambda: {k: g for k, g in resp.groupby("item_id", sort=False)}, args.repeat)
    rows += [("ExplorerData (indexes only)", t_data, ""),
             ("Explorer display-ready (indexes + widgets + first item)", t_full, ""),
             ("  baseline: dict of per-item response frames (groupby)", t_dict, f"Explorer/baseline {ratio(t_full, t_dict)}")]

    ex = Explorer(**frames)
    d = ex.data
    ids = list(d.item_ids)
    jumps = iter(np.random.default_rng(1).choice(ids, 200))

    def naive_lookup() -> None:
        resp[resp["item_id"] == ids[123]].to_dict(orient="records")

    t_indexed = measure(lambda: _records(d._resp_cols, d._resp_start[123], d._resp_stop[123]), 50)
    t_naive = measure(naive_lookup, 50)
    rows += [("next (button click)", measure(ex.next_button.click, 50), ""),
             ("go to id (Combobox value)", measure(lambda: setattr(ex.goto_box, "value", str(next(jumps))), 50), ""),
             ("render_item_html (one item, 2 models, diff)", measure(lambda: d.render_item_html(ids[123]), 50), ""),
             ("one item's response rows: precomputed bounds", t_indexed, ""),
             ("  baseline: boolean mask over all responses + to_dict", t_naive, f"ours/baseline {ratio(t_indexed, t_naive)}")]

    # filters: each a widget change as a user makes it, timed from an unfiltered state
    def step(setter: Callable[[], None]) -> Timing:
        timing = measure(setter, args.repeat, before=ex.reset_button.click)
        ex.reset_button.click()
        return timing

    def set_slice() -> None:
        ex.slice_column.value = "language"
        ex.slice_value.value = "ja"

    def set_delta() -> None:
        ex.metric.value = "chrf"
        ex.delta_range.value = (0.2, ex.delta_range.max)

    rows += [("filter: slice (column + value)", step(set_slice), ""),
             ("filter: metric delta (metric + range)", step(set_delta), ""),
             ("filter: judge verdict", step(lambda: setattr(ex.verdict, "value", "candidate_wins")), ""),
             ("filter: judge ≠ humans", step(lambda: setattr(ex.disagree, "value", True)), ""),
             ("filter: errors", step(lambda: setattr(ex.errors, "value", "with_errors")), ""),
             ("reset filters", measure(ex.reset_button.click, args.repeat), "")]

    fresh = Explorer(**frames)
    t_first = measure(lambda: setattr(fresh.search, "value", "refund is late"), 1)
    queries = iter(["ships today", "マイページ", "contact support", "返品", "settings and"] * 20)
    t_search = measure(lambda: setattr(fresh.search, "value", next(queries)), args.repeat)
    items = frames["items_df"]
    joined = resp.groupby("item_id", sort=False)["response"].agg(lambda s: "\n".join(s.fillna("")))

    def naive_search() -> None:
        texts = dict(zip(items["item_id"], items["input"]))
        [i for i in items["item_id"] if "ships today" in (texts[i] + joined.get(i, "")).lower()]

    t_naive_search = measure(naive_search, args.repeat)
    rows += [("search: first query (lower-cases the text columns once)", t_first, ""),
             ("search: later queries", t_search, ""),
             ("  baseline: Python loop over items (texts pre-joined)", t_naive_search,
              f"ours/baseline {ratio(t_search, t_naive_search)}")]

    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'wall ms':>9}  {'CPU ms':>9}")
    for name, t, note in rows:
        print(f"{name:<{width}}  {t.wall * 1e3:9.2f}  {t.cpu * 1e3:9.2f}  {note}")


if __name__ == "__main__":
    main()
