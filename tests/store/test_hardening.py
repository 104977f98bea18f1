"""Both backends under what broke them: a NUL byte (and a lone surrogate) in an answer, an item or an
error stored losslessly and read back equal; a PostgreSQL server restarted in the middle of a
`generate` (no answer lost, none paid twice) and under an open labeler (no click lost). Real
servers, real processes, nothing mocked."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

from tests.fault_server import FaultServer
from tests.store.pgcluster import PostgresCluster, find_bindir, wait_for
from workbench import labels as lab
from workbench.models.base import Response
from workbench.store import open_store

ODD = ["nul \x00 inside", "\x00", "surrogate \ud800 alone", "\ue000wb-escaped:\"looks escaped\"", "日本語 ok"]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path):
    return str(tmp_path / "store.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def own_cluster():
    """A server of the test's own, to restart without disturbing the other tests."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh installs it: apt-get install postgresql)")
    cluster = PostgresCluster(bindir, fsync=False).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _cli(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OPENAI_API_KEY": "unused-here"})


def test_a_nul_byte_in_an_answer_is_stored_and_read_back_equal_through_the_cli(location, tmp_path):
    rows = [{"item_id": f"q{k}", "input": f"question {k}" + (" with \x00 a NUL" if k == 1 else "")} for k in range(4)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with FaultServer() as server:  # it echoes the input: the answer carries the NUL too
        proc = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--api-base", server.url,
                    "--store", location, "-q")
        assert proc.returncode == 0, proc.stderr[-2000:]
        again = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--api-base", server.url,
                     "--store", location, "-q")
        assert server.total_hits() == 4
    assert again.returncode == 0 and json.loads(again.stdout)["calls_made"] == 0  # the NUL answer is cached
    with open_store(location, create=False) as store:
        answers = store.responses_frame("openai/m").set_index("item_id")["response"]
        items = store.items_frame(store.execute("SELECT dataset_id FROM datasets").fetchone()[0])
    assert answers["q1"] == "echo: question 1 with \x00 a NUL"
    assert items.set_index("item_id").loc["q1", "input"] == rows[1]["input"]


def test_any_text_postgres_cannot_hold_reads_back_equal(pg_url):
    with open_store(pg_url) as store:
        for k, text in enumerate(ODD):
            store.put_response(f"key{k}", "m", {"messages": [{"role": "user", "content": text}]}, Response(text=text))
            store.record_error(f"err{k}", "m", text, 0, "bad_output", text, 1)
            if "\ud800" not in text:  # frames (pyarrow strings) cannot hold a lone surrogate at all
                store.append_label("task", text, "ann", "a", "b", "left", "a", text, 0, "s")
        stored = store.stored_responses([f"key{k}" for k in range(len(ODD))])
        assert [stored[f"key{k}"].text for k in range(len(ODD))] == ODD
        assert store.errors_since([f"err{k}" for k in range(len(ODD))], 0) == {
            f"err{k}": ("bad_output", text) for k, text in enumerate(ODD)}
        labels = store.labels_frame("task")
        framed = [t for t in ODD if "\ud800" not in t]
        assert labels["item_id"].tolist() == framed and labels["note"].tolist() == framed
        plain = store.execute("SELECT text FROM responses WHERE cache_key = 'key4'").fetchone()[0]
        assert plain == "日本語 ok"  # only what needs it is escaped: plain text is stored as is


def test_generate_survives_a_postgres_restart_without_losing_or_repaying_an_answer(own_cluster, tmp_path):
    url = own_cluster.create_database()
    n = 40
    rows = [{"item_id": f"q{k:02d}", "input": f"question {k}"} for k in range(n)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with FaultServer(latency_s=0.25) as server:
        proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "generate", "items.jsonl", "--model", "openai/m",
                                 "--api-base", server.url, "--store", url, "--concurrency", "4", "-q"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OPENAI_API_KEY": "unused-here"})
        assert wait_for(lambda: server.total_hits() >= 8, timeout=120), proc.stderr.read() if proc.poll() else ""
        own_cluster.restart(down_s=1.5)  # AdminShutdown to every session; calls keep landing meanwhile
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        assert server.total_hits() == n  # nothing paid twice
        again = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--api-base", server.url,
                     "--store", url, "-q")
    assert json.loads(out)["calls_made"] == n and json.loads(again.stdout)["calls_made"] == 0  # nothing lost
    with open_store(url, create=False) as store:
        assert store.responses_frame("openai/m")["response"].notna().sum() == n


