"""Production logs read in chunks from every format, and bad input located by file, row and field."""
import gzip
import json

import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.monitor.logs import LogFields, LogReader, message_text


def _rows(n=25):
    return [{"timestamp": f"2026-10-{5 + i // 10:02d}T{i % 10:02d}:00:00Z", "input": f"message {i}",
             "response": f"answer {i}", "model": "m/a", "judge_score": 4.0} for i in range(n)]


def _write(path, rows):
    if path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    elif path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path, chunk_rows=10, **fields):
    reader = LogReader(path, LogFields(judges=("judge_score",), **fields), chunk_rows=chunk_rows)
    chunks = list(reader)
    return reader, chunks


@pytest.mark.parametrize("name", ["log.jsonl", "log.jsonl.gz", "log.csv", "log.csv.gz", "log.parquet"])
def test_every_format_gives_the_same_rows_in_bounded_chunks(tmp_path, name):
    path = tmp_path / name
    rows = _rows(25)
    if name == "log.csv.gz":
        pd.DataFrame(rows).to_csv(path, index=False, compression="gzip")
    else:
        _write(path, rows)
    reader, chunks = _read(path, chunk_rows=10)
    assert [len(c) for c in chunks] == [10, 10, 5]
    frame = pd.concat(chunks, ignore_index=True)
    assert frame["input"].tolist() == [r["input"] for r in rows]
    assert frame["ordinal"].tolist() == list(range(1, 26))
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["timestamp"].iloc[11] == pd.Timestamp("2026-10-06T01:00:00Z")
    assert frame["judge_score"].tolist() == [4.0] * 25
    assert reader.present >= {"response", "model", "judge_score"} and reader.rows == 25


def test_no_timestamp_column_names_file_field_and_what_was_found(tmp_path):
    rows = [{"time": "2026-10-05", "input": "hello"}] * 3
    for path in (_write(tmp_path / "a.jsonl", rows), _write(tmp_path / "a.csv", rows), _write(tmp_path / "a.parquet", rows)):
        with pytest.raises(InputError) as err:
            _read(path)
        problem = err.value.problems[0]
        assert (problem.file, problem.row, problem.field) == (str(path), None, "timestamp")
        assert "no timestamp column 'timestamp'" in problem.message and "time" in problem.message
        assert "--timestamp-field" in problem.message


def test_unparseable_timestamp_on_row_n_is_located(tmp_path):
    rows = _rows(30)
    rows[16]["timestamp"] = "05/10/2026 10:00"
    rows[21]["timestamp"] = None
    path = _write(tmp_path / "log.jsonl", rows)
    path.write_text("\n" + path.read_text(encoding="utf-8"), encoding="utf-8")  # a blank first line: rows are lines
    with pytest.raises(InputError) as err:
        _read(path)
    found = [(p.file, p.row, p.field) for p in err.value.problems]
    assert found == [(str(path), 18, "timestamp"), (str(path), 23, "timestamp")]
    assert "cannot parse timestamp '05/10/2026 10:00'" in err.value.problems[0].message
    assert err.value.problems[1].message == "missing timestamp"
    assert f"{path}, row 18, field 'timestamp'" in str(err.value)


def test_csv_rows_are_data_rows_and_epochs_are_accepted(tmp_path):
    rows = _rows(6)
    rows[0]["timestamp"] = 1767225600          # epoch seconds
    rows[1]["timestamp"] = 1767225600123       # epoch milliseconds
    rows[4]["timestamp"] = "yesterday"
    path = _write(tmp_path / "log.csv", rows)
    with pytest.raises(InputError) as err:
        _read(path)
    assert [(p.row, p.field) for p in err.value.problems] == [(5, "timestamp")]
    rows[4]["timestamp"] = "2026-10-05T10:00:00+09:00"
    _, chunks = _read(_write(tmp_path / "ok.csv", rows))
    stamps = chunks[0]["timestamp"]
    assert stamps.iloc[0] == pd.Timestamp("2026-01-01T00:00:00Z")
    assert stamps.iloc[1] == pd.Timestamp("2026-01-01T00:00:00.123Z")
    assert stamps.iloc[4] == pd.Timestamp("2026-10-05T01:00:00Z")


def test_implausible_epoch_and_bad_values_are_problems(tmp_path):
    rows = _rows(5)
    rows[0]["timestamp"] = 5                       # 1970: a unit mistake
    rows[1]["input"] = {"unexpected": "object"}
    rows[2]["judge_score"] = "great"
    path = _write(tmp_path / "log.jsonl", rows)
    with pytest.raises(InputError) as err:
        _read(path)
    assert [(p.row, p.field) for p in err.value.problems] == [(1, "timestamp"), (2, "input"), (3, "judge_score")]


def test_a_broken_file_stops_after_max_problems(tmp_path):
    rows = _rows(200)
    for r in rows:
        r["timestamp"] = "soon"
    with pytest.raises(InputError) as err:
        list(LogReader(_write(tmp_path / "log.jsonl", rows), chunk_rows=50, max_problems=20))
    assert len(err.value.problems) == 21 and "stopped reading after 20 problems" in err.value.problems[-1].message


def test_empty_and_unsupported_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no rows in the log"):
        list(LogReader(empty))
    with pytest.raises(InputError, match="unsupported file type '.txt'"):
        list(LogReader(_write(tmp_path / "log.txt", _rows(2))))
    with pytest.raises(InputError, match="file not found"):
        list(LogReader(tmp_path / "missing.jsonl"))


def test_chat_message_inputs_use_the_last_user_message(tmp_path):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {}}]}]
    assert message_text(messages) == ("second", None)
    assert message_text({"role": "assistant", "content": "hi"}) == ("hi", None)
    assert message_text("  ") == (None, None)
    assert message_text(42)[1] == "expected text or a chat message list, got int"
    rows = _rows(3)
    rows[1]["input"] = messages
    _, chunks = _read(_write(tmp_path / "log.jsonl", rows))
    assert chunks[0]["input"].tolist() == ["message 0", "second", "message 2"]


def test_csv_empty_cells_and_parquet_timestamp_columns(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("timestamp,input,response,judge_score\n2026-10-05T10:00:00Z,hello,,\n"
                    "2026-10-05T11:00:00Z,,an answer,3.5\n", encoding="utf-8")
    _, chunks = _read(path)
    frame = chunks[0]
    assert frame["response"].tolist() == [None, "an answer"] and frame["input"].tolist() == ["hello", None]
    assert frame["judge_score"].isna().tolist() == [True, False]
    stamps = pd.DataFrame({"timestamp": pd.to_datetime(["2026-10-05 10:00", "2026-10-06 09:30"]),  # no zone: UTC
                           "input": ["a", "b"]})
    stamps.to_parquet(tmp_path / "log.parquet")
    _, chunks = _read(tmp_path / "log.parquet")
    assert chunks[0]["timestamp"].tolist() == [pd.Timestamp("2026-10-05T10:00Z"), pd.Timestamp("2026-10-06T09:30Z")]
    assert "response" not in chunks[0].columns  # not in the file: left out, not filled with empties
