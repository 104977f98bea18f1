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
import statistics
import time
from typing import Callable

import numpy as np
import pandas as pd

from workbench.widgets.explorer import Explorer, ExplorerData, _records

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


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds over `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frames = synthetic(args.items)
    resp = frames["responses_df"]
    print(f"{args.items:,} items x 2 models ({len(resp):,} responses), median of {args.repeat} runs")

    import ipywidgets  # noqa: F401  (import cost is paid once per kernel; keep it out of the numbers)

    rows: list[tuple[str, float, str]] = []

    # construction
    t_data = timed(lambda: ExplorerData(**frames), args.repeat)
    t_full = timed(lambda: Explorer(**frames), args.repeat)
    t_dict = timed(lambda: {k: g for k, g in resp.groupby("item_id", sort=False)}, args.repeat)
    rows += [("ExplorerData (indexes only)", t_data, ""),
             ("Explorer display-ready (indexes + widgets + first item)", t_full,
              f"baseline dict of per-item frames {t_dict * 1e3:.0f} ms: ratio {t_full / t_dict:.2f}x")]

    ex = Explorer(**frames)

    # navigation
    def click_next() -> None:
        ex.next_button.click()
    t_next = timed(click_next, 50)
    ids = list(ex.data.item_ids)
    rng = np.random.default_rng(1)
    jumps = iter(rng.choice(ids, 200))
    t_goto = timed(lambda: setattr(ex.goto_box, "value", str(next(jumps))), 50)
    t_render = timed(lambda: ex.data.render_item_html(ids[123]), 50)

    def naive_lookup() -> None:
        rows_ = resp[resp["item_id"] == ids[123]]
        rows_.to_dict(orient="records")
    t_naive = timed(naive_lookup, 50)
    d = ex.data
    t_indexed = timed(lambda: _records(d._resp_cols, d._resp_start[123], d._resp_stop[123]), 50)
    rows += [("next (click)", t_next, ""),
             ("go to id (Combobox value)", t_goto, ""),
             ("render_item_html (one item, 2 models, diff)", t_render, ""),
             ("  one item's response rows: precomputed bounds", t_indexed,
              f"baseline boolean mask + to_dict {t_naive * 1e3:.2f} ms: ratio {t_indexed / t_naive:.3f}x")]

    # filters: each a widget change as a user makes it, timed from an unfiltered state
    def step(setter: Callable[[], None]) -> float:
        times = []
        for _ in range(args.repeat):
            ex.reset_button.click()
            start = time.perf_counter()
            setter()
            times.append(time.perf_counter() - start)
        ex.reset_button.click()
        return statistics.median(times)

    def set_slice() -> None:
        ex.slice_column.value = "language"
        ex.slice_value.value = "ja"

    def set_delta() -> None:
        ex.metric.value = "chrf"
        ex.delta_range.value = (0.2, ex.delta_range.max)

    rows += [("filter: slice (2 widget changes)", step(set_slice), ""),
             ("filter: metric delta (metric + range)", step(set_delta), ""),
             ("filter: judge verdict", step(lambda: setattr(ex.verdict, "value", "candidate_wins")), ""),
             ("filter: judge ≠ humans", step(lambda: setattr(ex.disagree, "value", True)), ""),
             ("filter: errors", step(lambda: setattr(ex.errors, "value", "with_errors")), ""),
             ("reset filters", timed(lambda: ex.reset_button.click(), args.repeat), "")]

    fresh = Explorer(**frames)
    start = time.perf_counter()
    fresh.search.value = "refund is late"
    t_first_search = time.perf_counter() - start
    queries = iter(["ships today", "マイページ", "contact support", "返品", "settings and"] * 20)
    t_search = timed(lambda: setattr(fresh.search, "value", next(queries)), args.repeat)
    items, corpus_parts = frames["items_df"], resp.groupby("item_id", sort=False)["response"].agg(
        lambda s: "\n".join(s.fillna("")))

    def naive_search() -> None:
        texts = dict(zip(items["item_id"], items["input"]))
        [i for i in items["item_id"] if "ships today" in (texts[i] + corpus_parts.get(i, "")).lower()]
    t_naive_search = timed(naive_search, args.repeat)
    rows += [("search: first query (builds the lower-cased corpus)", t_first_search, ""),
             ("search: later queries", t_search,
              f"baseline Python loop {t_naive_search * 1e3:.0f} ms: ratio {t_search / t_naive_search:.2f}x")]

    width = max(len(r[0]) for r in rows)
    for name, seconds, note in rows:
        print(f"{name:<{width}}  {seconds * 1e3:9.3f} ms  {note}")


if __name__ == "__main__":
    main()
