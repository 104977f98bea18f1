"""The report notebook's kernel, started before the pipeline runs: its start-up (the kernel process,
IPython, then the modules the report's first cells import) takes seconds, and a warm report spends as
long again in the pipeline; on a machine with a second core the two overlap instead of adding up.
papermill then executes the notebook in this kernel (`km`) as in one it started itself.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from workbench.report.schema_import import import_jsonschema

KERNEL_NAME = "python3"
STOP_WAIT_S = 1.0  # after the export; jupyter_client's default (5 s, half of it before a SIGTERM) once cost 2.6 s
# what the report's first cells and plots import, and what unpickling the handed-over result needs
WARM_MODULES = ("pandas", "workbench", "workbench.pipeline", "workbench.report.view", "workbench.report.plots",
                "plotly.graph_objects", "plotly.io._renderers")
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",  # no TCP warning on stderr
                    "--HistoryManager.enabled=False",  # no history database: a report is run, never replayed
                    # run at start-up, before the kernel says it is ready; leaves no name in the notebook's
                    # namespace and adds no execution count
                    "--IPKernelApp.exec_lines=from workbench.report.kernel import warm_imports as _w; _w(); del _w")


def warm_imports() -> None:
    """Import `WARM_MODULES` in the kernel (jsonschema first, without its IRI grammar: see
    `schema_import`). A module that fails to import is left for the notebook's own import to
    report, in its cell."""
    import_jsonschema()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the cell that imports it raises it with its context
            pass


class Kernel:
    """A started kernel: `manager` for papermill (`km`); `stop_soon` once the notebook has run."""

    def __init__(self, manager: Any):
        self.manager = manager
        self.stopping = False

    def stop_soon(self) -> None:
        """Ask the kernel to shut down and go on (the HTML export) while it does: waiting for it took
        about a second, at the end of every report."""
        from jupyter_core.utils import run_sync

        if not self.stopping:
            run_sync(self.manager.request_shutdown)()
            self.stopping = True

    def close(self) -> None:
        """Wait for a kernel asked to stop (terminated, then killed, if it has not ended within
        `STOP_WAIT_S`), or stop it at once: a run that stopped early (a kernel still starting answers
        no shutdown request)."""
        from jupyter_core.utils import run_sync

        if self.stopping:  # asked before the export: it has had that long already
            run_sync(self.manager.finish_shutdown)(waittime=STOP_WAIT_S)
            run_sync(self.manager.cleanup_resources)()  # its connection file
        else:
            run_sync(self.manager.shutdown_kernel)(now=True)


@contextmanager
def started_kernel(cwd: Path, env: dict[str, str]) -> Iterator[Kernel]:
    """A kernel started now in `cwd` with exactly `env`, closed on leaving."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    manager = AsyncKernelManager(kernel_name=KERNEL_NAME)
    run_sync(manager.start_kernel)(cwd=str(cwd), env=env, extra_arguments=list(KERNEL_ARGUMENTS))
    kernel = Kernel(manager)
    try:
        yield kernel
    finally:
        kernel.close()
