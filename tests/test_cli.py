"""`workbench generate` as CI runs it: a real subprocess, real HTTP through litellm (and the bare
openai SDK) to the fault server."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, server_error

FAKE_KEY = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def _data(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "items.jsonl"
    rows = [{"item_id": f"q{k:03d}", "input": f"question number {k}", "reference": f"answer {k}", "language": "en"}
            for k in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _cmd(data: Path, store: Path, url: str, *extra: str, model: str = "litellm/openai/test-model") -> list[str]:
    return [sys.executable, "-m", "workbench.cli", "generate", str(data), "--model", model,
            "--api-base", url, "--store", str(store), "--no-progress", "--timeout", "5", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": FAKE_KEY}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)


def _summary(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("model", ["litellm/openai/test-model", "openai/test-model"])
def test_generate_prints_summary_and_warm_rerun_is_free(tmp_path, model):
    data, store = _data(tmp_path, 5), tmp_path / "s.db"
    with FaultServer() as server:
        first = _run(_cmd(data, store, server.url, model=model))
        assert first.returncode == 0, first.stderr
        summary = _summary(first)
        assert summary["items"] == 5 and summary["calls_made"] == 5 and summary["cached"] == 0 and summary["errors"] == 0
        assert set(summary) == {"items", "calls_made", "not_sent", "cached", "errors", "wall_s"}
        assert f"{model}: 5 calls made, 0 cached, 0 errors" in first.stderr
        second = _run(_cmd(data, store, server.url, model=model))
        assert second.returncode == 0 and _summary(second)["calls_made"] == 0 and _summary(second)["cached"] == 5
        assert server.total_hits() == 5


def test_generate_exits_1_when_items_fail_and_keeps_the_key_secret(tmp_path):
    data, store = _data(tmp_path, 3), tmp_path / "s.db"
    with FaultServer() as server:
        server.always("question number 1", server_error(500))
        proc = _run(_cmd(data, store, server.url, "--max-attempts", "2"))
        assert proc.returncode == 1, proc.stderr
        assert _summary(proc)["errors"] == 1
        assert server.hits["question number 1"] == 2  # exactly max_attempts, no SDK retries on top
    assert FAKE_KEY not in proc.stdout + proc.stderr
    conn = sqlite3.connect(store)
    messages = [r[0] for r in conn.execute("SELECT message FROM call_errors")]
    assert messages and all(FAKE_KEY not in m for m in messages)


def test_bad_input_exits_3_and_writes_nothing(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"item_id": "a", "input": "x"}\n{"item_id": "a", "input": ""}\n', encoding="utf-8")
    store = tmp_path / "s.db"
    proc = _run(_cmd(data, store, "http://127.0.0.1:9/v1"))
    assert proc.returncode == 3
    assert "bad.jsonl" in proc.stderr and "row 2" in proc.stderr and "item_id" in proc.stderr
    assert not store.exists()


@pytest.mark.parametrize("args, message", [
    (["--model", "nope/x"], "unknown model provider 'nope'"),
    (["--model", "fake/a", "--prompt", "missing@v1"], "no prompt 'missing@v1'"),
])
def test_unknown_model_or_prompt_exits_3_and_writes_nothing(tmp_path, args, message):
    store = tmp_path / "s.db"
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "generate", str(_data(tmp_path, 1)), *args,
                           "--store", str(store)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and message in proc.stderr
    assert not store.exists()


# Runs the CLI with an audit hook that refuses every outgoing connection and name lookup (so nothing
# can reach the internet, whatever the code does) and writes down each one it refused.
NO_NETWORK = """
import json, sys
tried = []
def guard(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        tried.append([event, repr(args[1] if event == "socket.connect" else args[0])])
        raise OSError("no network in this test")
sys.addaudithook(guard)
from workbench.cli import main
try:
    code = main(sys.argv[2:])
finally:
    open(sys.argv[1], "w").write(json.dumps(tried))
sys.exit(code)
"""


@pytest.mark.parametrize("model", ["litellm/openai/gpt-4o-mini", "openai/gpt-4o-mini"])
def test_a_missing_key_exits_3_naming_the_variable_before_anything_is_sent_or_written(tmp_path, model):
    """The user's mistake, as they make it: no OPENAI_API_KEY, OpenAI's own endpoint. It used to exit 1
    ("40 not sent"), as if the model had failed; it is a setup problem: exit 3, the variable named,
    no connection tried, no store created."""
    n = 40
    data, store, tried = _data(tmp_path, n), tmp_path / "s.db", tmp_path / "tried.json"
    (tmp_path / "guard.py").write_text(NO_NETWORK, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    proc = subprocess.run([sys.executable, str(tmp_path / "guard.py"), str(tried), "generate", str(data),
                           "--model", model, "--store", str(store), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).parents[1])
    assert proc.returncode == 3, proc.stderr
    assert json.loads(tried.read_text()) == []  # not one connection or name lookup was attempted
    assert f"model '{model}': OPENAI_API_KEY" in proc.stderr and "not set" in proc.stderr
    assert "export OPENAI_API_KEY=" in proc.stderr and proc.stdout == ""
    assert not store.exists()


@pytest.mark.parametrize("model", ["litellm/openai/gpt-4o-mini", "openai/gpt-4o-mini"])
def test_a_key_missing_at_call_time_is_an_auth_error_sent_nowhere_and_not_retried(tmp_path, model):
    """The key named by api_key_env vanishes between the check and the calls (here: the check is told
    the variable is set, the adapter finds it empty). Every call fails at once as `auth` (litellm/
    used to say `server` and retry 4 times), is counted as not sent, the summary names the variable,
    and the command exits 3 (nothing was sent: a setup problem, not a failing model)."""
    n = 40
    data, store, tried = _data(tmp_path, n), tmp_path / "s.db", tmp_path / "tried.json"
    check_passes = "import workbench.project.doctor\nworkbench.project.doctor.model_problem = lambda *a, **k: None\n"
    (tmp_path / "guard.py").write_text(NO_NETWORK.replace("from workbench.cli import main",
                                                          check_passes + "from workbench.cli import main"),
                                       encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    proc = subprocess.run([sys.executable, str(tmp_path / "guard.py"), str(tried), "generate", str(data),
                           "--model", model, "--store", str(store), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).parents[1])
    assert proc.returncode == 3, proc.stderr
    assert f"{model}: nothing was sent (auth: OPENAI_API_KEY" in proc.stderr
    assert json.loads(tried.read_text()) == []  # not one connection or name lookup was attempted
    summary = _summary(proc)
    assert (summary["calls_made"], summary["not_sent"], summary["cached"], summary["errors"]) == (0, n, 0, n)
    assert f"{model}: 0 calls made, {n} not sent (auth: OPENAI_API_KEY" in proc.stderr and "is not set" in proc.stderr
    assert summary["wall_s"] < 0.5 * n, summary  # SDK imports included; retries would take 3.5 s per item
    conn = sqlite3.connect(store)
    assert conn.execute("SELECT kind, attempts, count(*) FROM call_errors GROUP BY 1, 2").fetchall() == [("auth", 1, n)]


@pytest.mark.slow
def test_kill_9_then_rerun_repeats_no_stored_call(tmp_path):
    data, store = _data(tmp_path, 40), tmp_path / "s.db"
    with FaultServer(latency_s=0.25) as server:
        proc = subprocess.Popen(_cmd(data, store, server.url, "--concurrency", "4"), env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and stored < 10:
            time.sleep(0.1)
            if store.exists():
                try:
                    stored = sqlite3.connect(store).execute("SELECT count(*) FROM responses").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert 10 <= stored < 40, f"kill came too late or too early: {stored} stored"
        conn = sqlite3.connect(store)
        done_before = {json.loads(r[0])["request"]["messages"][-1]["content"]
                       for r in conn.execute("SELECT request_json FROM responses")}
        conn.close()
        hits_before = dict(server.hits)
        rerun = _run(_cmd(data, store, server.url, "--concurrency", "4"))
        assert rerun.returncode == 0, rerun.stderr
        summary = _summary(rerun)
        assert summary["cached"] == len(done_before) and summary["calls_made"] == 40 - len(done_before)
        for item in done_before:
            assert server.hits[item] == hits_before[item] == 1, f"{item} was requested again"
        assert sqlite3.connect(store).execute("SELECT count(*) FROM responses").fetchone()[0] == 40


def test_generate_timeout_defaults_by_model_kind_and_a_flag_sets_all(tmp_path):
    """An API call is one request (60 s); a local model's call is a batch of up to 64 rows, which on a
    2-core CPU takes minutes (600 s). --timeout sets every model's."""
    from workbench.cli import _generation, build_parser

    models = ["--model", "litellm/openai/m", "--model", "hf/smollm2-135m-instruct", "--model", "replay/x.jsonl"]
    args = build_parser().parse_args(["generate", "d.jsonl", *models])
    assert [s.timeout_s for s in _generation(args)[1]] == [60.0, 600.0, 60.0]
    args = build_parser().parse_args(["generate", "d.jsonl", *models, "--timeout", "5"])
    assert [s.timeout_s for s in _generation(args)[1]] == [5.0, 5.0, 5.0]


def test_generate_says_when_it_uses_the_sample(tmp_path, monkeypatch, capsys):
    """`generate` takes the sample the report and compare read (sample_size 96 by default), and says
    so, with the way to every item; a file within the sample size gets no such line."""
    from workbench import cli

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with FaultServer() as server:
        for n, line in ((200, "items: 96 of 200, the stratified sample of sample_size 96"), (4, None)):
            (tmp_path / str(n)).mkdir()
            data, store = _data(tmp_path / str(n), n), tmp_path / str(n) / "s.db"
            assert cli.main(["generate", str(data), "--model", "openai/test-model", "--api-base", server.url,
                             "--store", str(store), "--no-progress"]) == 0
            err = capsys.readouterr().err
            if line:
                assert line in err and "-p sample_size null for every item" in err
            else:
                assert "items:" not in err
    assert server.total_hits() == 96 + 4


def test_generate_renders_each_request_once(tmp_path, monkeypatch, capsys):
    """The CLI checks every request before the store exists and hands that check to the runner:
    requests are rendered and adapters built once per run, not twice."""
    from workbench import cli, pipeline

    data, store = _data(tmp_path, 4), tmp_path / "s.db"
    calls = []
    real = pipeline.preflight  # the path renders through its own name for runner.preflight
    monkeypatch.setattr(pipeline, "preflight", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with FaultServer() as server:
        assert cli.main(["generate", str(data), "--model", "openai/test-model", "--api-base", server.url,
                         "--store", str(store), "--no-progress"]) == 0
        assert server.total_hits() == 4
    assert len(calls) == 1 and json.loads(capsys.readouterr().out.splitlines()[-1])["calls_made"] == 4
