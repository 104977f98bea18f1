"""Prediction-powered human win rates on PandaLM's real human labels (issue 13).

For each judge (PandaLM-7B, gpt-3.5-turbo, and both as two "orders" whose disagreement counts as a
tie) and each number of labels n, over many random label subsets:
  - coverage of the 95% PPI++ interval (target: the full-data human majority win rate) and its width
    relative to the human-only interval on the same labels;
  - the same for the active queue (probabilities from `propose_probabilities`, queue of 2n items,
    the first n labelled), and the labels it saves: how many uniform labels PPI++ needs for the
    active queue's mean width, minus n (negative = active costs labels).
The last rows raise the priority weights to 3 (default 1.25-1.5) to show what over-weighting costs.
Also the time of one `ppi_win_rate` call on 10,000 items.

    .venv/bin/python bench/bench_ppi.py [--reps 2000] [--data ../shared/data/external/pandalm]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stats.test_active_labeling import active_masks  # noqa: E402  (the tests' own simulation)
from tests.stats.test_ppi import load_pandalm, uniform_masks  # noqa: E402
from workbench.stats.active_labeling import active_batch, propose_probabilities  # noqa: E402
from workbench.stats.ppi import ppi_batch, ppi_win_rate  # noqa: E402

Z95 = 1.959963984540054


def mean_width(r: dict) -> float:
    return float(np.mean(r["ci_high"] - r["ci_low"]))


def coverage(r: dict, truth: float) -> float:
    return float(np.mean((r["ci_low"] <= truth) & (truth <= r["ci_high"])))


def uniform_labels_for_width(y, f, target: float, n: int, reps: int, rng) -> float:
    """Uniform-label count at which PPI++'s mean width equals `target` (log-log interpolation on a grid)."""
    grid = np.unique(np.linspace(0.6 * n, 1.6 * n, 11).astype(int))
    widths = np.array([mean_width(ppi_batch(y, f, uniform_masks(y.size, m, reps, rng))) for m in grid])
    order = np.argsort(widths)  # widths fall with m
    return float(np.exp(np.interp(np.log(target), np.log(widths[order]), np.log(grid[order]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "external" / "pandalm")
    args = parser.parse_args()
    d = load_pandalm(args.data)
    y, ids = d["human"], d["ids"]
    truth = float(y.mean())
    print(f"PandaLM test set: {y.size} pairs, human majority win rate of response 2 = {truth:.4f}; "
          f"{args.reps} label subsets per row; load average {os.getloadavg()[0]:.1f}")
    both = np.where(d["pandalm"] == d["gpt"], d["pandalm"], 0.5)  # NaN (gpt failed) != anything -> tie
    judges = {
        "pandalm-7b": (d["pandalm"], None, d["pandalm"]),
        "gpt-3.5-turbo": (d["gpt"], None, np.where(np.isnan(d["gpt"]), 0.5, d["gpt"])),
        "both (two views)": (d["pandalm"], d["gpt"], both),
        "both, weights x3": (d["pandalm"], d["gpt"], both),
    }
    strong = {"tie": 3.0, "inconsistent": 3.0, "failed": 3.0}
    header = ("| judge | n | PPI coverage | PPI/human-only width | lambda | active coverage | "
              "active/human-only width | active/uniform-PPI width | labels saved by active |")
    print(header)
    print("|---" * 9 + "|")
    t0 = time.perf_counter()
    for name, (first, second, f) in judges.items():
        for n in (50, 100, 200):
            rng = np.random.default_rng(n)
            u = ppi_batch(y, f, uniform_masks(y.size, n, args.reps, rng))
            human_w = float(np.mean(2 * Z95 * u["human_standard_error"]))
            pi = propose_probabilities(pd.Series(first, index=ids),
                                       None if second is None else pd.Series(second, index=ids),
                                       budget=2 * n, weights=strong if "x3" in name else None).to_numpy()
            labeled, pi_eff = active_masks(pi, n, args.reps, rng)
            a = active_batch(y, f, labeled, pi_eff)
            n_equiv = uniform_labels_for_width(y, f, mean_width(a), n, args.reps, rng)
            print(f"| {name} | {n} | {coverage(u, truth):.3f} | {mean_width(u) / human_w:.3f} | "
                  f"{np.mean(u['lam']):.2f} | {coverage(a, truth):.3f} | {mean_width(a) / human_w:.3f} | "
                  f"{mean_width(a) / mean_width(u):.3f} | {n_equiv - n:+.1f} ({100 * (n_equiv - n) / n:+.1f}%) |")
    print(f"simulation time: {time.perf_counter() - t0:.1f} s")
    rng = np.random.default_rng(0)
    big = pd.Series(rng.choice([0.0, 0.5, 1.0], 10_000), index=[f"i{i}" for i in range(10_000)])
    labels = big.sample(500, random_state=0)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        ppi_win_rate(big, labels)
        times.append(time.perf_counter() - t)
    print(f"ppi_win_rate, 10,000 judged items, 500 labels: {1000 * min(times):.1f} ms (best of 5)")


if __name__ == "__main__":
    main()
