"""The drifted items of flagged windows, as a dataset `workbench generate` and the labeler read.

A second pass over the log (in chunks, like the first) picks, in each flagged window, the items
that carry the drift its tests found: an input in a language whose share rose, holding a new term,
longer (or shorter) than 95% of the reference, or unlike every reference item in embedding space.
At most `export_per_window` of them per window are kept (a uniform sample of the distinct inputs
not exported for an earlier window: each input once).

Rows are `{"item_id", "input", ...metadata}` (with the logged `model` and `response` when the log has them): the id is the log's own id (id_field) when it has
one, else a hash of the input, so the same message exported twice gets the same id.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from workbench.monitor.collect import ClosedWindow
from workbench.monitor.logs import INPUT, ITEM_ID, MODEL, RESPONSE, ROW, TIMESTAMP
from workbench.monitor.sketches import Reservoir
from workbench.monitor.text import UNDETERMINED, language, terms

COLUMNS = ["item_id", "input", "window", "timestamp", "drift_signals", "language", "new_terms", "input_chars",
           "source_row", "model", "response"]


@dataclass
class Criteria:
    """What makes an item of one flagged window part of its drift."""

    label: str
    signals: list[str]
    languages: set[str] = field(default_factory=set)
    new_terms: set[str] = field(default_factory=set)
    longer_than: float | None = None
    shorter_than: float | None = None
    novel_rows: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, window: ClosedWindow, flagged: list[str]) -> "Criteria":
        c = cls(window.label, flagged)
        if "language" in flagged:
            c.languages = set(window.tests["language"].details["risen"])
        if "vocabulary" in flagged:
            c.new_terms = set(window.tests["vocabulary"].details["new_keys"])
        if "length" in flagged:
            d = window.tests["length"].details
            if d["direction"] == "longer":
                c.longer_than = d["reference_p95"]
            else:
                c.shorter_than = d["reference_p5"]
        if "embedding" in flagged:
            c.novel_rows = set(window.tests["embedding"].details["novel_rows"])
        return c

    def reasons(self, row: int, text: str) -> tuple[list[str], str, list[str]]:
        found, lang, hits = [], UNDETERMINED, []
        if self.languages:
            lang = language(text)
            if lang in self.languages:
                found.append("language")
        if self.new_terms:
            seen: dict[str, str] = {}
            for key, surface, _ in terms(text):
                if key in self.new_terms and key not in seen:
                    seen[key] = surface
            if seen:
                found.append("vocabulary")
                hits = list(seen.values())
        n = len(text)
        if (self.longer_than is not None and n > self.longer_than) or (self.shorter_than is not None and n < self.shorter_than):
            found.append("length")
        if row in self.novel_rows:
            found.append("embedding")
        return found, lang, hits


def collect(chunks: Iterable[pd.DataFrame], keys_of, criteria: dict[int, Criteria], per_window: int,
            seed: int) -> pd.DataFrame:
    """Drifted items of the flagged windows (`criteria` by window key) from a pass over the log."""
    samples = {key: Reservoir(per_window, seed * 31 + key) for key in criteria}
    seen: set[str] = set()
    for chunk in chunks:
        keys = keys_of(chunk)
        has_id, has_model, has_response = ITEM_ID in chunk.columns, MODEL in chunk.columns, RESPONSE in chunk.columns
        for i, key in enumerate(keys.tolist()):
            crit = criteria.get(key)
            text = chunk[INPUT].iat[i]
            if crit is None or text is None:
                continue
            row = int(chunk[ROW].iat[i])
            found, lang, hits = crit.reasons(row, text)
            if not found:
                continue
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
            if digest in seen:
                continue  # each input once: the sample goes to distinct items
            seen.add(digest)
            given_id = chunk[ITEM_ID].iat[i] if has_id else None
            samples[key].add({
                "item_id": given_id or f"drift-{digest}",
                "input": text, "window": crit.label, "timestamp": chunk[TIMESTAMP].iat[i].isoformat(),
                "drift_signals": ",".join(found), "language": lang if lang != UNDETERMINED else language(text),
                "new_terms": ", ".join(hits), "input_chars": len(text), "source_row": row,
                "model": chunk[MODEL].iat[i] if has_model else None,
                "response": chunk[RESPONSE].iat[i] if has_response else None,
            })
    rows = [item for key in sorted(samples) for item in sorted(samples[key].items, key=lambda r: r["source_row"])]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame = frame.drop_duplicates("item_id", keep="first").reset_index(drop=True)
    for optional in ("model", "response"):  # what production answered: the target of source-model mode
        if frame[optional].isna().all():
            frame = frame.drop(columns=optional)
    return frame


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object per line, UTF-8, written whole then moved into place."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for record in frame.to_dict(orient="records"):
            clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}
            handle.write(json.dumps(clean, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)

