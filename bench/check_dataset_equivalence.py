"""This tree's `load_items` against another tree's on a corpus of awkward files (bad lines, BOMs, CRLF,
blank lines, NaN literals, sparse and mixed-type fields, an error in every check; JSONL, CSV, parquet):
the same frame (columns, dtypes, values and their types, attrs, dataset_id) or the same error text, at
the default batch sizes and at batches of 1, 2, 3 and 7 lines or records.

    .venv/bin/python bench/check_dataset_equivalence.py --before /tmp/wb-start
"""
import argparse
import importlib.util
import json
import sys
import csv
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import workbench.task.dataset as new  # noqa: E402
from workbench.errors import InputError  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--before", type=Path, required=True, help="the other tree (its workbench/task/dataset.py)")
args = parser.parse_args()
spec = importlib.util.spec_from_file_location("old_dataset", args.before / "workbench/task/dataset.py")
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
D = Path(tempfile.mkdtemp(prefix="dataset-equivalence-"))

def outcome(mod, path, **kw):
    try:
        f = mod.load_items(path, **kw)
    except InputError as e:
        return ("error", str(e))
    except RecursionError:
        return ("recursion",)
    return ("frame", f)

def same(path, **kw):
    a, b = outcome(old, path, **kw), outcome(new, path, **kw)
    assert a[0] == b[0], (path, a[:1], b[:1], a, b)
    if a[0] == "error":
        assert a[1] == b[1], (path, a[1], b[1])
    elif a[0] == "frame":
        fa, fb = a[1], b[1]
        assert list(fa.columns) == list(fb.columns), (path, fa.columns, fb.columns)
        assert list(fa.dtypes) == list(fb.dtypes), (path, fa.dtypes, fb.dtypes)
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        assert fa.attrs == fb.attrs
        for c in fa.columns:  # None vs NaN in object columns, types of values
            la, lb = fa[c].tolist(), fb[c].tolist()
            assert [type(x) for x in la] == [type(x) for x in lb], (path, c)
            assert repr(la) == repr(lb), (path, c)
        assert old.dataset_id(fa) == new.dataset_id(fb)
    return a[0]

cases = {
 "plain": [{"item_id": f"i{i}", "input": f"q {i}", "reference": "r" if i % 3 else None, "lang": "en"}
           for i in range(50)],
 "noids": [{"input": f"q {i}", "n": i, "x": [i, {"a": i}]} for i in range(30)],
 "noids_dup": [{"input": "same"}, {"input": "b"}, {"input": "same"}],
 "intids": [{"item_id": i, "input": "x"} for i in range(5)],
 "mixedids": [{"item_id": 1, "input": "x"},
     {"item_id": "1", "input": "y"},
     {"item_id": True, "input": "z"},
     {"item_id": None, "input": "w"},
     {"item_id": " ", "input": "v"},
     {"item_id": 1.5, "input": "u"},
     {"input": "t"}],
 "metadata": [{"item_id": "a", "input": "x", "metadata": {"lang": "en", "n": 1}},
     {"item_id": "b", "input": "y", "metadata": {"lang": "ja"}, "extra": 1},
     {"item_id": "c", "input": "z", "metadata": "notadict"}],
 "metaclash": [{"item_id": "a", "input": "x", "lang": "x", "metadata": {"lang": "en"}}],
 "sparse": [{"item_id": "a", "input": "x"},
     {"item_id": "b", "input": "y", "late": 1},
     {"item_id": "c", "input": "z", "late": None, "later": [1]}],
 "badinput": [{"item_id": "a", "input": ""},
     {"item_id": "b", "input": " \u3000"},
     {"item_id": "c", "input": 5},
     {"item_id": "d"},
     {"item_id": "e", "input": None},
     {"item_id": "f", "input": "ok", "reference": 3}],
 "long": [{"item_id": "a", "input": "x" * 30, "reference": "y" * 40, "z": "w" * 50, "l": list(range(40))},
     {"item_id": "b", "input": "ok"}],
 "noinput": [{"item_id": "a", "question": "x"},
     {"item_id": "b", "question": "y", "metadata": {"question": 1}}],
 "messages": [{"item_id": "a", "messages": [{"role": "user", "content": "hi"}]},
     {"item_id": "b", "messages": json.dumps([{"role": "user", "content": "yo"}]), "input": ""},
     {"item_id": "c", "input": "plain", "tools": None}],
 "badmessages": [{"item_id": "a", "messages": [{"role": "robot", "content": "hi"}]},
     {"item_id": "b", "messages": "[not json"},
     {"item_id": "c", "input": "x", "tools": "nope"}],
 "dups": [{"item_id": "a", "input": "x"},
     {"item_id": "b", "input": "y"},
     {"item_id": "a", "input": "z"},
     {"item_id": "a", "input": "w"}],
 "renames": [{"qid": 7, "question": "Why?", "answer": "B", "topic": "x"},
     {"qid": 8, "question": "How?", "answer": None, "topic": "y"}],
 "clash": [{"qid": 1, "item_id": "x", "input": "hi"}],
 "nan": [{"item_id": "a", "input": "x", "v": float("nan"), "r": float("nan")},
     {"item_id": "b", "input": "y", "v": 1, "reference": float("nan")}],
 "bools": [{"item_id": "a", "input": "x", "b": True, "c": None}, {"item_id": "b", "input": "y", "b": False}],
 "allnone": [{"item_id": "a", "input": "x", "c": None}, {"item_id": "b", "input": "y", "c": None}],
 "floats": [{"item_id": "a", "input": "x", "f": 1},
     {"item_id": "b", "input": "y", "f": 2.5},
     {"item_id": "c", "input": "z"}],
}
kws = {"renames": dict(id_field="qid", input_field="question", reference_field="answer"),
       "clash": dict(id_field="qid"), "long": dict(max_field_chars=35), "noinput": dict(input_field="question")}

