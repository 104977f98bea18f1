"""Memory freed by a phase handed back to the system before the next phase begins.

Why: a phase's temporaries are freed into the allocator that made them, and each allocator keeps its
free pages for itself. pandas' text columns live in Arrow's pool (mimalloc), numpy arrays and Python
objects in the C heap (glibc malloc): what one phase frees in Arrow's pool cannot hold the next
phase's numpy arrays, so the peak is the sum of both. Loading 100,000 items leaves 60 MiB of free
pages in Arrow's pool behind 26 MiB of data. Handing them back between phases lets any allocator reuse
them: the read in chunks (`pipeline.read_in_chunks`) calls it after loading, after each chunk and after
each join (issue 25). The commands that read in chunks go further and put Arrow's buffers in the C
heap for their whole process (`arrow_in_the_c_heap`).
"""
from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache
from typing import Any, Callable


ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"  # Arrow's C++ default pool, read once as pyarrow loads


def arrow_in_the_c_heap() -> None:
    """Arrow's buffers allocated by the C heap (glibc's malloc) from now on, instead of Arrow's own
    pool (mimalloc), for the rest of this process: set by the commands that read a store in chunks
    (`workbench compare`, `workbench score`), whose process is theirs. Why: with a forked reader both
    processes write into the pool's inherited pages and it keeps what they free; from the C heap the
    freed pages go back (`release_unused`). Measured at 100k items × 2 (docs/bench/scale.md): peak PSS
    with the forked reader 309 → 285 MiB, in one process 239 → 237, at 10k 187 → 183; the same wall
    time. `set_memory_pool` moves what pyarrow's own calls allocate; what Arrow's C++ allocates for
    itself follows its default pool, which `ARROW_DEFAULT_MEMORY_POOL` chooses when pyarrow first loads:
    called before that (the commands import pandas after it), the C heap holds those buffers too (peak
    PSS at 100k × 2 with the forked reader 236-238 → 232 MiB). A user's own choice of that pool is kept.
    A notebook's kernel keeps the pool it has."""
    os.environ.setdefault(ARROW_POOL_ENV, "system")
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def release_unused() -> None:
    """Return the free pages of Arrow's memory pool and of the C heap to the system (a few ms)."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:  # only a process that uses Arrow has pages in its pool
        arrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], Any] | None:
    """glibc's `malloc_trim`, or None where the C library has none (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None
