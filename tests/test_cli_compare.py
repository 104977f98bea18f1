"""`workbench score` and `workbench compare` select runs exactly as the report does (dataset, sample,
model, prompt version) and read them from the store without making a call."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from workbench.generation.calls import CallPolicy
from workbench.models import Sampling
from workbench.generation.runner import ModelSpec, generate
from workbench.store import Store

N = 60


@pytest.fixture
def project(tmp_path):
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(N)], "input": [f"tell me about topic {k}" for k in range(N)],
                          "reference": [f"base: tell me about topic {k}" for k in range(N)],
                          "language": ["en", "ja"] * (N // 2)})
    items.to_json(tmp_path / "items.jsonl", orient="records", lines=True)
    (tmp_path / "params.toml").write_text(
        'dataset = "items.jsonl"\nbaseline = "fake/base"\nbaseline_prompt = ""\ncandidates = ["fake/cand"]\n'
        'candidate_prompts = [""]\njudge = ""\nmetrics = ["chrf", "exact_match"]\nbootstrap_resamples = 200\n'
        'sample_size = ""\ngate_file = "gate.toml"\nstore = "s.db"\n', encoding="utf-8")
    from workbench.task.dataset import load_items

    with Store(tmp_path / "s.db") as store:
        # base answers exactly the reference; cand prefixes its own name: a clear exact-match drop
        generate(load_items(tmp_path / "items.jsonl"), [ModelSpec(name="fake/base"), ModelSpec(name="fake/cand")],
                 store, policy=CallPolicy(max_attempts=1), sampling=Sampling(max_tokens=64, seed=0), progress=False)
    return tmp_path


def _cli(project, *args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args, "--params", str(project / "params.toml")],
                          capture_output=True, text=True, timeout=300, cwd=project)


def _gate(project, text):
    (project / "gate.toml").write_text(text, encoding="utf-8")


def test_score_prints_a_summary(project):
    _gate(project, "[metrics.exact_match]\nmax_drop = 0.05\nhigher_is_better = true\n")
    proc = _cli(project, "score")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["scored"] == 4 * N and summary["paired_items"] == {"fake/cand": N}


def test_compare_fails_a_clearly_worse_candidate_and_writes_json(project):
    _gate(project, "min_items = 30\n[metrics.exact_match]\nmax_drop = 0.05\nhigher_is_better = true\n")
    proc = _cli(project, "compare", "--json", str(project / "cmp.json"))
    assert proc.returncode == 1, proc.stderr
    payload = json.loads((project / "cmp.json").read_text())
    cand = payload["candidates"]["fake/cand"]
    delta = next(d for d in cand["metric_deltas"] if d["metric"] == "exact_match")
    assert delta["delta"] == pytest.approx(-1.0)
    assert delta["noninferiority_p"] > 0.99  # at the gate's margin of 0.05 the candidate is clearly inferior
    assert payload["verdict"] == cand["verdict"] == "FAIL" and cand["n_paired"] == N


def test_compare_is_inconclusive_when_the_sample_is_too_small_for_the_gate(project):
    _gate(project, "min_items = 100\n[metrics.chrf]\nmax_drop = 1.0\nhigher_is_better = true\n")
    assert _cli(project, "compare").returncode == 2


def test_compare_with_itself_is_refused(project):
    _gate(project, "[metrics.chrf]\nmax_drop = 1.0\nhigher_is_better = true\n")
    proc = _cli(project, "compare", "--candidate", "fake/base")
    assert proc.returncode == 3 and "is the baseline itself" in proc.stderr


def test_compare_names_what_the_store_lacks(project):
    _gate(project, "[metrics.chrf]\nmax_drop = 1.0\nhigher_is_better = true\n")
    proc = _cli(project, "compare", "--candidate", "fake/zzz")
    assert proc.returncode == 3 and "fake/zzz: 60 of 60 responses are not in the store" in proc.stderr
    with Store(project / "s.db") as store:
        assert "fake/zzz" not in store.run_models()  # a read makes no run
