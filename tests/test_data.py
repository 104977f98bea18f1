"""Loading items: every format gives the same frame, every bad input is located precisely."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from workbench.task.dataset import dataset_id, load_items
from workbench.errors import InputError

REPO = Path(__file__).resolve().parents[1]

# Awkward on purpose: commas, quotes, newlines, braces and Japanese in text; a missing reference
# and a missing metadata value; an integer metadata column that CSV must give back as integers.
ROWS = [
    {"item_id": "a1", "input": "Hello, \"world\"\nsecond line", "reference": "Hi {there}.",
     "metadata": {"language": "en", "turns": 1, "channel": "email"}},
    {"item_id": "a2", "input": "ヘッドホンが壊れました。", "reference": None,
     "metadata": {"language": "ja", "turns": 3, "channel": None}},
    {"item_id": "a3", "input": "Is it waterproof?", "reference": "Yes, IPX4.",
     "metadata": {"language": "en", "turns": 2, "channel": "chat"}},
]


def flat(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k != "metadata"}
    out.update(row.get("metadata", {}))
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    rows = [flat(r) for r in rows]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)  # `metadata` becomes a struct column
    return path


def write_datasets_folder(path: Path, rows: list[dict]) -> Path:
    from datasets import Dataset

    Dataset.from_list([flat(r) for r in rows]).save_to_disk(str(path))
    return path


def expected_frame() -> pd.DataFrame:
    return pd.DataFrame.from_records([flat(r) for r in ROWS],
                                     columns=["item_id", "input", "reference", "language", "turns", "channel"])


def problem_text(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


# --- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize("writer,name", [
    (write_jsonl, "items.jsonl"),
    (write_csv, "items.csv"),
    (write_parquet, "items.parquet"),
    (write_datasets_folder, "items_ds"),
])
def test_each_format_loads_the_same_frame(tmp_path, writer, name):
    path = writer(tmp_path / name, ROWS)
    frame = load_items(path)
    pd.testing.assert_frame_equal(frame, expected_frame())
    assert frame.attrs["source"] == str(path.resolve())
    assert frame["turns"].dtype == "int64"
    assert dataset_id(frame) == dataset_id(expected_frame())


def test_datasets_dict_with_one_split_is_accepted(tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"test": Dataset.from_list([flat(r) for r in ROWS])}).save_to_disk(str(tmp_path / "dd"))
    pd.testing.assert_frame_equal(load_items(tmp_path / "dd"), expected_frame())


def test_nested_metadata_is_flattened_and_flat_jsonl_is_identical(tmp_path):
    nested = load_items(write_jsonl(tmp_path / "nested.jsonl", ROWS))
    flat_rows = load_items(write_jsonl(tmp_path / "flat.jsonl", [flat(r) for r in ROWS]))
    pd.testing.assert_frame_equal(nested, flat_rows)
    assert "metadata" not in nested.columns


def test_dataset_id_changes_with_content_not_with_row_order(tmp_path):
    base = load_items(write_jsonl(tmp_path / "a.jsonl", ROWS))
    shuffled = load_items(write_jsonl(tmp_path / "b.jsonl", ROWS[::-1]))
    edited = load_items(write_jsonl(tmp_path / "c.jsonl", [ROWS[0], ROWS[1], {**ROWS[2], "input": "Is it dustproof?"}]))
    assert dataset_id(base) == dataset_id(shuffled)
    assert dataset_id(base) != dataset_id(edited)
    assert len(dataset_id(base)) == 64


def test_custom_field_names_are_renamed(tmp_path):
    rows = [{"qid": 7, "question": "Why?", "answer": "Because.", "topic": "x"},
            {"qid": 8, "question": "How?", "answer": None, "topic": "y"}]
    frame = load_items(write_jsonl(tmp_path / "q.jsonl", rows), id_field="qid", input_field="question",
                       reference_field="answer")
    assert list(frame.columns) == ["item_id", "input", "reference", "topic"]
    assert frame["item_id"].tolist() == ["7", "8"]
    assert pd.isna(frame.loc[1, "reference"])


def test_custom_field_clashing_with_output_column_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"qid": 1, "item_id": "x", "input": "hi"}])
    with pytest.raises(InputError) as excinfo:
        load_items(path, id_field="qid")
    assert "field 'item_id'" in problem_text(excinfo) and str(path) in problem_text(excinfo)


def test_no_reference_column_means_no_reference_in_frame(tmp_path):
    frame = load_items(write_jsonl(tmp_path / "r.jsonl", [{"item_id": "1", "input": "x"}]))
    assert list(frame.columns) == ["item_id", "input"]


def test_ids_derived_from_content_are_stable_across_loads_and_formats(tmp_path):
    rows = [{k: v for k, v in flat(r).items() if k != "item_id"} for r in ROWS]
    first = load_items(write_jsonl(tmp_path / "a.jsonl", rows))
    again = load_items(tmp_path / "a.jsonl")
    from_csv = load_items(write_csv(tmp_path / "a.csv", rows))
    assert first["item_id"].tolist() == again["item_id"].tolist() == from_csv["item_id"].tolist()
    assert first["item_id"].is_unique and all(i.startswith("h") and len(i) == 17 for i in first["item_id"])
    changed = load_items(write_jsonl(tmp_path / "b.jsonl", [{**rows[0], "input": "other"}]))
    assert changed["item_id"][0] != first["item_id"][0]


def test_identical_rows_without_ids_are_reported_as_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [{"input": "same"}, {"input": "other"}, {"input": "same"}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    text = problem_text(excinfo)
    assert "row 3" in text and "rows 1 and 3" in text and "identical content" in text


def test_loading_writes_nothing(tmp_path, monkeypatch):
    import datasets

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    paths = [write_jsonl(source_dir / "a.jsonl", ROWS), write_csv(source_dir / "a.csv", ROWS),
             write_parquet(source_dir / "a.parquet", ROWS), write_datasets_folder(source_dir / "ds", ROWS)]

    def snapshot() -> list:
        return sorted((root, name, os.stat(os.path.join(root, name)).st_mtime_ns)
                      for root, _, names in os.walk(tmp_path) for name in names)

    before = snapshot()
    for path in paths:
        load_items(path)
    assert snapshot() == before
    assert not any(cache.iterdir())


# --- bad input: one test per problem, each naming file, row and field -----------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert str(path) in problem_text(excinfo) and "file not found" in problem_text(excinfo)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "items.xlsx"
    path.write_text("x")
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    text = problem_text(excinfo)
    assert str(path) in text and "unsupported extension '.xlsx'" in text and ".jsonl" in text


def test_folder_that_is_not_a_datasets_folder(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError) as excinfo:
        load_items(tmp_path / "d")
    assert str(tmp_path / "d") in problem_text(excinfo) and "save_to_disk" in problem_text(excinfo)


def test_missing_input_column(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"item_id": "1", "text": "hi"}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    text = problem_text(excinfo)
    assert str(path) in text and "field 'input'" in text and "missing column 'input'" in text and "text" in text


def test_missing_input_column_in_csv_header(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("item_id,question\n1,hi\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert str(path) in problem_text(excinfo) and "field 'input'" in problem_text(excinfo)


def test_row_without_id_when_the_id_column_exists(tmp_path):
    path = write_jsonl(tmp_path / "id.jsonl", [{"item_id": "1", "input": "a"}, {"input": "b"},
                                                {"item_id": "", "input": "c"}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    text = problem_text(excinfo)
    assert f"{path}, row 2, field 'item_id': missing id" in text
    assert f"{path}, row 3, field 'item_id': missing id" in text


def test_duplicate_id_names_both_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"item_id": "x", "input": "a"}, {"item_id": "y", "input": "b"},
                                               {"item_id": "x", "input": "c"}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 3, field 'item_id': duplicate id 'x': rows 1 and 3" in problem_text(excinfo)


def test_integer_and_text_ids_that_collide_are_duplicates(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"item_id": 1, "input": "a"}, {"item_id": "1", "input": "b"}])
    with pytest.raises(InputError, match="duplicate id '1': rows 1 and 2"):
        load_items(path)


@pytest.mark.parametrize("value", ["", "   \n", None])
def test_empty_input(tmp_path, value):
    path = write_jsonl(tmp_path / "e.jsonl", [{"item_id": "1", "input": "ok"}, {"item_id": "2", "input": value}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 2, field 'input': empty input" in problem_text(excinfo)


def test_empty_input_cell_in_csv(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("item_id,input\n1,ok\n2,\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 2, field 'input': empty input" in problem_text(excinfo)


def test_non_text_input(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"item_id": "1", "input": {"q": "hi"}}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 1, field 'input': input must be text, got dict" in problem_text(excinfo)


def test_invalid_utf8_in_jsonl_names_the_line(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(b'{"item_id": "1", "input": "ok"}\n{"item_id": "2", "input": "caf\xe9"}\n')
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    text = problem_text(excinfo)
    assert f"{path}, row 2" in text and "line 2 is not valid UTF-8" in text


def test_invalid_utf8_in_csv_names_row_and_field(tmp_path):
    path = tmp_path / "u.csv"
    path.write_bytes(b"item_id,input,note\n1,ok,fine\n2,good,caf\xe9\n")
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 2, field 'note': value is not valid UTF-8" in problem_text(excinfo)


def test_invalid_utf8_in_parquet_binary_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "u.parquet"
    table = pa.table({"item_id": ["1", "2"], "input": pa.array([b"ok", b"caf\xe9"], type=pa.binary())})
    pq.write_table(table, path)
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 2, field 'input': value is not valid UTF-8" in problem_text(excinfo)


def test_field_over_the_size_limit(tmp_path):
    path = write_jsonl(tmp_path / "big.jsonl", [{"item_id": "1", "input": "x" * 50},
                                                 {"item_id": "2", "input": "ok", "context": "y" * 51}])
    with pytest.raises(InputError) as excinfo:
        load_items(path, max_field_chars=50)
    text = problem_text(excinfo)
    assert f"{path}, row 2, field 'context': value has 51 characters, over the limit of 50" in text
    assert "row 1" not in text  # exactly at the limit is fine


def test_unparseable_jsonl_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"item_id": "1", "input": "ok"}\n{"item_id": "2", "input": \n[1, 2]\n', encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    text = problem_text(excinfo)
    assert f"{path}, row 2" in text and "line 2 is not valid JSON" in text
    assert f"{path}, row 3" in text and "expected an object" in text


def test_csv_row_with_wrong_number_of_fields(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("item_id,input\n1,ok\n2,a,extra\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 2: has 3 fields, the header has 2" in problem_text(excinfo)


def test_metadata_key_clashing_with_top_level_field(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"item_id": "1", "input": "x", "language": "en",
                                               "metadata": {"language": "ja"}}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert f"{path}, row 1, field 'metadata.language'" in problem_text(excinfo)


def test_one_error_lists_every_problem(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_bytes(b'{"item_id": "1", "input": ""}\n'
                     b'not json\n'
                     b'{"item_id": "1", "input": "dup"}\n'
                     b'{"input": "no id"}\n'
                     b'{"item_id": "5", "input": "\xff"}\n')
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    problems = {(p.row, p.field) for p in excinfo.value.problems}
    assert problems == {(1, "input"), (2, None), (3, "item_id"), (4, "item_id"), (5, None)}
    assert problem_text(excinfo).startswith("5 problem(s)")
    assert all(p.file == str(path) for p in excinfo.value.problems)


# --- the bundled demo data ------------------------------------------------------------------

def test_bundled_support_reviews():
    frame = load_items(REPO / "data" / "support_reviews.jsonl")
    assert len(frame) >= 120 and frame["item_id"].is_unique
    assert list(frame.columns[:3]) == ["item_id", "input", "reference"]
    cells = frame.groupby(["language", "task"]).size()
    assert set(cells.index) == {(lang, task) for lang in ("en", "ja")
                                for task in ("support_reply", "review_summary")}
    assert cells.min() >= 30 and cells.max() - cells.min() <= 4
    assert set(frame["difficulty"]) == {"easy", "medium", "hard"}
    assert set(frame["product_line"]) == {"headphones", "smart_home", "laptop", "coffee_maker"}
    assert frame["reference"].notna().all()
    kana = frame["input"].str.contains(r"[\u3040-\u30ff]") & frame["reference"].str.contains(r"[\u3040-\u30ff]")
    assert (kana == (frame["language"] == "ja")).all()  # Japanese items are Japanese, English are not
    assert frame["reference"].str.len().max() <= 200  # short references keep CPU generation fast


def test_frame_records_are_to_dict_records_built_column_by_column():
    import numpy as np

    from workbench.task.dataset import frame_records

    frame = pd.DataFrame({"item_id": ["a", "b", "c"], "text": ["x", None, "z"], "n": [1, 2, 3],
                          "f": [1.5, np.nan, 2.0], "flag": [True, False, True],
                          "obj": [{"k": 1}, None, [np.int64(4)]], "boxed": [np.int64(7), np.float64(0.5), None],
                          "nullable": pd.array([1, None, 3], dtype="Int64"),
                          "when": pd.to_datetime(["2026-01-01", None, "2026-01-03"])})
    ours, pandas = frame_records(frame), frame.to_dict(orient="records")
    assert [{k: repr(v) for k, v in row.items()} for row in ours] == \
        [{k: repr(v) for k, v in row.items()} for row in pandas]  # same values, same types (NaN, None, NaT)
    types = [{k: type(v) for k, v in row.items()} for row in ours]
    assert types == [{k: type(v) for k, v in row.items()} for row in pandas]
    assert frame_records(frame.iloc[:0]) == [] and frame_records(pd.DataFrame(index=range(2))) == [{}, {}]


def test_dataset_id_is_the_id_stores_were_written_with():
    """Pinned: the value the code before issue 25's read path work computed (stores hold it)."""
    import numpy as np

    frame = pd.DataFrame({"item_id": ["b", "a", "c"], "input": ['x "q" \\ 日本\u2028', "y", "z"],
                          "reference": ["r", None, np.nan], "n": [1, 2, 3], "f": [1.5, float("nan"), 2.0],
                          "tags": [["t"], None, {"k": 1}], "i64": pd.array([1, None, 3], dtype="Int64")})
    assert dataset_id(frame) == "cbfcd0fe42c43489e264c6739c6d384975bd545bc16114f5e4b8509274d38c8f"


