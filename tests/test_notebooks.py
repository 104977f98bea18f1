"""Every notebook: one `parameters` cell of literals, and it runs top to bottom under nbval on a
papermill-prepared copy. The models are real and fast: the baseline `replay/base.jsonl` (recorded
answers) and the candidate `openai/cand` on the local test server (the real-model report runs in
test_demo_report)."""
import ast
import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

from tests.fault_server import FaultServer
from workbench.project.lookup import bundled

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(bundled("notebooks").glob("*.ipynb"))
OURS = ("migration_report.ipynb", "explore.ipynb", "label_pairs.ipynb", "label_analysis.ipynb")
BASELINE, CANDIDATE = "replay/base.jsonl", "openai/cand"


@pytest.fixture(scope="module")
def server():
    with FaultServer() as s:
        yield s


def _models(project: Path, items: pd.DataFrame, url: str) -> str:
    """The baseline's recorded answers (each item's reference) beside the items; the params lines
    naming both models and the server."""
    items[["item_id", "reference"]].rename(columns={"reference": "response"}).to_json(
        project / "base.jsonl", orient="records", lines=True, force_ascii=False)
    return f'baseline = "{BASELINE}"\ncandidates = ["{CANDIDATE}"]\napi_base = "{url}"\n'


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= set(OURS)


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
        # papermill parses every line itself ("Unable to parse line 4" when a comment holds "="): each
        # parameter must be one it sees, or an injected value would not replace it
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        assert target.id in declared, f"{path.name}: papermill cannot parse the line of '{target.id}'"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, server):
    """A project (params.toml, two models' responses and a few labels in its store), and every
    notebook prepared against it the way users run them."""
    from workbench.task.config import build_config
    from workbench.labels import LabelLog
    from workbench.pipeline import label_pairs, run_pipeline

    tmp = tmp_path_factory.mktemp("nb")
    items = pd.read_json(bundled("data/support_reviews.jsonl"), lines=True).groupby(["language", "task"]).head(3)
    items.to_json(tmp / "items.jsonl", orient="records", lines=True, force_ascii=False)
    (tmp / "params.toml").write_text(
        'report_name = "nbval"\ndataset = "items.jsonl"\n' + _models(tmp, items, server.url) +
        'judge = ""\nmetrics = ["chrf", "length_chars"]\nbootstrap_resamples = 100\n'
        'gate = { min_items = 5, metrics = { chrf = { max_drop = 5.0, higher_is_better = true } } }\n', encoding="utf-8")
    config = build_config(tmp / "params.toml")
    run_pipeline(config)
    task, pairs = label_pairs(config)
    with LabelLog(config.store_path, task) as log:
        for rater in ("ann", "bob"):
            for row in pairs.head(4).itertuples():
                log.record(row.item_id, rater, row.model_a, row.model_b, "left", 0)
    as_project = {"params_file": str(tmp / "params.toml")}
    params = {
        "migration_report.ipynb": {**config.model_dump(mode="json"), "project_dir": str(tmp)},
        "explore.ipynb": as_project,
        "label_pairs.ipynb": {**as_project, "rater": "nbval-rater"},
        "label_analysis.ipynb": as_project,
    }
    out = []
    for path in NOTEBOOKS:
        if path.name not in params:
            continue  # the drift and optimizer notebooks are run by their own tests
        declared = papermill.inspect_notebook(str(path))
        copy = tmp / path.name
        papermill.execute_notebook(str(path), str(copy), parameters={k: v for k, v in params[path.name].items()
                                                                     if k in declared},
                                   prepare_only=True, kernel_name="python3")
        out.append(copy)
    return out


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.extend(str(v) for v in output.get("data", {}).values())
    return json.dumps(nb.metadata.get("widgets", {})) + "\n".join(texts)


@pytest.mark.slow
def test_notebooks_run_and_show_the_reports_runs(prepared):
    """Each notebook runs top to bottom on the project's store and shows the report's items (not a
    "nothing to show" message); the raters' notebook names no model anywhere, widget state included."""
    for copy in prepared:
        papermill.execute_notebook(str(copy), str(copy), kernel_name="python3", cwd=str(copy.parent),
                                   progress_bar=False)
    shown = {p.name: _outputs(p) for p in prepared}
    assert "Nothing to" not in "".join(shown.values())
    assert f"12 items; baseline {BASELINE}; candidates {CANDIDATE}; 8 human labels" in shown["explore.ipynb"]
    assert "12 items to label." in shown["label_pairs.ipynb"]
    assert BASELINE not in shown["label_pairs.ipynb"] and CANDIDATE not in shown["label_pairs.ipynb"]
    assert "base.jsonl" not in shown["label_pairs.ipynb"]
    assert "8 labels by 2 raters on 4 items" in shown["label_analysis.ipynb"]
    assert "agreed on 4 of 4" in shown["label_analysis.ipynb"]


