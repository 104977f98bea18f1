"""One set of exit codes for every command, as a CI job reads them: 0 PASS, 1 FAIL, 2 INCONCLUSIVE,
3 could not run, 130 interrupted. An error (usage, bad input, a corrupt store, an internal error)
never exits with a verdict's code. Every case goes through the real entry point
(`workbench.cli.main`, in process or as `python -m workbench.cli`) with real models: the baseline
is `replay/` (recorded answers) and the candidate an `openai/` model on the local test server.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, hang, server_error, status
from tests.interrupts import sigint_as_usual
from workbench.cli import main

N = 40
GATE_CHRF = "min_items = {n}\n[metrics.chrf]\nmax_drop = {drop}\nhigher_is_better = true\n"
GATES = {  # the candidate loses about 40 chrF points to the recorded baseline (see `project`)
    "PASS": GATE_CHRF.format(n=30, drop=200.0),
    "FAIL": GATE_CHRF.format(n=30, drop=1.0),
    "INCONCLUSIVE": GATE_CHRF.format(n=100, drop=1.0),  # 40 items < min_items
}
VERDICT_CODES = [("PASS", 0), ("FAIL", 1), ("INCONCLUSIVE", 2)]


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def question(k: int) -> str:
    return f"tell me about topic {k}"


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


@pytest.fixture
def project(tmp_path: Path, server: FaultServer, api_key, monkeypatch, capsys) -> Path:
    """40 items. The baseline `replay/base.jsonl` answers each item with its reference; the candidate
    `openai/cand` (the test server) echoes the question: a large, certain chrF loss. Both generated
    through `workbench generate`; the current folder is the project."""
    rows = [{"item_id": f"i{k:02d}", "input": question(k), "reference": f"topic {k} is covered in chapter {k}",
             "language": ("en", "ja")[k % 2]} for k in range(N)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "base.jsonl").write_text("".join(json.dumps({"item_id": r["item_id"], "response": r["reference"]}) + "\n"
                                                 for r in rows), encoding="utf-8")
    (tmp_path / "params.toml").write_text(
        f'dataset = "items.jsonl"\nbaseline = "replay/base.jsonl"\nbaseline_prompt = ""\ncandidates = ["openai/cand"]\n'
        f'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf", "length_chars"]\ngate_file = "gate.toml"\n'
        f'bootstrap_resamples = 200\nreport_name = "t"\napi_base = "{server.url}"\n', encoding="utf-8")
    (tmp_path / "gate.toml").write_text(GATES["FAIL"], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = main(["generate", "items.jsonl", "--model", "replay/base.jsonl", "--model", "openai/cand",
                 "--api-base", server.url, "-q"])
    assert code == 0, capsys.readouterr().err
    assert last_json(capsys.readouterr().out)["calls_made"] == 2 * N and server.total_hits() == N
    return tmp_path


# ---- generate: 0, 1, 3, 130 ------------------------------------------------------------------------
def test_generate_exits_0_when_everything_answered(project, server, capsys):
    code = main(["generate", "items.jsonl", "--model", "openai/other", "--api-base", server.url, "-q"])
    summary = last_json(capsys.readouterr().out)
    assert code == 0 and (summary["calls_made"], summary["errors"]) == (N, 0)


def test_generate_without_arguments_runs_the_projects_arms(project, server, capsys):
    """generate reads the project's parameters: its dataset, baseline and candidate (all stored here)."""
    assert main(["generate", "-q"]) == 0
    summary = last_json(capsys.readouterr().out)
    assert (summary["items"], summary["cached"], summary["calls_made"]) == (N, 2 * N, 0)


