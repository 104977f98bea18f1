"""One set of exit codes for every command, as a CI job reads them: 0 PASS, 1 FAIL, 2 INCONCLUSIVE,
3 could not run. An error (usage, bad input, a corrupt store, an internal error) never exits with a
verdict's code. Each case runs the real CLI in a subprocess."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GATE_CHRF = "min_items = {n}\n[metrics.chrf]\nmax_drop = {drop}\nhigher_is_better = true\n"


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """40 items; fake/base echoes the input, fake/cand too with its own prefix: a measurable chrF gap."""
    rows = [{"item_id": f"i{k:02d}", "input": f"tell me about topic {k}", "reference": f"base: tell me about topic {k}",
             "language": ("en", "ja")[k % 2]} for k in range(40)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "params.toml").write_text('dataset = "items.jsonl"\nbaseline = "fake/base"\nbaseline_prompt = ""\n'
                                          'candidates = ["fake/cand"]\ncandidate_prompts = [""]\njudge = ""\n'
                                          'metrics = ["chrf", "length_chars"]\ngate_file = "gate.toml"\n'
                                          'bootstrap_resamples = 200\nreport_name = "t"\n', encoding="utf-8")
    proc = cli("generate", "items.jsonl", "--model", "fake/base", "--model", "fake/cand", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path


@pytest.mark.parametrize("gate, code, verdict", [
    (GATE_CHRF.format(n=30, drop=200.0), 0, "PASS"),
    (GATE_CHRF.format(n=30, drop=1.0), 1, "FAIL"),
    (GATE_CHRF.format(n=100, drop=1.0), 2, "INCONCLUSIVE"),
])
def test_compare_exits_with_the_verdict(project, gate, code, verdict):
    (project / "gate.toml").write_text(gate, encoding="utf-8")
    proc = cli("compare", "--params", "params.toml", cwd=project)
    assert proc.returncode == code, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["verdict"] == verdict


def test_score_exits_0_and_makes_no_call(project):
    (project / "gate.toml").write_text(GATE_CHRF.format(n=30, drop=1.0), encoding="utf-8")
    proc = cli("score", "--params", "params.toml", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["paired_items"] == {"fake/cand": 40}


@pytest.mark.parametrize("args", [
    ["compare", "--bogus"],                      # argparse's own usage error (it would exit 2)
    ["generate"],                                # missing positional
    ["frobnicate"],                              # unknown command
    ["compare", "--params", "missing.toml"],     # missing parameters file
    ["compare", "--params", "params.toml", "-p", "max_tokens", "-5"],
    ["compare", "--params", "params.toml", "-p", "candidates", '["fake/base"]', "-p", "candidate_prompts", '[""]'],
    ["compare", "--params", "params.toml", "-p", "seed", "9"],   # responses for another sample: not in the store
    ["report", "--params", "params.toml", "-p", "report_name", "../escape"],
    ["generate", "items.jsonl", "--model", "fake/a", "--timeout", "0"],
    ["generate", "items.jsonl", "--model", "fake/a", "--concurrency", "0"],
    ["generate", "items.jsonl", "--model", "fake/a", "--max-attempts", "0"],
    ["generate", "items.jsonl", "--model", "fake/a", "--limit", "-1"],
    ["generate", "items.jsonl", "--model", "fake/a", "--max-tokens", "-5"],
    ["init", "."],                               # not an empty folder
])
def test_errors_exit_3_with_one_line_and_no_traceback(project, args):
    (project / "gate.toml").write_text(GATE_CHRF.format(n=30, drop=1.0), encoding="utf-8")
    proc = cli(*args, cwd=project)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


@pytest.mark.parametrize("content", [b"", b"this is not a database at all" * 100])
def test_a_corrupt_or_foreign_store_exits_3(project, content):
    (project / "gate.toml").write_text(GATE_CHRF.format(n=30, drop=1.0), encoding="utf-8")
    bad = project / "bad.db"
    bad.write_bytes(content)
    proc = cli("compare", "--params", "params.toml", "--store", "bad.db", cwd=project)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert bad.read_bytes() == content  # not turned into a store


def test_compare_without_a_store_creates_none(project):
    (project / "gate.toml").write_text(GATE_CHRF.format(n=30, drop=1.0), encoding="utf-8")
    proc = cli("compare", "--params", "params.toml", "--store", "nowhere/s.db", cwd=project)
    assert proc.returncode == 3 and "store not found" in proc.stderr
    assert not (project / "nowhere").exists()


def test_internal_error_exits_3_and_debug_shows_the_traceback(project, tmp_path):
    (project / "gate.toml").write_text(GATE_CHRF.format(n=30, drop=1.0), encoding="utf-8")
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


def test_help_lists_the_exit_codes(tmp_path):
    for args in (["--help"], ["compare", "--help"], ["report", "--help"], ["generate", "--help"]):
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 0 and "3 could not run" in " ".join(proc.stdout.split())
