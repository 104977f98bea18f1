"""`workbench report`: execute the migration-report notebook with papermill and write
reports/<name>/{report.ipynb, report.html, verdict.json, manifest.json}.

The executed notebook is the record. Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 no report.
Secrets never become parameters: the notebook reads keys from the environment itself.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

from workbench.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = REPO_ROOT / "notebooks" / "migration_report.ipynb"
EXIT_CODES = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 2}
EXIT_NO_REPORT = 3
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]+src=[\"']https?://", re.I)
# plotly's notebook renderer adds a MathJax loader from a CDN; reports typeset no math, so it goes.
_MATHJAX_CDN = re.compile(r"<script[^>]+src=[\"']https?://[^\"']*mathjax[^\"']*[\"'][^>]*>\s*</script>", re.I)


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The notebook's parameter names and their default values (literals only)."""
    import ast

    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}


def parse_cli_value(text: str) -> Any:
    """`-p NAME VALUE`: JSON when it parses (numbers, lists, null, true), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_params_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: parameters file not found")
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(path.read_text(encoding="utf-8"))
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse parameters ({exc})") from None


def resolve_parameters(notebook: Path, params_file: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults from the notebook, then the file, then -p overrides; validated before any kernel starts."""
    from workbench.migration import MigrationConfig

    defaults = notebook_parameters(notebook)
    given = {**(load_params_file(params_file) if params_file else {}), **overrides}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InputError(f"unknown report parameter(s): {', '.join(unknown)} (known: {', '.join(sorted(defaults))})")
    merged = {**defaults, **given}
    MigrationConfig.from_parameters(merged).preflight()  # InputError naming the parameter and the problem
    return merged


def export_html(executed: Path, html_path: Path) -> None:
    """Self-contained HTML: inputs hidden, no CDN scripts, widget state dropped (static output stays)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("widgets", None)
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(_TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": nb.metadata.get("title", "Migration report")}})
    body = _MATHJAX_CDN.sub("", body)
    if _EXTERNAL_SCRIPT.search(body):
        raise RuntimeError("report HTML would load a script from the network; refusing to write it")
    html_path.write_text(body, encoding="utf-8")


def _failure_verdict(out_dir: Path, message: str, cell: int | None) -> None:
    verdict = {"verdict": "ERROR", "complete": False, "error": message, "failed_cell": cell, "rules": []}
    (out_dir / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")


def run_report(params_file: str | None = None, overrides: Mapping[str, Any] | None = None,
               notebook: str | Path | None = None, reports_dir: str | Path | None = None) -> tuple[int, Path | None]:
    """Produce a report; returns (exit code, report folder)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from workbench.secrets import redact

    notebook = Path(notebook) if notebook else DEFAULT_NOTEBOOK
    if not notebook.is_file():
        raise InputError(f"{notebook}: report notebook not found")
    params = resolve_parameters(notebook, params_file, overrides or {})
    name = str(params.get("report_name") or "report")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise InputError(f"report_name '{name}' must be letters, digits, '.', '_' or '-'")
    out_dir = Path(reports_dir or REPO_ROOT / "reports") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("verdict.json", "manifest.json", "report.html"):
        (out_dir / stale).unlink(missing_ok=True)
    params["output_dir"] = str(out_dir.resolve())
    executed = out_dir / "report.ipynb"
    env_before = os.environ.get("PLOTLY_RENDERER")
    # Figures embed plotly.js once and stay interactive offline in the HTML export.
    os.environ["PLOTLY_RENDERER"] = "plotly_mimetype+notebook"
    started = time.perf_counter()
    failure: tuple[str, int | None] | None = None
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name="python3",
                                   cwd=str(REPO_ROOT), progress_bar=False, log_output=False)
    except PapermillExecutionError as exc:
        failure = (redact(f"cell {exc.cell_index} (execution count {exc.exec_count}) failed: {exc.ename}: {exc.evalue}"),
                   exc.cell_index)
    finally:
        if env_before is None:
            os.environ.pop("PLOTLY_RENDERER", None)
        else:
            os.environ["PLOTLY_RENDERER"] = env_before
    if executed.is_file():
        export_html(executed, out_dir / "report.html")
    verdict_path = out_dir / "verdict.json"
    if failure is not None or not verdict_path.is_file():
        message = failure[0] if failure else "the notebook finished without writing verdict.json"
        _failure_verdict(out_dir, message, failure[1] if failure else None)
        return EXIT_NO_REPORT, out_dir
    verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
    manifest_path = out_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["report_wall_s"] = round(time.perf_counter() - started, 2)
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return EXIT_CODES.get(verdict.get("verdict"), EXIT_NO_REPORT), out_dir
