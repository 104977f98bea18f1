"""Load evaluation items (jsonl, csv, parquet, `datasets` folders) into one validated DataFrame.

Every format goes through the same validation, so the same content gives the same frame and a bad
file gives ONE `InputError` listing every problem with its file, row and field.

Why not `datasets.load_dataset` for the flat formats: it writes an Arrow cache under
~/.cache/huggingface even with `keep_in_memory=True` (loading must write nothing) and its parse
errors do not say which line is broken. JSONL and CSV are read with the standard library, which
reports the line; parquet with pyarrow; `save_to_disk` folders with `datasets.load_from_disk`,
which memory-maps the folder without writing.

Rows are read and checked in batches (JSONL: about a megabyte of lines; others: 4,096 records), so
only one batch of row dicts lives at once; a batch's text goes into Arrow as it is checked. A JSONL
line that is not one JSON object alone makes the loader read the file again line by line, the reader
that names every bad line. What needs every row (the columns, given or derived ids, duplicates) is
checked at the end; the frame, ids and problems are those of one read of the whole file.

Row numbers in problems are 1-based: the data row for CSV (header not counted), parquet and
`datasets` folders; the line number for JSONL (what an editor shows; blank lines count).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd
from pandas.core.dtypes.cast import maybe_box_native

from workbench.errors import InputError, Problem
from workbench.hashing import canonical_json, content_hash, json_safe
from workbench.items.fields import APP_FIELDS, MESSAGES, check_app_fields, last_user_text
from workbench.values import is_blank

ITEM_ID, INPUT, REFERENCE = "item_id", "input", "reference"
METADATA = "metadata"  # a dict under this key is flattened into top-level columns
SUPPORTED = ".jsonl, .csv, .parquet or a `datasets` save_to_disk folder"
ID_ROWS = 10_000  # rows hashed at a time by `dataset_id`
_ENCODE_TEXT = json.encoder.encode_basestring  # a str as canonical_json writes it (ensure_ascii=False)
BATCH_BYTES = 1 << 20  # JSONL read about a megabyte of lines at a time
BATCH_ROWS = 4096  # rows of the other formats checked at a time
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark written by some editors, taken off the first line
_JSON_WHITESPACE = " \t\r\n"  # what json.loads allows around a value
_TEXT_OR_NOTHING = {str, type(None), object}  # a reference's types that need no check (object: _MISSING)
_TEXT_OR_NONE = {str, type(None)}
_MISSING = object()  # a row without the field: NaN in the frame (as from_records gives), left out of its content id

Record = tuple[int, dict[str, Any]]  # (1-based row, raw fields)
Batch = tuple[list[int], list[dict[str, Any]]]  # rows' numbers and their raw fields


def load_items(
    path: str | Path,
    *,
    id_field: str = ITEM_ID,
    input_field: str = INPUT,
    reference_field: str = REFERENCE,
    max_field_chars: int = 20000,
) -> pd.DataFrame:
    """Read items from `path` into a frame with columns `item_id` (str), `input` (str),
    `reference` (str or NaN; only when the file has that field) and every other field as a
    metadata column (a nested `metadata` object is flattened), usable as slices.

    An application's fields (`messages`, `tools`, `tool_choice`, `response_format`, `context`,
    `expected_calls`: see `workbench.items.fields`) are parsed and checked; a conversation needs no
    `input` column (the last user turn is its input).

    Without an id field each item gets a stable id hashed from its content, so re-loading the
    same file gives the same ids. `df.attrs["source"]` holds the resolved path. Reads only.
    """
    path = Path(path)
    source = str(path)
    checks = dict(id_field=id_field, input_field=input_field, reference_field=reference_field,
                  max_field_chars=max_field_chars)
    try:
        frame = _load(source, *_read(path, source), **checks)
    except _IrregularLine:  # read that file again line by line, which names every bad line
        frame = _load(source, *_in_batches(*_read_jsonl(path.read_bytes(), source)), **checks)
    if path.suffix.lower() == ".csv":
        frame = _infer_csv_types(frame)
    frame.attrs["source"] = str(path.resolve())
    return frame


def require_columns(frame: Any, name: str, required: Iterable[str]) -> pd.DataFrame:
    """`frame` itself when it is a DataFrame with every `required` column; else one InputError
    naming the frame (`name`) and each missing column."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(Problem(name, None, None, f"expected a pandas DataFrame, got {type(frame).__name__}"))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError([Problem(name, None, c, f"missing column (has: {', '.join(map(str, frame.columns))})")
                          for c in missing])
    return frame


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame.to_dict(orient="records")`, the same values, built column by column: pandas' own walks
    the rows, and a string column (Arrow-backed) then yields its values one call at a time."""
    columns = []
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        values, dtype = column.tolist(), column.dtype
        if dtype == object or isinstance(dtype, pd.api.extensions.ExtensionDtype):  # as to_dict boxes them
            values = [value if type(value) is str else maybe_box_native(value) for value in values]  # to_dict's boxing
        columns.append(values)
    names = frame.columns.tolist()
    return [dict(zip(names, row)) for row in zip(*columns)] if names else [{} for _ in range(len(frame))]


def dataset_id(df: pd.DataFrame) -> str:
    """Content hash of the items: same items and fields give the same id whatever the file format,
    row order or column order (rows are hashed sorted by item_id).

    The hash of `canonical_json({"columns": columns, "rows": [row, ...]})` (each row a dict of every
    column, values through `json_safe`), written out a column at a time: each value encoded once (a
    column of plain text not at all: the row's format quotes it), each row one `%` format of its
    values, instead of a dict per row encoded as a whole; and hashed `ID_ROWS` rows at a time, so the
    text of 100k rows (and its values as Python strings) never lives at once (140 MiB at 100k)."""
    columns = sorted(df.columns)
    plain = {column: _plain_text(df[column]) for column in columns}
    row_format = "{" + ",".join(canonical_json({column: None})[1:-6].replace("%", "%%")  # the key: {key: null}
                                + (':"%s"' if plain[column] else ":%s") for column in columns) + "}"
    order: Any = range(len(df))
    if ITEM_ID in df.columns:  # the order of the rows: their item_id as text, as json_safe leaves it
        keys = [value if type(value) is str else str(json_safe(value)) for value in df[ITEM_ID].tolist()]
        order = sorted(order, key=keys.__getitem__)
        del keys
    digest = hashlib.sha256(('{"columns":' + canonical_json(columns) + ',"rows":[').encode("utf-8"))
    for start in range(0, len(df), ID_ROWS):
        positions = order[start:start + ID_ROWS]
        encoded = []
        for column in columns:
            values = df[column].take(positions).tolist() if columns else []
            encoded.append(values if plain[column] else [_ENCODE_TEXT(value) if type(value) is str
                                                         else canonical_json(json_safe(value)) for value in values])
        rows = [row_format % row for row in zip(*encoded)] if columns else ["{}"] * len(positions)
        digest.update((("," if start else "") + ",".join(rows)).encode("utf-8"))
    digest.update(b"]}")
    return digest.hexdigest()


def _plain_text(column: pd.Series) -> bool:
    """Whether the column is pandas' Arrow text, none missing, each value printable ASCII without `"`
    or a backslash: JSON writes each as it is between quotes."""
    if not (isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow") or column.hasnans:
        return False
    import pyarrow.compute as pc

    text = column.array.__arrow_array__()
    return not len(text) or (pc.all(pc.ascii_is_printable(text)).as_py()
                             and not pc.any(pc.match_substring(text, '"')).as_py()
                             and not pc.any(pc.match_substring(text, "\\")).as_py())


def _load(source: str, batches: Iterable[Batch], problems: list[Problem], **checks: Any) -> pd.DataFrame:
    """The checked frame of what the reader gave, or one InputError listing the reader's problems and then
    the rows'. The rows are taken a batch at a time, so only one batch of row dicts lives at once."""
    columns = _ItemColumns(source, **checks)
    for batch in batches:
        columns.add(batch)
    if columns.rows or not problems:  # validate what could be read, so one error lists everything
        problems = problems + columns.problems()
    if problems:
        raise InputError(problems)
    return columns.frame()


