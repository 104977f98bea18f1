"""Third-party adapters and metrics through entry points, tested with real distributions: tiny packages
with a pyproject.toml, installed by pip into a folder that the CLI's subprocesses find on PYTHONPATH.

`mycloud-workbench` serves the model prefix mycloud/ (a pure-Python adapter) and the metrics `shouting`
(a Metric) and `politeness` (a function that registers it); `broken-workbench` is installed beside it
with a plugin that cannot import, one that is not an adapter, and one that replaces a built-in metric;
`clash-workbench` (in its own folder) claims the built-in names litellm and bleu.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
N = 40

MYCLOUD = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "mycloud-workbench"
        version = "0.1.0"

        [project.entry-points."workbench.adapters"]
        mycloud = "mycloud_workbench:MyCloudAdapter"

        [project.entry-points."workbench.metrics"]
        shouting = "mycloud_workbench:shouting"
        politeness = "mycloud_workbench:register_politeness"
        """,
    "mycloud_workbench/__init__.py": '''
        """A workbench plugin: mycloud/quiet echoes the request, mycloud/loud shouts it."""
        from pydantic import BaseModel, ConfigDict

        from workbench import Adapter, Metric, Response, register_metric


        class Options(BaseModel):
            model_config = ConfigDict(extra="forbid")

            suffix: str = ""


        class MyCloudAdapter(Adapter):
            provider = "mycloud"
            options_model = Options

            async def generate(self, requests, timeout_s):
                answers = []
                for request in requests:
                    text = request.prompt if request.prompt is not None else request.messages[-1]["content"]
                    text = (text.upper() + "!" if self.model == "loud" else text) + self.options.suffix
                    answers.append(Response(text=text, finish_reason="stop", prompt_tokens=len(text.split()),
                                            completion_tokens=len(text.split())))
                return answers


        def _upper_share(responses, references, languages):
            return [sum(c.isupper() for c in r) / max(1, sum(c.isalpha() for c in r)) for r in responses]


        shouting = Metric(name="shouting", fn=_upper_share, higher_is_better=False, aggregation="mean",
                          needs_reference=False, description="share of letters in upper case", value_range=(0, 1))


        def register_politeness():
            register_metric(Metric(name="politeness", fn=lambda rs, refs, langs: [float("please" in r.lower()) for r in rs],
                                   higher_is_better=True, aggregation="rate", needs_reference=False,
                                   description="says please"))
        ''',
}

BROKEN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "broken-workbench"
        version = "0.2.0"

        [project.entry-points."workbench.adapters"]
        brokencloud = "broken_workbench.adapter:BrokenAdapter"
        notanadapter = "broken_workbench:not_an_adapter"

        [project.entry-points."workbench.metrics"]
        broken_metric = "broken_workbench.adapter:metric"
        sneaky = "broken_workbench:replace_bleu"
        """,
    "broken_workbench/__init__.py": '''
        from workbench import Metric, register_metric


        def not_an_adapter():
            return 42


        def replace_bleu():
            fn = lambda rs, refs, langs: [100.0] * len(rs)
            register_metric(Metric(name="sneaky", fn=fn, higher_is_better=True, aggregation="mean",
                                   needs_reference=False, description="sneaky"))
            register_metric(Metric(name="bleu", fn=fn, higher_is_better=True, aggregation="mean",
                                   needs_reference=True, description="always perfect"), replace=True)
        ''',
    "broken_workbench/adapter.py": '''
        import mycloud_sdk_that_is_not_installed  # noqa: F401
        ''',
}

CLASH = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "clash-workbench"
        version = "1.0"

        [project.entry-points."workbench.adapters"]
        litellm = "clash_workbench:Adapter"

        [project.entry-points."workbench.metrics"]
        bleu = "clash_workbench:bleu"
        """,
    "clash_workbench/__init__.py": "Adapter = bleu = None\n",
}


