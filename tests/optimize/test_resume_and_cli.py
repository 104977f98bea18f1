"""Resume after a kill, exit codes and the CLI glue (argparse), through real processes and HTTP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.optimize.helpers import params
from workbench.cli import Parser
from workbench.cli import main
from workbench.optimize.cli import add_parsers, optimize_config
from workbench.store import Store

REPO = Path(__file__).resolve().parents[2]


def _params_file(project: Path, url: str, **extra) -> Path:
    path = project / "optimize.json"
    path.write_text(json.dumps(params(project, url, **extra)), encoding="utf-8")
    return path


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.slow
def test_a_run_killed_midway_resumes_without_repeating_a_call(tmp_path, rule_server):
    """Kill -9 during the search, run the same command again: it finishes with the result of an
    uninterrupted run, and no request answered before the kill is sent again."""
    fresh_dir, killed_dir = tmp_path / "fresh", tmp_path / "killed"
    from tests.optimize.helpers import PLAIN, rule_items, write_items
    for folder in (fresh_dir, killed_dir):
        (folder / "prompts" / "plain").mkdir(parents=True)
        (folder / "prompts" / "plain" / "v1.toml").write_text(PLAIN, encoding="utf-8")
        write_items(folder / "items.jsonl", rule_items())
    extra = {"moves": ["fewshot", "instructions"], "concurrency": 1}
    rule_server.latency_s = 0.05

    proc = _cli("optimize", "--params", str(_params_file(killed_dir, rule_server.url, **extra)), "-q")
    deadline = time.time() + 60
    while rule_server.total_hits() < 16 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    before_kill = rule_server.total_hits()
    assert proc.returncode == -signal.SIGKILL and 16 <= before_kill
    with Store(killed_dir / "store.db") as store:
        run_row = store.optimize_runs_frame().iloc[0]
        assert run_row["status"] == "running"  # killed: never marked done
        recorded = len(store.trials_frame(run_row["run_id"]))

    resumed = _cli("optimize", "--params", str(_params_file(killed_dir, rule_server.url, **extra)), "-q")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    resumed_hits = rule_server.total_hits() - before_kill

    rule_server.reset()
    uninterrupted = _cli("optimize", "--params", str(_params_file(fresh_dir, rule_server.url, **extra)), "-q")
    out_fresh, err_fresh = uninterrupted.communicate(timeout=120)
    assert uninterrupted.returncode == 0, err_fresh
    fresh_hits = rule_server.total_hits()

    # at most the one call in flight at the kill (concurrency 1) is asked again
    assert before_kill + resumed_hits <= fresh_hits + 1
    assert resumed_hits < fresh_hits
    a, b = json.loads(out), json.loads(out_fresh)
    for key in ("status", "best", "dev", "test", "stopped"):
        assert a[key] == b[key], key
    assert a["budget"]["calls"] == b["budget"]["calls"]  # the same budget spent, store answers included
    with Store(killed_dir / "store.db") as store, Store(fresh_dir / "store.db") as other:
        ours, theirs = store.trials_frame(a["run_id"]), other.trials_frame(b["run_id"])
        assert recorded <= len(ours)
        assert ours[["trial", "prompt_version", "score"]].equals(theirs[["trial", "prompt_version", "score"]])
        assert store.optimize_run(a["run_id"])["status"] == "done"


@pytest.mark.parametrize("extra, expected", [
    ({"start_prompt": "nope@v1"}, "no prompt 'nope@v1'; available: plain@v1"),
    ({"dev_size": 3}, "the dev split has 3 item(s); at least 5 are needed"),
    ({"test_size": 30}, "exceed the 20 items"),
    ({"max_calls": 0}, "a budget of 0 calls allows no call"),
    ({"max_cost_usd": 0}, "max_cost_usd: a budget of 0"),
    ({"max_calls": 20}, "max_calls 20 is below the 24 calls"),
    ({"target": "nope/model"}, "unknown model provider 'nope'"),
    ({"moves": ["instructions"], "optimizer_model": None}, "needs optimizer_model"),
    ({"split_column": "nope"}, "no column 'nope'"),
    ({"metric": "length_chars"}, "does not compare with a reference"),
    ({"objective": "source", "baseline": None}, "objective 'source' needs baseline"),
    ({"no_such": 1}, "unknown parameter(s): no_such"),
])
def test_bad_input_is_a_clear_error_with_exit_3_and_writes_nothing(project, capsys, extra, expected):
    params_file = project / "bad.json"
    params_file.write_text(json.dumps({**params(project, "http://127.0.0.1:9/v1"), **extra}), encoding="utf-8")
    assert main(["optimize", "--params", str(params_file)]) == 3
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (project / "store.db").exists()


def test_cli_flags_and_p_overrides_build_the_one_config(project):
    parser = Parser(prog="workbench")
    commands = add_parsers(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    assert set(commands) == {"optimize", "prompts"}
    params_file = _params_file(project, "http://127.0.0.1:9/v1")
    args = parser.parse_args(["optimize", "--params", str(params_file), "--max-calls", "99", "--moves",
                              "fewshot", "-p", "max_demos", "3", "-p", "strata", '["group"]', "--max-wall-s", "60"])
    config = optimize_config(args)
    assert (config.max_calls, config.moves, config.max_demos, config.strata, config.max_wall_s) == \
        (99, ["fewshot"], 3, ["group"], 60.0)
    assert config.target == "openai/rule-target"  # from the file


def test_prompts_list_and_diff_commands(project, rule_server, capsys):
    params_file = _params_file(project, rule_server.url)
    assert main(["optimize", "--params", str(params_file), "-q", "--json", str(project / "out.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    saved = result["saved"]
    written = json.loads((project / "out.json").read_text())
    assert written["trials"][0]["move"] == "start" and written["status"] == "confirmed"
    assert main(["prompts", "list", "--prompts-dir", str(project / "prompts")]) == 0
    listing = capsys.readouterr().out
    assert f"{saved}\tchat\tparent plain@v1; by optimizer:{result['run_id']}" in listing
    html = project / "diff.html"
    assert main(["prompts", "diff", "plain@v1", saved, "--prompts-dir", str(project / "prompts"),
                 "--html", str(html)]) == 0
    diff = capsys.readouterr().out
    assert diff.startswith(f"plain@v1 -> {saved}: changed description, system")
    assert '+system = "You are a helpful assistant. Answer in UPPERCASE. End every answer with a period."' in diff
    assert "diff_add" in html.read_text() or "diff_chg" in html.read_text()
    assert main(["prompts", "diff", "plain@v1", "plain@v9", "--prompts-dir", str(project / "prompts")]) == 3


def test_some_failed_calls_exit_1(project, rule_server, capsys):
    from tests.fault_server import server_error

    rule_server.always("eta theta", server_error(400))  # a bad request fails for good, on one dev item
    params_file = _params_file(project, rule_server.url, **{"moves": ["fewshot"]})
    assert main(["optimize", "--params", str(params_file), "-q"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["failed_calls"] >= 1


def test_a_start_prompt_without_answers_stops_with_exit_1(project, rule_server, capsys):
    from tests.fault_server import server_error
    from tests.optimize.helpers import WORDS

    for word in WORDS:
        rule_server.always(word, server_error(400))
    assert main(["optimize", "--params", str(_params_file(project, rule_server.url)), "-q"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "stopped" and result["stopped"] == "failed calls" and result["failed_calls"] == 8


def test_a_rerun_answers_failed_calls_and_updates_the_trial_table(project, rule_server):
    from tests.fault_server import server_error
    from workbench.optimize import OptimizeConfig, optimize

    config = OptimizeConfig(**params(project, rule_server.url, moves=["fewshot"]))
    rule_server.script("eta theta", server_error(400))  # the first request with it fails (400: no retry)
    first = optimize(config)
    assert first.failed_calls >= 1
    again = optimize(config)  # errors are never cached: the call is made again and answered
    assert again.failed_calls == 0
    with Store(project / "store.db") as store:
        stored = store.trials_frame(again.run_id)
    assert stored["n_items"].tolist() == again.trials["n_items"].tolist()
    assert stored["n_items"].sum() > first.trials["n_items"].sum()