def write_jsonl(path, rows, sep="\n", **dump):
    path.write_text(sep.join(json.dumps(r, **dump) for r in rows) + sep, encoding="utf-8")
    return path

kinds = {}
for name, rows in cases.items():
    kw = kws.get(name, {})
    for variant, dump in [("", {}), ("_ascii", {"ensure_ascii": True}), ("_pretty", {"separators": (", ", ": ")})]:
        p = write_jsonl(D / f"{name}{variant}.jsonl", rows, **dump)
        kinds[p.name] = same(p, **kw)
        for batch in (1, 2, 3, 7):  # small batches: every boundary
            new.BATCH_BYTES, new.BATCH_ROWS = batch, batch
            same(p, **kw)
        new.BATCH_BYTES, new.BATCH_ROWS = 1 << 20, 4096
    if name in ("renames", "clash", "noinput", "metaclash", "nan"):
        continue
    flat = [{k: v for k, v in r.items() if k != "metadata"} for r in rows]
    cols = list(dict.fromkeys(k for r in flat for k in r))
    p = D / f"{name}.csv"
    with p.open("w", newline="", encoding="utf-8") as h:
        w = csv.DictWriter(h, fieldnames=cols); w.writeheader()
        w.writerows({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()} for r in flat)
    kinds[p.name] = same(p, **kw)
    try:
        import pyarrow as pa, pyarrow.parquet as pq
        pq.write_table(pa.Table.from_pylist(flat), D / f"{name}.parquet")
        kinds[name + ".parquet"] = same(D / f"{name}.parquet", **kw)
    except Exception as e:
        pass

# raw line-level oddities
raws = {
 "bom": b"\xef\xbb\xbf" + b'{"item_id":"a","input":"x"}\n{"item_id":"b","input":"y"}\n',
 "bom2": b'{"item_id":"a","input":"x"}\n\xef\xbb\xbf{"item_id":"b","input":"y"}\n',
 "crlf": b'{"item_id":"a","input":"x"}\r\n\r\n{"item_id":"b","input":"y"}\r\n',
 "blank": b'\n\n{"item_id":"a","input":"x"}\n   \n\t\n{"item_id":"b","input":"y"}\n\n',
 "unicode_blank": '{"item_id":"a","input":"x"}\n\u3000\n\x0b\n{"item_id":"b","input":"y"}'.encode(),
 "leading_ws": b' {"item_id":"a","input":"x"}\n\t{"item_id":"b","input":"y"}  \n',
 "trailing_junk": b'{"item_id":"a","input":"x"} x\n{"item_id":"b","input":"y"}\n',
 "two_values": b'{"item_id":"a","input":"x"}{"item_id":"b","input":"y"}\n',
 "spanning": b'{"item_id":"a",\n"input":"x"}\n',
 "array": b'[{"item_id":"a","input":"x"}]\n',
 "scalar": b'{"item_id":"a","input":"x"}\n5\n"s"\nnull\n',
 "badjson": b'{"item_id":"a","input":"x"}\n{"item_id":"b" "input":"y"}\n{"item_id":"c","input":"z"}\n',
 "badutf8": b'{"item_id":"a","input":"x"}\n{"item_id":"b","input":"\xff\xfe"}\n',
 "surrogate": b'{"item_id":"a","input":"x \\ud800"}\n{"item_id":"b","input":"\\ud83d\\ude00"}\n',
 "pair": b'{"item_id":"a","input":"\\ud83d\\ude00"}\n{"item_id":"b","input":"\\uD83D\\uDE00"}\n',
 "empty": b"",
 "onlyblank": b"\n\n  \n",
 "nonl": b'{"item_id":"a","input":"x"}',
 "nan_literal": b'{"item_id":"a","input":"x","v":NaN}\n{"item_id":"b","input":"y","v":Infinity}\n',
 "dupkeys": b'{"item_id":"a","input":"x","input":"y"}\n',
 "ctrl": b'{"item_id":"a","input":"x\ty"}\n',
 "deep": b'{"item_id":"a","input":"x","d":' + b"[" * 100000 + b"]" * 100000 + b"}\n",
 "ufeff_in_value": '{"item_id":"a","input":"\ufeffx"}\n'.encode(),
 "bigint": b'{"item_id":12345678901234567890123,"input":"x","n":1e400}\n',
}
for name, data in raws.items():
    p = D / f"raw_{name}.jsonl"; p.write_bytes(data)
    kinds[p.name] = same(p)
    for batch in (1, 2):
        new.BATCH_BYTES = batch
        same(p)
    new.BATCH_BYTES = 1 << 20
print(", ".join(f"{name}: {kind}" for name, kind in kinds.items()))
print(f"all {len(kinds)} files: the same outcome from both trees ({D})")