# --- readers: batches of records and problems; never raise for bad content --------------------

def _read(path: Path, source: str) -> tuple[Iterable[Batch], list[Problem]]:
    """Batches of records and the problems found reading them. JSONL's batches are parsed as they are
    taken and raise `_IrregularLine` at a line `_read_jsonl` must explain."""
    if not path.exists():
        return [], [Problem(source, None, None, "file not found")]
    if path.is_dir():
        return _in_batches(*_read_datasets_folder(path, source))
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_batches(path), []
    if suffix == ".csv":
        return _in_batches(*_read_csv(path.read_bytes(), source))
    if suffix == ".parquet":
        return _in_batches(*_read_parquet(path, source))
    return [], [Problem(source, None, None, f"unsupported extension '{path.suffix}'; use {SUPPORTED}")]


def _in_batches(records: list[Record], problems: list[Problem]) -> tuple[list[Batch], list[Problem]]:
    batches = (records[start:start + BATCH_ROWS] for start in range(0, len(records), BATCH_ROWS))
    return [([row_no for row_no, _ in batch], [fields for _, fields in batch]) for batch in batches], problems


class _IrregularLine(Exception):
    """A JSONL line that `_jsonl_batches` does not take as it is (not UTF-8, not one JSON object alone on
    its line, a lone surrogate, leading whitespace): `_read_jsonl` reads the file again and says why."""


