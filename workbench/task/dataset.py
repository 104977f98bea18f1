"""Load evaluation items (jsonl, csv, parquet, `datasets` folders) into one validated DataFrame.

Every format goes through the same validation, so the same content gives the same frame and a bad
file gives ONE `InputError` listing every problem with its file, row and field.

Why not `datasets.load_dataset` for the flat formats: it writes an Arrow cache under
~/.cache/huggingface even with `keep_in_memory=True` (loading must write nothing) and its parse
errors do not say which line is broken. JSONL and CSV are read with the standard library, which
reports the line; parquet with pyarrow; `save_to_disk` folders with `datasets.load_from_disk`,
which memory-maps the folder without writing.

Row numbers in problems are 1-based: the data row for CSV (header not counted), parquet and
`datasets` folders; the line number for JSONL (what an editor shows; blank lines count).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from pandas.core.dtypes.cast import maybe_box_native

from workbench.errors import InputError, Problem
from workbench.hashing import content_hash, json_safe
from workbench.items.fields import APP_FIELDS, MESSAGES, check_app_fields, last_user_text
from workbench.values import is_blank

ITEM_ID, INPUT, REFERENCE = "item_id", "input", "reference"
METADATA = "metadata"  # a dict under this key is flattened into top-level columns
SUPPORTED = ".jsonl, .csv, .parquet or a `datasets` save_to_disk folder"

Record = tuple[int, dict[str, Any]]  # (1-based row, raw fields)


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
    records, problems = _read(path, source)
    rows: list[dict[str, Any]] = []
    if records or not problems:  # validate what could be read, so one error lists everything
        rows, more = _validate(
            records, source, id_field=id_field, input_field=input_field,
            reference_field=reference_field, max_field_chars=max_field_chars,
        )
        problems += more
    if problems:
        raise InputError(problems)
    frame = _frame(rows)
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
    row order or column order (rows are hashed sorted by item_id)."""
    columns = sorted(df.columns)
    values = [[value if type(value) is str else json_safe(value) for value in df[column].tolist()]
              for column in columns]
    rows = [dict(zip(columns, row)) for row in zip(*values)] if columns else [{} for _ in range(len(df))]
    rows.sort(key=lambda row: str(row.get(ITEM_ID)))
    return content_hash({"columns": columns, "rows": rows})


# --- readers: each returns (records, problems) and never raises for bad content ---------------

def _read(path: Path, source: str) -> tuple[list[Record], list[Problem]]:
    if not path.exists():
        return [], [Problem(source, None, None, "file not found")]
    if path.is_dir():
        return _read_datasets_folder(path, source)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path.read_bytes(), source)
    if suffix == ".csv":
        return _read_csv(path.read_bytes(), source)
    if suffix == ".parquet":
        return _read_parquet(path, source)
    return [], [Problem(source, None, None, f"unsupported extension '{path.suffix}'; use {SUPPORTED}")]


def _read_jsonl(data: bytes, source: str) -> tuple[list[Record], list[Problem]]:
    records: list[Record] = []
    problems: list[Problem] = []
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # UTF-8 byte order mark written by some editors
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

def _validate(
    records: list[Record], source: str, *, id_field: str, input_field: str,
    reference_field: str, max_field_chars: int,
) -> tuple[list[dict[str, Any]], list[Problem]]:
    if not records:
        return [], [Problem(source, None, None, "no items in the file")]
    problems: list[Problem] = []
    flat: list[tuple[int, dict[str, Any]]] = []
    for row_no, raw in records:
        fields, row_problems = _flatten(raw, source, row_no)
        problems += row_problems
        flat.append((row_no, fields))
    for row_no, fields in flat:
        problems += check_app_fields(fields, source, row_no)
        if MESSAGES in fields and is_blank(fields.get(input_field)):
            fields[input_field] = last_user_text(fields[MESSAGES]) or ""
    columns = {name for _, fields in flat for name in fields}
    if input_field not in columns:
        return [], problems + [Problem(source, None, input_field, f"missing column '{input_field}' (columns "
                                       f"found: {', '.join(sorted(columns))}); name the column that holds the input "
                                       f"(--input-field NAME, or the input_field parameter)")]
    derive_ids = id_field not in columns
    renames = {id_field: ITEM_ID, input_field: INPUT, reference_field: REFERENCE}
    for name, canonical in renames.items():
        if name != canonical and canonical in columns:
            problems.append(Problem(source, None, canonical, f"column '{canonical}' clashes with the "
                                    f"'{canonical}' column made from '{name}'; rename it"))

    rows: list[dict[str, Any]] = []
    first_row_of_id: dict[str, int] = {}
    for row_no, fields in flat:
        for name, value in fields.items():
            if isinstance(value, str) and len(value) > max_field_chars:
                problems.append(Problem(source, row_no, name, f"value has {len(value)} characters, over "
                                        f"the limit of {max_field_chars} (max_field_chars)"))
        problems += _check_text(fields.get(input_field), source, row_no, input_field,
                                required=MESSAGES not in fields)
        problems += _check_text(fields.get(reference_field), source, row_no, reference_field, required=False)
        if derive_ids:
            item_id: str | None = _content_id(fields)
        else:
            item_id = _check_id(fields.get(id_field), source, row_no, id_field, problems)
        if item_id is not None:
            if item_id in first_row_of_id:
                what = "identical content (add an id field)" if derive_ids else f"duplicate id '{item_id}'"
                problems.append(Problem(source, row_no, id_field, f"{what}: rows {first_row_of_id[item_id]} "
                                        f"and {row_no}"))
            else:
                first_row_of_id[item_id] = row_no
        rows.append(_as_row(fields, item_id, id_field, renames))
    return rows, problems


def _as_row(fields: dict[str, Any], item_id: str | None, id_field: str, renames: dict[str, str]) -> dict[str, Any]:
    """The row of one item: its fields renamed in place (`renames`: the id, input and reference fields to
    their canonical names) under its checked `item_id`. In place: at 100,000 items a copy per row was
    the file's size again in memory (`_frame` orders the columns, not the dicts)."""
    fields.pop(id_field, None)
    for name, canonical in renames.items():
        if name != canonical and name in fields:
            fields[canonical] = fields.pop(name)
    fields[ITEM_ID] = item_id
    return fields


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

def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Columns: item_id, input, reference (when any row has one), then the rest in first-seen order."""
    columns: dict[str, None] = {ITEM_ID: None, INPUT: None}
    if any(REFERENCE in row for row in rows):
        columns[REFERENCE] = None
    for row in rows:
        columns.update(dict.fromkeys(row))
    return pd.DataFrame.from_records(rows, columns=list(columns))


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

