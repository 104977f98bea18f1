"""Counting what the metrics really compute, so a test can tell a cache read from a computation."""
from __future__ import annotations

from collections import Counter

from workbench.metrics.base import Metric


def count_computations(monkeypatch) -> Counter:
    """Rows each metric computes from now on, by metric name (the score cache's reads do not count)."""
    counted: Counter = Counter()
    original = Metric.compute

    def compute(self, responses, *args, **kwargs):
        counted[self.name] += len(responses)
        return original(self, responses, *args, **kwargs)

    monkeypatch.setattr(Metric, "compute", compute)
    return counted
