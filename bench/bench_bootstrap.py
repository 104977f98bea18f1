"""Benchmark: paired bootstrap CIs (target: 10k items x 1,000 resamples <= 5 s).

Run: .venv/bin/python bench/bench_bootstrap.py
Prints each timing next to a baseline measured in the same run (a plain Python loop over resamples,
the way a bootstrap is usually first written), so the ratio survives a busy machine.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from workbench.stats import (
    bootstrap,
    bradley_terry,
    length_controlled_win_rate,
    paired_delta_ci,
    paired_ratio_ci,
    win_rate_ci,
)

N_ITEMS, N_RESAMPLES, REPEATS, TARGET_S = 10_000, 1_000, 3, 5.0


def _best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        bootstrap._memo.clear()  # time the computation, not the memo of the previous repeat's result
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _loop_bootstrap(delta: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_resamples):
        means.append(float(delta[rng.integers(0, delta.size, delta.size)].mean()))
    return tuple(np.quantile(means, [0.025, 0.975]))


def main() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.7, 0.1, N_ITEMS)
    cand = base + rng.normal(0.0, 0.05, N_ITEMS)
    scores = rng.choice([0.0, 0.5, 1.0], N_ITEMS)

    paired_delta_ci(cand[:100], base[:100])  # warm-up (imports, allocator)
    t_vec = _best_of(lambda: paired_delta_ci(cand, base, n_resamples=N_RESAMPLES))
    t_loop = _best_of(lambda: _loop_bootstrap(cand - base, N_RESAMPLES, 0), repeats=1)
    t_wr = _best_of(lambda: win_rate_ci(scores, n_resamples=N_RESAMPLES))
    print(f"paired_delta_ci  {N_ITEMS} items x {N_RESAMPLES} resamples: {t_vec:.3f} s "
          f"(target <= {TARGET_S:.0f} s: {'OK' if t_vec <= TARGET_S else 'MISSED'})")
    print(f"  python-loop baseline, same data:            {t_loop:.3f} s  -> vectorised is {t_loop / t_vec:.1f}x faster")
    print(f"win_rate_ci      {N_ITEMS} items x {N_RESAMPLES} resamples: {t_wr:.3f} s")
    # Small slices (a few hundred items) are where per-resample Python overhead dominates.
    small_c, small_b = cand[:200], base[:200]
    t_small = _best_of(lambda: paired_delta_ci(small_c, small_b, n_resamples=N_RESAMPLES))
    t_small_loop = _best_of(lambda: _loop_bootstrap(small_c - small_b, N_RESAMPLES, 0))
    print(f"paired_delta_ci  200 items x {N_RESAMPLES} resamples: {t_small * 1000:.1f} ms; "
          f"python loop {t_small_loop * 1000:.1f} ms -> {t_small_loop / t_small:.1f}x faster")

    # Bradley-Terry: 6 models, all pairs on 800 items (12,000 comparisons), items resampled.
    models = [f"m{i}" for i in range(6)]
    strength = dict(zip(models, np.linspace(-1, 1, 6)))
    rows = [(f"q{q}", a, b, float(rng.random() < 1 / (1 + np.exp(strength[b] - strength[a]))))
            for q in range(800) for i, a in enumerate(models) for b in models[i + 1:]]
    comparisons = pd.DataFrame(rows, columns=["item_id", "model_a", "model_b", "score_a"])
    bradley_terry(comparisons, n_resamples=0)
    t_bt = _best_of(lambda: bradley_terry(comparisons, n_resamples=N_RESAMPLES), repeats=1)
    print(f"bradley_terry    6 models, {len(comparisons)} comparisons, {N_RESAMPLES} item resamples: {t_bt:.3f} s")

    # Length-controlled win rate on an AlpacaEval-sized set (805 items), 1,000 refits.
    n = 805
    lb = rng.integers(200, 2000, n).astype(float)
    lc = lb + rng.normal(300, 400, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-np.tanh((lc - lb) / 400)))).astype(float)
    t_lc = _best_of(lambda: length_controlled_win_rate(y, lc, lb, n_resamples=N_RESAMPLES), repeats=1)
    print(f"length_controlled_win_rate  {n} items, {N_RESAMPLES} resamples: {t_lc:.3f} s")

    # The p95 latency ratio of a comparison at 100k items: each resample's quantile read by rank
    # (bootstrap._ByRank) against partitioning every gathered row, the way it was computed before.
    n = 100_000
    lat_c, lat_b = rng.lognormal(0.0, 0.5, n), rng.lognormal(0.1, 0.5, n)
    by_rank = _best_of(lambda: paired_ratio_ci(lat_c, lat_b, statistic="p95", n_resamples=N_RESAMPLES), repeats=2)
    ranked = paired_ratio_ci(lat_c, lat_b, statistic="p95", n_resamples=N_RESAMPLES)
    of = bootstrap._ByRank.of
    bootstrap._ByRank.of = classmethod(lambda cls, values, q: None)  # every row partitioned
    try:
        partitioned = _best_of(lambda: paired_ratio_ci(lat_c, lat_b, statistic="p95", n_resamples=N_RESAMPLES),
                               repeats=2)
        same = ranked == paired_ratio_ci(lat_c, lat_b, statistic="p95", n_resamples=N_RESAMPLES)
    finally:
        bootstrap._ByRank.of = of
    print(f"paired_ratio_ci p95  {n} items x {N_RESAMPLES} resamples: by rank {by_rank:.2f} s, rows partitioned "
          f"{partitioned:.2f} s -> {partitioned / by_rank:.2f}x; same CI: {same}")
    print(f"(CI timings best of {REPEATS}; python {sys.version.split()[0]}, numpy {np.__version__})")


if __name__ == "__main__":
    main()