# --- JSONL read and checked in batches (issue 25): the same frame, ids and errors at every boundary ----

def frame_from_dicts(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """What the loader gave before batches: `from_records` of every row's dict (the oracle)."""
    return pd.DataFrame.from_records(rows, columns=columns)


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)
    pd.testing.assert_frame_equal(got, expected.set_axis(got.index), check_exact=True)
    for column in got.columns:  # None stays None, NaN stays NaN, 1 stays an int in an object column
        assert repr(got[column].tolist()) == repr(expected[column].tolist()), column


@pytest.fixture(params=[1, 2, 3, None], ids=["batch1", "batch2", "batch3", "default"])
def batch_lines(request, monkeypatch):
    """Batches of about N lines (the JSONL reader takes lines until they add up to BATCH_BYTES, at least
    one), and of N records for the other formats; None: the defaults."""
    import workbench.task.dataset as dataset

    if request.param is not None:
        line_bytes = {1: 1, 2: 70, 3: 100}[request.param]  # the lines below are 36 to 60 bytes long
        monkeypatch.setattr(dataset, "BATCH_BYTES", line_bytes)
        monkeypatch.setattr(dataset, "BATCH_ROWS", request.param)
    return request.param


SPARSE_ROWS = [  # fields that first appear, vanish and change type from one batch to the next
    {"item_id": "a", "input": "one", "reference": "r1", "tag": "x"},
    {"item_id": "b", "input": "two", "reference": None, "late": 1},
    {"item_id": "c", "input": "three", "tag": 5, "none": None},
    {"item_id": "d", "input": "four", "reference": "r4", "late": 2.5, "none": None},
    {"item_id": "e", "input": "five", "reference": "r5", "tag": None, "list": [1, {"k": "v"}]},
]


