"""A team on one PostgreSQL store: many rater processes labeling one task at once through `LabelLog`,
a rater killed mid-click, another machine's view, and generate -> compare through the CLI with
`--store postgresql://...`. Real server, real processes, nothing mocked."""
from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.real_parts import need_module
from tests.store.pgcluster import wait_for
from workbench import labels as lab
from workbench.store import open_store

A, B = "fake/base", "fake/cand"
TASK = "team-task"
ITEMS = [f"item-{k:03d}" for k in range(30)]


def _rater(url: str, rater: str, start, out) -> None:
    """One rater's kernel: label every item of the task in the shared order, undo one label and redo it."""
    try:
        with lab.LabelLog(url, TASK) as log:
            start.wait(60)
            done = []
            for k, item in enumerate(lab.rater_queue(ITEMS, rater, seed=7)):
                left, right = lab.sides(7, item, rater, A, B)
                action = ("left", "right", "tie")[k % 3]
                done.append((log.record(item, rater, left, right, action, 7), item, action))
                if k == 10:  # a change of mind: undo, then the same item again
                    undo_id, undone_item = log.undo_last(rater, 7)
                    assert undone_item == item
                    done.append((undo_id, item, "undo"))
                    done.append((log.record(item, rater, left, right, "both_bad", 7), item, "both_bad"))
            out.put((rater, done, None))
    except BaseException as exc:  # reported to the test, not lost in a child's stderr
        out.put((rater, [], repr(exc)))


@pytest.mark.slow
def test_twenty_raters_at_once_lose_and_duplicate_nothing(pg_cluster, monkeypatch):
    url = pg_cluster.create_database()
    open_store(url).close()
    raters = [f"rater{n:02d}" for n in range(20)]
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_rater, args=(url, r, start, out)) for r in raters]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=150) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert [r for r, _done, error in results if error] == [], results
    returned = {rater: done for rater, done, _ in results}

    # another machine's view: a fresh connection, the password from the environment, not the URL
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    with open_store(url.replace(f":{pg_cluster.password}@", "@"), create=False) as other:
        log = other.labels_frame(TASK)
    ids = [label_id for done in returned.values() for label_id, _item, _action in done]
    assert len(log) == len(ids) == 20 * (len(ITEMS) + 2)  # every click once: none lost, none duplicated
    assert log["label_id"].is_unique and sorted(log["label_id"]) == sorted(ids)
    for rater, done in returned.items():
        mine = log[log["rater"] == rater]
        # the rater's rows in click order: label ids grow in the order the rater's writes committed
        assert list(zip(mine["label_id"], mine["item_id"], mine["action"])) == done
    current = lab.fold(log)
    assert len(current) == 20 * len(ITEMS)
    assert (current.groupby("rater")["item_id"].nunique() == len(ITEMS)).all()
    assert (current["action"] == "both_bad").sum() == 20  # each rater's redo replaced the undone label


def _clicker(url: str, rater: str, ack_fd: int) -> None:
    """Labels as fast as it can, acknowledging each label id once `record` has returned."""
    with lab.LabelLog(url, TASK, session_id=f"session-{rater}") as log:
        for k in range(100_000):
            item = f"item-{k:05d}"
            label_id = log.record(item, rater, A, B, "left", 0)
            os.write(ack_fd, f"{label_id}\n".encode())


def _read_acks(fd: int, buffer: bytearray) -> list[int]:
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        chunk = b""
    buffer.extend(chunk)
    *lines, rest = bytes(buffer).split(b"\n")
    buffer[:] = rest
    return [int(line) for line in lines if line]


@pytest.mark.slow
def test_kill_minus_nine_mid_click_loses_at_most_that_click(pg_cluster):
    url = pg_cluster.create_database()
    open_store(url).close()
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(15)
    for round_ in range(4):
        rater = f"killed{round_}"
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        proc = ctx.Process(target=_clicker, args=(url, rater, write_fd))
        proc.start()
        os.close(write_fd)
        acked: list[int] = []
        buffer = bytearray()
        target = rng.randint(5, 40)
        assert wait_for(lambda: bool(acked.extend(_read_acks(read_fd, buffer))) or len(acked) >= target, 60)
        time.sleep(rng.random() * 0.004)  # land anywhere in a click: before, during or after its commit
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL
        time.sleep(0.05)
        acked.extend(_read_acks(read_fd, buffer))
        os.close(read_fd)

        with open_store(url, create=False) as other:
            rows = other.labels_frame(TASK, rater)
            stored = rows["label_id"].tolist()
            assert set(acked) <= set(stored)  # every click the rater saw go through is on the server
            assert len(stored) - len(acked) <= 1  # at most the click in flight (committed, not yet acknowledged)
            assert rows["item_id"].is_unique
            # the killed kernel's lock died with its connection: the rater carries on at once
            t0 = time.perf_counter()
            with lab.LabelLog(url, TASK) as log:
                log.record("after-restart", rater, A, B, "right", 0)
            assert time.perf_counter() - t0 < 5


# ---- generate -> compare through the CLI on a PostgreSQL store ------------------------------------------
N = 40


