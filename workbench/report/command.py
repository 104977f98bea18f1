"""`workbench report`: execute the migration-report notebook with papermill and write
reports/<name>/{report.ipynb, report.html, verdict.json, manifest.json}.

The executed notebook is the record. Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 no report.
Secrets never become parameters: the notebook reads keys from the environment itself.
"""
from __future__ import annotations

import ast
import json
import os
import pickle
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from workbench.errors import EXIT_COULD_NOT_RUN, VERDICT_EXIT_CODES, EvidenceError, InputError, WorkbenchError
from workbench.pipeline import CALLS_MADE_ENV, RESULT_ENV, plan_run, run_pipeline, warn_out_of_reach
from workbench.progress import PhaseReporter, phase
from workbench.project.lookup import bundled
from workbench.secrets import redact
from workbench.store.postgres import is_postgres_url, split_password
from workbench.task.config import MigrationConfig

DEFAULT_NOTEBOOK = "migration_report.ipynb"
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]+src=[\"']https?://", re.I)
# plotly's notebook renderer adds a MathJax loader from a CDN; reports typeset no math, so it goes.
_MATHJAX_CDN = re.compile(r"<script[^>]+src=[\"']https?://[^\"']*mathjax[^\"']*[\"'][^>]*>\s*</script>", re.I)


def bundled_notebook(name: str) -> Path:
    return bundled(f"notebooks/{name}")


def report_notebook(config: MigrationConfig) -> Path:
    """The project's notebooks/migration_report.ipynb when it has one (a cell added there is part of
    its report), else the bundled notebook."""
    own = config.base_dir / "notebooks" / DEFAULT_NOTEBOOK
    return own if own.is_file() else bundled_notebook(DEFAULT_NOTEBOOK)


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The notebook's parameter names and their default values (literals only)."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}


BUNDLE_MIN_CHARS = 1_000_000  # an output this large is a script bundle (plotly.js: about 4.8 MB)