def _jsonl_batches(path: Path) -> Iterator[Batch]:
    """The file's objects, about a megabyte of lines at a time. Each line is taken exactly as `json.loads`
    of that line alone would take it, or not at all (`_IrregularLine`): a value must end on its own line
    and be a JSON object, only JSON whitespace may follow it, and a blank line is skipped."""
    scan = json.JSONDecoder().scan_once  # json.loads' C scanner: (value, end) of the value at an index
    line_no = 0
    with path.open("rb") as handle:
        while lines := handle.readlines(BATCH_BYTES):
            if line_no == 0 and lines[0].startswith(_BOM):
                lines[0] = lines[0][len(_BOM):]
            try:
                text = b"".join(lines).decode("utf-8")
            except UnicodeDecodeError:
                raise _IrregularLine from None
            escapes = "\\ud" in text or "\\uD" in text
            texts = text.split("\n")
            if text.endswith("\n"):
                texts.pop()  # what follows the last line's end
            row_numbers: list[int] = []
            rows: list[dict[str, Any]] = []
            for line in texts:
                line_no += 1
                try:
                    value, end = scan(line, 0)
                except (StopIteration, ValueError):  # no JSON value at the line's start
                    if line.strip():
                        raise _IrregularLine from None
                    continue  # a blank line
                if (type(value) is not dict or (end != len(line) and line[end:].strip(_JSON_WHITESPACE))
                        or (escapes and ("\\ud" in line or "\\uD" in line) and not _is_text(value))):
                    raise _IrregularLine
                row_numbers.append(line_no)
                rows.append(value)
            yield row_numbers, rows


def _read_jsonl(data: bytes, source: str) -> tuple[list[Record], list[Problem]]:
    """Every line of the file, each parsed alone: the reader that names each bad line and why."""
    records: list[Record] = []
    problems: list[Problem] = []
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if line_no == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(source, line_no, None, f"line {line_no} is not valid UTF-8 "
                                    f"(byte {exc.start}: {raw[exc.start:exc.start + 4]!r})"))
            continue
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(Problem(source, line_no, None, f"line {line_no} is not valid JSON ({exc.msg} "
                                    f"at column {exc.colno})"))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(source, line_no, None, f"line {line_no} is a JSON "
                                    f"{type(value).__name__}, expected an object"))
            continue
        if ("\\ud" in text or "\\uD" in text) and not _is_text(value):  # JSON may escape what no store or frame can hold
            problems.append(Problem(source, line_no, None, f"line {line_no} holds a lone surrogate (a \\ud800-"
                                    "\\udfff escape without its pair), which is not text"))
            continue
        records.append((line_no, value))
    return records, problems