def _cli(cwd, env, *args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


@pytest.mark.slow
def test_generate_then_compare_with_a_postgres_store(pg_cluster, tmp_path):
    url = pg_cluster.create_database()
    bare = url.replace(f":{pg_cluster.password}@", "@")
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(N)], "input": [f"tell me about topic {k}" for k in range(N)],
                          "reference": [f"base: tell me about topic {k}" for k in range(N)],
                          "language": ["en", "ja"] * (N // 2)})
    items.to_json(tmp_path / "items.jsonl", orient="records", lines=True)
    (tmp_path / "gate.toml").write_text("min_items = 30\n[metrics.exact_match]\nmax_drop = 0.05\n"
                                        "higher_is_better = true\n", encoding="utf-8")
    (tmp_path / "params.toml").write_text(
        f'dataset = "items.jsonl"\nbaseline = "{A}"\nbaseline_prompt = ""\ncandidates = ["{B}"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["exact_match"]\nbootstrap_resamples = 200\n'
        f'sample_size = ""\ngate_file = "gate.toml"\nstore = "{bare}"\n', encoding="utf-8")
    env = {**os.environ, "PGPASSWORD": pg_cluster.password}

    gen = _cli(tmp_path, env, "generate", "items.jsonl", "--model", A, "--model", B, "--store", bare, "--quiet")
    assert gen.returncode == 0, gen.stderr
    assert json.loads(gen.stdout.strip().splitlines()[-1])["calls_made"] == 2 * N
    again = _cli(tmp_path, env, "generate", "items.jsonl", "--model", A, "--model", B, "--store", bare, "--quiet")
    assert json.loads(again.stdout.strip().splitlines()[-1])["calls_made"] == 0  # warm store
    assert not list(tmp_path.glob("postgres*")) and not (tmp_path / ".workbench").exists()  # no file named after the URL

    # the store URL from the parameters file; the password from the environment
    proc = _cli(tmp_path, env, "compare", "--params", "params.toml", "--json", "cmp.json")
    assert proc.returncode == 1, proc.stderr  # the candidate is clearly worse: FAIL
    payload = json.loads((tmp_path / "cmp.json").read_text())
    assert payload["verdict"] == "FAIL" and payload["candidates"][B]["n_paired"] == N
    # read in chunks of 7 items on 3 processes, each child on its own connection: the same record
    forked = _cli(tmp_path, {**env, "WORKBENCH_CHUNK_ITEMS": "7", "WORKBENCH_READ_WORKERS": "3"},
                  "compare", "--params", "params.toml", "--json", "cmp-forked.json")
    assert forked.returncode == 1, forked.stderr
    assert (tmp_path / "cmp-forked.json").read_text() == (tmp_path / "cmp.json").read_text()

    # the URL with its password on the command line: never echoed
    with_password = _cli(tmp_path, os.environ.copy(), "compare", "--params", "params.toml", "--store", url,
                         "--json", "cmp2.json")
    assert with_password.returncode == 1, with_password.stderr
    missing = url.rsplit("/", 1)[0] + "/no_such_db"
    proc = _cli(tmp_path, os.environ.copy(), "compare", "--params", "params.toml", "--store", missing)
    assert proc.returncode == 3 and "store not found" in proc.stderr
    assert "[REDACTED]@127.0.0.1" in proc.stderr
    for text in (with_password.stdout, with_password.stderr, proc.stdout, proc.stderr,
                 (tmp_path / "cmp2.json").read_text()):
        assert pg_cluster.password not in text


def test_the_manifest_records_the_store_without_its_password(pg_cluster, tmp_path):
    from workbench.task.config import build_config
    from workbench.pipeline import run_pipeline

    url = pg_cluster.create_database()
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(8)], "input": [f"q {k}" for k in range(8)],
                          "reference": [f"base: q {k}" for k in range(8)]})
    items.to_json(tmp_path / "items.jsonl", orient="records", lines=True)
    config = build_config(None, {"dataset": "items.jsonl", "baseline": A, "baseline_prompt": None, "candidates": [B],
                                 "candidate_prompts": [None], "judge": None, "metrics": ["exact_match"],
                                 "bootstrap_resamples": 100, "sample_size": None, "store": url,
                                 "gate": {"min_items": 5, "metrics": {"exact_match": {"max_drop": 0.05,
                                                                                      "higher_is_better": True}}},
                                 "project_dir": str(tmp_path)})
    assert config.store_path == url
    result = run_pipeline(config, allow_calls=True)
    text = json.dumps(result.manifest)
    assert pg_cluster.password not in text
    assert result.manifest["store"] == f"postgresql://[REDACTED]@127.0.0.1:{pg_cluster.port}/{url.rsplit('/', 1)[1]}"


def test_the_labeler_widget_writes_to_a_postgres_store(pg_cluster, monkeypatch, tmp_path):
    need_module("ipywidgets", "the labeler widget (a workbench dependency)")
    from workbench.widgets.labeler import PairLabeler, rater_file

    monkeypatch.setenv("HOME", str(tmp_path))
    url = pg_cluster.create_database()
    assert rater_file(url) == tmp_path / ".workbench_last_rater"  # a URL has no folder to keep it beside
    assert rater_file(tmp_path / "s.db") == tmp_path / "last_rater"
    ids = [f"q{k}" for k in range(4)]
    pairs = pd.DataFrame({"item_id": ids, "input": ids, "response_a": ["a"] * 4, "response_b": ["b"] * 4})
    labeler = PairLabeler(url, TASK, pairs, rater="ann", seed=1, model_a=A, model_b=B, keyboard="none")
    first = labeler.current_item
    labeler.buttons["left"].click()
    assert labeler.current_item != first
    labeler.close()
    with open_store(url, create=False) as other:
        log = other.labels_frame(TASK)
    assert log[["item_id", "rater", "action"]].values.tolist() == [[first, "ann", "left"]]
    assert rater_file(url).read_text() == "ann"  # remembered for this machine, next to no URL