def test_an_open_label_log_survives_a_restart_without_losing_a_click(own_cluster):
    url = own_cluster.create_database()
    items = [f"i{k}" for k in range(6)]
    with lab.LabelLog(url, "t", items=items, models=("a", "b")) as log:
        first = log.record("i0", "ann", "a", "b", "left", 0)
        own_cluster.restart()
        second = log.record("i1", "ann", "b", "a", "right", 0)  # the connection died under it
        # a click while the server is down waits for it to come back
        threading.Thread(target=own_cluster.restart, kwargs={"down_s": 2.0}).start()
        time.sleep(0.5)
        started = time.monotonic()
        third = log.record("i2", "ann", "a", "b", "tie", 0)
        waited = time.monotonic() - started
        undone = log.undo_last("ann", 0)
        current = log.current("ann")
    assert first < second < third and waited < 30
    assert undone is not None and undone[1] == "i2"
    assert sorted(current["item_id"]) == ["i0", "i1"]
    assert isinstance(current, pd.DataFrame)


def test_a_lone_surrogate_in_the_data_is_an_input_error_naming_the_row(location, tmp_path):
    lines = ['{"item_id": "a", "input": "fine \\ud83d\\ude00"}', '{"item_id": "b", "input": "lone \\ud800 here"}']
    (tmp_path / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = _cli(tmp_path, "generate", "items.jsonl", "--model", "fake/echo", "--store", location)
    assert proc.returncode == 3 and "items.jsonl, row 2" in proc.stderr and "lone surrogate" in proc.stderr


def test_a_reader_upgrades_a_store_an_older_workbench_wrote(tmp_path):
    from tests.test_store import _at_version
    from workbench.store import MIGRATIONS

    path = tmp_path / "old.db"
    _at_version(path, len(MIGRATIONS) - 1).close()
    with open_store(path, create=False, read_only=True) as store:
        assert store.schema_version == len(MIGRATIONS) and store.read_only


@pytest.mark.slow
def test_no_key_nor_store_password_in_any_file_output_or_the_postgres_dump(pg_cluster, tmp_path):
    """The secrets test on a PostgreSQL store whose URL carries the password: a key named by
    `api_key_env` (echoed by the server in every form) and the store's password appear in no written
    file, no output, and no row of any table."""
    import psycopg

    from tests import test_secrets_in_files as secrets_test

    url = pg_cluster.create_database()
    secrets_test._items(tmp_path)
    options = {"openai/base-model": {"api_key_env": "LLM_CRED"}, "openai/cand-model": {"api_key_env": "LLM_CRED"}}
    (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
    with secrets_test.EchoingServer() as server:
        report = secrets_test._cli(
            tmp_path, "report", "-p", "dataset", "items.jsonl", "-p", "baseline", "openai/base-model",
            "-p", "candidates", '["openai/cand-model"]', "-p", "baseline_prompt", "", "-p", "candidate_prompts", '[""]',
            "-p", "judge", "", "-p", "api_base", server.url, "--model-options", "options.json", "--store", url,
            "-p", "metrics", '["chrf"]', "-p", "report_name", "pg", "-p", "bootstrap_resamples", "100",
            "-p", "gate", '{"min_items": 5, "metrics": {"chrf": {"max_drop": 100, "higher_is_better": true}}}')
    assert report.returncode in (0, 1, 2), report.stderr[-3000:]
    assert f"Bearer {secrets_test.CRED_KEY}" in server.authorizations
    forbidden = [*secrets_test.leaked_forms(pg_cluster.password)]

    def clean(text: str, where: str) -> None:
        secrets_test.assert_clean(text, where)
        for form in forbidden:
            assert form not in text, f"the store password ({form!r}) leaked into {where}"

    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "options.json":
            clean(path.read_bytes().decode("utf-8", "replace"), str(path))
    clean(report.stdout + report.stderr, "the report's output")
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        dump = "\n".join(str(row) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"'))
    assert "[REDACTED]" in dump  # the server's echoes were stored, without the key
    clean(dump, "the PostgreSQL store")


def test_an_open_labeler_widget_survives_a_restart_without_losing_a_click(own_cluster, monkeypatch, tmp_path):
    pytest.importorskip("ipywidgets")
    from workbench.widgets.labeler import PairLabeler

    monkeypatch.setenv("HOME", str(tmp_path))
    url = own_cluster.create_database()
    ids = [f"q{k}" for k in range(4)]
    pairs = pd.DataFrame({"item_id": ids, "input": ids, "response_a": ["a"] * 4, "response_b": ["b"] * 4})
    labeler = PairLabeler(url, "t", pairs, rater="ann", seed=1, model_a="m/a", model_b="m/b", keyboard="none")
    clicked = [labeler.current_item]
    labeler.buttons["left"].click()
    own_cluster.restart(down_s=1.0)  # the rater's connection is gone; the next click must still land
    clicked.append(labeler.current_item)
    labeler.buttons["right"].click()
    assert "color:#b00" not in labeler.status.value, labeler.status.value  # no error shown to the rater
    labeler.close()
    with open_store(url, create=False) as other:
        log = other.labels_frame("t")
    assert log["item_id"].tolist() == clicked and log["action"].tolist() == ["left", "right"]