def test_generate_exits_1_when_items_fail_after_retries(project, server, capsys):
    server.reset()
    server.always(question(3), server_error(500))
    server.always(question(7), server_error(503))
    code = main(["generate", "items.jsonl", "--model", "openai/other", "--api-base", server.url, "-q",
                 "--max-attempts", "2"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert last_json(captured.out)["errors"] == 2
    assert server.hits[question(3)] == server.hits[question(7)] == 2  # --max-attempts, exactly


def test_generate_exits_3_on_bad_input_and_writes_nothing(project, capsys):
    (project / "bad.jsonl").write_text('{"item_id": "a", "input": "x"}\n{"item_id": "a", "input": "y"}\n',
                                       encoding="utf-8")
    code = main(["generate", "bad.jsonl", "--model", "replay/base.jsonl", "--store", "new.db", "-q"])
    err = capsys.readouterr().err
    assert code == 3 and "bad.jsonl" in err and "row 2" in err
    assert not (project / "new.db").exists()


def _wait(condition, what: str, proc: subprocess.Popen, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.returncode} {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} within {limit_s} s")
        time.sleep(0.02)


def _interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _popen(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=sigint_as_usual)


def test_generate_exits_130_on_ctrl_c_and_a_rerun_resumes(project, server):
    """A real SIGINT while calls hang on the server: exit 130, the message says how to resume, and
    the re-run calls exactly what was not stored."""
    server.reset()
    for k in range(10, N):  # the first 10 answer, the rest hang until the client gives up
        server.script(question(k), hang())
    proc = _popen("generate", "items.jsonl", "--model", "openai/slow", "--api-base", server.url, "-q",
                  "--concurrency", "4", cwd=project)
    _wait(lambda: server.in_flight >= 4, "4 calls hanging", proc)
    code, err = _interrupt(proc)
    assert code == 130, err
    assert "interrupted" in err and "re-run the same command to resume" in err and "Traceback" not in err
    answered = {question(k) for k in range(10) if server.hits[question(k)] == 1}
    assert answered  # the kill came after some answers
    server.reset()  # no more hangs
    assert main(["generate", "items.jsonl", "--model", "openai/slow", "--api-base", server.url, "-q"]) == 0
    assert not answered & set(server.hits)  # stored answers are not asked for again
    assert server.total_hits() == N - len(answered)


# ---- compare: 0, 1, 2, 3, 130 ----------------------------------------------------------------------
@pytest.mark.parametrize("verdict, code", VERDICT_CODES)
def test_compare_exits_with_the_verdict(project, server, capsys, verdict, code):
    (project / "gate.toml").write_text(GATES[verdict], encoding="utf-8")
    hits = server.total_hits()
    assert main(["compare", "--params", "params.toml"]) == code
    assert last_json(capsys.readouterr().out)["verdict"] == verdict
    assert server.total_hits() == hits  # compare reads the store: no call


def test_compare_exits_3_when_a_candidate_is_not_in_the_store(project, capsys):
    assert main(["compare", "--params", "params.toml", "--candidate", "openai/never-generated"]) == 3
    assert "openai/never-generated" in capsys.readouterr().err


def _store_open(pid: int, store: Path) -> bool:
    """Whether the process holds the store open: it is inside the command, past argument parsing."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(store):
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the store opened")
def test_compare_exits_130_on_ctrl_c(project):
    """A comparison with 20 million bootstrap resamples runs for many seconds: SIGINT once it has the
    store open gives 130, not a verdict or a traceback."""
    store = (project / ".workbench" / "store.db").resolve()
    proc = _popen("compare", "--params", "params.toml", "-p", "bootstrap_resamples", "20000000", cwd=project)
    _wait(lambda: _store_open(proc.pid, store), "store opened", proc)
    time.sleep(0.3)
    code, err = _interrupt(proc)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err


# ---- report: 0, 1, 2, 3, 130 -----------------------------------------------------------------------
@pytest.mark.parametrize("verdict, code", VERDICT_CODES)
def test_report_exits_with_the_verdict(project, server, capsys, verdict, code):
    (project / "gate.toml").write_text(GATES[verdict], encoding="utf-8")
    hits = server.total_hits()
    assert main(["report", "--params", "params.toml", "-q"]) == code, capsys.readouterr().err
    assert last_json(capsys.readouterr().out) == {"verdict": verdict, "complete": True,
                                                  "report": str(project / "reports" / "t")}
    assert json.loads((project / "reports" / "t" / "verdict.json").read_text())["verdict"] == verdict
    assert server.total_hits() == hits  # the store was warm


def test_report_exits_3_when_the_candidate_answers_nothing(project, server, capsys):
    """A key or model problem: every call of a new candidate is refused (401). No verdict's code."""
    for k in range(N):
        server.always(question(k), status(401))
    code = main(["report", "--params", "params.toml", "-q", "--candidate", "openai/unauthorized"])
    err = capsys.readouterr().err
    assert code == 3, err
    verdict = json.loads((project / "reports" / "t" / "verdict.json").read_text())
    assert verdict["verdict"] == "ERROR" and verdict["complete"] is False


def test_report_exits_130_on_ctrl_c_while_generating(project, server):
    for k in range(N):
        server.script(question(k), hang())
    proc = _popen("report", "--params", "params.toml", "-q", "--candidate", "openai/slow", cwd=project)
    _wait(lambda: server.in_flight >= 1, "call in flight", proc)
    code, err = _interrupt(proc)
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (project / "reports" / "t" / "report.html").exists()


# ---- errors: always 3, one line, no traceback ------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["compare", "--bogus"],                      # argparse's own usage error (it would exit 2)
    ["generate", "missing.jsonl"],               # no such data file
    ["frobnicate"],                              # unknown command
    ["compare", "--params", "missing.toml"],     # missing parameters file
    ["compare", "--params", "params.toml", "-p", "max_tokens", "-5"],
    ["compare", "--params", "params.toml", "-p", "candidates", '["replay/base.jsonl"]', "-p", "candidate_prompts",
     '[""]'],                                    # the baseline as its own candidate
    ["compare", "--params", "params.toml", "-p", "seed", "9"],   # responses for another sample: not in the store
    ["report", "--params", "params.toml", "-p", "report_name", "../escape"],
    ["generate", "items.jsonl", "--model", "openai/a", "--timeout", "0"],
    ["generate", "items.jsonl", "--model", "openai/a", "--concurrency", "0"],
    ["generate", "items.jsonl", "--model", "openai/a", "--max-attempts", "0"],
    ["generate", "items.jsonl", "--model", "openai/a", "--limit", "-1"],
    ["generate", "items.jsonl", "--model", "openai/a", "--max-tokens", "-5"],
    ["init", "."],                               # not an empty folder
])
def test_errors_exit_3_with_one_line_and_no_traceback(project, args):
    proc = cli(*args, cwd=project)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


