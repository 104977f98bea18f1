"""The one config object: defaults, parameters files, relative paths, notebooks, preflight."""
import json
from pathlib import Path

import pytest

from workbench.config import DEFAULT_GATE, MigrationConfig, build_config, notebook_config
from workbench.errors import InputError
from workbench.project import bundled, project_root, resolve


def test_bundled_paths_point_into_the_package_and_exist():
    config = MigrationConfig()
    assert config.path(config.dataset) == bundled("data/support_reviews.jsonl")
    assert config.path(config.dataset).is_file() and config.path(config.lifecycle_file).is_file()
    assert "site-packages" in str(bundled("x")) or (Path(__file__).parents[1] / "workbench") in bundled("x").parents


def test_relative_paths_resolve_against_the_params_file_folder(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "params.toml").write_text('dataset = "items.jsonl"\nstore = "db/s.db"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the user runs from elsewhere
    config = build_config(project / "params.toml")
    assert config.path(config.dataset) == project.resolve() / "items.jsonl"
    assert config.store_path == project.resolve() / "db" / "s.db"


def test_flags_resolve_against_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = build_config(None, {"dataset": "x.jsonl"})
    assert config.path("x.jsonl") == tmp_path.resolve() / "x.jsonl"
    assert resolve("/abs/x", tmp_path) == Path("/abs/x")


def test_unknown_parameters_and_bad_values_are_named(tmp_path):
    with pytest.raises(InputError, match="unknown parameter.*bogus"):
        build_config(None, {"bogus": 1})
    with pytest.raises(InputError, match="parameter 'max_tokens'"):
        build_config(None, {"max_tokens": -5})
    bad = tmp_path / "p.toml"
    bad.write_text("dataset = [", encoding="utf-8")
    with pytest.raises(InputError, match="p.toml: cannot parse"):
        build_config(bad)


def test_a_secret_in_a_parameter_value_is_not_echoed(monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "sk-live-abcdefgh12345678")
    with pytest.raises(InputError) as caught:
        build_config(None, {"concurrency": "sk-live-abcdefgh12345678"})
    assert "abcdefgh12345678" not in str(caught.value)


def test_empty_string_switches_an_optional_parameter_off():
    config = MigrationConfig(judge="", sample_size="none", candidate_prompts=[""])
    assert config.judge is None and config.sample_size is None and config.candidate_prompts == [None]


def test_project_root_is_found_upwards_from_a_subfolder(tmp_path, monkeypatch):
    (tmp_path / "params.toml").write_text("", encoding="utf-8")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    assert project_root(tmp_path / "notebooks") == tmp_path.resolve()
    bare = tmp_path.parent / (tmp_path.name + "-bare")
    bare.mkdir()
    assert project_root(bare) == bare.resolve()


def test_notebook_reads_the_project_params_and_edited_cells_win(tmp_path, monkeypatch):
    (tmp_path / "params.toml").write_text('report_name = "from-file"\nseed = 7\n', encoding="utf-8")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    cell = MigrationConfig().model_dump(mode="json")
    config = notebook_config({**cell, "seed": 3})
    assert config.report_name == "from-file" and config.seed == 3 and config.base_dir == tmp_path.resolve()
    run_by_cli = notebook_config({**cell, "project_dir": str(tmp_path / "elsewhere")})
    assert run_by_cli.report_name == "demo"  # papermill's parameters are the whole config


def test_preflight_refuses_a_model_compared_with_itself():
    with pytest.raises(InputError, match="is the baseline itself"):
        MigrationConfig(candidates=["hf/gemma3-270m"], candidate_prompts=["support_fewshot@v1"]).preflight()
    MigrationConfig(candidates=["hf/gemma3-270m"], candidate_prompts=["support_chat@v1"]).preflight()


@pytest.mark.parametrize("gate, metrics, judge, message", [
    ({"metrics": {"semantic_similarity": {"max_drop": 0.1, "higher_is_better": True}}}, ["chrf"], "fake/judge",
     "needs metric 'semantic_similarity'"),
    ({"metrics": {"length_chars": {"max_drop": 10, "higher_is_better": True}}}, ["length_chars"], "fake/judge",
     "has no better direction"),
    ({"metrics": {"chrf": {"max_drop": 1, "higher_is_better": False}}}, ["chrf"], "fake/judge", "contradicts the metric"),
    ({"win_rate": {"noninferiority_margin": 0.1}}, ["chrf"], None, "needs a pairwise judge"),
    ({"metrics": {"chrf": {"max_drop": float("inf"), "higher_is_better": True}}}, ["chrf"], "fake/judge", "finite"),
])
def test_gate_rules_that_cannot_work_are_refused_before_any_call(gate, metrics, judge, message):
    config = MigrationConfig(gate=gate, metrics=metrics, judge=judge or "")
    with pytest.raises(InputError, match=message):
        config.preflight()


def test_default_gate_is_valid_for_the_default_config():
    MigrationConfig().preflight()
    assert MigrationConfig().gate_config().model_dump(exclude_none=True)["min_items"] == DEFAULT_GATE["min_items"]


def test_gate_file_is_read_relative_to_the_project(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps({"min_items": 5, "metrics": {"chrf": {"max_drop": 2, "higher_is_better": True}}}))
    config = MigrationConfig(gate_file="g.json", project_dir=str(tmp_path), metrics=["chrf"], judge="")
    config.preflight()
    assert config.gate_config().min_items == 5
