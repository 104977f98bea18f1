"""Every notebook: one `parameters` cell of literals, and it runs top to bottom under nbval on a
papermill-prepared copy (fake models for speed; the real-model report runs in test_demo_report)."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

from workbench.calls import CallPolicy
from workbench.runner import ModelSpec, generate
from workbench.store import Store

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"migration_report.ipynb", "explore.ipynb", "label_pairs.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_of_literals(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    declared = papermill.inspect_notebook(str(path))
    assert declared, f"{path.name}: papermill found no parameters"
    for name, spec in declared.items():
        ast.literal_eval(spec["default"])  # raises if a default is not a literal
    # nothing but assignments of literals (and comments) in the parameters cell
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), f"{path.name}: not an assignment: {ast.dump(node)[:80]}"
        ast.literal_eval(node.value)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A small store with two fake models' responses, and every notebook prepared against it."""
    tmp = tmp_path_factory.mktemp("nb")
    items = pd.read_json(REPO / "data" / "support_reviews.jsonl", lines=True).groupby(["language", "task"]).head(3)
    data = tmp / "items.jsonl"
    items.to_json(data, orient="records", lines=True, force_ascii=False)
    from workbench.data import load_items

    loaded = load_items(data)
    store_path = tmp / "store.db"
    with Store(store_path) as store:
        generate(loaded, [ModelSpec(name="fake/base", prompt="support_fewshot@v1"),
                          ModelSpec(name="fake/cand", prompt="support_chat@v1")], store,
                 policy=CallPolicy(max_attempts=1), progress=False)
    params = {
        "migration_report.ipynb": {"dataset": str(data), "baseline": "fake/base", "candidates": ["fake/cand"],
                                   "judge": None, "metrics": ["chrf", "length_chars"], "bootstrap_resamples": 50,
                                   "store": str(store_path), "report_name": "nbval"},
        "explore.ipynb": {"store_path": str(store_path), "baseline": "fake/base", "candidates": ["fake/cand"]},
        "label_pairs.ipynb": {"store_path": str(store_path), "baseline": "fake/base", "candidate": "fake/cand",
                              "rater": "nbval-rater"},
    }
    out = []
    for path in NOTEBOOKS:
        wanted = params.get(path.name, {})
        declared = papermill.inspect_notebook(str(path))
        copy = tmp / path.name
        papermill.execute_notebook(str(path), str(copy), parameters={k: v for k, v in wanted.items() if k in declared},
                                   prepare_only=True, kernel_name="python3")
        out.append(copy)
    return out


@pytest.mark.slow
def test_notebooks_run_under_nbval(prepared):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval-lax", "-q",
                           "--rootdir", str(prepared[0].parent), *map(str, prepared)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
