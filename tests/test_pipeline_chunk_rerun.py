"""A read in chunks where a forked reader fails: each process let go of the chunks it would not read
(`ChunkJob.drop`), so the failed child's block is read again from the items' file (`ItemsAgain`), and
the tables are those of one process; items that changed meanwhile stop the command with a clear error."""
from __future__ import annotations

import os
import sys

import pytest

from tests.judge_server import JudgeServer
from tests.test_pipeline import _config, project  # noqa: F401 (the fixture)
from tests.test_pipeline_chunks import _record
from workbench import forked, pipeline
from workbench.errors import InputError
from workbench.pipeline import CHUNK_ENV, ChunkJob, ItemsAgain, run_pipeline

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux only")


def test_a_failed_child_s_chunks_are_read_again_from_the_file(project, monkeypatch):
    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
        held = run_pipeline(config, allow_calls=False)
        parent, read = os.getpid(), pipeline.ChunkReader.__call__
        dropped, taken_again = [], []

        def failing_in_children(self, job, store):
            if os.getpid() != parent:
                os._exit(3)  # a crash: nothing comes back
            if job.dropped:
                taken_again.append(job.start)
            return read(self, job, store)

        drop = ChunkJob.drop

        def recorded(job):
            dropped.append((os.getpid() == parent, job.start))
            drop(job)

        monkeypatch.setattr(pipeline.ChunkReader, "__call__", failing_in_children)
        monkeypatch.setattr(ChunkJob, "drop", recorded)
        monkeypatch.setenv(CHUNK_ENV, "7")  # 6 chunks of 40 items
        monkeypatch.setenv(forked.WORKERS_ENV, "3")
        chunked = run_pipeline(config, allow_calls=False, texts=False)
    assert _record(chunked) == _record(held)
    assert sorted(taken_again) == [14, 21, 28, 35]  # the two children's blocks, read here from the file again
    assert sorted(start for here, start in dropped if here) == [14, 21, 28, 35]  # let go of once the children were made


def test_items_that_changed_before_they_are_read_again_stop_the_command(project):
    config = _config(project, "http://127.0.0.1:9")
    again = ItemsAgain(config, "not the id of these items")
    job = ChunkJob(0, 5, None, again)
    job.drop()
    with pytest.raises(InputError, match="items.jsonl.*changed while it was read"):
        job.take()
    with pytest.raises(RuntimeError, match="read already"):
        ChunkJob(0, 5, None).take()
