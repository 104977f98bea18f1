"""`--model-options FILE` and `[model_options]` through the real CLI (a subprocess each): replicas of
one model behind litellm's Router over real HTTP to local servers, per-model endpoints in the report
(its notebook parameters and manifest), relative model paths from another folder, and hostile files
refused with exit 3, a line naming the file and the field, and nothing written."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault_server import FaultServer

ROUTED = "litellm/openai/served-model"
OPENAI_KEY = "sk-test-default-DONOTLEAK-0123456789"
REPLICA_KEY = "sk-test-replica2-DONOTLEAK-9876543210"
PASTED = "sk-proj-PASTED-DONOTLEAK-abcdef0123456789"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "REPLICA_2_KEY": REPLICA_KEY,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def items(folder: Path, n: int) -> Path:
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps({"item_id": f"q{k:02d}", "input": f"question number {k}",
                                        "reference": f"echo: question number {k}"}) + "\n" for k in range(n)),
                    encoding="utf-8")
    return path


def deployments_toml(*urls: str) -> str:
    text = f'["{ROUTED}"]\ncooldown_s = 30\n'
    for index, url in enumerate(urls):
        text += f'[["{ROUTED}".deployments]]\napi_base = "{url}"\n'
        if index == 1:
            text += 'api_key_env = "REPLICA_2_KEY"\n'
    return text


def summary(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_generate_spreads_one_model_over_its_replicas_and_a_new_replica_keeps_the_cache(tmp_path):
    data = items(tmp_path, 16)
    with FaultServer(latency_s=0.2) as first, FaultServer(latency_s=0.2) as second:
        (tmp_path / "two.toml").write_text(deployments_toml(first.url, second.url), encoding="utf-8")
        proc = cli("generate", str(data), "--model", ROUTED, "--model-options", "two.toml", "--store", "s.db",
                   "--concurrency", "4", "-q", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert summary(proc)["calls_made"] == 16 and first.total_hits() + second.total_hits() == 16
        assert first.total_hits() >= 3 and second.total_hits() >= 3  # least-busy: both replicas answer
        assert {h["authorization"] for h in first.headers} == {f"Bearer {OPENAI_KEY}"}
        assert {h["authorization"] for h in second.headers} == {f"Bearer {REPLICA_KEY}"}  # its own key variable
        # a third replica (down: nothing listens there) and a rate limit: every answer is still cached
        (tmp_path / "three.toml").write_text(deployments_toml(first.url, second.url, "http://127.0.0.1:9/v1")
                                             + "rpm = 100\n", encoding="utf-8")
        again = cli("generate", str(data), "--model", ROUTED, "--model-options", "three.toml", "--store", "s.db",
                    "-q", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert (summary(again)["calls_made"], summary(again)["cached"]) == (0, 16)
        assert first.total_hits() + second.total_hits() == 16
    specs = [json.loads(row[0]) for row in sqlite3.connect(tmp_path / "s.db").execute("SELECT spec_json FROM runs")]
    assert specs[0]["adapter"] == {"provider": "litellm", "model": "openai/served-model", "routed": True}
    assert [d["api_base"] for d in specs[0]["options"]["deployments"]] == [first.url, second.url]
    assert len(specs[1]["options"]["deployments"]) == 3
    stored = (tmp_path / "s.db").read_bytes()
    assert OPENAI_KEY.encode() not in stored and REPLICA_KEY.encode() not in stored


@pytest.mark.slow
def test_report_takes_each_models_options_into_its_notebook_and_manifest(tmp_path):
    """The baseline goes to the global api_base, the candidate to its own replica (params.toml), with
    prices from a --model-options file merged over it; the executed notebook and the manifest carry
    the options, and the candidate's cost is known."""
    items(tmp_path, 12)
    with FaultServer() as shared, FaultServer() as replica:
        (tmp_path / "params.toml").write_text(
            f'dataset = "items.jsonl"\nbaseline = "openai/base-model"\nbaseline_prompt = ""\n'
            f'candidates = ["{ROUTED}"]\ncandidate_prompts = [""]\njudge = ""\nmetrics = ["chrf"]\n'
            f'report_name = "opts"\nbootstrap_resamples = 100\napi_base = "{shared.url}"\n'
            'gate = { min_items = 5, metrics = { chrf = { max_drop = 100.0, higher_is_better = true } } }\n'
            f'[model_options."{ROUTED}"]\ncooldown_s = 30\n'
            f'[[model_options."{ROUTED}".deployments]]\napi_base = "{replica.url}"\n', encoding="utf-8")
        (tmp_path / "prices.json").write_text(json.dumps({ROUTED: {"input_cost_per_token": 1e-6,
                                                                   "output_cost_per_token": 2e-6}}))
        proc = cli("report", "--params", "params.toml", "--model-options", "prices.json", "-q", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert {b["model"] for b in shared.bodies} == {"base-model"} and shared.total_hits() == 12
        assert {b["model"] for b in replica.bodies} == {"served-model"} and replica.total_hits() == 12
    out = tmp_path / "reports" / "opts"
    merged = {"cooldown_s": 30, "deployments": [{"api_base": replica.url}], "input_cost_per_token": 1e-6,
              "output_cost_per_token": 2e-6}
    executed = json.loads((out / "report.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["model_options"] == {ROUTED: merged}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["model_options"] == {ROUTED: merged}
    assert manifest["models"][ROUTED]["options"] == merged
    assert manifest["models"]["openai/base-model"]["options"] == {"api_base": shared.url}
    assert manifest["models"][ROUTED]["identity"]["routed"] is True


def test_relative_model_paths_resolve_in_the_project_when_run_from_elsewhere(tmp_path):
    """Generated from the project folder (paths relative to it, as always), compared from another
    folder with --params pointing into the project: the same files, the same cache keys."""
    project, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    (project / "logs").mkdir(parents=True)
    elsewhere.mkdir()
    items(project, 12)
    for name, suffix in (("base", ""), ("cand", " and more")):
        (project / "logs" / f"{name}.jsonl").write_text(
            "".join(json.dumps({"item_id": f"q{k:02d}", "response": f"echo: question number {k}{suffix}"}) + "\n"
                    for k in range(12)), encoding="utf-8")
    (project / "params.toml").write_text(
        'dataset = "items.jsonl"\nbaseline = "replay/logs/base.jsonl"\nbaseline_prompt = ""\n'
        'candidates = ["replay/logs/cand.jsonl"]\ncandidate_prompts = [""]\njudge = ""\nmetrics = ["chrf"]\n'
        'sample_size = ""\nbootstrap_resamples = 100\n'
        'gate = { min_items = 5, metrics = { chrf = { max_drop = 50.0, higher_is_better = true } } }\n',
        encoding="utf-8")
    made = cli("generate", "items.jsonl", "--model", "replay/logs/base.jsonl", "--model", "replay/logs/cand.jsonl",
               "-q", cwd=project)
    assert made.returncode == 0, made.stderr
    proc = cli("compare", "--params", str(project / "params.toml"), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr  # every response found in the store: no call, no "not found"
    assert json.loads(proc.stdout.splitlines()[-1]) == {"verdict": "PASS",
                                                         "n_paired": {"replay/logs/cand.jsonl": 12}}
    assert list(elsewhere.iterdir()) == []


HOSTILE = [
    ("bad.toml", f'["{ROUTED}"\ncooldown_s = 5\n', "not valid TOML"),
    ("other.toml", '["litellm/openai/someone-else"]\ncooldown_s = 5\n',
     'model_options."litellm/openai/someone-else"'),
    ("inline.toml", f'["{ROUTED}"]\napi_key = "{PASTED}"\n', f'model_options."{ROUTED}".api_key'),
    ("header.json", json.dumps({ROUTED: {"extra_headers": {"Authorization": f"Bearer {PASTED}"}}}),
     f'model_options."{ROUTED}".extra_headers.Authorization'),
    ("creds.toml", f'["{ROUTED}"]\napi_base = "http://user:{PASTED}@127.0.0.1:9/v1"\n',
     f'model_options."{ROUTED}".api_base'),
    ("typo.toml", f'["{ROUTED}"]\ncooldown = 5\n', f'model_options."{ROUTED}".cooldown'),
]


@pytest.mark.parametrize("name, text, message", HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("command", ["generate", "compare", "report"])
def test_hostile_model_options_exit_3_naming_file_and_field_and_write_nothing(tmp_path, command, name, text,
                                                                           message):
    items(tmp_path, 3)
    (tmp_path / "params.toml").write_text(
        f'dataset = "items.jsonl"\nbaseline = "openai/base-model"\nbaseline_prompt = ""\ncandidates = ["{ROUTED}"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf"]\n'
        'gate = { min_items = 1, metrics = { chrf = { max_drop = 100.0, higher_is_better = true } } }\n',
        encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = (["generate", "items.jsonl", "--model", ROUTED] if command == "generate"
            else [command, "--params", "params.toml"])
    proc = cli(*args, "--model-options", name, cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert any(name in line and message in line for line in proc.stderr.splitlines()), proc.stderr
    assert "Traceback" not in proc.stderr and PASTED not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no store, no report folder


def test_model_options_in_params_toml_are_checked_before_the_store_opens(tmp_path):
    items(tmp_path, 3)
    (tmp_path / "params.toml").write_text(
        f'dataset = "items.jsonl"\nbaseline = "openai/base-model"\nbaseline_prompt = ""\ncandidates = ["{ROUTED}"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf"]\n'
        'gate = { min_items = 1, metrics = { chrf = { max_drop = 100.0, higher_is_better = true } } }\n'
        f'[model_options."{ROUTED}"]\nrouting_strategy = "fastest-please"\n', encoding="utf-8")
    proc = cli("report", "--params", "params.toml", cwd=tmp_path)
    assert proc.returncode == 3 and f'model_options."{ROUTED}".routing_strategy' in proc.stderr, proc.stderr
    assert not (tmp_path / ".workbench").exists() and not (tmp_path / "reports").exists()