def test_batches_give_the_frame_and_id_of_the_whole_file(tmp_path, batch_lines):
    path = write_jsonl(tmp_path / "sparse.jsonl", SPARSE_ROWS)
    frame = load_items(path)
    columns = ["item_id", "input", "reference", "tag", "late", "none", "list"]
    expected = frame_from_dicts(SPARSE_ROWS, columns)
    assert_same_frame(frame, expected)
    assert str(frame["input"].dtype) == "str" and frame["tag"].dtype == object and frame["late"].dtype == "float64"
    assert frame["list"].tolist()[4] == [1, {"k": "v"}] and pd.isna(frame["list"].tolist()[0])
    assert dataset_id(frame) == dataset_id(expected)


def test_a_batch_of_one_line_and_blank_lines_bom_and_crlf(tmp_path, batch_lines):
    rows = [json.dumps(row, ensure_ascii=False) for row in SPARSE_ROWS]
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n\r\n".join(rows).encode("utf-8") + b"\r\n\n  \n")
    plain = load_items(write_jsonl(tmp_path / "plain.jsonl", SPARSE_ROWS))
    assert_same_frame(load_items(path), plain)
    single = write_jsonl(tmp_path / "single.jsonl", SPARSE_ROWS[:1])
    assert_same_frame(load_items(single), frame_from_dicts(SPARSE_ROWS[:1], ["item_id", "input", "reference", "tag"]))


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"\xef\xbb\xbf"], ids=["empty", "blank", "bom"])
def test_a_file_without_items(tmp_path, data, batch_lines):
    path = tmp_path / "none.jsonl"
    path.write_bytes(data)
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert problem_text(excinfo).endswith(f"{path}: no items in the file")