def _read_csv(data: bytes, source: str) -> tuple[list[Record], list[Problem]]:
    # surrogateescape keeps undecodable bytes as lone surrogates, so the csv parser still sees the
    # row structure and each bad byte can be traced to its row and field.
    text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8", errors="surrogateescape")
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return [], [Problem(source, None, None, "empty file (no header)")]
    except csv.Error as exc:
        return [], [Problem(source, None, None, f"cannot parse the header: {exc}")]
    for column in header:
        if not _is_utf8(column):
            problems.append(Problem(source, None, column.encode("utf-8", "surrogateescape")
                                    .decode("utf-8", "replace"), "header is not valid UTF-8"))
    for index, column in enumerate(header):
        if column in header[:index]:
            problems.append(Problem(source, None, column, "column appears twice in the header"))
    records: list[Record] = []
    row_no = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(source, row_no + 1, None, f"cannot parse CSV: {exc}"))
            break  # the parser cannot resynchronise after a broken quote
        row_no += 1
        if not cells:
            continue
        if len(cells) != len(header):
            problems.append(Problem(source, row_no, None, f"has {len(cells)} fields, the header has {len(header)}"))
            continue
        fields: dict[str, Any] = {}
        for column, cell in zip(header, cells):
            if not _is_utf8(cell):
                problems.append(Problem(source, row_no, column, "value is not valid UTF-8"))
            fields[column] = None if cell == "" else cell
        records.append((row_no, fields))
    return records, problems


def _read_parquet(path: Path, source: str) -> tuple[list[Record], list[Problem]]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        return [], [Problem(source, None, None, f"cannot read parquet: {exc}")]
    return _decode_bytes_values(rows, source)


def _read_datasets_folder(path: Path, source: str) -> tuple[list[Record], list[Problem]]:
    if not (path / "state.json").exists() and not (path / "dataset_dict.json").exists():
        return [], [Problem(source, None, None, f"folder is not a `datasets` save_to_disk folder "
                            f"(no state.json or dataset_dict.json); use {SUPPORTED}")]
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        return [], [Problem(source, None, None, f"cannot load the `datasets` folder: {exc}")]
    if isinstance(loaded, datasets.DatasetDict):
        if len(loaded) != 1:
            return [], [Problem(source, None, None, f"folder holds splits {sorted(loaded)}; "
                                f"point at one split's folder, e.g. {path / sorted(loaded)[0]}")]
        loaded = next(iter(loaded.values()))
    return _decode_bytes_values(loaded.to_list(), source)


def _decode_bytes_values(rows: list[dict[str, Any]], source: str) -> tuple[list[Record], list[Problem]]:
    """Binary columns are accepted when they hold UTF-8 text; anything else is a located problem."""
    records: list[Record] = []
    problems: list[Problem] = []
    for row_no, row in enumerate(rows, start=1):
        for key, value in row.items():
            if isinstance(value, (bytes, bytearray)):
                try:
                    row[key] = bytes(value).decode("utf-8")
                except UnicodeDecodeError:
                    problems.append(Problem(source, row_no, key, "value is not valid UTF-8"))
        records.append((row_no, row))
    return records, problems


# --- validation -----------------------------------------------------------------------------

