"""`workbench report`: execute the migration-report notebook with papermill and write
reports/<name>/{report.ipynb, report.html, verdict.json, manifest.json}.

The executed notebook is the record. Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 no report.
Secrets never become parameters: the notebook reads keys from the environment itself.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import pickle
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from workbench.errors import EXIT_COULD_NOT_RUN, VERDICT_EXIT_CODES, EvidenceError, InputError, WorkbenchError
from workbench.pipeline import CALLS_MADE_ENV, RESULT_ENV, plan_run, run_pipeline, warn_out_of_reach
from workbench.progress import PhaseReporter, phase
from workbench.project.lookup import bundled
from workbench.report.kernel import KERNEL_NAME, started_kernel
from workbench.report.schema_import import import_jsonschema
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
    import_jsonschema()  # before papermill imports nbformat
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}


BUNDLE_MIN_CHARS = 1_000_000  # an output this large is a script bundle (plotly.js: about 4.8 MB)


def export_html(executed: Path, html_path: Path, *, set_aside: bool = True, nb: Any = None) -> None:
    """Self-contained HTML: inputs hidden, no CDN scripts, widget state dropped (static output stays).
    `nb`: the executed notebook as papermill returned it (not read again from `executed`; changed here).
    `set_aside`: script bundles skip nbconvert's HTML re-parse (`_set_aside_bundles`)."""
    import_jsonschema()  # before nbformat
    import nbformat

    if nb is None:
        nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("widgets", None)
    bundles = _set_aside_bundles(nb) if set_aside else {}
    body, _ = html_exporter().from_notebook_node(nb, resources={"metadata": {"name": nb.metadata.get("title", "Migration report")}})
    for token, html in bundles.items():
        if body.count(token) != 1:  # the exporter did not pass the output through as it is: export it whole
            return export_html(executed, html_path, set_aside=False)
        body = body.replace(token, html.strip())  # as the template writes an output: trimmed
    body = _MATHJAX_CDN.sub("", body)
    if _EXTERNAL_SCRIPT.search(body):
        raise RuntimeError("report HTML would load a script from the network; refusing to write it")
    html_path.write_text(body, encoding="utf-8")


