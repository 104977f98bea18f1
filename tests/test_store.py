import hashlib
import multiprocessing
import sqlite3

from workbench.models.base import Response
from workbench.store import MIGRATIONS, Store


def _schema(path) -> str:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").fetchall()
    conn.close()
    return "\n".join(f"{t} {n}: {' '.join(s.split())}" for t, n, s in rows)


# Pinned: changing the schema means adding a numbered migration AND updating this hash on purpose.
PINNED_SCHEMA_SHA256 = "2c45bd37437dac13aafa02b13ad24ec919e90afeb0074d9c1f28b006b3e07c3a"


def test_schema_is_pinned(tmp_path):
    with Store(tmp_path / "s.db") as s:
        assert s.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert s.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    digest = hashlib.sha256(_schema(tmp_path / "s.db").encode()).hexdigest()
    assert digest == PINNED_SCHEMA_SHA256, f"schema changed (sha256 {digest}):\n{_schema(tmp_path / 's.db')}"


def test_reopen_does_not_remigrate(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.put_response("k1", "fake/m", {"x": 1}, Response(text="hello"))
    with Store(path) as s:
        assert s.cached_keys(["k1", "k2"]) == {"k1"}


def _open(path):
    Store(path).close()


def test_concurrent_first_open_migrates_once(tmp_path):
    path = str(tmp_path / "s.db")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open, args=(path,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Store(path) as s:
        assert s.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_run_frame_shows_response_or_latest_error(store):
    import pandas as pd

    items = pd.DataFrame({"item_id": ["a", "b"], "input": ["x", "y"], "reference": ["r", None]})
    store.save_items("d1", "mem", items)
    run = store.create_run("fake/m", None, "d1", {}, [("a", 0, "ka"), ("b", 0, "kb")])
    store.put_response("ka", "fake/m", {}, Response(text="A!", prompt_tokens=3, cost_usd=None))
    store.record_error("kb", "fake/m", "b", 0, "server", "first", 1)
    store.record_error("kb", "fake/m", "b", 0, "server", "second", 4)
    frame = store.run_frame(run).set_index("item_id")
    assert frame.loc["a", "response"] == "A!" and pd.isna(frame.loc["a", "error"])
    assert pd.isna(frame.loc["b", "response"]) and frame.loc["b", "error"] == "second"
    assert pd.isna(frame.loc["a", "cost_usd"])  # unknown cost stays unknown
    back = store.items_frame("d1")
    assert list(back["item_id"]) == ["a", "b"]