class _ItemColumns:
    """The items' fields as columns, filled a batch of rows at a time, and the problems of those rows.

    A row's own checks (its fields' sizes, its input and reference) run on each batch while its dicts
    live: a column at a time where every value passes, the row-by-row check only on a batch where one
    does not, so each problem is the one the row-by-row check names, in its order. What needs every row
    (which columns exist, whether ids are given or derived, duplicates) waits for `problems`."""

    def __init__(self, source: str, *, id_field: str, input_field: str, reference_field: str,
                 max_field_chars: int):
        self.source, self.id_field, self.input_field = source, id_field, input_field
        self.reference_field, self.max_field_chars = reference_field, max_field_chars
        self.values: dict[str, list[Any]] = {}  # field -> its chunks, one per batch, in first-seen order
        self.row_numbers: list[int] = []
        self.flatten_problems: list[Problem] = []
        self.app_problems: list[Problem] = []
        self.row_problems: dict[int, list[Problem]] = {}  # row index -> its problems, in the checks' order
        self.derived_ids: list[str] = []  # ids from the content, while no row has the id field
        self.item_ids: list[str | None] = []
        self.text_dtype = _text_dtype()

    @property
    def rows(self) -> int:
        return len(self.row_numbers)

    def add(self, batch: Batch) -> None:
        row_numbers, rows = batch
        names = _field_names(rows)
        if METADATA in names:
            for index, (row_no, raw) in enumerate(zip(row_numbers, rows)):
                rows[index], problems = _flatten(raw, self.source, row_no)
                self.flatten_problems += problems
            names = _field_names(rows)
        if not names.keys().isdisjoint(APP_FIELDS):
            for row_no, fields in zip(row_numbers, rows):
                self.app_problems += check_app_fields(fields, self.source, row_no)
                if MESSAGES in fields and is_blank(fields.get(self.input_field)):
                    fields[self.input_field] = last_user_text(fields[MESSAGES]) or ""
            names = _field_names(rows)
        if self.id_field not in names:  # the ids may have to come from the content: hashed while the rows live
            self.derived_ids += [_content_id(fields) for fields in rows]
        batch_values = _transpose(rows, names)
        self._check_rows(row_numbers, rows, batch_values)
        start, count = self.rows, len(rows)
        for name, chunks in self.values.items():
            if name not in batch_values:
                chunks.append([_MISSING] * count)
        for name, values in batch_values.items():
            chunk = values if name == self.id_field else _text_chunk(values, self.text_dtype)
            if name in self.values:
                self.values[name].append(chunk)
            else:  # a field no earlier batch had
                self.values[name] = ([[_MISSING] * start] if start else []) + [chunk]
        self.row_numbers += row_numbers

    def _check_rows(self, row_numbers: list[int], rows: list[dict[str, Any]],
                    batch_values: dict[str, list[Any]]) -> None:
        start, source, limit = self.rows, self.source, self.max_field_chars
        too_long = set()
        for values in batch_values.values():
            try:
                fits = max(map(len, values)) <= limit  # text, lists and objects alike: none longer, no text longer
            except TypeError:  # a value without a length (a number, a missing field)
                fits = False
            if not fits:
                too_long.update(i for i, value in enumerate(values) if isinstance(value, str) and len(value) > limit)
        for index in sorted(too_long):
            self._row_problems(start + index).extend(
                Problem(source, row_numbers[index], name, f"value has {len(value)} characters, over the limit "
                        f"of {limit} (max_field_chars)")
                for name, value in rows[index].items() if isinstance(value, str) and len(value) > limit)
        inputs = batch_values.get(self.input_field)
        if not (inputs is not None and _all_text(inputs) and "" not in inputs and not any(map(str.isspace, inputs))):
            for index, fields in enumerate(rows):
                self._add(start + index, _check_text(fields.get(self.input_field), source, row_numbers[index],
                                                     self.input_field, required=MESSAGES not in fields))
        references = batch_values.get(self.reference_field)
        if references is not None and not set(map(type, references)) <= _TEXT_OR_NOTHING:
            for index, fields in enumerate(rows):
                self._add(start + index, _check_text(fields.get(self.reference_field), source,
                                                     row_numbers[index], self.reference_field, required=False))

    def _row_problems(self, index: int) -> list[Problem]:
        return self.row_problems.setdefault(index, [])

    def _add(self, index: int, problems: list[Problem]) -> None:
        if problems:
            self._row_problems(index).extend(problems)

    def problems(self) -> list[Problem]:
        """Every problem of the rows: the flattening's, the application fields', the columns', then each
        row's in row order (its sizes, input, reference, id, duplicate)."""
        source, id_field, input_field = self.source, self.id_field, self.input_field
        if not self.rows:
            return [Problem(source, None, None, "no items in the file")]
        problems = self.flatten_problems + self.app_problems
        if input_field not in self.values:
            return problems + [Problem(source, None, input_field, f"missing column '{input_field}' (columns "
                                       f"found: {', '.join(sorted(self.values))}); name the column that holds the "
                                       f"input (--input-field NAME, or the input_field parameter)")]
        for name, canonical in self._renames().items():
            if name != canonical and canonical in self.values:
                problems.append(Problem(source, None, canonical, f"column '{canonical}' clashes with the "
                                        f"'{canonical}' column made from '{name}'; rename it"))
        derive_ids = id_field not in self.values
        self.item_ids = self.derived_ids if derive_ids else self._given_ids()
        ids = self.item_ids
        if None in ids or len(set(ids)) != len(ids):
            first_row_of_id: dict[str, int] = {}
            for index, item_id in enumerate(ids):
                if item_id is None:
                    continue
                row_no = self.row_numbers[index]
                if item_id in first_row_of_id:
                    what = "identical content (add an id field)" if derive_ids else f"duplicate id '{item_id}'"
                    self._row_problems(index).append(Problem(source, row_no, id_field, f"{what}: rows "
                                                             f"{first_row_of_id[item_id]} and {row_no}"))
                else:
                    first_row_of_id[item_id] = row_no
        for index in sorted(self.row_problems):
            problems += self.row_problems[index]
        return problems

    def _renames(self) -> dict[str, str]:
        return {self.id_field: ITEM_ID, self.input_field: INPUT, self.reference_field: REFERENCE}

    def _given_ids(self) -> list[str | None]:
        values = _python_values(self.values[self.id_field])
        if _all_text(values) and "" not in values and not any(map(str.isspace, values)):
            return values
        ids: list[str | None] = []
        for index, value in enumerate(values):
            problems: list[Problem] = []
            ids.append(_check_id(None if value is _MISSING else value, self.source, self.row_numbers[index],
                                 self.id_field, problems))
            self._add(index, problems)
        return ids

    def frame(self) -> pd.DataFrame:
        """Columns: item_id, input, reference (when any row has one), then the rest in first-seen order;
        each column of the type `from_records` infers from the rows' dicts: a column of text (text batches
        already in Arrow) as pandas' text type, every other column through `from_records` itself."""
        field_of = _frame_fields(self.values, self.id_field, self._renames())
        names = [ITEM_ID, INPUT] + [REFERENCE] * (REFERENCE in field_of)
        names += [name for name in field_of if name not in names]
        columns: dict[str, Any] = {}  # a column of text as pandas' text array, the rest as values to infer
        for name in names:
            chunks = ([self.item_ids] if name == ITEM_ID
                      else self.values.get(field_of.get(name), [[_MISSING] * self.rows]))  # none: all missing
            if getattr(self.text_dtype, "storage", None) == "pyarrow":
                chunks = [_text_chunk(chunk, self.text_dtype) if isinstance(chunk, list) and _MISSING not in chunk
                          else chunk for chunk in chunks]
            if _is_text_column(chunks):
                import pyarrow as pa

                columns[name] = self.text_dtype.__from_arrow__(pa.chunked_array(chunks).combine_chunks())
            else:
                values = _python_values(chunks)
                columns[name] = ([np.nan if value is _MISSING else value for value in values]
                                 if _MISSING in values else values)
        inferred = [name for name in names if isinstance(columns[name], list)]
        if inferred:
            others = pd.DataFrame.from_records(zip(*(columns[name] for name in inferred)), columns=inferred)
            columns.update((name, others[name]) for name in inferred)
        return pd.DataFrame(columns, copy=False)


