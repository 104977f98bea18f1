"""Untrusted text in a message (an item id, a recorded response's id, a server's error) is printed with
its control characters escaped: an ESC sequence in an id never sets the window title or clears the
screen of the user who reads the error."""
import json
import os
import subprocess
import sys

from tests.fault_server import FaultServer, status

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J\x1b[H"
HOSTILE = f"evil{TITLE}{CLEAR}\u202eid"


def _cli(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OPENAI_API_KEY": "unused-here"})


def _assert_neutralised(proc: subprocess.CompletedProcess) -> None:
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in proc.stderr and raw not in proc.stdout
    assert "\\x1b]0;pwned\\x07" in proc.stderr  # shown, escaped, so the user sees what the id holds


def test_a_duplicate_id_with_escape_sequences_is_shown_escaped(tmp_path):
    rows = [{"item_id": HOSTILE, "input": "a"}, {"item_id": HOSTILE, "input": "b"}]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    proc = _cli(tmp_path, "generate", "items.jsonl", "--model", "fake/echo")
    assert proc.returncode == 3 and "duplicate id" in proc.stderr
    _assert_neutralised(proc)


def test_a_replay_file_error_with_escape_sequences_is_shown_escaped(tmp_path):
    (tmp_path / "items.jsonl").write_text(json.dumps({"item_id": "a", "input": "x"}) + "\n", encoding="utf-8")
    recorded = [{"item_id": HOSTILE, "response": "r1"}, {"item_id": HOSTILE, "response": "r2"}]
    (tmp_path / "prod.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recorded), encoding="utf-8")
    proc = _cli(tmp_path, "generate", "items.jsonl", "--model", "replay/prod.jsonl")
    assert proc.returncode == 3 and "duplicate" in proc.stderr
    _assert_neutralised(proc)


def test_a_server_error_with_escape_sequences_is_shown_escaped(tmp_path):
    (tmp_path / "items.jsonl").write_text(json.dumps({"item_id": "a", "input": HOSTILE}) + "\n", encoding="utf-8")
    with FaultServer() as server:  # its error message repeats the input: the item id it was sent
        server.always(HOSTILE, status(400))
        proc = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--api-base", server.url,
                    "--max-attempts", "1", "-q")
    assert proc.returncode == 1 and "bad_request" in proc.stderr
    _assert_neutralised(proc)
