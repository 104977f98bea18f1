"""`run_drift(config)`: the one path from a reference dataset and a production log to flagged
windows, quality alerts and the retirement watch. The CLI, the drift notebook and a user in
JupyterLab all call it; everything it returns is a DataFrame or plain values.

Steps: profile the reference -> read the log in chunks, sketch each window and test it once the
log has moved past it -> check for empty windows -> correct for multiple testing across every
(window, signal) -> export the drifted items of flagged windows (second pass) -> quality alerts
-> retirement watch.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import EXIT_COULD_NOT_RUN, EXIT_FAIL, EXIT_OK, InputError, Problem
from workbench.hashing import json_safe
from workbench.metrics.semantic import load_model
from workbench.monitor import export as exp
from workbench.monitor import multitest, retirement
from workbench.monitor import signals as sig
from workbench.monitor.collect import ClosedWindow, Embedder, WindowCollector, first_seen_gap
from workbench.monitor.config import DriftConfig
from workbench.monitor.logs import MODEL, ORDINAL, RESPONSE, TIMESTAMP, LogFields, LogReader
from workbench.monitor.outcomes import outcome_alerts, outcome_frame
from workbench.monitor.quality import check_alerts
from workbench.monitor.text import language, terms
from workbench.task.dataset import load_items

DRIFT_JSON, ITEMS_JSONL = "drift.json", "drifted_items.jsonl"
TERM_LANGUAGE_SHARE = 0.02  # the vocabulary test reads inputs in languages with at least this share of the reference
MIN_REFERENCE_ROWS = 100  # below this the tests have too little power to say "no drift"


@dataclass
class DriftResult:
    config: DriftConfig
    reference: dict[str, Any]
    windows: pd.DataFrame
    tests: pd.DataFrame
    languages: pd.DataFrame
    new_terms: pd.DataFrame
    novel_items: pd.DataFrame
    quality: pd.DataFrame
    quality_examples: pd.DataFrame
    alerts: pd.DataFrame
    models: pd.DataFrame
    retirement: pd.DataFrame
    drifted_items: pd.DataFrame
    method: str
    warnings: list[str] = field(default_factory=list)
    rows_read: int = 0
    elapsed_s: float = 0.0
    outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)  # per window and outcome column (outcomes.py)

    @property
    def drift(self) -> bool:
        return bool(self.windows["flagged"].any()) if len(self.windows) else False

    @property
    def alert(self) -> bool:
        return len(self.alerts) > 0

    @property
    def exit_code(self) -> int:
        return EXIT_FAIL if (self.drift or self.alert) else EXIT_OK

    def flagged_windows(self) -> pd.DataFrame:
        return self.windows[self.windows["flagged"]]

    def summary_lines(self) -> list[str]:
        lines = [f"{self.rows_read} rows in {len(self.windows)} windows ({self.config.window_spec().describe()}); "
                 f"{self.method}"]
        flagged = self.flagged_windows()
        if len(flagged):
            lines.append(f"DRIFT in {len(flagged)} window(s):")
            for _, w in flagged.iterrows():
                lines.append(f"  {w['window']}: {w['flagged_signals']} - {w['evidence']}")
        else:
            lines.append(no_drift_line(self.reference["inputs"]))
        changed = self.outcomes[self.outcomes["changed"]] if len(self.outcomes) else self.outcomes
        for _, o in changed.iterrows():
            lines.append(f"OUTCOME {o['window']}: {o['outcome']} {o['mean']:.3g} (95% CI {o['ci_low']:.3g} to "
                         f"{o['ci_high']:.3g}) against {o['baseline_mean']:.3g} in {o['baseline_window']} "
                         f"(q = {o['q_value']:.2g})")
        for _, a in self.alerts.iterrows():
            where = f"{a['window']}: " if isinstance(a["window"], str) else ""
            lines.append(f"ALERT {where}{a['message']}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines

    def to_dict(self) -> dict[str, Any]:
        flagged = [{"window": w["window"], "signals": w["flagged_signals"].split(","), "evidence": w["evidence"],
                    "rows": int(w["rows"]), "first_row": w["first_row"], "last_row": w["last_row"]}
                   for _, w in self.flagged_windows().iterrows()]
        payload = {
            "status": "ok", "drift": self.drift, "alert": self.alert, "exit_code": self.exit_code,
            "flagged_windows": flagged, "alerts": _records(self.alerts), "method": self.method,
            "warnings": self.warnings, "rows_read": self.rows_read, "elapsed_s": round(self.elapsed_s, 2),
            "reference": self.reference, "windows": _records(self.windows), "tests": _records(self.tests),
            "quality": _records(self.quality), "retirement": _records(self.retirement),
            "new_terms": _records(self.new_terms), "models": _records(self.models),
            "outcomes": _records(self.outcomes),
            "drifted_items": {"file": ITEMS_JSONL, "rows": len(self.drifted_items)},
            "config": self.config.model_dump(mode="json"),
        }
        return json_safe(payload)

    def write(self, out_dir: str | Path) -> Path:
        """drift.json and drifted_items.jsonl (a dataset for `workbench generate`) into out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        exp.write_jsonl(self.drifted_items, out / ITEMS_JSONL)
        _write_json(out / DRIFT_JSON, self.to_dict())
        return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)


