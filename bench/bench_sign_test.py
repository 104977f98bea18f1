"""Benchmark: the paired sign test at 20,000 pairs, closed form against scipy's `binomtest`.

    .venv/bin/python bench/bench_sign_test.py

The comparison calls the sign test once per metric and per slice row; at 20k pairs scipy's exact
`binomtest` sums the whole distribution. The workbench's `_binom_p` takes the
tail at p = 1/2 in closed form (equal to binomtest, tests/stats/test_paired_tests.py). Both are timed
here on the same (k, n) cases in the same run, and their p-values compared.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from scipy import stats

    from workbench.stats.paired_tests import _binom_p

    cases = [(k, 20000) for k in (9500, 9800, 9950, 10000, 10070, 10300)]
    started = time.perf_counter()
    reference = [stats.binomtest(k, n, 0.5).pvalue for k, n in cases]
    scipy_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = [_binom_p(k, n, "two-sided") for k, n in cases]
    ours_s = time.perf_counter() - started
    worst = max(abs(a - b) for a, b in zip(reference, ours))
    print(f"{len(cases)} sign tests at n=20000: binomtest {scipy_s / len(cases) * 1000:.1f} ms each, "
          f"closed form {ours_s / len(cases) * 1000:.3f} ms each: {scipy_s / ours_s:.0f}x faster; "
          f"largest p difference {worst:.1e}")


if __name__ == "__main__":
    main()
