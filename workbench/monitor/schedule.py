"""What `workbench init` writes so the migration loop runs on a schedule: `cycle.toml` (every cycle
parameter with its meaning) and `.github/workflows/workbench-cycle.yml` (a GitHub Actions
`schedule:` job calling `workbench cycle`). Keys reach the job through the environment only, never
as parameters (papermill writes parameters into the executed notebook). docs/cycle.md shows the
same for cron and for Airflow's papermill operator (the bundled cycle.ipynb)."""
from __future__ import annotations

from pathlib import Path

from workbench.monitor.cycle import CycleConfig
from workbench.project.params import toml_value

WORKFLOW_PATH = ".github/workflows/workbench-cycle.yml"
# the project's values where they differ from CycleConfig's defaults
_PROJECT_VALUES = {
    "production": "bundled:drift_demo_production.jsonl.gz",
    "drift": {"window": "week", "id_field": "request_id"},
    "inherit_fields": ["task"],
}
_COMMENTS = {
    "drift": "request_id: the demo log's id column, kept as each refreshed item's id",
    "production": "here the bundled demo log; yours e.g. \"logs/*.jsonl.gz\"",
    "inherit_fields": "the bundled prompts look up `task`: production items take it from their nearest item",
}

WORKFLOW = """\
# The migration loop on a schedule: drift check of the newest production log -> refreshed evaluation
# set -> migration report (for a retiring model's successor when that is the trigger).
# `workbench cycle` exits 0 when nothing triggered (or the report PASSes), 1 FAIL, 2 INCONCLUSIVE,
# 3 could not run: any non-zero code fails the job, and the reports are uploaded either way.
name: workbench-cycle
on:
  schedule:
    - cron: "0 6 * * 1"          # Mondays 06:00 UTC
  workflow_dispatch: {}
permissions:
  contents: read
jobs:
  cycle:
    runs-on: ubuntu-latest
    timeout-minutes: 120
    env:
      HF_HUB_OFFLINE: "1"
      HF_DATASETS_OFFLINE: "1"
      LITELLM_LOCAL_MODEL_COST_MAP: "True"
      # Keys come from the environment only; they never become parameters.
      OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {python-version: "3.11"}
      - name: Cache the response store (a re-run on the same log makes no model call)
        uses: actions/cache@v4
        with:
          path: .workbench
          key: workbench-store-${{ github.run_id }}
          restore-keys: workbench-store-
      - name: Install
        run: |
          pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
          pip install migration-workbench
      - name: Cycle
        run: workbench cycle --params cycle.toml
      - name: Upload the reports and the refreshed set
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: workbench-cycle
          path: |
            reports/
            data/
"""


def cycle_toml() -> str:
    """Every cycle parameter with its meaning; a parameter without a value is left commented out."""
    lines = ["# `workbench cycle --params cycle.toml`: drift check -> refresh -> migration report, for a scheduler",
             "# (.github/workflows/workbench-cycle.yml, cron, Airflow: see the workbench docs, cycle.md).",
             "# Relative paths resolve against this file's folder.", ""]
    defaults = CycleConfig.model_construct().model_dump(mode="json")
    for name, field in CycleConfig.model_fields.items():
        if name == "project_dir":
            continue
        value = _PROJECT_VALUES.get(name, defaults.get(name))
        lines.append(f"# {field.description}" + (f"; {_COMMENTS[name]}" if name in _COMMENTS else ""))
        lines.append(f"# {name} = \"2026-11-16\"" if name == "today" else
                     f"# {name} = \"name@version\"" if value is None else f"{name} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def write_schedule(folder: Path) -> None:
    """cycle.toml and the scheduled workflow into a new project."""
    (folder / "cycle.toml").write_text(cycle_toml(), encoding="utf-8")
    workflow = folder / WORKFLOW_PATH
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(WORKFLOW, encoding="utf-8")