@functools.lru_cache(maxsize=1)
def html_exporter() -> Any:
    """The report's HTML exporter (offline template, inputs and prompts hidden), built once per process."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="offline", extra_template_basedirs=[str(bundled("templates"))],
                        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)


def _warm_html_exporter() -> None:
    """Build the exporter and export a two-cell notebook with it (nbconvert's imports, its Jinja
    templates, the Markdown and HTML filters), on a thread while the kernel runs the report: this
    process only waits then. A failure here is left to the real export, which raises it."""
    try:
        import_jsonschema()
        from nbformat import v4

        sample = v4.new_notebook(cells=[v4.new_markdown_cell("# x\n*y*"), v4.new_code_cell(
            "x", outputs=[v4.new_output("display_data", data={"text/html": "<p>x</p>", "text/plain": "x"})])])
        html_exporter().from_notebook_node(sample)
    except Exception:  # noqa: BLE001
        pass


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
    extra_env = {CALLS_MADE_ENV: "1"}  # a project's older notebook runs the pipeline itself: on the warm store
    params = config.model_dump(mode="json")
    if is_postgres_url(config.store):  # a store URL's password goes the same way, as libpq's PGPASSWORD
        params["store"], password = split_password(config.store)
        if password is not None:
            extra_env["PGPASSWORD"] = password
    params["output_dir"] = str(out_dir.resolve())
    params["project_dir"] = str(config.base_dir)
    # the kernel starts first and imports what the notebook needs while this process checks, plans
    # and runs the pipeline (`kernel.started_kernel`); the result reaches it in a file named now
    with handed_over() as result_file, \
            started_kernel(config.base_dir, kernel_environment({**extra_env, RESULT_ENV: str(result_file)})) as kernel:
        # checked once (every missing file, package, model and key at once, before any call); the items
        # are selected and every request rendered once, and handed down to generation
        plan = plan_run(config, requirements=True, calls=True)
        warn_out_of_reach(config, plan.items)
        result = run_pipeline(config, progress=progress, plan=plan)  # the calls, then scores, comparison, gate
        out_dir.mkdir(parents=True, exist_ok=True)
        hand_over(result, result_file)
        started = time.perf_counter()
        executed, failure = _execute(notebook, out_dir, params, config.base_dir, kernel.manager, progress)
        kernel.stop_soon()
        if executed is not None or (out_dir / "report.ipynb").is_file():
            writing = phase(progress, "writing report.html", 1)
            export_html(out_dir / "report.ipynb", out_dir / "report.html", nb=executed)
            writing.update(1)
            writing.close()
    if failure is not None:
        _failure_verdict(out_dir, failure[0], failure[1])
        return EXIT_COULD_NOT_RUN, out_dir
    write_record(result, out_dir, report_wall_s=round(time.perf_counter() - started, 2),
                 notebook=str(notebook.resolve()))
    return VERDICT_EXIT_CODES[result.verdict], out_dir


def _execute(notebook: Path, out_dir: Path, params: dict[str, Any], cwd: Path, kernel: Any,
             progress: PhaseReporter | None) -> tuple[Any, tuple[str, int | None] | None]:
    """papermill runs the notebook in the started kernel and writes report.ipynb; returns the
    executed notebook (None when a cell failed: papermill has written it with the error) and the
    failure (its message and cell), if any."""
    import_jsonschema()  # before papermill imports nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    cells = phase(progress, "executing the report notebook", 1)
    failure: tuple[str, int | None] | None = None
    executed = None
    exporter = threading.Thread(target=_warm_html_exporter, name="workbench-html-exporter", daemon=True)
    exporter.start()  # nbconvert's import and templates, while the kernel works
    try:
        executed = papermill.execute_notebook(str(notebook), str(out_dir / "report.ipynb"), parameters=params,
                                              kernel_name=KERNEL_NAME, km=kernel, cwd=str(cwd),
                                              progress_bar=False, log_output=False,
                                              # written once at the end (or with the failing cell), not at
                                              # every cell: each save serialized the whole notebook, plotly.js included
                                              request_save_on_cell_execute=False)
    except PapermillExecutionError as exc:
        failure = (redact(f"cell {exc.cell_index} (execution count {exc.exec_count}) failed: {exc.ename}: {exc.evalue}"),
                   exc.cell_index)
    finally:
        cells.update(1, int(failure is not None))
        cells.close()
        exporter.join()
    return executed, failure


def write_record(result: Any, out_dir: Path, **manifest_extra: Any) -> None:
    """verdict.json and manifest.json, written here only (the notebook shows the same result): the
    verdict record and what the report was made from, with the calls this run made."""
    (out_dir / "verdict.json").write_text(json.dumps(result.verdict_json(), indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    manifest = {**result.manifest, **manifest_extra}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str),
                                           encoding="utf-8")


@contextmanager
def handed_over() -> Iterator[Path]:
    """A private file for the pipeline's result, for the notebook's kernel (`pipeline.notebook_result`
    reads it): the kernel shows what this process computed and recomputes nothing. Named before the
    kernel starts (its environment holds the name), written by `hand_over`, removed after."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-report-"))
    try:
        yield folder / "result.pickle"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def hand_over(result: Any, path: Path) -> None:
    with path.open("wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)


def kernel_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment and what a notebook kernel of the workbench needs on top: figures
    embed plotly.js once (interactive offline in the HTML), no weight-loading bars in the record,
    and `extra` (the handed-over result, a credential-bearing api_base)."""
    return {**os.environ, "PLOTLY_RENDERER": "plotly_mimetype+notebook", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            **(extra or {})}


@contextmanager
def kernel_env(extra: dict[str, str] | None = None) -> Iterator[None]:
    """`kernel_environment` set in this process, for a kernel papermill starts itself (drift)."""
    wanted = {name: value for name, value in kernel_environment(extra).items() if os.environ.get(name) != value}
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