def write_error(out_dir: str | Path, error: InputError) -> None:
    """drift.json for a run that could not start: the problems, located, for the CLI to re-raise."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    problems = [p.__dict__ if isinstance(p, Problem) else {"file": None, "row": None, "field": None, "message": str(p)}
                for p in error.problems]
    _write_json(out / DRIFT_JSON, {"status": "error", "exit_code": EXIT_COULD_NOT_RUN, "problems": problems})


class LazyEmbedder:
    """An embedder loaded on first use: the given function, else all-MiniLM-L6-v2 from the offline
    package, loaded the way the metrics load it (once per process). A run without the embedding
    signal never imports sentence-transformers."""

    def __init__(self, given: Embedder | None = None, batch_size: int = 64):
        self._fn = given
        self.batch_size = batch_size

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self._fn is None:
            model = load_model()
            self._fn = lambda batch: model.encode(list(batch), batch_size=self.batch_size, normalize_embeddings=True,
                                                  convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(self._fn(list(texts)), dtype=np.float64)


# ---- the run ------------------------------------------------------------------------------------------

def run_drift(config: DriftConfig, embed: Embedder | None = None) -> DriftResult:
    """Compare the production log with the reference, window by window. Raises InputError (file, row,
    field) for bad input: a missing timestamp column, an unparseable timestamp, an empty window.
    `embed` (texts -> unit vectors) replaces the bundled all-MiniLM-L6-v2, e.g. to cache in tests."""
    started = time.perf_counter()
    config.preflight()
    embedder = LazyEmbedder(embed)
    spec = config.window_spec()
    reference = profile_reference(config, embedder)
    fields = LogFields(timestamp=config.timestamp_field, input=config.input_field, response=config.response_field,
                       model=config.model_field, id=config.id_field, judges=tuple(config.judge_fields),
                       outcomes=tuple(config.outcome_fields))
    log_path = config.path(config.production)
    reader = LogReader(log_path, fields, config.chunk_rows, display=config.production)
    collector = WindowCollector(config, reference, embedder)
    for chunk in reader:
        collector.add(chunk)
    windows = collector.finish()
    warnings = _warnings(config, reader, collector, windows) + _reference_warnings(reference)
    _check_gaps(config, spec, windows)

    tests = _tests_frame(config, windows)
    flagged_by_key: dict[int, list[str]] = {}
    for _, t in tests[tests["flagged"]].iterrows():
        flagged_by_key.setdefault(int(t["key"]), []).append(t["signal"])
    drifted = pd.DataFrame(columns=exp.COLUMNS)
    if flagged_by_key and config.export_per_window > 0:
        criteria = {w.key: exp.Criteria.of(w, flagged_by_key[w.key]) for w in windows if w.key in flagged_by_key}
        again = LogReader(log_path, fields, config.chunk_rows, display=config.production)
        drifted = exp.collect(again, lambda c: spec.keys(c[TIMESTAMP], c[ORDINAL].to_numpy()), criteria,
                              config.export_per_window, config.seed)

    quality, quality_examples, alerts = _quality(config, windows)
    outcomes = _outcomes(config, windows, collector)
    alerts += outcome_alerts(outcomes, config.alert_thresholds(), config.min_window_rows)
    seen = {m: {**info, "in_last_window": m in windows[-1].models} for m, info in collector.models_seen.items()}
    lifecycle = config.path(config.lifecycle_file) if config.lifecycle_file else None
    watch, retire_alerts = retirement.watch(seen, config.models, lifecycle, config.today_date(),
                                            config.retirement_warn_days)
    alerts_frame = pd.DataFrame(alerts + retire_alerts,
                                columns=["window", "kind", "metric", "value", "threshold", "message"])
    tested = sum(w.tested for w in windows)
    method = multitest.describe(config.correction, config.alpha, len(tests), tested, len(config.signals))
    return DriftResult(
        config=config, reference=_reference_summary(config, reference),
        windows=_windows_frame(windows, tests, collector.late), tests=tests.drop(columns="key"),
        languages=_languages_frame(reference, windows), new_terms=_terms_frame(windows),
        novel_items=_novel_frame(windows), quality=quality, quality_examples=quality_examples,
        alerts=alerts_frame, models=_models_frame(windows), retirement=watch, drifted_items=drifted,
        method=method, warnings=warnings, rows_read=reader.rows, elapsed_s=time.perf_counter() - started,
        outcomes=outcomes)


def run_for_report(config: DriftConfig, embed: Embedder | None = None) -> DriftResult:
    """run_drift, then drift.json and drifted_items.jsonl into config.output_dir when set. Bad input
    still writes drift.json (status "error" with the located problems) before re-raising, so the
    CLI can report them from a notebook run."""
    try:
        result = run_drift(config, embed)
    except InputError as exc:
        if config.output_dir:
            write_error(config.output_dir, exc)
        raise
    if config.output_dir:
        result.write(config.output_dir)
    return result


def profile_reference(config: DriftConfig, embed: Embedder) -> sig.ReferenceProfile:
    items = load_items(config.path(config.reference), input_field=config.reference_input_field)
    texts = [t for t in items["input"].tolist() if isinstance(t, str) and t.strip()]
    if len(texts) < config.min_window_rows:
        raise InputError(Problem(config.reference, None, config.reference_input_field,
                                 f"the reference has {len(texts)} inputs; the tests need at least min_window_rows "
                                 f"({config.min_window_rows})"))
    languages = [language(t) for t in texts]
    counts = Counter(languages)
    term_languages = frozenset(lang for lang, n in counts.items() if n >= TERM_LANGUAGE_SHARE * len(texts))
    vocab: Counter = Counter()
    for text, lang in zip(texts, languages):
        if lang in term_languages:
            vocab.update({key for key, _, _ in terms(text)})
    profile = sig.ReferenceProfile(rows=len(texts), lengths=np.array([len(t) for t in texts]),
                                   languages=counts, vocab=vocab, term_languages=term_languages)
    if "embedding" in config.signals:
        rng = np.random.default_rng(config.seed)
        k = min(config.embedding_reference_sample, len(texts))
        chosen = sorted(rng.choice(len(texts), size=k, replace=False).tolist())
        profile.sample_texts = [texts[i] for i in chosen]
        profile.embeddings = embed(profile.sample_texts)
    return profile


# ---- steps ----------------------------------------------------------------------------------------

def _warnings(config: DriftConfig, reader: LogReader, collector: WindowCollector,
              windows: list[ClosedWindow]) -> list[str]:
    out = []
    if config.response_field and RESPONSE not in reader.present:
        out.append(f"no '{config.response_field}' field in {config.production}: response quality not checked "
                   f"(set response_field to its name, or None)")
    if config.model_field and MODEL not in reader.present and not config.models:
        out.append(f"no '{config.model_field}' field in {config.production} and no `models` given: "
                   f"the retirement watch has no model to check")
    missing = [name for name in config.judge_fields if name not in reader.present]
    if missing:
        out.append(f"no judge field {', '.join(repr(m) for m in missing)} in {config.production}: no judge scores "
                   f"per window (set judge_fields to the log's score columns, or [])")
    absent = [name for name in config.outcome_fields if name not in reader.present]
    if absent:
        out.append(f"no outcome field {', '.join(repr(m) for m in absent)} in {config.production}: not tracked")
    late = sum(collector.late.values())
    if late:
        out.append(f"{late} rows arrived after their window had been tested (the log is not in time order); "
                   f"they are left out of the tests: sort the log by {config.timestamp_field} for exact results")
    untested = [w.label for w in windows if not w.tested]
    if untested:
        out.append(f"{len(untested)} window(s) with fewer than {config.min_window_rows} inputs not tested: "
                   f"{', '.join(untested[:5])}{' ...' if len(untested) > 5 else ''}")
    return out


def _reference_warnings(reference: sig.ReferenceProfile) -> list[str]:
    if reference.rows >= MIN_REFERENCE_ROWS:
        return []
    return [f"the reference has only {reference.rows} inputs, too few to tell drift from chance: a new language or "
            f"product in a quarter of production can go unflagged, so finding no drift does not mean there is none; "
            f"use the whole dataset the migration was validated on (at least {MIN_REFERENCE_ROWS} inputs)"]


def no_drift_line(reference_inputs: int) -> str:
    """The summary line when nothing was flagged; it says when the reference was too small to tell."""
    if reference_inputs < MIN_REFERENCE_ROWS:
        return f"no input drift found, but the reference ({reference_inputs} inputs) is too small to tell (see warning)"
    return "no input drift found"


def _check_gaps(config: DriftConfig, spec, windows: list[ClosedWindow]) -> None:
    if not spec.by_time or config.allow_gaps:
        return
    by_key = {w.key: w for w in windows}
    problems = []
    for missing, after in first_seen_gap(windows):
        nxt = by_key[after]
        before = max(k for k in by_key if k < missing)
        problems.append(Problem(config.production, nxt.first_row, config.timestamp_field,
                                f"window {spec.label(missing)} is empty: no row between "
                                f"{by_key[before].last_ts.isoformat()} and {nxt.first_ts.isoformat()} (a gap in the "
                                f"log?); fix the log, use a longer window, or set allow_gaps (--allow-gaps) to go on"))
    if problems:
        raise InputError(problems[:20])


def _tests_frame(config: DriftConfig, windows: list[ClosedWindow]) -> pd.DataFrame:
    rows = [{"key": w.key, "window": w.label, "signal": name, "statistic": t.statistic, "p_value": t.p_value,
             "effect": t.effect, "effect_name": t.effect_name, "min_effect": config.effect_floor(name),
             "evidence": t.evidence} for w in windows for name, t in w.tests.items()]
    frame = pd.DataFrame(rows, columns=["key", "window", "signal", "statistic", "p_value", "effect", "effect_name",
                                        "min_effect", "evidence"])
    frame["q_value"] = multitest.adjust(frame["p_value"].to_numpy(dtype=float), config.correction)
    frame["flagged"] = (frame["q_value"] <= config.alpha) & (frame["effect"] >= frame["min_effect"])
    return frame[["key", "window", "signal", "p_value", "q_value", "effect", "effect_name", "min_effect",
                  "flagged", "statistic", "evidence"]]


def _windows_frame(windows: list[ClosedWindow], tests: pd.DataFrame, late: Counter) -> pd.DataFrame:
    rows = []
    for w in windows:
        mine = tests[(tests["key"] == w.key) & tests["flagged"]]
        rows.append({"window": w.label, "start": _iso(w.first_ts), "end": _iso(w.last_ts), "rows": w.rows,
                     "empty_inputs": w.empty_inputs, "first_row": w.first_row, "last_row": w.last_row,
                     "tested": w.tested, "flagged": len(mine) > 0, "flagged_signals": ",".join(mine["signal"]),
                     "evidence": " | ".join(f"{s}: {e}" for s, e in zip(mine["signal"], mine["evidence"])),
                     "p10_chars": w.length_quantiles[0], "median_chars": w.length_quantiles[1],
                     "p90_chars": w.length_quantiles[2], "late_rows": late.get(w.key, 0), "note": w.note})
    return pd.DataFrame(rows, columns=["window", "start", "end", "rows", "empty_inputs", "first_row", "last_row",
                                       "tested", "flagged", "flagged_signals", "evidence", "p10_chars",
                                       "median_chars", "p90_chars", "late_rows", "note"])


def _languages_frame(reference: sig.ReferenceProfile, windows: list[ClosedWindow]) -> pd.DataFrame:
    rows = [{"window": "reference", "language": lang, "inputs": n, "share": n / reference.rows}
            for lang, n in reference.languages.most_common()]
    for w in windows:
        total = sum(w.languages.values())
        rows += [{"window": w.label, "language": lang, "inputs": n, "share": n / total}
                 for lang, n in w.languages.most_common()]
    return pd.DataFrame(rows, columns=["window", "language", "inputs", "share"])


def _terms_frame(windows: list[ClosedWindow]) -> pd.DataFrame:
    rows = [{"window": w.label, "term": t["term"], "items": t["items"], "share": t["share"], "p_value": t["p_value"]}
            for w in windows if "vocabulary" in w.tests for t in w.tests["vocabulary"].details["terms"]]
    return pd.DataFrame(rows, columns=["window", "term", "items", "share", "p_value"])


def _novel_frame(windows: list[ClosedWindow]) -> pd.DataFrame:
    rows = [{"window": w.label, **item} for w in windows if "embedding" in w.tests
            for item in w.tests["embedding"].details["novel"]]
    return pd.DataFrame(rows, columns=["window", "row", "input", "sampled", "witness", "nearest_cosine"])


def _models_frame(windows: list[ClosedWindow]) -> pd.DataFrame:
    rows = [{"window": w.label, "model": m, "rows": n} for w in windows for m, n in w.models.most_common()]
    return pd.DataFrame(rows, columns=["window", "model", "rows"])


def _quality(config: DriftConfig, windows: list[ClosedWindow]) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    thresholds = config.alert_thresholds()
    rows, examples, alerts = [], [], []
    for w in windows:
        if w.quality is None or not w.quality.get("responses"):
            continue
        rows.append({"window": w.label, **w.quality})
        alerts += check_alerts(w.label, w.quality, thresholds, config.min_window_rows)
        examples += [{"window": w.label, "kind": kind, **ex} for kind, found in w.quality_examples.items() for ex in found]
    return (pd.DataFrame(rows), pd.DataFrame(examples, columns=["window", "kind", "row", "input", "detail"]), alerts)


def _outcomes(config: DriftConfig, windows: list[ClosedWindow], collector: WindowCollector) -> pd.DataFrame:
    by_window = [(w.label, collector.outcomes.get(w.key, {})) for w in windows]
    return outcome_frame(by_window, list(config.outcome_fields), config.correction, config.alpha,
                         config.min_window_rows)


def _reference_summary(config: DriftConfig, ref: sig.ReferenceProfile) -> dict[str, Any]:
    q = np.percentile(ref.lengths, [10, 50, 90])
    return {"source": config.reference, "inputs": ref.rows, "p10_chars": float(q[0]), "median_chars": float(q[1]),
            "p90_chars": float(q[2]), "languages": ref.language_shares(), "vocabulary": len(ref.vocab),
            "embedded": len(ref.sample_texts), "sha256": file_sha256(config.path(config.reference))}


def file_sha256(path: Path) -> str | None:
    """The file's content hash (None for a folder): what `workbench refresh` checks a drift result against."""
    if not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat()
