"""Collect per-window sketches from log chunks, and test each window as soon as the log has moved
past it, so only the windows still open are held in memory (the log is expected in time order:
a row up to one window late is still counted; a row later than that is counted as late and
reported, not silently folded in).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from workbench.monitor import signals as sig
from workbench.monitor.logs import INPUT, MODEL, ORDINAL, RESPONSE, ROW, TIMESTAMP
from workbench.monitor.outcomes import Running
from workbench.monitor.quality import QualitySketch
from workbench.monitor.sketches import InputSketch, Reservoir, hist_quantiles
from workbench.monitor.text import UNDETERMINED, language, terms

Embedder = Callable[[list[str]], np.ndarray]


@dataclass
class WindowState:
    inputs: InputSketch
    quality: QualitySketch | None
    models: Counter = field(default_factory=Counter)
    first_row: int | None = None
    last_row: int | None = None
    first_ts: pd.Timestamp | None = None
    last_ts: pd.Timestamp | None = None


@dataclass
class ClosedWindow:
    key: int
    label: str
    rows: int
    empty_inputs: int
    first_row: int | None
    last_row: int | None
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    tested: bool
    note: str
    length_quantiles: list[float]
    languages: Counter
    tests: dict[str, sig.TestResult]
    quality: dict[str, Any] | None
    quality_examples: dict[str, list[dict[str, Any]]]
    models: Counter


class WindowCollector:
    def __init__(self, config, reference: sig.ReferenceProfile, embed: Embedder):
        self.config = config
        self.spec = config.window_spec()
        self.reference = reference
        self.embed = embed
        self.open: dict[int, WindowState] = {}
        self.closed: dict[int, ClosedWindow] = {}
        self.late = Counter()
        self.models_seen: dict[str, dict[str, Any]] = {}
        self.max_key: int | None = None
        self.rows = 0
        self.judges = list(config.judge_fields)
        self.outcome_names = list(config.outcome_fields)
        self.outcomes: dict[int, dict[str, Any]] = {}  # window key -> outcome -> outcomes.Running

    # ---- input ------------------------------------------------------------------------------------
    def add(self, chunk: pd.DataFrame) -> None:
        keys = self.spec.keys(chunk[TIMESTAMP], chunk[ORDINAL].to_numpy())
        has_response = RESPONSE in chunk.columns and self.config.response_field is not None
        has_model = MODEL in chunk.columns
        ref_vocab = self.reference.vocab
        want_terms = "vocabulary" in self.config.signals
        term_languages = self.reference.term_languages
        responses = chunk[RESPONSE].tolist() if has_response else [None] * len(chunk)
        models = chunk[MODEL].tolist() if has_model else [None] * len(chunk)
        judge_values = [(j, chunk[j].to_numpy()) for j in self.judges if j in chunk.columns]
        if self.outcome_names:
            self._add_outcomes(np.asarray(keys), chunk)
        stamps = chunk[TIMESTAMP]
        for i, (key, row, text) in enumerate(zip(keys.tolist(), chunk[ROW].tolist(), chunk[INPUT].tolist())):
            state = self._state(key)
            if state is None:
                self.late[key] += 1
                continue
            self.rows += 1
            lang = language(text) if text else UNDETERMINED
            words = terms(text) if (text and want_terms and lang in term_languages) else ()
            state.inputs.add(row, text, lang, words, ref_vocab)
            ts = stamps.iat[i]
            if state.first_row is None:
                state.first_row = row
            state.last_row = row
            if state.first_ts is None or ts < state.first_ts:
                state.first_ts = ts
            if state.last_ts is None or ts > state.last_ts:
                state.last_ts = ts
            if state.quality is not None and has_response:
                state.quality.add(row, text, lang, responses[i])
            for name, values in judge_values:
                state.quality.add_judge(name, float(values[i]))
            model = models[i]
            if model:
                state.models[model] += 1
                seen = self.models_seen.setdefault(model, {"rows": 0, "first_seen": ts, "last_seen": ts})
                seen["rows"] += 1
                seen["first_seen"] = min(seen["first_seen"], ts)
                seen["last_seen"] = max(seen["last_seen"], ts)
        self._close_passed()

    def _add_outcomes(self, keys: np.ndarray, chunk: pd.DataFrame) -> None:
        for key in np.unique(keys).tolist():
            if key in self.closed:
                continue  # late rows stay out of every statistic, as they do for the tests
            mine = keys == key
            stats = self.outcomes.setdefault(int(key), {})
            for name in self.outcome_names:
                if name in chunk.columns:
                    stats.setdefault(name, Running()).add(chunk[name].to_numpy(dtype=float)[mine])

    def _state(self, key: int) -> WindowState | None:
        state = self.open.get(key)
        if state is not None:
            return state
        if key in self.closed:
            return None
        seed = self.config.seed * 1_000_003 + key
        sample = Reservoir(self.config.embedding_sample, seed) if "embedding" in self.config.signals else None
        quality = QualitySketch() if (self.config.response_field or self.judges) else None
        state = self.open[key] = WindowState(InputSketch(sample=sample), quality)
        self.max_key = key if self.max_key is None else max(self.max_key, key)
        return state

    def _close_passed(self) -> None:
        if self.max_key is None:
            return
        lag = 1 if self.spec.by_time else 0
        for key in sorted(k for k in self.open if k < self.max_key - lag):
            self._close(key)

    def finish(self) -> list[ClosedWindow]:
        for key in sorted(self.open):
            self._close(key)
        return [self.closed[k] for k in sorted(self.closed)]

    # ---- closing a window: its tests run here, then its sketches are dropped ----------------------
    def _close(self, key: int) -> None:
        state = self.open.pop(key)
        sketch = state.inputs
        cfg = self.config
        tests: dict[str, sig.TestResult] = {}
        tested = sketch.texts >= cfg.min_window_rows
        note = "" if tested else f"{sketch.texts} inputs < min_window_rows ({cfg.min_window_rows}): not tested"
        if tested:
            if "length" in cfg.signals:
                tests["length"] = sig.length_test(self.reference, sketch)
            if "language" in cfg.signals:
                tests["language"] = sig.language_test(self.reference, sketch)
            if "vocabulary" in cfg.signals:
                tests["vocabulary"] = sig.vocabulary_test(self.reference, sketch, cfg.min_term_count, cfg.alpha)
            if "embedding" in cfg.signals and sketch.sample is not None and self.reference.embeddings is not None:
                sample = sketch.sample.items
                vectors = self.embed([text for _, text in sample])
                tests["embedding"] = sig.embedding_test(self.reference, sample, vectors, cfg.permutations,
                                                        cfg.seed * 7919 + key)
        quality = state.quality.summary(cfg.expected_format, self.judges) if state.quality is not None else None
        self.closed[key] = ClosedWindow(
            key=key, label=self.spec.label(key), rows=sketch.rows, empty_inputs=sketch.empty_inputs,
            first_row=state.first_row, last_row=state.last_row, first_ts=state.first_ts, last_ts=state.last_ts,
            tested=tested, note=note, length_quantiles=hist_quantiles(sketch.lengths, [0.1, 0.5, 0.9]),
            languages=sketch.languages, tests=tests, quality=quality,
            quality_examples=state.quality.examples if state.quality is not None else {}, models=state.models)


def first_seen_gap(windows: list[ClosedWindow]) -> list[tuple[int, int]]:
    """(missing key, key of the window after it) for every empty window between the first and last."""
    keys = [w.key for w in windows]
    gaps = []
    for before, after in zip(keys, keys[1:]):
        for missing in range(before + 1, after):
            gaps.append((missing, after))
    return gaps