@pytest.mark.parametrize("content", [b"", b"this is not a database at all" * 100])
def test_a_corrupt_or_foreign_store_exits_3(project, content):
    bad = project / "bad.db"
    bad.write_bytes(content)
    proc = cli("compare", "--params", "params.toml", "--store", "bad.db", cwd=project)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert bad.read_bytes() == content  # not turned into a store


def test_compare_without_a_store_creates_none(project):
    proc = cli("compare", "--params", "params.toml", "--store", "nowhere/s.db", cwd=project)
    assert proc.returncode == 3 and "store not found" in proc.stderr
    assert not (project / "nowhere").exists()


def test_internal_error_exits_3_and_debug_shows_the_traceback(project, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import workbench.pipeline as p\n"
                                           "def boom(*a, **k):\n    raise RuntimeError('boom inside')\n"
                                           "p.run_pipeline = boom\n", encoding="utf-8")
    env = {"PYTHONPATH": f"{hook}:{os.environ.get('PYTHONPATH', '')}"}
    proc = cli("compare", "--params", "params.toml", cwd=project, env=env)
    assert proc.returncode == 3 and "internal error: RuntimeError: boom inside" in proc.stderr
    assert "Traceback" not in proc.stderr
    debug = cli("compare", "--params", "params.toml", "--debug", cwd=project, env=env)
    assert debug.returncode == 3 and "Traceback" in debug.stderr


def test_score_exits_0_and_makes_no_call(project, server, capsys):
    hits = server.total_hits()
    assert main(["score", "--params", "params.toml"]) == 0
    assert last_json(capsys.readouterr().out)["paired_items"] == {"openai/cand": N}
    assert server.total_hits() == hits


def test_help_lists_the_exit_codes(tmp_path):
    for args in (["--help"], ["compare", "--help"], ["report", "--help"], ["generate", "--help"]):
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 0 and "3 could not run" in " ".join(proc.stdout.split())


EXIT_PROBE = r"""
import atexit, sys, threading, time
from pathlib import Path
marker = Path(sys.argv.pop(1))
atexit.register(lambda: marker.write_text("atexit ran"))
def late():  # a non-daemon thread still working when the command returns: waited for
    time.sleep(0.5)
    sys.stderr.write("thread finished\n")
threading.Thread(target=late).start()
from workbench.cli import main
sys.stdout.write("buffered, never flushed by hand")
main()  # as the `workbench` script calls it: the process ends inside
sys.stderr.write("not reached\n")
"""


@pytest.mark.parametrize("args, code", [(["generate", "missing.jsonl", "--model", "openai/m"], 3),
                                        (["bogus-command"], 3)])
def test_the_command_ends_the_process_with_its_code_after_threads_and_exit_handlers(tmp_path, args, code):
    """Run as the command, `main()` skips the interpreter's slow teardown (seconds after litellm) but
    nothing a normal exit guarantees: the code, buffered output, exit handlers, non-daemon threads."""
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(marker), *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.startswith("buffered, never flushed by hand")
    assert "thread finished" in proc.stderr and "not reached" not in proc.stderr
    assert marker.read_text() == "atexit ran"
