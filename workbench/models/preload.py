"""Slow client libraries imported on a background thread as soon as a command knows its models.

`import litellm` takes 3-5 s on the project's machine. A command that will call a `litellm/`
model starts that import here, before it reads the dataset, renders the requests and opens the
store, and the adapter's first use waits for it (`wait`): whatever of that work does not hold
the GIL (file and SQLite I/O, a cold disk cache of litellm's 3,000 modules) overlaps the import.
A command whose models need no such library starts nothing, so it never imports one. A failed
import is left to the adapter's own import, which raises it with its context. The `workbench`
command does not wait for an import it no longer needs (a warm re-run makes no call); any other
process that ends meanwhile lets the import finish first (see `start`).
"""
from __future__ import annotations

import atexit
import importlib
import threading
from typing import Iterable

from workbench.errors import UnknownModelError
from workbench.models import adapter_class, split_name

_threads: dict[tuple[str, ...], threading.Thread] = {}
_lock = threading.Lock()


def start(names: Iterable[str]) -> list[tuple[str, ...]]:
    """Begin importing the `background_imports` of each named model's adapter, once per process;
    returns the module groups started now. Unknown names are skipped: the run rejects them with
    the reason."""
    started = []
    for name in names:
        try:
            provider, _ = split_name(name)
        except UnknownModelError:
            continue
        modules = tuple(adapter_class(provider).background_imports)
        if not modules:
            continue
        with _lock:
            if modules in _threads:
                continue
            thread = threading.Thread(target=_import_all, args=(modules,), name=f"workbench-import-{modules[0]}",
                                      daemon=True)
            if not _threads:
                # a thread frozen halfway through an import at interpreter teardown would hold the
                # import lock that exit-time code may need (it hung litellm's cleanup): a normal exit
                # lets the import finish first. The CLI ends without that teardown and unregisters this.
                atexit.register(wait)
            _threads[modules] = thread
        thread.start()
        started.append(modules)
    return started


def wait(modules: tuple[str, ...] | None = None) -> None:
    """Block until the background import of `modules` (None: every one started) has finished, so
    the caller's own imports find them loaded instead of racing a half-imported package (two
    threads importing into one package can meet importlib's deadlock guard)."""
    with _lock:
        threads = list(_threads.values()) if modules is None else [_threads.get(tuple(modules))]
    for thread in threads:
        if thread is not None and thread is not threading.current_thread():
            thread.join()


def _import_all(modules: tuple[str, ...]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - not installed or broken: the adapter's import says so, in context
            return