def test_opening_a_notebook_outside_a_project_creates_no_store(tmp_path, monkeypatch):
    from workbench.task.config import project_config
    from workbench.errors import StoreError
    from workbench.pipeline import run_pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    with pytest.raises(StoreError, match="store not found"):
        run_pipeline(project_config(), allow_calls=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_explore_opens_from_the_store_with_responses_only(prepared):
    """evidence = False: the explorer reads the report's runs one item at a time (how a 100k-item run
    opens in half a second, docs/bench/scale.md) and says how to get scores, verdicts and labels."""
    project = prepared[0].parent
    out = project / "explore_lazy.ipynb"
    papermill.execute_notebook(str(bundled("notebooks/explore.ipynb")), str(out), kernel_name="python3",
                               parameters={"params_file": str(project / "params.toml"), "evidence": False},
                               cwd=str(project), progress_bar=False)
    shown = _outputs(out)
    assert f"12 items; baseline {BASELINE}; candidates {CANDIDATE}; responses only (set evidence = True" in shown
    assert "Latency per call" not in shown and "Nothing to explore" not in shown
    assert "wb-explorer" in shown  # the explorer's item view was rendered


@pytest.mark.slow
def test_explore_shows_the_latest_runs_when_the_reports_selection_cannot_be_read(tmp_path, server):
    """A report run with `-p sample_size 4` leaves runs of 4 items; params.toml selects all 6. The explorer
    still shows those responses, and says why scores, verdicts and labels are missing."""
    from workbench.task.config import build_config
    from workbench.pipeline import run_pipeline

    items = pd.read_json(bundled("data/support_reviews.jsonl"), lines=True).head(6)
    items.to_json(tmp_path / "items.jsonl", orient="records", lines=True, force_ascii=False)
    params = _params(tmp_path, "params.toml", "items.jsonl", _models(tmp_path, items, server.url))
    run_pipeline(build_config(params, {"sample_size": 4}))
    out = tmp_path / "explore.ipynb"
    papermill.execute_notebook(str(bundled("notebooks/explore.ipynb")), str(out), kernel_name="python3",
                               parameters={"params_file": str(params)}, cwd=str(tmp_path), progress_bar=False)
    shown = _outputs(out)
    assert (f"4 items; baseline {BASELINE}; candidates {CANDIDATE}; responses only: scores, judge verdicts and human "
            "labels need the report's selection, which cannot be read now:") in shown
    assert "2 of 6 responses are not in the store" in shown and "Nothing to explore" not in shown
    assert "wb-explorer" in shown  # the explorer's item view was rendered


def _params(project: Path, name: str, dataset: str, models: str) -> Path:
    (project / name).write_text(
        f'dataset = "{dataset}"\n{models}judge = ""\nmetrics = ["chrf"]\n'
        'baseline_prompt = ""\ncandidate_prompts = [""]\nsample_size = ""\n'
        'gate = { min_items = 5, metrics = { chrf = { max_drop = 5.0, higher_is_better = true } } }\n',
        encoding="utf-8")
    return project / name


def test_report_runs_are_each_arms_latest_run_on_the_configurations_data(tmp_path, server):
    from workbench.task.config import build_config
    from workbench.errors import InputError
    from workbench.pipeline import report_runs, run_pipeline
    from workbench.store import open_store

    project = tmp_path / "project"
    project.mkdir()
    items = pd.read_json(bundled("data/support_reviews.jsonl"), lines=True)
    items.head(6).to_json(project / "items.jsonl", orient="records", lines=True, force_ascii=False)
    items.tail(7).to_json(project / "other.jsonl", orient="records", lines=True, force_ascii=False)
    models = _models(project, pd.concat([items.head(6), items.tail(7)]), server.url)  # one recording for both files
    config = build_config(_params(project, "params.toml", "items.jsonl", models))
    other = build_config(_params(project, "other.toml", "other.jsonl", models))  # a second params file, one store
    with open_store(config.store_path) as store:
        with pytest.raises(InputError, match=f"no run of {BASELINE}, {CANDIDATE} on items.jsonl"):
            report_runs(config, store)
    run_pipeline(config)
    run_pipeline(config)  # a second report run: the explorer reads the newest runs
    with open_store(config.store_path) as store:
        newest = store.runs_frame()
    run_pipeline(other)  # later runs of the same models on another file
    with open_store(config.store_path) as store:
        runs, runs_other = report_runs(config, store), report_runs(other, store)
        frame = store.runs_frame().set_index("run_id")
    assert list(runs) == [BASELINE, CANDIDATE]
    assert runs == {m: int(newest.loc[newest["model"] == m, "run_id"].max()) for m in runs}
    assert set(frame.loc[list(runs.values()), "source"]) == {str(project / "items.jsonl")}
    assert set(frame.loc[list(runs_other.values()), "source"]) == {str(project / "other.jsonl")}
    assert min(runs_other.values()) > max(runs.values())

    moved = tmp_path / "moved"  # the project copied elsewhere: its runs are found by their items
    shutil.copytree(project, moved)
    with open_store(build_config(moved / "params.toml").store_path) as store:
        assert report_runs(build_config(moved / "params.toml"), store) == runs
