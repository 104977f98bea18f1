"""The one config object: defaults, parameters files, relative paths, notebooks, preflight."""
import json
from pathlib import Path

import pytest

from workbench.comparison.defaults import DEFAULT_GATE
from workbench.task.config import MigrationConfig, build_config, notebook_config
from workbench.errors import InputError
from workbench.project.lookup import bundled, project_root, resolve


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


def test_tool_call_gate_rules_need_no_metric_listed():
    """The tool-call metrics join a run whose items expect calls (app_metrics), so a gate may name them."""
    gate = {"metrics": {"tool_call_accuracy": {"max_drop": 0.05, "higher_is_better": True}}}
    MigrationConfig(gate=gate, metrics=["chrf"], judge="").check_gate()
    with pytest.raises(InputError, match="contradicts the metric"):
        MigrationConfig(gate={"metrics": {"tool_call_accuracy": {"max_drop": 0.05, "higher_is_better": False}}},
                        metrics=["chrf"], judge="").check_gate()


def test_default_gate_is_valid_for_the_default_config():
    MigrationConfig().preflight()
    assert MigrationConfig().gate_config().model_dump(exclude_none=True)["min_items"] == DEFAULT_GATE["min_items"]


def test_gate_file_is_read_relative_to_the_project(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps({"min_items": 5, "metrics": {"chrf": {"max_drop": 2, "higher_is_better": True}}}))
    config = MigrationConfig(gate_file="g.json", project_dir=str(tmp_path), metrics=["chrf"], judge="")
    config.preflight()
    assert config.gate_config().min_items == 5


# ---- model_options ---------------------------------------------------------------------------------

ROUTED = "litellm/openai/served"
PARAMS_WITH_OPTIONS = f'''baseline = "openai/base"
baseline_prompt = ""
candidates = ["{ROUTED}"]
candidate_prompts = [""]
judge = ""
metrics = ["chrf"]
gate = {{ min_items = 5, metrics = {{ chrf = {{ max_drop = 5.0, higher_is_better = true }} }} }}
api_base = "http://127.0.0.1:9999/v1"

[model_options."{ROUTED}"]
cooldown_s = 5
input_cost_per_token = 1e-6
output_cost_per_token = 2e-6

[[model_options."{ROUTED}".deployments]]
api_base = "http://10.0.0.5:8000/v1"
rpm = 600

[[model_options."{ROUTED}".deployments]]
api_base = "http://10.0.0.6:8000/v1"
api_key_env = "REPLICA_2_KEY"
'''


def _items(n: int = 3):
    import pandas as pd

    return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "input": [f"question {k}" for k in range(n)]})


def _keys(config: MigrationConfig, model: str) -> list[str]:
    from workbench.models import Sampling
    from workbench.generation.runner import preflight

    [(_, _, _, planned)] = preflight(_items(), [config.model_spec(model)], sampling=Sampling())
    return [call.cache_key for call in planned]


def test_model_options_tables_in_params_toml_reach_the_model_specs(tmp_path):
    (tmp_path / "params.toml").write_text(PARAMS_WITH_OPTIONS, encoding="utf-8")
    config = build_config(tmp_path / "params.toml")
    config.preflight()
    routed = config.model_spec(ROUTED).options
    assert [d["api_base"] for d in routed["deployments"]] == ["http://10.0.0.5:8000/v1", "http://10.0.0.6:8000/v1"]
    assert "api_base" not in routed  # a model with endpoints of its own does not get the global one
    assert config.model_spec("openai/base").options == {"api_base": "http://127.0.0.1:9999/v1"}
    assert config.model_spec("hf/smollm2-135m-instruct").options == {}  # local: no endpoint


def test_a_model_with_its_own_api_base_keeps_it_and_others_take_the_global_one():
    config = MigrationConfig(baseline="openai/base", candidates=["openai/cand"], candidate_prompts=[None],
                             baseline_prompt=None, judge="", metrics=["chrf"], api_base="http://global:8000/v1",
                             model_options={"openai/cand": {"api_base": "http://own:8000/v1"}})
    assert config.model_spec("openai/cand").options == {"api_base": "http://own:8000/v1"}
    assert config.model_spec("openai/base").options == {"api_base": "http://global:8000/v1"}


@pytest.mark.parametrize("options, message", [
    ({ROUTED: {"nope": 1}}, f'parameter \'model_options."{ROUTED}".nope\': unknown option'),
    ({"openai/elsewhere": {}}, "is not a model of this run"),
    ({ROUTED: {"api_key": "sk-inline-0123456789abcdef"}}, "api_key_env"),
    ({ROUTED: {"deployments": [{"api_base": "http://10.0.0.5:8000/v1", "rpm": "lots"}]}}, "deployments[0].rpm"),
])
def test_bad_model_options_stop_the_preflight(tmp_path, options, message):
    (tmp_path / "params.toml").write_text(PARAMS_WITH_OPTIONS, encoding="utf-8")
    config = build_config(tmp_path / "params.toml", {"model_options": options})
    with pytest.raises(InputError) as caught:
        config.preflight()
    assert message in str(caught.value) and "0123456789abcdef" not in str(caught.value)


