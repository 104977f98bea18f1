"""Per-model adapter options: each adapter's own options model decides what is valid, keys never
go inline, every api_base is a base URL without credentials, and every message names
`model_options."<model>".<field>` without repeating the value."""
import json

import pytest

from workbench.errors import InputError
from workbench.generation.options import check, field_name, load_model_options, merge, problems

LITELLM = "litellm/openai/served"
MODELS = [LITELLM, "openai/other", "hf/smollm2-135m-instruct", "replay/logs/prod.jsonl"]
PASTED = "sk-proj-PASTEDKEY0123456789abcdef"


def test_valid_options_of_each_adapter_pass():
    options = {
        LITELLM: {"api_key_env": "SERVER_KEY", "routing_strategy": "least-busy", "cooldown_s": 30,
                  "deployments": [{"api_base": "http://10.0.0.5:8000/v1", "rpm": 600},
                                  {"api_base": "https://replica-2.internal/v1", "api_key_env": "REPLICA_2_KEY"}],
                  "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
        "openai/other": {"api_base": "http://127.0.0.1:8000/v1", "extra_headers": {"X-Team": "search"}},
        "hf/smollm2-135m-instruct": {"batch_size": 8, "dtype": "bf16"},
        "replay/logs/prod.jsonl": {"response_field": "answer"},
    }
    assert problems(options, MODELS) == []


@pytest.mark.parametrize("options, field, message", [
    ({LITELLM: {"nope": 1}}, 'model_options."litellm/openai/served".nope', "unknown option"),
    ({LITELLM: {"deployments": [{"api_base": "http://h/v1", "rpm": "many"}]}},
     'model_options."litellm/openai/served".deployments[0].rpm', "valid integer"),
    ({LITELLM: {"deployments": [{"api_base": "http://h/v1", "region": "eu"}]}},
     'model_options."litellm/openai/served".deployments[0].region', "unknown option"),
    ({LITELLM: {"cooldown_s": 5}}, 'model_options."litellm/openai/served"', "applies only with deployments"),
    ({LITELLM: {"api_base": "http://a/v1", "deployments": [{"api_base": "http://b/v1"}]}},
     'model_options."litellm/openai/served"', "exclude each other"),
    ({"hf/smollm2-135m-instruct": {"batch_size": 0}}, 'model_options."hf/smollm2-135m-instruct".batch_size',
     "greater than or equal to 1"),
    ({"openai/other": {"deployments": []}}, 'model_options."openai/other".deployments', "unknown option"),
    ({"litellm/openai/not-in-run": {}}, 'model_options."litellm/openai/not-in-run"', "is not a model of this run"),
    ({LITELLM: "fast"}, 'model_options."litellm/openai/served"', "must be a table"),
])
def test_each_problem_names_the_option(options, field, message):
    found = problems(options, MODELS)
    assert len(found) == 1, found
    assert f"parameter '{field}'" in found[0] and message in found[0]


@pytest.mark.parametrize("options, field", [
    ({LITELLM: {"api_key": PASTED}}, "api_key"),
    ({LITELLM: {"api_key_env": PASTED}}, "api_key_env"),  # a key where the variable's NAME goes
    ({"openai/other": {"extra_headers": {"Authorization": f"Bearer {PASTED}"}}}, "extra_headers.Authorization"),
    ({"openai/other": {"extra_headers": {"X-Api-Key": "plain-value-123"}}}, "extra_headers.X-Api-Key"),
    ({LITELLM: {"deployments": [{"api_base": "http://h/v1", "api_key": PASTED}]}}, "deployments[0].api_key"),
    ({LITELLM: {"deployments": [{"api_base": "http://h/v1", "model": PASTED}]}}, "deployments[0].model"),
])
def test_an_inline_secret_is_refused_without_repeating_it(options, field):
    found = problems(options, MODELS)
    model = next(iter(options))
    assert len(found) == 1, found
    assert f"parameter '{field_name(model)}.{field}'".replace(".[", "[") in found[0]
    assert "environment" in found[0]
    assert PASTED not in found[0] and "plain-value-123" not in found[0]


@pytest.mark.parametrize("url, message", [
    ("ftp://host/v1", "http(s) URL with a host"),
    ("127.0.0.1:8000/v1", "http(s) URL with a host"),
    (f"http://user:{PASTED}@host/v1", "without credentials"),
    (f"http://host/v1?api_key={PASTED}", "without credentials or a query string"),
])
@pytest.mark.parametrize("where", ["top", "deployment"])
def test_every_api_base_is_checked_like_the_global_one_and_stores_no_credentials(url, message, where):
    options = ({"openai/other": {"api_base": url}} if where == "top"
               else {LITELLM: {"deployments": [{"api_base": "http://ok/v1"}, {"api_base": url}]}})
    found = problems(options, MODELS)
    assert found and all(message in f for f in found) and all(PASTED not in f for f in found)
    assert ("api_base'" in found[0]) and ("deployments[1].api_base" in found[0] or where == "top")


def test_check_raises_one_error_listing_every_problem_with_its_source():
    with pytest.raises(InputError) as caught:
        check({LITELLM: {"nope": 1}, "hf/unknown-elsewhere": {}}, MODELS, source="opts.toml")
    assert len(caught.value.problems) == 2
    assert all("(opts.toml)" in str(p) for p in caught.value.problems)


def test_files_load_at_the_top_level_or_under_model_options(tmp_path):
    top = tmp_path / "a.toml"
    top.write_text(f'["{LITELLM}"]\ncooldown_s = 5\n[["{LITELLM}".deployments]]\napi_base = "http://h/v1"\n')
    nested = tmp_path / "b.toml"
    nested.write_text(f'[model_options."{LITELLM}"]\ncooldown_s = 5\n'
                      f'[[model_options."{LITELLM}".deployments]]\napi_base = "http://h/v1"\n')
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps({LITELLM: {"cooldown_s": 5, "deployments": [{"api_base": "http://h/v1"}]}}))
    expected = {LITELLM: {"cooldown_s": 5, "deployments": [{"api_base": "http://h/v1"}]}}
    assert load_model_options(top) == load_model_options(nested) == load_model_options(as_json) == expected


@pytest.mark.parametrize("name, text, message", [
    ("bad.toml", '[model_options."m"\napi_base = 1', "not valid TOML"),
    ("bad.json", "{'m': 1}", "not valid JSON"),
    ("flat.toml", "cooldown_s = 5", "must be a table of model name -> options"),
])
def test_unreadable_files_name_themselves(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_model_options(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    with pytest.raises(InputError, match="file not found"):
        load_model_options(tmp_path / "missing.toml")


def test_a_file_merges_over_the_parameters_option_by_option():
    params = {LITELLM: {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "cooldown_s": 60},
              "openai/other": {"api_base": "http://a/v1"}}
    given = {LITELLM: {"cooldown_s": 5, "deployments": [{"api_base": "http://h/v1"}]}}
    merged = merge(params, given)
    assert merged == {LITELLM: {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "cooldown_s": 5,
                                "deployments": [{"api_base": "http://h/v1"}]},
                      "openai/other": {"api_base": "http://a/v1"}}
    assert params[LITELLM]["cooldown_s"] == 60  # the inputs are left as they were
