"""A damaged store is refused with exit 3 by every command, before anything reads from it; a valid
store in a folder nobody may write is read by the commands that only read (they open it read-only)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli_compare import _cli, _gate, project  # noqa: F401  (the fixture)


def _damage(path: Path) -> None:
    """Garbage over a page in the middle of the file, as a failing disk or a stray write leaves it."""
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle:middle + page] = b"\xde\xad\xbe\xef" * (page // 4)
    path.write_bytes(bytes(data))


def _checkpoint(path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")  # everything in the main file: the damage lands where reads go
    conn.close()


def test_every_command_refuses_a_damaged_store_with_exit_3(project):  # noqa: F811
    _gate(project, "[metrics.exact_match]\nmax_drop = 0.05\nhigher_is_better = true\n")
    store = project / "s.db"
    _checkpoint(store)
    _damage(store)
    for command in (["compare"], ["score"], ["report", "-q"]):
        proc = _cli(project, *command)
        assert proc.returncode == 3, (command, proc.stderr[-2000:])
        assert "damaged database" in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "generate", "items.jsonl", "--model", "fake/base",
                           "--store", "s.db", "-q"], capture_output=True, text=True, timeout=300, cwd=project)
    assert proc.returncode == 3 and "damaged database" in proc.stderr and "internal error" not in proc.stderr
    assert not (project / "reports").exists()


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr to make a folder read-only for root too")
def test_compare_reads_a_valid_store_in_a_read_only_folder(project):  # noqa: F811
    _gate(project, "[metrics.exact_match]\nmax_drop = 0.05\nhigher_is_better = true\n")
    expected = _cli(project, "compare")
    assert expected.returncode == 1, expected.stderr  # the fixture's candidate drops exact match
    folder = project / "ro"
    folder.mkdir()
    shutil.copy(project / "s.db", folder / "s.db")  # closed cleanly: no -wal or -shm beside it
    (project / "params.toml").write_text((project / "params.toml").read_text().replace('store = "s.db"',
                                                                                       'store = "ro/s.db"'))
    locked = subprocess.run(["chattr", "+i", str(folder / "s.db"), str(folder)], capture_output=True, text=True)
    if locked.returncode != 0:
        pytest.skip(f"this filesystem cannot make a folder read-only: {locked.stderr.strip()}")
    try:
        proc = _cli(project, "compare")
    finally:
        subprocess.run(["chattr", "-i", str(folder / "s.db"), str(folder)], check=True)
    assert proc.returncode == 1, proc.stderr[-2000:]  # read, not an internal error
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == json.loads(expected.stdout.strip().splitlines()[-1])
    assert sorted(p.name for p in folder.iterdir()) == ["s.db"]  # nothing written beside it
