"""The project's own metrics module (`metrics_module` in params.toml): loaded once per process by every
path through the config's preflight, so a metric it registers is scored by `workbench compare` and by
the papermill-run report; every way it can go wrong is one error naming the file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.metrics import get_metric, registry
from workbench.metrics.user_metrics import _LOADED, load_metrics_module

REPO = Path(__file__).resolve().parents[2]
N = 40

STARTS_WITH_CAND = '''
from workbench import Metric, register_metric

register_metric(Metric(name="says_cand", fn=lambda responses, references, languages: [float(r.startswith("cand")) for r in responses],
                       higher_is_better=False, aggregation="rate", needs_reference=False,
                       description="answers that start with the candidate's name"))
'''


@pytest.fixture(autouse=True)
def clean_registry():
    before = registry.registered()
    _LOADED.clear()
    yield
    registry.restore(before)
    _LOADED.clear()


def _module(folder: Path, text: str, name: str = "my_metrics.py") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_a_file_relative_to_the_project_registers_its_metrics_once(tmp_path):
    _module(tmp_path, STARTS_WITH_CAND)
    assert load_metrics_module("my_metrics.py", tmp_path) == ["says_cand"]
    metric = get_metric("says_cand")
    assert metric.compute(["cand: hi", "base: hi"]) == [1.0, 0.0]
    assert load_metrics_module("my_metrics.py", tmp_path) == ["says_cand"]
    assert get_metric("says_cand") is metric  # unchanged file: not run again


def test_an_edited_module_replaces_its_own_metrics(tmp_path):
    path = _module(tmp_path, STARTS_WITH_CAND)
    load_metrics_module("my_metrics.py", tmp_path)
    path.write_text(STARTS_WITH_CAND.replace("says_cand", "says_candidate"), encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert load_metrics_module("my_metrics.py", tmp_path) == ["says_candidate"]
    assert "says_cand" not in registry.available_metrics()


def test_a_module_the_notebook_imported_itself_is_not_run_again(tmp_path, monkeypatch):
    _module(tmp_path, STARTS_WITH_CAND.replace("says_cand", "imported_first"), "mine_19e.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import mine_19e  # noqa: F401  (a notebook cell did this before running the pipeline)

        assert load_metrics_module("mine_19e.py", tmp_path) == []  # no "already registered" clash
        assert load_metrics_module("mine_19e", tmp_path) == []
        assert get_metric("imported_first").compute(["cand"]) == [1.0]
    finally:
        sys.modules.pop("mine_19e", None)


def test_a_dotted_module_name_is_imported_from_the_project(tmp_path):
    _module(tmp_path, STARTS_WITH_CAND.replace("says_cand", "team_metric"), "teamlib_19e/metrics.py")
    (tmp_path / "teamlib_19e" / "__init__.py").write_text("", encoding="utf-8")
    try:
        assert load_metrics_module("teamlib_19e.metrics", tmp_path) == ["team_metric"]
    finally:
        for name in ("teamlib_19e.metrics", "teamlib_19e"):
            sys.modules.pop(name, None)
    assert str(tmp_path) not in sys.path


@pytest.mark.parametrize("text, expected", [
    ("import math\nx = 1 / 0\n", r"my_metrics.py, line 2: ZeroDivisionError: division by zero"),
    ("def broken(:\n", r"my_metrics.py, line 1: SyntaxError"),
    ("import no_such_package_19e\n", r"my_metrics.py, line 1: ModuleNotFoundError: No module named 'no_such_package_19e'"),
    (STARTS_WITH_CAND.replace("says_cand", "bleu"), r"my_metrics.py, line 3: ValueError: metric 'bleu' is already registered"),
    (STARTS_WITH_CAND.replace("says_cand", "chrf").replace('"))', '"), replace=True)'),
     r"my_metrics.py: registers metric\(s\) chrf, which another metric already has"),
    ("X = 1\n", r"my_metrics.py: registered no metric"),
])
def test_every_failure_is_one_error_naming_the_file_and_the_registry_is_left_as_it_was(tmp_path, text, expected):
    before = registry.registered()
    _module(tmp_path, text)
    with pytest.raises(InputError, match=expected):
        load_metrics_module("my_metrics.py", tmp_path)
    assert registry.registered() == before and get_metric("chrf") is before["chrf"]


def test_a_missing_module_names_where_it_was_looked_for(tmp_path):
    with pytest.raises(InputError, match=r"parameter 'metrics_module': .*nope\.py not found"):
        load_metrics_module("nope.py", tmp_path)
    with pytest.raises(InputError, match=r"module nope_19e\.metrics not found \(looked in"):
        load_metrics_module("nope_19e.metrics", tmp_path)


# ---- through the CLI and the report -----------------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    from workbench.generation.calls import CallPolicy
    from workbench.generation.runner import ModelSpec, generate
    from workbench.models import Sampling
    from workbench.store import Store
    from workbench.task.dataset import load_items

    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(N)], "input": [f"tell me about topic {k}" for k in range(N)],
                          "reference": [f"base: tell me about topic {k}" for k in range(N)]})
    items.to_json(tmp_path / "items.jsonl", orient="records", lines=True)
    _module(tmp_path / "lib", STARTS_WITH_CAND)
    (tmp_path / "params.toml").write_text(
        'dataset = "items.jsonl"\nbaseline = "fake/base"\nbaseline_prompt = ""\ncandidates = ["fake/cand"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf", "says_cand"]\nmetrics_module = "lib/my_metrics.py"\n'
        'sample_size = ""\nbootstrap_resamples = 200\nstore = "s.db"\nlifecycle_file = ""\nreport_name = "t"\n'
        '[gate]\nmin_items = 30\n[gate.metrics.says_cand]\nmax_drop = 0.1\nhigher_is_better = false\n', encoding="utf-8")
    with Store(tmp_path / "s.db") as store:
        generate(load_items(tmp_path / "items.jsonl"), [ModelSpec(name="fake/base"), ModelSpec(name="fake/cand")],
                 store, policy=CallPolicy(max_attempts=1), sampling=Sampling(max_tokens=64, seed=0), progress=False)
    return tmp_path


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=project, env=env)


def test_compare_scores_and_gates_a_metric_of_the_projects_module(project):
    proc = _cli(project, "compare", "--json", "verdict.json")
    assert proc.returncode == 1, proc.stderr  # every candidate answer starts with "cand": the user's rule fails
    deltas = {d["metric"]: d for d in json.loads((project / "verdict.json").read_text())["candidates"]["fake/cand"]
              ["metric_deltas"]}
    assert deltas["says_cand"]["baseline_mean"] == 0.0 and deltas["says_cand"]["candidate_mean"] == 1.0
    assert "says_cand" in proc.stderr


def test_a_failing_module_stops_compare_naming_the_file_and_writes_nothing(project):
    (project / "lib" / "my_metrics.py").write_text("raise RuntimeError('no config for the scorer')\n", encoding="utf-8")
    proc = _cli(project, "compare", "--json", "verdict.json")
    assert proc.returncode == 3
    assert "lib/my_metrics.py, line 1: RuntimeError: no config for the scorer" in proc.stderr
    assert "Traceback" not in proc.stderr and not (project / "verdict.json").exists()


@pytest.mark.slow  # runs the report notebook (papermill, a kernel, nbconvert)
def test_the_report_kernel_loads_the_module_too(project):
    proc = _cli(project, "report", "-q")
    out = project / "reports" / "t"
    assert proc.returncode == 1, proc.stderr[-3000:]
    verdict = json.loads((out / "verdict.json").read_text())
    rules = {r["name"]: r for r in verdict["candidates"]["fake/cand"]["rules"]}
    assert rules["metric:says_cand"]["status"] == "FAIL"
    assert any(d["metric"] == "says_cand" for d in verdict["candidates"]["fake/cand"]["metric_deltas"])
    assert "says_cand" in (out / "report.html").read_text(encoding="utf-8")
    manifest = json.loads((out / "manifest.json").read_text())
    module = manifest["metrics_module"]
    assert module["module"] == "lib/my_metrics.py" and module["metrics"] == ["says_cand"]
    assert len(module["sha256"]) == 64
