"""A real part that cannot be set up is never a silent pass: locally the test skips with one line
naming it, under CI the run fails with that line (tests/real_parts.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROBE = '''
from tests.real_parts import missing, need_module

def test_needs_a_library():
    need_module("no_such_library_wb26", "pip install no-such-library")

def test_needs_a_server():
    missing("PostgreSQL is not installed (apt-get install postgresql)")

def test_runs():
    assert need_module("json", "stdlib").dumps(1) == "1"
'''


def _pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest", "-rs",
                           "-q", str(tmp_path / "test_probe.py")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


def test_locally_a_missing_part_skips_with_one_line(tmp_path):
    proc = _pytest(tmp_path, None)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 2 skipped" in proc.stdout
    assert "SKIPPED, missing: no_such_library_wb26 is not importable" in proc.stdout
    assert "SKIPPED, missing: PostgreSQL is not installed (apt-get install postgresql)" in proc.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_part_fails_the_run_with_one_line(tmp_path, ci):
    proc = _pytest(tmp_path, ci)
    assert proc.returncode == 1, proc.stdout
    assert "2 failed, 1 passed" in proc.stdout
    assert "missing under CI: no_such_library_wb26 is not importable" in proc.stdout
    assert "FAILED, missing: PostgreSQL is not installed (apt-get install postgresql)" in proc.stdout
    assert "Traceback" not in proc.stdout


def test_ci_false_is_local(tmp_path):
    assert _pytest(tmp_path, "false").returncode == 0
