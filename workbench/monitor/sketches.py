"""Bounded summaries of one window's inputs, so memory does not grow with the rows it holds.

- lengths and languages: exact counts (distinct lengths and languages are few);
- terms: Misra-Gries heavy hitters over document frequency: every term in more than n/k items of
  the window is kept, and each kept count is at most n/k too low (so p-values computed from the
  counts err on the side of "no drift");
- embedding sample: a uniform reservoir sample of k items (Vitter's algorithm R).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from workbench.monitor.text import join_words


class HeavyHitters:
    """Counts of the frequent keys among many, in O(k) memory (batched Misra-Gries)."""

    def __init__(self, k: int = 2000):
        self.k = k
        self.counts: dict[str, int] = {}
        self.undercount = 0  # the most any kept count is below the true count

    def add(self, keys: Iterable[str]) -> None:
        counts = self.counts
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        if len(counts) > 2 * self.k:
            cut = sorted(counts.values(), reverse=True)[self.k]
            self.counts = {key: c - cut for key, c in counts.items() if c > cut}
            self.undercount += cut

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)

    def items(self):
        return self.counts.items()


class Reservoir:
    """A uniform sample of at most k of the items offered, whatever their number."""

    def __init__(self, k: int, seed: int):
        self.k = k
        self.seen = 0
        self.items: list[Any] = []
        self._rng = random.Random(seed)

    def add(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.k:
                self.items[j] = item


def hist_quantiles(counts: Counter, qs: Iterable[float]) -> list[float]:
    """Quantiles (lower) of integer values held as {value: count}."""
    if not counts:
        return [float("nan") for _ in qs]
    values = np.array(sorted(counts), dtype=float)
    cum = np.cumsum([counts[v] for v in sorted(counts)])
    total = cum[-1]
    return [float(values[min(np.searchsorted(cum, q * total, side="left"), len(values) - 1)]) for q in qs]


def hist_values(counts: Counter) -> np.ndarray:
    """The values themselves, one per count (for a test that wants samples)."""
    if not counts:
        return np.zeros(0)
    keys = np.fromiter(counts.keys(), dtype=float)
    reps = np.fromiter(counts.values(), dtype=np.int64)
    return np.repeat(keys, reps)


@dataclass
class InputSketch:
    """Everything the input-drift tests need from one window's rows."""

    rows: int = 0
    empty_inputs: int = 0
    term_rows: int = 0  # inputs whose terms were counted (those in the reference's languages)
    lengths: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    terms: HeavyHitters = field(default_factory=HeavyHitters)
    bigrams: HeavyHitters = field(default_factory=HeavyHitters)
    surface: dict[str, str] = field(default_factory=dict)
    sample: Reservoir | None = None

    def add(self, row: int, text: str | None, lang: str, words: tuple[tuple[str, str, bool], ...],
            reference_vocab: Any) -> None:
        """One row. `words` are counted only for inputs in the reference's languages (the caller
        passes () otherwise): a new language's every word is new, which the language test already
        says; the vocabulary test is about new words in the languages the application knows.
        Bigrams (two adjacent words) are only counted when both words are new to the reference, or
        one is and the other holds a digit: they exist to show new names whole ("AeroKite X2",
        "Nimbus Vac"), not to test phrasing."""
        self.rows += 1
        if text is None:
            self.empty_inputs += 1
            return
        self.lengths[len(text)] += 1
        self.languages[lang] += 1
        if self.sample is not None:
            self.sample.add((row, text))
        if not words:
            return
        self.term_rows += 1
        room = len(self.surface) < 4 * self.terms.k
        keys, pairs = set(), set()
        prev = None
        for key, surface, follows in words:
            keys.add(key)
            new = key not in reference_vocab
            if new and room and key not in self.surface:
                self.surface[key] = surface
            if follows and prev is not None and _name_like(prev[0], key, new, reference_vocab):
                pair = f"{prev[0]} {key}"
                pairs.add(pair)
                if room and pair not in self.surface:
                    self.surface[pair] = join_words(prev[1], surface)
            prev = (key, surface)
        self.terms.add(keys)
        if pairs:
            self.bigrams.add(pairs)

    @property
    def texts(self) -> int:
        return self.rows - self.empty_inputs


def _name_like(left: str, right: str, right_new: bool, reference_vocab: Any) -> bool:
    left_new = left not in reference_vocab
    if left_new and right_new:
        return True
    if left_new or right_new:
        other = right if left_new else left
        return any(ch.isdigit() for ch in other)
    return False
