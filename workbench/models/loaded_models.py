"""Local models kept loaded in this process: one load per (weights, dtype, device, engine options).

The `hf/` and `vllm/` adapters are built per run: the optimizer builds one per trial, the report one
per arm and one for its judge, `judge_pairwise` one per call when it is given none. Each would load
the weights again (seconds for a small model, minutes for a large one on a GPU). Instead every
adapter asks this registry: the first asker loads, later ones (and other threads asking at the same
time: they wait for that one load) get the same objects, so the weights are held once, not once per
adapter. A closed adapter leaves its model loaded but idle, for the next run of the same command.

Memory: an idle model is unloaded when a new model would not fit beside it (least recently used
first; the device's free memory is checked against the new model's size before loading), and
`release_local_models()` unloads every idle model now (one still in use goes when its last adapter
closes). Nothing here imports torch until a model on a GPU is unloaded.
"""
from __future__ import annotations

import gc
import json
import logging
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
HEADROOM = 1.2  # a model needs its weights and some working memory (activations, KV cache) beside them
_ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2}
_SAFETENSORS_ITEMSIZE = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                         "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass(frozen=True)
class LoadKey:
    """What makes two loads the same: the weights' content and every setting the loaded objects
    depend on (dtype, device, engine options). Decoding options (batch size, scheduling) are not
    part of it: adapters with different ones share the model."""

    provider: str
    weights_sha256: str
    settings: tuple[tuple[str, Hashable], ...]
    name: str = field(compare=False, default="")  # for messages only

    @property
    def device(self) -> str:
        return str(dict(self.settings).get("device", "cuda"))


@dataclass(eq=False)
class _Entry:
    key: LoadKey
    load_lock: threading.Lock = field(default_factory=threading.Lock)  # one load of this key at a time
    value: Any = None
    users: int = 0  # adapters holding it now
    loads: int = 0
    load_s: float = 0.0
    last_used: float = 0.0
    release_when_idle: bool = False  # release_local_models() was asked while it was in use


_registry: dict[LoadKey, _Entry] = {}
_registry_lock = threading.Lock()  # guards the dict and the counters; never held while loading


def acquire(key: LoadKey, load: Callable[[], T], *, need_bytes: Callable[[], int | None] | None = None) -> T:
    """The loaded model for `key`, loading it (once, whoever else asks at the same time) with
    `load()`. Each acquire is paired with one `release(key)` when the adapter closes. Before a
    load, idle models on the same device are unloaded until `need_bytes()` (with headroom) fits."""
    while True:
        with _registry_lock:
            entry = _registry.setdefault(key, _Entry(key))
        with entry.load_lock:
            with _registry_lock:
                if _registry.get(key) is not entry:  # unloaded while this thread waited: ask again
                    continue
                if entry.value is not None:
                    log.debug("%s: reusing the model loaded in this process", key.name)
                    return _use(entry)
            needed = need_bytes() if need_bytes is not None else None
            if needed:
                _make_room(key, needed)
            started = time.perf_counter()
            value = load()  # raises: nothing is kept, the next acquire tries again
            with _registry_lock:
                entry.value = value
                entry.loads += 1
                entry.load_s = time.perf_counter() - started
                return _use(entry)


def _use(entry: _Entry) -> Any:
    entry.users += 1
    entry.last_used = time.monotonic()
    return entry.value


def release(key: LoadKey) -> None:
    """One adapter fewer holds `key`'s model; it stays loaded, idle, unless release_local_models()
    asked for it while it was in use."""
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None or entry.users == 0:
            return
        entry.users -= 1
        entry.last_used = time.monotonic()
        drop = entry.users == 0 and entry.release_when_idle
        if drop:
            _drop(entry)
    if drop:
        _free_memory([key])


def release_local_models() -> list[str]:
    """Unload every idle local model of this process now and free its memory; a model still in use
    is unloaded when its last adapter closes. Returns the names of the models unloaded now."""
    with _registry_lock:
        idle = [entry for entry in _registry.values() if entry.users == 0 and entry.value is not None]
        for entry in _registry.values():
            if entry.users:
                entry.release_when_idle = True
        for entry in idle:
            _drop(entry)
    _free_memory([entry.key for entry in idle])
    return [entry.key.name for entry in idle]


def loaded_local_models() -> list[dict[str, Any]]:
    """What is loaded now: name, provider, settings, adapters using it, loads so far, seconds of the last load."""
    with _registry_lock:
        return [{"name": e.key.name, "provider": e.key.provider, **dict(e.key.settings), "users": e.users,
                 "loads": e.loads, "load_s": round(e.load_s, 3)} for e in _registry.values() if e.value is not None]


def _drop(entry: _Entry) -> None:
    """Forget an entry (the registry lock is held): its objects go once no adapter references them."""
    entry.value = None
    entry.release_when_idle = False
    if _registry.get(entry.key) is entry:
        del _registry[entry.key]


def _make_room(key: LoadKey, need_bytes: int) -> None:
    """Unload idle models on `key`'s device, least recently used first, while the new one does not fit."""
    while True:
        free = free_bytes(key.device)
        if free is None or free >= need_bytes * HEADROOM:
            return
        with _registry_lock:
            idle = sorted((e for e in _registry.values() if e.users == 0 and e.value is not None and e.key != key
                           and e.key.device == key.device), key=lambda e: e.last_used)
            if not idle:
                return
            victim = idle[0]
            _drop(victim)
        log.info("unloading idle %s to make room for %s (%.1f GB free, %.1f GB needed)", victim.key.name, key.name,
                 free / 1e9, need_bytes * HEADROOM / 1e9)
        _free_memory([victim.key])


def _free_memory(keys: list[LoadKey]) -> None:
    if not keys:
        return
    gc.collect()
    if any(k.device.startswith("cuda") for k in keys):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def free_bytes(device: str) -> int | None:
    """Memory free for a new model on `device` (None: unknown)."""
    try:
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return None
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        import psutil  # optional: installed with ipykernel

        return int(psutil.virtual_memory().available)
    except Exception:  # no psutil, no CUDA: no eviction, as before
        return None


def weights_bytes(folder: Path, dtype: str) -> int | None:
    """Bytes the model's weights take as `dtype` (floating tensors cast, others as stored), read from
    the safetensors headers; other weight files count as their size. None: no weight file found."""
    itemsize = _ITEMSIZE.get(dtype, 4)
    total, found = 0, False
    for file in sorted(Path(folder).glob("*.safetensors")):
        found = True
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for size in tensor["shape"]:
                count *= size
            stored = tensor["dtype"]
            total += count * (itemsize if stored.startswith(("F", "BF")) else _SAFETENSORS_ITEMSIZE.get(stored, 4))
    for pattern in ("*.bin", "*.pt", "*.pth"):
        for file in Path(folder).glob(pattern):
            found = True
            total += file.stat().st_size
    return total if found else None
