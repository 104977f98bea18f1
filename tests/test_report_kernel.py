"""The report's kernel: started before the pipeline, warm when the notebook runs, gone afterwards;
the HTML made from papermill's notebook in memory is the HTML made from the file."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.report import command
from workbench.task.config import build_config

FAKE = {"baseline": "fake/base", "candidates": ["fake/cand"], "judge": None, "metrics": ["chrf"],
        "bootstrap_resamples": 100, "sample_size": 24, "report_name": "t",
        "gate": {"min_items": 10, "metrics": {"chrf": {"max_drop": 100.0, "higher_is_better": True}}}}


def _config(tmp_path: Path, **extra):
    return build_config(None, {**FAKE, "store": str(tmp_path / "store.db"), **extra}, base=tmp_path)


def _watch_kernels(monkeypatch) -> list:
    """Every kernel the report starts, as `started_kernel` yields it."""
    kernels = []
    started_kernel = command.started_kernel

    def watched(*args, **kwargs):
        context = started_kernel(*args, **kwargs)
        kernel = context.__enter__()
        kernels.append(kernel)

        class Context:
            def __enter__(self):
                return kernel

            def __exit__(self, *exc):
                return context.__exit__(*exc)
        return Context()

    monkeypatch.setattr(command, "started_kernel", watched)
    return kernels


def test_the_kernel_starts_before_the_pipeline_and_is_gone_after_the_report(tmp_path, monkeypatch):
    kernels = _watch_kernels(monkeypatch)
    alive_during_pipeline = []
    run_pipeline = command.run_pipeline

    def pipeline(*args, **kwargs):
        alive_during_pipeline.append(kernels[0].manager.has_kernel)  # already running while this computes
        return run_pipeline(*args, **kwargs)

    monkeypatch.setattr(command, "run_pipeline", pipeline)
    code, out = command.run_report(_config(tmp_path), reports_dir=tmp_path / "reports")
    assert code == 0 and alive_during_pipeline == [True]
    manager = kernels[0].manager
    assert not manager.has_kernel and not Path(manager.connection_file).exists()  # stopped, no file left
    notebook = json.loads((out / "report.ipynb").read_text(encoding="utf-8"))
    counts = [cell["execution_count"] for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1))  # the warm-up added no execution count
    names = next(c for c in notebook["cells"] if "notebook_result(globals())" in "".join(c["source"]))
    assert "_w" not in "".join(str(o) for o in names["outputs"])


def test_a_run_that_fails_before_the_notebook_leaves_no_kernel(tmp_path, monkeypatch):
    kernels = _watch_kernels(monkeypatch)

    def failing(*args, **kwargs):
        raise RuntimeError("the pipeline stopped")

    monkeypatch.setattr(command, "run_pipeline", failing)
    with pytest.raises(RuntimeError, match="the pipeline stopped"):
        command.run_report(_config(tmp_path), reports_dir=tmp_path / "reports")
    manager = kernels[0].manager
    assert not manager.has_kernel and not Path(manager.connection_file).exists()


def test_the_warm_up_leaves_the_notebook_namespace_clean(tmp_path):
    """A cell sees only what the notebook itself defined: the warm-up's helper name is gone, and the
    modules it imported are the ones the notebook imports anyway."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys\nprint(sorted(n for n in globals() if not n.startswith('_') and n not in ('In', 'Out', 'exit', 'quit', 'get_ipython', 'open', 'sys')))\n"
        "print('workbench.pipeline' in sys.modules, '_w' in globals())")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "probe.ipynb")
    import papermill

    with command.started_kernel(tmp_path, command.kernel_environment()) as kernel:
        executed = papermill.execute_notebook(str(tmp_path / "probe.ipynb"), str(tmp_path / "out.ipynb"),
                                              kernel_name="python3", km=kernel.manager, progress_bar=False)
        kernel.stop_soon()
    printed = executed.cells[0].outputs[0]["text"].splitlines()
    assert printed == ["[]", "True False"]


def test_the_html_from_papermills_notebook_is_the_html_from_the_file(tmp_path):
    import nbformat

    code, out = command.run_report(_config(tmp_path), reports_dir=tmp_path / "reports")
    assert code == 0
    command.export_html(out / "report.ipynb", tmp_path / "from_file.html")
    command.export_html(out / "report.ipynb", tmp_path / "from_memory.html",
                        nb=nbformat.read(out / "report.ipynb", as_version=4))
    from_file = (tmp_path / "from_file.html").read_text(encoding="utf-8")
    assert from_file == (tmp_path / "from_memory.html").read_text(encoding="utf-8")
    assert from_file == (out / "report.html").read_text(encoding="utf-8")


def test_jsonschema_is_imported_without_the_iri_grammar_and_still_validates():
    """nbformat and plotly's renderers import jsonschema: the report imports it without compiling
    rfc3987_syntax's grammars (seconds), notebooks are validated as before, and the package stays
    importable for whoever asks for it."""
    probe = (
        "import sys\n"
        "from workbench.report.schema_import import import_jsonschema\n"
        "import_jsonschema()\n"
        "import nbformat\n"
        "print('rfc3987_syntax' in sys.modules)\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')])\n"
        "nbformat.validate(nb)\n"
        "nb.cells[0]['cell_type'] = 'no such type'\n"
        "try:\n"
        "    nbformat.validate(nb)\n"
        "    print('invalid notebook accepted')\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid notebook rejected')\n"
        "try:\n"
        "    import rfc3987_syntax\n"
        "    print('importable')\n"
        "except ImportError as exc:\n"
        "    print('absent' if 'No module named' in str(exc) else f'blocked: {exc}')\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["False", "invalid notebook rejected"]
    assert lines[2] in ("importable", "absent")  # never left blocked
