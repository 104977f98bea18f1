"""memory.release_unused hands the pages a phase freed back to the system (issue 25: the read in
chunks stays flat because the statistics reuse what loading and joining freed)."""
from __future__ import annotations

import gc
import os
import subprocess
import sys

import pandas as pd
import pytest

from workbench import memory

def resident() -> int:
    """This process's resident bytes (the second field of /proc/self/statm, in pages)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc are Linux's")


@linux
def test_freed_text_columns_leave_the_process_when_released():
    texts = pd.Series([f"item-{k:08d} with some words after it" for k in range(300_000)], dtype="str")
    pieces = [texts.iloc[k:k + 1000].str.upper() for k in range(0, len(texts), 1000)]  # many small Arrow buffers
    del texts, pieces
    gc.collect()
    held = resident()
    memory.release_unused()
    assert held - resident() > 20 * 2**20  # about 50 MiB of Arrow's free pages go back


def test_without_glibc_there_is_nothing_to_trim(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert memory._malloc_trim.__wrapped__() is None


def test_release_is_safe_to_call_at_any_time_and_often():
    for _ in range(3):
        memory.release_unused()


def test_the_commands_that_read_in_chunks_take_arrow_s_buffers_from_the_c_heap(monkeypatch):
    """`workbench compare` and `workbench score` switch Arrow to the C heap before they read anything
    (their process is theirs); the pool is put back here, so no other test runs on it."""
    import argparse

    import pyarrow as pa

    from workbench import cli, pipeline

    seen = []

    def reading(*args, **kwargs):
        seen.append(pa.default_memory_pool().backend_name)
        raise SystemExit(0)

    before = pa.default_memory_pool()
    monkeypatch.setattr(pipeline, "run_pipeline", reading)
    monkeypatch.setattr(cli, "_config", lambda args: None)
    try:
        for command in (cli.cmd_score, cli.cmd_compare):
            with pytest.raises(SystemExit):
                command(argparse.Namespace())
    finally:
        pa.set_memory_pool(before)
    assert seen == ["system", "system"] and pa.default_memory_pool().backend_name == before.backend_name


@pytest.mark.parametrize("chosen", [None, "mimalloc"])
def test_arrow_s_own_allocations_follow_into_the_c_heap_unless_the_user_chose_a_pool(chosen):
    """Arrow's C++ default pool is read from the environment once, as pyarrow loads: the CLI does not
    load it before `arrow_in_the_c_heap` (a fresh process, as a user's command runs)."""
    env = {key: value for key, value in os.environ.items() if key != memory.ARROW_POOL_ENV}
    if chosen:
        env[memory.ARROW_POOL_ENV] = chosen
    code = ("import os, sys\nfrom workbench import cli, memory\nloaded = 'pyarrow' in sys.modules\n"
            "memory.arrow_in_the_c_heap()\nimport pyarrow\n"
            "print(loaded, os.environ[memory.ARROW_POOL_ENV], pyarrow.default_memory_pool().backend_name)")
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["False", chosen or "system", "system"]


@pytest.mark.parametrize("command", ["cmd_score", "cmd_compare"])
def test_the_commands_choose_arrow_s_pool_before_pandas_loads_pyarrow(command):
    """Each in a fresh process, as a user runs it: a command that imported pandas first (compare did)
    would leave Arrow's own allocations in its mimalloc pool."""
    code = ("import sys\nfrom workbench import cli, memory\nseen = []\nreal = memory.arrow_in_the_c_heap\n"
            "def first():\n    seen.append('pyarrow' in sys.modules)\n    real()\n"
            "memory.arrow_in_the_c_heap = first\n"
            "def stop(args):\n    raise SystemExit(0)\n"
            f"cli._config = stop\ntry:\n    cli.{command}(None)\nexcept SystemExit:\n    pass\nprint(seen)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[False]"