def _write_package(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder


def _pip_install(site: Path, *packages: Path) -> Path:
    """pip builds each package from its pyproject.toml (entry points as packaging writes them)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--disable-pip-version-check", "-q", "--target", str(site), *map(str, packages)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return site


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("plugins")
    good = _pip_install(root / "site", _write_package(root / "mycloud", MYCLOUD), _write_package(root / "broken", BROKEN))
    clash = _pip_install(root / "clash-site", _write_package(root / "clash", CLASH))
    return {"good": good, "clash": clash}


def _env(*sites: Path) -> dict[str, str]:
    path = [str(s) for s in sites] + [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


@pytest.fixture
def project(tmp_path) -> Path:
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(N)], "input": [f"tell me about topic {k}" for k in range(N)],
                          "reference": [f"tell me about topic {k}" for k in range(N)]})
    items.to_json(tmp_path / "items.jsonl", orient="records", lines=True)
    (tmp_path / "params.toml").write_text(
        'dataset = "items.jsonl"\nbaseline = "mycloud/quiet"\nbaseline_prompt = ""\ncandidates = ["mycloud/loud"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf", "shouting", "politeness"]\nsample_size = ""\n'
        'bootstrap_resamples = 200\nstore = "s.db"\nlifecycle_file = ""\n'
        '[gate]\nmin_items = 30\n[gate.metrics.shouting]\nmax_drop = 0.1\nhigher_is_better = false\n', encoding="utf-8")
    return tmp_path


def test_a_plugin_adapter_generates_and_plugin_metrics_reach_compare(project, sites):
    env = _env(sites["good"])
    made = _cli(project, env, "generate", "items.jsonl", "--model", "mycloud/quiet", "--model", "mycloud/loud", "-q")
    assert made.returncode == 0, made.stderr
    stats = json.loads(made.stdout.strip().splitlines()[-1])
    assert stats["calls_made"] == 2 * N and stats["errors"] == 0
    compared = _cli(project, env, "compare", "--json", "verdict.json")
    assert compared.returncode == 1, compared.stderr  # the candidate shouts: the plugin metric's gate rule fails
    assert "shouting" in compared.stderr
    deltas = {d["metric"]: d for d in json.loads((project / "verdict.json").read_text())["candidates"]["mycloud/loud"]
              ["metric_deltas"]}
    assert set(deltas) >= {"chrf", "shouting", "politeness"}
    shouting = deltas["shouting"]
    assert shouting["baseline_mean"] == pytest.approx(0.0) and shouting["candidate_mean"] == pytest.approx(1.0)
    assert deltas["politeness"]["delta"] == pytest.approx(0.0)
    assert "broken" not in compared.stderr  # a broken plugin beside it breaks nothing that does not use it


def test_plugin_adapter_options_are_checked_by_its_own_model(project, sites):
    env = _env(sites["good"])
    (project / "options.toml").write_text('[model_options."mycloud/quiet"]\nvolume = 11\n', encoding="utf-8")
    proc = _cli(project, env, "generate", "items.jsonl", "--model", "mycloud/quiet", "--model-options", "options.toml")
    assert proc.returncode == 3 and "volume" in proc.stderr and "Traceback" not in proc.stderr
    assert not (project / "s.db").exists()  # nothing written


@pytest.mark.parametrize("model, expected", [
    ("brokencloud/x", "plugin 'brokencloud' (workbench.adapters = \"broken_workbench.adapter:BrokenAdapter\" of "
                      "distribution broken-workbench 0.2.0) failed to load: ModuleNotFoundError"),
    ("notanadapter/x", "must name a subclass of workbench.Adapter"),
    ("nosuchcloud/x", "unknown model provider 'nosuchcloud'"),
])
def test_an_unusable_adapter_plugin_is_one_error_naming_it(project, sites, model, expected):
    proc = _cli(project, _env(sites["good"]), "generate", "items.jsonl", "--model", model)
    assert proc.returncode == 3, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (project / "s.db").exists()


def test_unknown_provider_lists_the_plugin_prefixes(project, sites):
    proc = _cli(project, _env(sites["good"]), "generate", "items.jsonl", "--model", "nosuchcloud/x")
    assert "mycloud" in proc.stderr and "litellm" in proc.stderr


@pytest.mark.parametrize("metric, expected", [
    ("broken_metric", "plugin 'broken_metric' (workbench.metrics = \"broken_workbench.adapter:metric\" of distribution "
                      "broken-workbench 0.2.0) failed to load: ModuleNotFoundError"),
    ("sneaky", "broken-workbench 0.2.0) replaced the registered metric(s) bleu, which a plugin cannot do"),
])
def test_an_unusable_metric_plugin_is_one_error_naming_it(project, sites, metric, expected):
    proc = _cli(project, _env(sites["good"]), "compare", "-p", "metrics", json.dumps(["chrf", metric]),
                "-p", "gate", "{}", "--json", "out.json")
    assert proc.returncode == 3, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (project / "out.json").exists() and not (project / "s.db").exists()


def test_a_plugin_cannot_claim_a_built_in_name(project, sites):
    env = _env(sites["good"], sites["clash"])
    proc = _cli(project, env, "generate", "items.jsonl", "--model", "mycloud/quiet")
    assert proc.returncode == 3
    assert "claims the built-in model provider name 'litellm'" in proc.stderr and "clash-workbench 1.0" in proc.stderr
    proc = _cli(project, env, "compare", "--baseline", "fake/base", "--candidate", "fake/cand",  # built-in models
                "-p", "metrics", '["politeness"]', "-p", "gate", "{}")
    assert proc.returncode == 3 and "claims the built-in metric name 'bleu'" in proc.stderr


def test_plugins_are_read_only_for_names_that_are_not_built_in(sites):
    """`import workbench` and built-in names never read the entry points nor import a plugin."""
    code = textwrap.dedent("""
        import json, sys
        import workbench, workbench.cli, workbench.models, workbench.metrics
        from workbench import plugins
        workbench.get_metric("chrf"); workbench.models.split_name("litellm/gpt-4o-mini")
        untouched = (dict(plugins._TABLES), sorted(m for m in sys.modules if "mycloud" in m or "broken" in m))
        workbench.get_metric("shouting")
        print(json.dumps({"untouched": untouched, "after": sorted(m for m in sys.modules if "mycloud" in m)}))
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(sites["good"]))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["untouched"] == [{}, []] and result["after"] == ["mycloud_workbench"]


def test_doctor_lists_the_plugins_and_names_a_broken_one_the_project_uses(project, sites):
    env = _env(sites["good"])
    proc = _cli(project, env, "doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("plugins: brokencloud (model prefix, broken-workbench 0.2.0), mycloud (model prefix, mycloud-workbench "
            "0.1.0), notanadapter (model prefix, broken-workbench 0.2.0), broken_metric (metric, broken-workbench "
            "0.2.0), politeness (metric, mycloud-workbench 0.1.0)") in proc.stdout
    proc = _cli(project, env, "doctor", "--candidate", "brokencloud/x")
    assert proc.returncode == 3 and "plugin 'brokencloud'" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
