"""Production logs read in chunks: .jsonl, .csv (either optionally gzipped) and .parquet.

Each chunk is a DataFrame with the columns the monitor needs and nothing else, so memory holds one
chunk at a time whatever the log's size. Bad rows are collected as `Problem`s naming the file, the
1-based row (the line number for JSONL, the data row for CSV and parquet, as in workbench.task.dataset) and
the field; the reader raises one `InputError` listing them when the log ends, or as soon as
`max_problems` are found (a wholly broken file is not read to the end to say so).

Timestamps: ISO 8601 strings (no zone means UTC), epoch seconds or milliseconds (numbers above 1e11
are milliseconds), or parquet timestamps. A value outside 2000-2199 is refused: it is almost always
a unit mistake, and it would otherwise open years of empty windows.
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from workbench.errors import InputError, Problem

SUPPORTED = ".jsonl, .csv (optionally .gz) or .parquet"
ROW, ORDINAL, TIMESTAMP, INPUT, RESPONSE, MODEL, ITEM_ID = "row", "ordinal", "timestamp", "input", "response", "model", "item_id"
_MIN_YEAR, _MAX_YEAR = 2000, 2199


@dataclass(frozen=True)
class LogFields:
    """Which column of the log holds what (None: the log has no such column)."""

    timestamp: str = "timestamp"
    input: str = "input"
    response: str | None = "response"
    model: str | None = "model"
    id: str | None = None
    judges: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()  # numeric, or true/false read as 1/0

    def wanted(self) -> list[str]:
        names = [self.timestamp, self.input, self.response, self.model, self.id, *self.judges, *self.outcomes]
        return list(dict.fromkeys(n for n in names if n))


@dataclass
class LogReader:
    """Iterate over a log in chunks of validated rows. After a full pass, `present` holds the
    optional columns the log has (response, model, id), and `rows` the data rows read."""

    path: Path
    fields: LogFields = field(default_factory=LogFields)
    chunk_rows: int = 10000
    max_problems: int = 20
    display: str | None = None
    present: set[str] = field(default_factory=set, init=False)
    rows: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.display = self.display or str(self.path)

    # ---- public ------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[pd.DataFrame]:
        self.problems: list[Problem] = []
        self.rows = 0
        self.present = set()
        self._seen_keys: dict[str, None] = {}  # field names, for "fields found: ..." in messages
        if not self.path.is_file():
            raise InputError(Problem(self.display, None, None, "file not found"))
        kind = _kind(self.path)
        if kind is None:
            raise InputError(Problem(self.display, None, None, f"unsupported file type '{''.join(self.path.suffixes)}'; "
                                     f"use {SUPPORTED}"))
        raw_chunks = {"jsonl": self._jsonl_chunks, "csv": self._csv_chunks, "parquet": self._parquet_chunks}[kind]()
        first = True
        for rows, records in raw_chunks:
            if first:
                self._check_columns(records)
                first = False
            frame = self._validate(rows, records)
            if len(frame):
                yield frame
        if first:
            raise InputError(Problem(self.display, None, None, "no rows in the log"))
        if self.problems:
            raise InputError(self.problems)

    # ---- raw readers: yield (row numbers, DataFrame of the wanted columns as read) --------------------
    def _jsonl_chunks(self) -> Iterator[tuple[list[int], pd.DataFrame]]:
        wanted = self.fields.wanted()
        opener = gzip.open if self.path.suffix.lower() == ".gz" else open
        rows: list[int] = []
        records: list[dict[str, Any]] = []
        with opener(self.path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if not raw.strip():
                    continue
                try:
                    value = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    self._problem(line_no, None, f"line {line_no} is not valid JSON ({getattr(exc, 'msg', exc)})")
                    continue
                if not isinstance(value, dict):
                    self._problem(line_no, None, f"line {line_no} is a JSON {type(value).__name__}, expected an object")
                    continue
                if len(self._seen_keys) < 200:
                    self._seen_keys.update(dict.fromkeys(value))
                rows.append(line_no)
                records.append({name: value.get(name, _ABSENT) for name in wanted})
                if len(records) >= self.chunk_rows:
                    yield rows, pd.DataFrame.from_records(records, columns=wanted)
                    rows, records = [], []
        if records:
            yield rows, pd.DataFrame.from_records(records, columns=wanted)

    def _csv_chunks(self) -> Iterator[tuple[list[int], pd.DataFrame]]:
        try:
            header = pd.read_csv(self.path, nrows=0, encoding="utf-8").columns.tolist()
        except (pd.errors.EmptyDataError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InputError(Problem(self.display, None, None, f"cannot read the CSV header: {exc}")) from None
        self._seen_keys = dict.fromkeys(header)
        wanted = [n for n in self.fields.wanted() if n in header]
        start = 1
        try:
            reader = pd.read_csv(self.path, usecols=wanted, dtype=str, keep_default_na=False, chunksize=self.chunk_rows,
                                 encoding="utf-8")
            for chunk in reader:
                chunk = chunk.replace("", None)
                for name in self.fields.wanted():
                    if name not in chunk.columns:
                        chunk[name] = _ABSENT
                yield list(range(start, start + len(chunk))), chunk
                start += len(chunk)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(self.problems + [Problem(self.display, start, None, f"cannot parse CSV after data row "
                                                      f"{start - 1}: {exc}")]) from None

    def _parquet_chunks(self) -> Iterator[tuple[list[int], pd.DataFrame]]:
        import pyarrow.parquet as pq

        try:
            handle = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError(Problem(self.display, None, None, f"cannot read parquet: {exc}")) from None
        names = handle.schema_arrow.names
        self._seen_keys = dict.fromkeys(names)
        wanted = [n for n in self.fields.wanted() if n in names]
        start = 1
        for batch in handle.iter_batches(batch_size=self.chunk_rows, columns=wanted):
            chunk = batch.to_pandas()
            for name in self.fields.wanted():
                if name not in chunk.columns:
                    chunk[name] = _ABSENT
            yield list(range(start, start + len(chunk))), chunk
            start += len(chunk)

    # ---- validation -----------------------------------------------------------------------------
    def _check_columns(self, records: pd.DataFrame) -> None:
        """File-wide: the timestamp and input columns exist (in the header, or in some first-chunk row)."""
        found = list(self._seen_keys)
        problems = []
        for name, what, option in ((self.fields.timestamp, "timestamp", "timestamp_field / --timestamp-field"),
                                   (self.fields.input, "input", "input_field / --input-field")):
            column = records[name]
            if column.map(lambda v: v is _ABSENT).all():
                problems.append(Problem(self.display, None, name, f"no {what} column '{name}' (fields found: "
                                        f"{', '.join(map(str, found)) or 'none'}); set {option} if it has another name"))
        if problems:
            raise InputError(problems)

    def _validate(self, rows: list[int], raw: pd.DataFrame) -> pd.DataFrame:
        f = self.fields
        n = len(rows)
        row_no = np.asarray(rows, dtype=np.int64)
        ordinal = np.arange(self.rows + 1, self.rows + n + 1, dtype=np.int64)
        self.rows += n
        ok = np.ones(n, dtype=bool)

        stamps, bad = parse_timestamps(raw[f.timestamp])
        for i in np.flatnonzero(bad):
            value = raw[f.timestamp].iloc[i]
            if value is _ABSENT or _missing(value):
                message = "missing timestamp"
            else:
                message = f"cannot parse timestamp {str(value)[:60]!r} (use ISO 8601, epoch seconds or milliseconds, years {_MIN_YEAR}-{_MAX_YEAR})"
            self._problem(int(row_no[i]), f.timestamp, message)
        ok &= ~bad

        inputs = []
        for i, value in enumerate(raw[f.input].tolist()):
            text, error = message_text(value)
            if error:
                self._problem(int(row_no[i]), f.input, error)
                ok[i] = False
            inputs.append(text)
        # object columns: missing text stays None (pandas' string dtype would turn it into NaN)
        out = pd.DataFrame({ROW: row_no, ORDINAL: ordinal, TIMESTAMP: stamps, INPUT: pd.Series(inputs, dtype=object)})

        for name, column in ((f.response, RESPONSE), (f.model, MODEL), (f.id, ITEM_ID)):
            if not name:
                continue
            values = raw[name].tolist()
            if all(v is _ABSENT for v in values):
                continue  # not in this file (or chunk): the column is left out, not filled with empties
            self.present.add(column)
            cleaned = []
            for i, value in enumerate(values):
                if column == RESPONSE:
                    text, error = message_text(value)
                elif value is _ABSENT or _missing(value):
                    text, error = None, None
                elif column == ITEM_ID and isinstance(value, (str, int)) and not isinstance(value, bool):
                    text, error = str(value), None
                elif column == MODEL and isinstance(value, str):
                    text, error = value.strip() or None, None
                else:
                    text, error = None, f"{name} must be text, got {type(value).__name__}"
                if error:
                    self._problem(int(row_no[i]), name, error)
                    ok[i] = False
                cleaned.append(text)
            out[column] = pd.Series(cleaned, dtype=object)
        for name in dict.fromkeys([*f.judges, *f.outcomes]):
            values = raw[name].tolist()
            flags = name in f.outcomes  # an outcome may be a flag: true/false count as 1/0
            if all(v is _ABSENT for v in values):
                continue
            self.present.add(name)
            scores = np.full(n, np.nan)
            for i, value in enumerate(values):
                if value is _ABSENT or _missing(value):
                    continue
                try:
                    if isinstance(value, bool) and not flags:
                        raise ValueError
                    scores[i] = float(value)
                    if not math.isfinite(scores[i]):
                        raise ValueError
                except (TypeError, ValueError):
                    kind = "outcome must be a number or true/false" if flags else "judge score must be a number"
                    self._problem(int(row_no[i]), name, f"{kind}, got {str(value)[:40]!r}")
                    ok[i] = False
            out[name] = scores
        return out[ok].reset_index(drop=True)

    def _problem(self, row: int | None, field_name: str | None, message: str) -> None:
        self.problems.append(Problem(self.display, row, field_name, message))
        if len(self.problems) >= self.max_problems:
            self.problems.append(Problem(self.display, None, None, f"stopped reading after {self.max_problems} "
                                         f"problems; fix these and run again"))
            raise InputError(self.problems)


class _Absent:
    """A field missing from a JSONL row (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _kind(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and suffixes[-1] == ".parquet":
            return None
    last = suffixes[-1] if suffixes else ""
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(last)


def message_text(value: Any) -> tuple[str | None, str | None]:
    """(text, error) of an input or response value: text as is; a chat message list gives the last
    user message (or, for a response, the last message); a {"content": ...} message its content.
    Missing or blank values give (None, None): an empty message, not an error."""
    if value is _ABSENT or _missing(value):
        return None, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and "content" in value:
        return message_text(_content(value["content"]))
    if isinstance(value, (list, tuple, np.ndarray)) and all(isinstance(m, dict) for m in value):
        users = [m for m in value if m.get("role") == "user"] or list(value)
        if not users:
            return None, None
        return message_text(_content(users[-1].get("content")))
    return None, f"expected text or a chat message list, got {type(value).__name__}"


def _content(content: Any) -> Any:
    """OpenAI-style content: a string, or a list of parts whose text parts are joined."""
    if isinstance(content, (list, tuple, np.ndarray)):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return content


def parse_timestamps(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(UTC timestamps, bad mask). Missing, unparseable and implausible values are bad."""
    values = values.reset_index(drop=True)
    n = len(values)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    else:
        objects = values.astype(object)
        absent = objects.map(lambda v: v is _ABSENT or _missing(v) or isinstance(v, bool)).to_numpy(dtype=bool)
        present = objects.where(~absent, None)
        numbers = pd.to_numeric(present, errors="coerce")
        numeric = numbers.notna().to_numpy(dtype=bool)
        stamps = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
        if numeric.any():
            given = numbers[numeric].astype(float)
            millis = (given.abs() > 1e11).to_numpy()
            sane = given.abs() < 1e14  # beyond this it is neither seconds nor milliseconds of this era
            index = given.index
            stamps[index[~millis]] = pd.to_datetime(given[~millis].where(sane), unit="s", utc=True)
            stamps[index[millis]] = pd.to_datetime(given[millis].where(sane).round(), unit="ms", utc=True)
        text = ~numeric & ~absent
        if text.any():
            stamps[text] = pd.to_datetime(present[text].astype(str).str.strip(), format="ISO8601", utc=True,
                                          errors="coerce")
    years = stamps.dt.year
    bad = (stamps.isna() | (years < _MIN_YEAR) | (years > _MAX_YEAR)).to_numpy(dtype=bool)
    return stamps.astype("datetime64[ns, UTC]"), bad