def _text_dtype() -> Any:
    """The type pandas gives a column of text (Arrow-backed `str` by default since pandas 3; object before)."""
    return pd.DataFrame.from_records([("text",)]).dtypes.iloc[0]


def _text_chunk(values: list[Any], text_dtype: Any) -> Any:
    """A batch of a field's values as an Arrow array when they are text or None and pandas keeps text in
    Arrow (the batch's Python strings are then freed); else the values themselves."""
    if getattr(text_dtype, "storage", None) != "pyarrow" or not set(map(type, values)) <= _TEXT_OR_NONE:
        return values
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.large_string())
    except UnicodeEncodeError:  # CSV's undecodable bytes, kept as lone surrogates for their problem
        return values


def _is_text_column(chunks: list[Any]) -> bool:
    """Every chunk in Arrow and some value not null: `from_records` would infer pandas' text type."""
    return (all(not isinstance(chunk, list) for chunk in chunks)
            and sum(chunk.null_count for chunk in chunks) < sum(len(chunk) for chunk in chunks))


def _python_values(chunks: list[Any]) -> list[Any]:
    return list(chain.from_iterable(chunk if isinstance(chunk, list) else chunk.to_pylist() for chunk in chunks))


def _field_names(rows: list[dict[str, Any]]) -> dict[str, None]:
    """The rows' fields in first-seen order (those of the first row, when no row has another)."""
    if rows and len(set().union(*rows)) == len(rows[0]):
        return dict.fromkeys(rows[0])
    return dict.fromkeys(chain.from_iterable(rows))