def export_html(executed: Path, html_path: Path, *, set_aside: bool = True) -> None:
    """Self-contained HTML: inputs hidden, no CDN scripts, widget state dropped (static output stays).
    `set_aside`: script bundles skip nbconvert's HTML re-parse (`_set_aside_bundles`)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("widgets", None)
    bundles = _set_aside_bundles(nb) if set_aside else {}
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(bundled("templates"))],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": nb.metadata.get("title", "Migration report")}})
    for token, html in bundles.items():
        if body.count(token) != 1:  # the exporter did not pass the output through as it is: export it whole
            return export_html(executed, html_path, set_aside=False)
        body = body.replace(token, html.strip())  # as the template writes an output: trimmed
    body = _MATHJAX_CDN.sub("", body)
    if _EXTERNAL_SCRIPT.search(body):
        raise RuntimeError("report HTML would load a script from the network; refusing to write it")
    html_path.write_text(body, encoding="utf-8")


def _set_aside_bundles(nb: Any) -> dict[str, str]:
    """Replace each script bundle output (plotly.js, embedded once) by a comment token: nbconvert
    re-parses its whole HTML with BeautifulSoup (alt text, tabindex), which takes seconds on 5 MB of
    JavaScript; the bundle goes back in afterwards, unchanged. {token: the bundle's HTML}."""
    bundles: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            text = "".join(html) if isinstance(html, list) else html
            if isinstance(text, str) and len(text) >= BUNDLE_MIN_CHARS and text.lstrip().startswith("<script"):
                token = f"<!-- workbench: script bundle {len(bundles)} -->"
                bundles[token] = text
                output["data"]["text/html"] = token
    return bundles


OUTPUTS = ("verdict.json", "manifest.json", "report.html", "report.ipynb")


def _clear(out_dir: Path) -> None:
    """Remove a previous run's outputs before anything else: a report that fails must never leave
    the last run's verdict (a PASS) where CI reads it."""
    for stale in OUTPUTS:
        (out_dir / stale).unlink(missing_ok=True)


def _failure_verdict(out_dir: Path, message: str, cell: int | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    verdict = {"verdict": "ERROR", "complete": False, "error": message, "failed_cell": cell, "rules": []}
    (out_dir / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted before the report was complete"
    if isinstance(exc, WorkbenchError):
        return redact(str(exc))
    return redact(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])


def report_dir(config: MigrationConfig, reports_dir: str | Path | None) -> Path:
    name = config.report_name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise InputError(f"parameter 'report_name': '{name}' must be letters, digits, '.', '_' or '-'")
    return (Path(reports_dir) if reports_dir else config.base_dir / "reports") / name


def run_report(config: MigrationConfig, notebook: str | Path | None = None, reports_dir: str | Path | None = None,
               progress: PhaseReporter | None = None) -> tuple[int, Path]:
    """Produce reports/<name>/; returns (exit code, report folder).

    The model calls (generation, judging) run here first, with progress on stderr; the notebook then
    runs the same pipeline on the warm store, so the executed notebook holds the record and no call.
    The previous run's outputs go first; whatever stops this run (bad input, a failed call, Ctrl-C)
    leaves an ERROR verdict.json in the folder (a folder that did not exist stays absent on bad input)."""
    notebook = Path(notebook) if notebook else report_notebook(config)
    if not notebook.is_file():
        raise InputError(f"{notebook}: report notebook not found")
    out_dir = report_dir(config, reports_dir)
    _clear(out_dir)
    try:
        return _run_report(config, notebook, out_dir, progress)
    except BaseException as exc:
        if out_dir.is_dir() or isinstance(exc, EvidenceError):
            _failure_verdict(out_dir, _failure_reason(exc), None)
        raise


def _run_report(config: MigrationConfig, notebook: Path, out_dir: Path,
                progress: PhaseReporter | None) -> tuple[int, Path]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    # checked once (every missing file, package, model and key at once, before any call); the items
    # are selected and every request rendered once, and handed down to generation
    plan = plan_run(config, requirements=True, calls=True)
    warn_out_of_reach(config, plan.items)
    result = run_pipeline(config, progress=progress, plan=plan)  # the calls, then scores, comparison, gate
    out_dir.mkdir(parents=True, exist_ok=True)
    params = config.model_dump(mode="json")
    extra_env = {CALLS_MADE_ENV: "1"}  # a project's older notebook runs the pipeline itself: on the warm store

    if is_postgres_url(config.store):  # a store URL's password goes the same way, as libpq's PGPASSWORD
        params["store"], password = split_password(config.store)
        if password is not None:
            extra_env["PGPASSWORD"] = password
    params["output_dir"] = str(out_dir.resolve())
    params["project_dir"] = str(config.base_dir)
    executed = out_dir / "report.ipynb"
    started = time.perf_counter()
    failure: tuple[str, int | None] | None = None
    cells = phase(progress, "executing the report notebook", 1)
    try:
        with handed_over(result) as result_file, kernel_env({**extra_env, RESULT_ENV: result_file}):
            papermill.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name="python3",
                                       cwd=str(config.base_dir), progress_bar=False, log_output=False,
                                       # written once at the end (or with the failing cell), not at every
                                       # cell: each save serialized the whole notebook, plotly.js included
                                       request_save_on_cell_execute=False,
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no TCP warning
    except PapermillExecutionError as exc:
        failure = (redact(f"cell {exc.cell_index} (execution count {exc.exec_count}) failed: {exc.ename}: {exc.evalue}"),
                   exc.cell_index)
    finally:
        cells.update(1, int(failure is not None))
        cells.close()
    if executed.is_file():
        writing = phase(progress, "writing report.html", 1)
        export_html(executed, out_dir / "report.html")
        writing.update(1)
        writing.close()
    if failure is not None:
        _failure_verdict(out_dir, failure[0], failure[1])
        return EXIT_COULD_NOT_RUN, out_dir
    write_record(result, out_dir, report_wall_s=round(time.perf_counter() - started, 2),
                 notebook=str(notebook.resolve()))
    return VERDICT_EXIT_CODES[result.verdict], out_dir


def write_record(result: Any, out_dir: Path, **manifest_extra: Any) -> None:
    """verdict.json and manifest.json, written here only (the notebook shows the same result): the
    verdict record and what the report was made from, with the calls this run made."""
    (out_dir / "verdict.json").write_text(json.dumps(result.verdict_json(), indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    manifest = {**result.manifest, **manifest_extra}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str),
                                           encoding="utf-8")


@contextmanager
def handed_over(result: Any) -> Iterator[str]:
    """The pipeline's result in a private file for the notebook's kernel (`pipeline.notebook_result`
    reads it): the kernel shows what this process computed and recomputes nothing. Removed after."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-report-"))
    try:
        path = folder / "result.pickle"
        with path.open("wb") as handle:
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
        yield str(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def kernel_env(extra: dict[str, str] | None = None) -> Iterator[None]:
    """The kernel inherits these: figures embed plotly.js once (interactive offline in the HTML), no
    weight-loading bars in the record, and `extra` (a credential-bearing api_base). Every
    papermill-run notebook of the workbench (report, drift) runs inside this."""
    wanted = {"PLOTLY_RENDERER": "plotly_mimetype+notebook", "HF_HUB_DISABLE_PROGRESS_BARS": "1", **(extra or {})}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