def test_a_wrong_type_for_the_whole_table_is_named():
    with pytest.raises(InputError, match="parameter 'model_options"):
        build_config(None, {"model_options": {"openai/m": 3}})


def test_deployments_and_prices_leave_cache_keys_unchanged(tmp_path):
    """Adding a replica, a rate limit or prices keeps every answer cached; only the model (and, without
    deployments, the endpoint) is in the key."""
    (tmp_path / "params.toml").write_text(PARAMS_WITH_OPTIONS, encoding="utf-8")
    two = build_config(tmp_path / "params.toml")
    one = build_config(tmp_path / "params.toml", {"model_options": {ROUTED: {
        "deployments": [{"api_base": "http://10.0.0.9:8000/v1"}]}}})
    three = build_config(tmp_path / "params.toml", {"model_options": {ROUTED: {
        "routing_strategy": "usage-based-routing-v2", "allowed_fails": 0,
        "deployments": [{"api_base": f"http://10.0.0.{k}:8000/v1", "tpm": 1000 * k} for k in (1, 2, 3)]}}})
    assert _keys(one, ROUTED) == _keys(two, ROUTED) == _keys(three, ROUTED)
    single = build_config(tmp_path / "params.toml", {"model_options": {}})  # the global api_base instead
    assert _keys(single, ROUTED) != _keys(two, ROUTED)


def test_the_scaffolded_model_options_example_is_valid_once_uncommented(tmp_path):
    from workbench.project.scaffold import MODEL_OPTIONS_EXAMPLE, gate_toml, params_toml

    text = params_toml()
    assert MODEL_OPTIONS_EXAMPLE in text and text.rstrip().endswith(MODEL_OPTIONS_EXAMPLE.rstrip())
    uncommented = "\n".join(line[2:] if line.startswith("# [") or line.startswith("# ") and "=" in line else line
                            for line in text.splitlines())
    uncommented = uncommented.replace('candidates = ["hf/smollm2-135m-instruct"]',
                                      'candidates = ["hf/smollm2-135m-instruct", "litellm/openai/my-model"]')
    uncommented = uncommented.replace('candidate_prompts = ["support_chat@v1"]',
                                      'candidate_prompts = ["support_chat@v1", "support_chat@v1"]')
    (tmp_path / "params.toml").write_text(uncommented, encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sample.jsonl").write_text('{"item_id": "a", "input": "x"}\n', encoding="utf-8")
    (tmp_path / "gate.toml").write_text(gate_toml(), encoding="utf-8")
    config = build_config(tmp_path / "params.toml")
    assert len(config.model_options["litellm/openai/my-model"]["deployments"]) == 2
    assert config.model_options["hf/smollm2-135m-instruct"] == {"batch_size": 8, "dtype": "float32"}
    config.preflight()


# ---- relative model paths ----------------------------------------------------------------------------

def test_relative_replay_and_hf_paths_resolve_in_the_project_with_unchanged_cache_keys(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    (project / "logs").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "logs" / "prod.jsonl").write_text("".join(json.dumps({"item_id": f"i{k}", "response": f"r{k}"}) + "\n"
                                                         for k in range(3)), encoding="utf-8")
    model = project / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"weights")
    (project / "params.toml").write_text('baseline = "replay/logs/prod.jsonl"\nbaseline_prompt = ""\n'
                                         'candidates = ["hf/models/tiny"]\ncandidate_prompts = [""]\njudge = ""\n',
                                         encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(project)  # as before: run from the project folder, paths relative to it
    from workbench.models import get_model

    old = {name: _keys_of(get_model(name)) for name in ("replay/logs/prod.jsonl", "hf/models/tiny")}
    monkeypatch.chdir(elsewhere)  # now from another folder, with the params file pointing into the project
    config = build_config(project / "params.toml")
    assert {name: _keys(config, name) for name in old} == old


def _keys_of(adapter) -> list[str]:
    from workbench.models import Sampling
    from workbench.generation.runner import build_requests, plan_calls

    return [c.cache_key for c in plan_calls(adapter, build_requests(_items(), None, Sampling(), 1))]


def test_the_report_gives_each_model_the_per_call_limit_of_its_kind(tmp_path):
    """A local model's call is a batch of many rows: it gets minutes, an API request a minute, unless
    timeout_s is set; the judge's policy follows its own kind too."""
    from workbench.pipeline import call_policy

    config = MigrationConfig(project_dir=str(tmp_path), dataset="items.jsonl", baseline="hf/smollm2-135m-instruct",
                             candidates=["openai/gpt-x"], judge="openai/judge")
    specs = {m: config.model_spec(m) for m in config.models()}
    assert {m: s.timeout_s for m, s in specs.items()} == {"hf/smollm2-135m-instruct": 600.0, "openai/gpt-x": 60.0,
                                                          "openai/judge": 60.0}
    local = call_policy(config, specs["hf/smollm2-135m-instruct"])
    assert (local.timeout_s, local.budget_s) == (600.0, 1200.0)  # room for one retry after a timeout
    fixed = config.model_copy(update={"timeout_s": 5.0})
    assert {fixed.model_spec(m).timeout_s for m in fixed.models()} == {5.0}
    assert call_policy(fixed).timeout_s == 5.0 and call_policy(config).timeout_s == 60.0
