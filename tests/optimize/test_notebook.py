"""The optimize notebook: one parameters cell of literals equal to OptimizeConfig, and it runs under
papermill against the rule server, showing the trials, the result and the prompt diff."""
from __future__ import annotations

import ast
import json

import nbformat
import papermill
import pytest

from tests.optimize.helpers import params
from workbench.optimize.config import OptimizeConfig
from workbench.project.lookup import bundled

NOTEBOOK = bundled("notebooks/optimize_prompt.ipynb")


def test_one_parameters_cell_of_literals_equal_to_the_config():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.metadata["kernelspec"]["name"] == "python3"
    values = {}
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign), ast.dump(node)[:80]
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert set(values) == set(OptimizeConfig.model_fields) == set(papermill.inspect_notebook(str(NOTEBOOK)))
    assert OptimizeConfig(**values) == OptimizeConfig()  # the notebook's defaults are the config's


@pytest.mark.slow
def test_the_notebook_runs_the_optimizer_and_shows_trials_result_and_diff(project, rule_server, tmp_path):
    out = tmp_path / "optimized.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters=params(project, rule_server.url),
                               kernel_name="python3", cwd=str(project), progress_bar=False)
    text = json.dumps(nbformat.read(out, as_version=4).cells)
    assert "trials (run " in text and "<b>confirmed</b>" in text
    assert "plain@v1 -&gt; plain@v1-opt-" in text or "plain@v1 -> plain@v1-opt-" in text  # the diff view
    assert "workbench report -p candidates" in text
    assert list((project / "prompts" / "plain").glob("v1-opt-*.toml"))
