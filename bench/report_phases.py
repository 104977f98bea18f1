"""Where one `workbench report` process spends its time: wall and CPU seconds per phase (imports, the
checks and plan, the pipeline, the notebook's run in the kernel, the HTML export), measured in the
command's own process by timing each step of `workbench.report.command` as it returns. The kernel's
own CPU is not in these figures (it is a separate process: see bench_report.py's cell times).

    PYTHONPATH=$PWD .venv/bin/python bench/report_phases.py -p store '"/tmp/demo/store.db"' --reports-dir /tmp/x

Arguments are `workbench report`'s.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

STEPS = ("plan_run", "warn_out_of_reach", "run_pipeline", "_execute", "export_html", "write_record")
# (the code before issue 25's report round ran papermill inside _run_report: its time there is the
# gap "(before export_html)")


def main() -> None:
    began, began_cpu = time.perf_counter(), time.process_time()
    marks: list[tuple[str, float, float]] = []

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), time.process_time()))

    from workbench import cli
    mark("import the CLI")
    from workbench.report import command
    mark("import the report command (pipeline, pandas)")

    def timed(name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            mark(f"(before {name})")
            out = step(*args, **kwargs)
            mark(name)
            return out
        return run

    for name in STEPS:
        if hasattr(command, name):  # an earlier tree (PYTHONPATH) may lack a step
            setattr(command, name, timed(name, getattr(command, name)))
    code = cli._main(["report", *sys.argv[1:]])
    mark("end")
    last, last_cpu = began, began_cpu
    for name, at, cpu in marks:
        print(f"{name:48s} {at - last:6.2f} s wall {cpu - last_cpu:6.2f} s CPU (at {at - began:6.2f} s)", file=sys.stderr)
        last, last_cpu = at, cpu
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