def test_problems_at_the_first_and_last_row_of_batches_in_row_order(tmp_path, batch_lines):
    rows = [{"item_id": "a", "input": "ok"}, {"item_id": "b", "input": ""}, {"item_id": "c", "input": " "},
            {"item_id": "a", "input": "again"}, {"item_id": "e", "input": "x" * 61},
            {"input": "no id"}, {"item_id": "c", "input": 3}]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(InputError) as excinfo:
        load_items(path, max_field_chars=60)
    assert [(p.row, p.field, p.message) for p in excinfo.value.problems] == [
        (2, "input", "empty input"),
        (3, "input", "empty input"),
        (4, "item_id", "duplicate id 'a': rows 1 and 4"),  # across batches
        (5, "input", "value has 61 characters, over the limit of 60 (max_field_chars)"),
        (6, "item_id", "missing id"),
        (7, "input", "input must be text, got int"),
        (7, "item_id", "duplicate id 'c': rows 3 and 7"),
    ]


def test_identical_content_without_ids_across_batches(tmp_path, batch_lines):
    path = write_jsonl(tmp_path / "same.jsonl", [{"input": "x"}, {"input": "y"}, {"input": "z"}, {"input": "x"}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert [(p.row, p.message) for p in excinfo.value.problems] == [
        (4, "identical content (add an id field): rows 1 and 4")]


def test_an_id_field_first_seen_in_a_later_batch(tmp_path, batch_lines):
    path = write_jsonl(tmp_path / "late_id.jsonl", [{"input": "x"}, {"input": "y"}, {"item_id": "c", "input": "z"}])
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert [(p.row, p.field, p.message) for p in excinfo.value.problems] == [
        (1, "item_id", "missing id"), (2, "item_id", "missing id")]


@pytest.mark.parametrize("lines,problems", [
    (['{"item_id": "a", "input": "x"}, {"item_id": "b", "input": "y"}'],  # two objects on one line
     [(1, "line 1 is not valid JSON (Extra data at column 31)")]),
    (['{"item_id": "a",', '"input": "x"}'],  # one object over two lines
     [(1, "line 1 is not valid JSON (Expecting property name enclosed in double quotes at column 17)"),
      (2, "line 2 is not valid JSON (Extra data at column 8)")]),
    (['{"item_id": "a", "input": [{}', '{}]}', '{"item_id": "b", "input": "y"},{"item_id": "c", "input": "z"}'],
     [(1, "line 1 is not valid JSON (Expecting ',' delimiter at column 30)"),  # an array of these lines parses
      (2, "line 2 is not valid JSON (Extra data at column 3)"),
      (3, "line 3 is not valid JSON (Extra data at column 31)")]),
    (['{"item_id": "a", "input": "x"}', '\ufeff{"item_id": "b", "input": "y"}'],  # a BOM after line 1
     [(2, "line 2 is not valid JSON (Unexpected UTF-8 BOM (decode using utf-8-sig) at column 1)")]),
], ids=["two-on-a-line", "one-over-two-lines", "valid-only-as-an-array", "bom-on-line-2"])
def test_lines_that_are_not_one_object_each(tmp_path, lines, problems, batch_lines):
    path = tmp_path / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert [(p.row, p.message) for p in excinfo.value.problems] == problems


def test_a_bad_line_in_a_later_batch_lists_every_problem_of_the_file(tmp_path, batch_lines):
    """The batch reader stops at a line it cannot take; the file is read again line by line, so the error
    lists the reading problems and then every row's, as one read of the whole file does."""
    path = tmp_path / "late.jsonl"
    path.write_bytes(b'{"item_id": "a", "input": ""}\n{"item_id": "b", "input": "ok"}\n'
                     b'{"item_id": "c", "input": "ok"}\n{"item_id": "d", "input": "\\ud800"}\n')
    with pytest.raises(InputError) as excinfo:
        load_items(path)
    assert [(p.row, p.field) for p in excinfo.value.problems] == [(4, None), (1, "input")]
    assert "line 4 holds a lone surrogate" in problem_text(excinfo)


def test_lines_the_batch_reader_reads_again_still_load(tmp_path, batch_lines):
    """Whitespace before an object, and a surrogate pair escaped, are taken as `json.loads` takes them."""
    path = tmp_path / "spaced.jsonl"
    path.write_text(' {"item_id": "a", "input": "\\ud83d\\ude00"}\n\t{"item_id": "b", "input": "y"}\n',
                    encoding="utf-8")
    frame = load_items(path)
    assert frame["input"].tolist() == ["\U0001F600", "y"] and frame["item_id"].tolist() == ["a", "b"]


def test_csv_and_parquet_in_batches(tmp_path, batch_lines):
    assert_same_frame(load_items(write_csv(tmp_path / "a.csv", ROWS)), expected_frame())
    assert_same_frame(load_items(write_parquet(tmp_path / "a.parquet", ROWS)), expected_frame())


def reference_dataset_id(df: pd.DataFrame) -> str:
    """dataset_id as it was defined before it was written out a column at a time: a dict per row."""
    from workbench.hashing import content_hash, json_safe

    columns = sorted(df.columns)
    rows = [{column: (value if type(value) is str else json_safe(value)) for column, value in zip(columns, row)}
            for row in zip(*(df[column].tolist() for column in columns))] if columns else [{} for _ in range(len(df))]
    rows.sort(key=lambda row: str(row.get("item_id")))
    return content_hash({"columns": columns, "rows": rows})


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"item_id": ["b", "a", None], "input": ['q "x" \\ \n\t\x00', "日本\u2028", "%s %d"],
                  "%": [1, 2, 3], "f": [1.5, float("nan"), float("inf")], "o": [[1, {"b": 2, "a": 3}], {"k": None}, True]}),
    pd.DataFrame({"item_id": [3, 1, 2], "input": ["a", "b", "c"], "x": [pd.NA, None, 1.0]}),
    pd.DataFrame({"item_id": ["1", "10", "2", "1"], "b": [True, False, True, False]}),  # equal ids keep their order
    pd.DataFrame({"input": ["no", "ids"]}),
    pd.DataFrame({"item_id": ['a"q', "b", "c"], "input": ["x\\y", "plain", "text"], "ja": ["日本", "b", "c"]}),
    pd.DataFrame(index=range(3)),
    pd.DataFrame({"item_id": pd.Series([], dtype="str"), "input": pd.Series([], dtype="str")}),
], ids=["escapes", "int-ids", "ties", "no-ids", "quote-backslash-ascii", "no-columns", "no-rows"])
def test_dataset_id_is_the_hash_of_a_dict_per_row(frame):
    assert dataset_id(frame) == reference_dataset_id(frame)


def test_the_batch_reader_takes_what_json_loads_takes_and_reads_again_only_for_the_rest(tmp_path, monkeypatch):
    import workbench.task.dataset as dataset

    rereads = []
    line_by_line = dataset._read_jsonl
    monkeypatch.setattr(dataset, "_read_jsonl", lambda *args: rereads.append(args[1]) or line_by_line(*args))
    taken = tmp_path / "taken.jsonl"  # a BOM, CRLF, blank lines, spaces after, a surrogate pair, NaN
    taken.write_bytes(b'\xef\xbb\xbf{"item_id": "a", "input": "\\ud83d\\ude00", "score": NaN}  \r\n\r\n'
                      b'{"item_id": "b", "input": "y", "score": 1.5}\t\n\n')
    frame = load_items(taken)
    assert frame["input"].tolist() == ["\U0001F600", "y"] and pd.isna(frame["score"][0]) and rereads == []
    spaced = tmp_path / "spaced.jsonl"  # whitespace before the object: json.loads takes it, the batch reader not
    spaced.write_bytes(b'{"item_id": "a", "input": "x"}\n  {"item_id": "b", "input": "y"}\n')
    assert load_items(spaced)["item_id"].tolist() == ["a", "b"] and rereads == [str(spaced)]
