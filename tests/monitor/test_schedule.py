"""The loop on a schedule: `workbench init` writes a cycle.toml that builds, and a GitHub Actions
workflow that parses, is scheduled, names only commands and flags the CLI accepts and passes no
secret as a parameter; cycle.ipynb (Airflow's papermill operator) takes the cycle's parameters and
runs; the docs' cron line and Airflow DAG name what exists."""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import papermill
import pytest

from tests.monitor._project import make_project
from workbench.cli import build_parser
from workbench.monitor.cycle import CycleConfig, build_config
from workbench.monitor.schedule import WORKFLOW_PATH
from workbench.project.lookup import bundled
from workbench.project.scaffold import init_project

yaml = pytest.importorskip("yaml")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cycle.md"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return init_project(tmp_path_factory.mktemp("init") / "my-migration")


def _workbench_commands(text: str) -> list[list[str]]:
    """Every `workbench ...` invocation in shell text, as argv after the program name."""
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        for part in re.split(r"&&|\|\||;|>>", line):
            words = shlex.split(part.strip()) if part.strip() else []
            for i, word in enumerate(words):
                if word.endswith("workbench") and i + 1 < len(words):
                    found.append(words[i + 1:])
    return found


def _check_parses(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)  # raises UsageError on an unknown command or flag
    assert args.command == argv[0]


def test_workflow_parses_is_scheduled_and_runs_the_cycle(project):
    text = (project / WORKFLOW_PATH).read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", triggers["schedule"][0]["cron"])
    steps = workflow["jobs"]["cycle"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    commands = [argv for run in runs for argv in _workbench_commands(run)]
    assert commands == [["cycle", "--params", "cycle.toml"]]
    for argv in commands:
        _check_parses(argv)
    assert (project / "cycle.toml").is_file()


def test_workflow_passes_no_secret_as_a_parameter(project):
    workflow = yaml.safe_load((project / WORKFLOW_PATH).read_text(encoding="utf-8"))
    env = workflow["jobs"]["cycle"]["env"]
    assert env["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    for step in workflow["jobs"]["cycle"]["steps"]:
        for key in ("run", "with"):
            assert "secrets." not in str(step.get(key, "")), step  # keys only through the environment
    assert "secret" not in (project / "cycle.toml").read_text(encoding="utf-8").lower()


def test_cycle_toml_builds_the_cycle_config(project):
    config = build_config(project / "cycle.toml")
    assert config.project_dir == str(project) and (project / config.report_params).is_file()
    assert config.production == "bundled:drift_demo_production.jsonl.gz" and config.path(config.production).is_file()
    assert config.inherit_fields == ["task"] and config.dedup_threshold == 0.90
    # every field is there, written or commented out
    text = (project / "cycle.toml").read_text(encoding="utf-8")
    for name in CycleConfig.model_fields:
        if name != "project_dir":
            assert re.search(rf"^#? ?{name} = ", text, re.M), name


def test_cycle_notebook_parameters_are_the_cycle_config():
    declared = papermill.inspect_notebook(str(bundled("notebooks/cycle.ipynb")))
    assert list(declared) == list(CycleConfig.model_fields)
    defaults = CycleConfig.model_construct().model_dump(mode="json")
    for name, spec in declared.items():
        assert ast.literal_eval(spec["default"]) == defaults[name], name


def test_cycle_notebook_runs_a_stable_log(tmp_path):
    root = make_project(tmp_path, stable=True)
    out = tmp_path / "cycle-run.ipynb"
    papermill.execute_notebook(str(bundled("notebooks/cycle.ipynb")), str(out), kernel_name="python3", cwd=str(root),
                               parameters={"project_dir": str(root), "production": "logs/*.jsonl", "today": "2026-11-16",
                                           "drift_notebook": False,
                                           "drift": {"window": "week", "signals": ["length", "language", "vocabulary"]}},
                               progress_bar=False)
    assert "nothing to run (exit 0)" in out.read_text(encoding="utf-8")
    assert (root / "reports" / "cycle-drift" / "cycle.json").is_file() and not (root / "reports" / "cycle").exists()


def test_docs_cron_and_airflow_name_what_exists():
    text = DOCS.read_text(encoding="utf-8")
    cron = re.search(r"```cron\n(.*?)```", text, re.S).group(1)
    commands = _workbench_commands(cron)
    assert commands and all(argv[0] == "cycle" for argv in commands)
    for argv in commands:
        _check_parses(argv)
    dag = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    tree = ast.parse(dag)
    assert "PapermillOperator" in dag and 'bundled("notebooks/cycle.ipynb")' in dag
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "PapermillOperator")
    parameters = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "parameters"))
    assert set(parameters) <= set(CycleConfig.model_fields)
    assert bundled("notebooks/cycle.ipynb").is_file()
    for argv in _workbench_commands(re.search(r"```bash\n(.*?)```", text, re.S).group(1)):
        _check_parses(argv)
