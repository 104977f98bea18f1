"""The drift report: the bundled drift notebook executed by papermill into the user's project,
`reports/<name>/{report.ipynb, report.html, drift.json, drifted_items.jsonl}`, like the migration
report. The executed notebook is the record; the HTML is exported by the same offline exporter
as the migration report (plotly embedded once, no CDN).
"""
from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from workbench.errors import InputError, Problem, WorkbenchError
from workbench.monitor.config import DriftConfig
from workbench.monitor.run import DRIFT_JSON, ITEMS_JSONL
from workbench.report.command import export_html, kernel_env

NOTEBOOK = "drift_monitor.ipynb"


def notebook_path() -> Path:
    return Path(str(files("workbench") / "resources" / "notebooks" / NOTEBOOK))


def report_dir(config: DriftConfig, reports_dir: str | Path | None = None) -> Path:
    """<reports_dir>/<report_name>: reports_dir as given (the CLI's current folder for a relative
    one), else reports/ of the project."""
    return (Path(reports_dir) if reports_dir else config.base_dir / "reports").resolve() / config.report_name


def run_report(config: DriftConfig, reports_dir: str | Path | None = None,
               notebook: str | Path | None = None) -> tuple[int, Path, dict[str, Any]]:
    """Execute the drift notebook; returns (exit code 0/1, report folder, drift.json content).
    Bad input raises InputError with the located problems the notebook found; a notebook that
    fails for another reason raises WorkbenchError naming the cell (report.html shows it)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook) if notebook else notebook_path()
    if not notebook.is_file():
        raise InputError(f"{notebook}: drift notebook not found")
    config.preflight()
    out_dir = report_dir(config, reports_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (DRIFT_JSON, ITEMS_JSONL, "report.html"):
        (out_dir / stale).unlink(missing_ok=True)
    params = config.model_dump(mode="json")
    params["output_dir"] = str(out_dir.resolve())
    params["project_dir"] = str(config.base_dir)
    executed = out_dir / "report.ipynb"
    failure = None
    try:
        with kernel_env():
            papermill.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name="python3",
                                       cwd=str(config.base_dir), progress_bar=False, log_output=False,
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as exc:
        failure = f"cell {exc.cell_index} failed: {exc.ename}: {exc.evalue}"
    if executed.is_file():
        export_html(executed, out_dir / "report.html")
    payload = _read(out_dir / DRIFT_JSON)
    if payload and payload.get("status") == "error":
        raise InputError([Problem(**p) for p in payload["problems"]])
    if failure or not payload:
        raise WorkbenchError(f"drift report incomplete: {failure or 'the notebook wrote no drift.json'}; "
                             f"see {out_dir / 'report.html'}")
    return int(payload["exit_code"]), out_dir, payload


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
