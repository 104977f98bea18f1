"""Memory does not grow with the log: chunks are bounded, windows are tested and dropped as the log
moves past them, and the traced peak for a log four times longer stays the same."""
import tracemalloc

import pytest

from tests.monitor._data import config, write_log, write_reference
from workbench.monitor import collect
from workbench.monitor.run import run_drift


def test_only_the_current_and_previous_window_are_held(tmp_path, monkeypatch):
    reference = write_reference(tmp_path, n=200)
    log = write_log(tmp_path, n=3000, days=20)
    held = []
    original = collect.WindowCollector._close_passed

    def spy(self):
        original(self)
        held.append(len(self.open))

    monkeypatch.setattr(collect.WindowCollector, "_close_passed", spy)
    result = run_drift(config(tmp_path, reference, log, chunk_rows=100))
    assert len(held) == 30 and max(held) <= 2  # one chunk per 100 rows; at most two days open
    assert len(result.windows) == 20


@pytest.mark.slow
def test_traced_peak_memory_is_flat_from_2k_to_8k_rows(tmp_path):
    """The same 10 daily windows holding four times the rows: the per-window results are the same
    size, so anything that grew would be held per row."""
    reference = write_reference(tmp_path, n=200)
    peaks = {}
    for rows in (2000, 8000):
        log = write_log(tmp_path, n=rows, days=10, name=f"log{rows}.jsonl", seed=rows)
        cfg = config(tmp_path, reference, log, chunk_rows=500)
        run_drift(cfg)  # warm: caches of language and terms fill up to their bound first
        tracemalloc.start()
        result = run_drift(cfg)
        peaks[rows] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(result.windows) == 10
    print(f"traced peak: {peaks}")
    assert peaks[8000] <= 1.25 * peaks[2000], peaks
