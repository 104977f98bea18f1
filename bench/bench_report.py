"""Report regeneration from a warm store: wall time, and what share of it is kernel start and
notebook-to-HTML conversion (measured separately in the same run).

    .venv/bin/python bench/bench_report.py            # the offline demo's parameters (warms the store first)
    .venv/bin/python bench/bench_report.py --fake     # fake models on the bundled data: the fixed costs alone
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from workbench.report.command import DEFAULT_NOTEBOOK, export_html, run_report

os.environ["WORKBENCH_TEST_PROVIDERS"] = "1"  # --fake: the fake/ test double, in the notebook's kernel too

FAKE = {"baseline": "fake/base", "candidates": ["fake/cand"], "judge": None,
        "metrics": ["chrf", "rouge_l", "bleu", "length_chars"], "report_name": "bench-fake"}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def kernel_only(tmp: Path) -> float:
    """papermill on a one-cell notebook: process + nbformat + kernel start + shutdown."""
    import papermill

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp / "empty.ipynb"
    nbformat.write(nb, src)
    return timed(lambda: papermill.execute_notebook(str(src), str(tmp / "out.ipynb"), kernel_name="python3",
                                                    progress_bar=False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fake", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    overrides = dict(FAKE, store=str(tmp / "fake.db")) if args.fake else {}
    reports = tmp / "reports"
    warm = timed(lambda: run_report(None, overrides, DEFAULT_NOTEBOOK, reports))
    name = overrides.get("report_name", "demo")
    totals, pipelines, kernels, converts = [], [], [], []
    for _ in range(args.repeat):
        totals.append(timed(lambda: run_report(None, overrides, DEFAULT_NOTEBOOK, reports)))
        manifest = json.loads((reports / name / "manifest.json").read_text())
        assert manifest["calls"]["made"] == 0, f"warm re-run made {manifest['calls']['made']} calls"
        pipelines.append(manifest["pipeline_wall_s"])
        kernels.append(kernel_only(tmp))
        converts.append(timed(lambda: export_html(reports / name / "report.ipynb", tmp / "again.html")))
    total, kernel, convert, pipeline = (statistics.median(v) for v in (totals, kernels, converts, pipelines))
    print(f"first run (warming the store): {warm:.1f} s")
    print(f"warm re-run, median of {args.repeat}: {total:.1f} s, zero model calls")
    print(f"  kernel start + papermill overhead (empty notebook): {kernel:.1f} s = {kernel / total:.0%} of the re-run")
    print(f"  notebook -> HTML conversion: {convert:.1f} s = {convert / total:.0%}")
    print(f"  pipeline inside the notebook (store reads, metrics, stats): {pipeline:.1f} s = {pipeline / total:.0%}")
    print(f"  rest (figures, tables, writing files): {max(0.0, total - kernel - convert - pipeline):.1f} s")


if __name__ == "__main__":
    main()