def _transpose(rows: list[dict[str, Any]], names: Iterable[str]) -> dict[str, list[Any]]:
    """Each field's values in the rows, _MISSING where a row has no such field."""
    names = list(names)
    if set(map(len, rows)) == {len(names)}:  # every row has every field
        return {name: list(map(itemgetter(name), rows)) for name in names}
    return {name: [fields.get(name, _MISSING) for fields in rows] for name in names}


def _all_text(values: list[Any]) -> bool:
    return set(map(type, values)) == {str}


def _frame_fields(fields: Iterable[str], id_field: str, renames: dict[str, str]) -> dict[str, str | None]:
    """Each frame column (but item_id, whose values are the checked ids: None) and the field it is made
    of, in the order of the fields: the id, input and reference fields renamed to their canonical names."""
    columns: dict[str, str | None] = {name: name for name in fields}
    columns.pop(id_field, None)
    for name, canonical in renames.items():
        if name != canonical and name in columns:
            columns[canonical] = columns.pop(name)
    columns[ITEM_ID] = None
    return columns


def _flatten(raw: dict[str, Any], source: str, row_no: int) -> tuple[dict[str, Any], list[Problem]]:
    """Lift a nested `metadata` object to top-level fields (slices are plain columns)."""
    nested = raw.get(METADATA)
    if not isinstance(nested, dict):
        return raw, []  # the parsed line itself: nothing else holds it
    problems: list[Problem] = []
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key != METADATA:
            fields[key] = value
            continue
        for sub_key, sub_value in nested.items():
            if sub_key in raw:
                problems.append(Problem(source, row_no, f"{METADATA}.{sub_key}",
                                        f"'{sub_key}' is also a top-level field"))
            fields[sub_key] = sub_value
    return fields, problems


def _is_text(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _check_text(value: Any, source: str, row_no: int, field: str, *, required: bool) -> list[Problem]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return [Problem(source, row_no, field, f"empty {field}")] if required else []
    if not isinstance(value, str):
        return [Problem(source, row_no, field, f"{field} must be text, got {type(value).__name__}")]
    if required and not value.strip():
        return [Problem(source, row_no, field, f"empty {field}")]
    return []


def _check_id(value: Any, source: str, row_no: int, field: str, problems: list[Problem]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(Problem(source, row_no, field, "missing id"))
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        problems.append(Problem(source, row_no, field, f"id must be text or an integer, got {type(value).__name__}"))
        return None
    return str(value)


def _content_id(fields: dict[str, Any]) -> str:
    """A stable id from the row's content. Values are hashed as text (JSON for non-strings) and
    empty values are left out, so a row gets the same id from CSV (all text) as from JSONL."""
    text = {
        key: value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
        for key, value in fields.items()
        if value is not None
    }
    return "h" + content_hash(text)[:16]


# --- frame building -------------------------------------------------------------------------

def _infer_csv_types(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV cells are text; a metadata column whose every value is a number (or true/false) gets
    that type, so the same content loads to the same frame from CSV as from JSONL or parquet."""
    for column in frame.columns:
        values = frame[column].dropna()
        if column in (ITEM_ID, INPUT, REFERENCE, *APP_FIELDS) or values.empty:
            continue
        lowered = set(values.str.lower())
        if lowered <= {"true", "false"}:
            frame[column] = frame[column].str.lower().map({"true": True, "false": False})
            continue
        try:
            frame[column] = pd.to_numeric(frame[column])
        except (ValueError, TypeError):
            pass
    return frame


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

