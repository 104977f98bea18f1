"""The process-wide registry of loaded local models: one load per key whoever asks (threads too),
idle models kept until released or until a new model needs their memory. The loaders here are plain
functions (what they load does not matter to the registry); the real hf/ model's loads are counted
in tests/optimize/test_load_once.py and tests/judges/test_local_judge.py."""
from __future__ import annotations

import json
import struct
import threading
import time

import pytest

from workbench.models import loaded_models
from workbench.models.loaded_models import (LoadKey, acquire, loaded_local_models, release, release_local_models,
                                            weights_bytes)


def key(name: str, device: str = "cpu", dtype: str = "float32") -> LoadKey:
    return LoadKey("hf", f"sha-{name}", (("dtype", dtype), ("device", device)), name=name)


class Loader:
    """Counts its loads; each load returns a new object (a second copy would be a different one)."""

    def __init__(self, seconds: float = 0.0):
        self.loads, self.seconds = 0, seconds

    def __call__(self) -> object:
        self.loads += 1
        time.sleep(self.seconds)
        return object()


@pytest.fixture(autouse=True)
def empty_registry():
    release_local_models()
    yield
    loaded_models._registry.clear()


def test_one_load_per_key_and_idle_models_stay_until_released():
    loader = Loader()
    first = acquire(key("a"), loader)
    release(key("a"))
    assert acquire(key("a"), loader) is first and loader.loads == 1  # closed adapter, next run: no reload
    assert acquire(key("a", dtype="bfloat16"), loader) is not first and loader.loads == 2  # another dtype loads
    assert [(m["name"], m["users"]) for m in loaded_local_models()] == [("a", 1), ("a", 1)]
    release(key("a"))
    release(key("a"))  # one release too many changes nothing
    assert release_local_models() == ["a"]  # the idle one; the bfloat16 one is still in use
    assert [m["dtype"] for m in loaded_local_models()] == ["bfloat16"]
    release(key("a", dtype="bfloat16"))  # its last user closes: unloaded then, as asked
    assert loaded_local_models() == []
    acquire(key("a"), loader)
    assert loader.loads == 3


def test_two_threads_asking_at_once_load_once():
    loader = Loader(seconds=0.3)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(acquire(key("slow"), loader))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loader.loads == 1 and len(got) == 4 and all(g is got[0] for g in got)
    assert loaded_local_models()[0]["users"] == 4


def test_other_models_load_while_one_is_loading():
    slow, quick = Loader(seconds=0.5), Loader()
    thread = threading.Thread(target=lambda: acquire(key("slow"), slow))
    thread.start()
    time.sleep(0.1)
    started = time.perf_counter()
    acquire(key("quick"), quick)
    assert time.perf_counter() - started < 0.3  # not behind the other model's load
    thread.join()


def test_a_failed_load_keeps_nothing_and_the_next_acquire_tries_again():
    def broken():
        raise MemoryError("no room")

    with pytest.raises(MemoryError):
        acquire(key("b"), broken)
    assert loaded_local_models() == []
    loader = Loader()
    acquire(key("b"), loader)
    assert loader.loads == 1


def test_idle_models_are_unloaded_when_a_new_one_does_not_fit(monkeypatch):
    gb = 10**9
    loaded = {"old": 3 * gb, "older": 3 * gb, "busy": 3 * gb}
    monkeypatch.setattr(loaded_models, "free_bytes", lambda device: 10 * gb - sum(loaded.values()))
    for name in ("older", "old", "busy"):
        acquire(key(name), Loader())
    release(key("older"))
    release(key("old"))
    real_drop = loaded_models._drop

    def drop(entry):
        loaded.pop(entry.key.name, None)
        real_drop(entry)

    monkeypatch.setattr(loaded_models, "_drop", drop)
    acquire(key("on-gpu", device="cuda"), Loader(), need_bytes=lambda: 8 * gb)  # another device: nothing goes
    assert len(loaded_local_models()) == 4
    acquire(key("new"), Loader(), need_bytes=lambda: 2 * gb)  # 1 GB free, 2.4 needed: the least recently used goes
    assert sorted(m["name"] for m in loaded_local_models()) == ["busy", "new", "old", "on-gpu"]
    acquire(key("big"), Loader(), need_bytes=lambda: 20 * gb)  # never fits: every idle one goes, the busy one stays
    assert sorted(m["name"] for m in loaded_local_models()) == ["big", "busy", "new", "on-gpu"]


def test_weights_bytes_reads_safetensors_headers_at_the_load_dtype(tmp_path):
    header = {"__metadata__": {"format": "pt"},
              "w": {"dtype": "F32", "shape": [10, 4], "data_offsets": [0, 160]},
              "ids": {"dtype": "I64", "shape": [3], "data_offsets": [160, 184]}}
    raw = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(184))
    assert weights_bytes(tmp_path, "float32") == 40 * 4 + 3 * 8
    assert weights_bytes(tmp_path, "bfloat16") == 40 * 2 + 3 * 8  # floats cast, integers as stored
    assert weights_bytes(tmp_path / "absent", "float32") is None
