"""`workbench score` and `workbench compare` on a store: JSON out, gate exit codes."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from workbench.calls import CallPolicy
from workbench.runner import ModelSpec, generate
from workbench.store import Store


@pytest.fixture
def filled_store(tmp_path):
    n = 60
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "input": [f"tell me about topic {k}" for k in range(n)],
                          "reference": [f"base: tell me about topic {k}" for k in range(n)],
                          "language": ["en", "ja"] * (n // 2)})
    items.attrs["source"] = "memory"
    path = tmp_path / "s.db"
    with Store(path) as store:
        # base echoes the input exactly as the reference says; cand prefixes its own name: a clear chrF drop
        generate(items, [ModelSpec(name="fake/base"), ModelSpec(name="fake/cand")], store,
                 policy=CallPolicy(max_attempts=1), progress=False)
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, timeout=300)


def test_score_prints_a_summary(filled_store):
    proc = _cli("score", "--store", str(filled_store), "--baseline", "fake/base", "--candidate", "fake/cand",
                "--metrics", "chrf", "exact_match")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["scored"] == 240 and summary["paired_items"] == 60


def test_compare_fails_a_clearly_worse_candidate_and_writes_json(filled_store, tmp_path):
    gate = tmp_path / "gate.toml"
    gate.write_text("min_items = 30\n[metrics.exact_match]\nmax_drop = 0.05\nhigher_is_better = true\n", encoding="utf-8")
    out = tmp_path / "cmp.json"
    proc = _cli("compare", "--store", str(filled_store), "--baseline", "fake/base", "--candidate", "fake/cand",
                "--metrics", "exact_match", "--gate", str(gate), "--json", str(out), "--resamples", "200")
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(out.read_text())
    delta = payload["metric_deltas"][0]
    assert delta["metric"] == "exact_match" and delta["delta"] == pytest.approx(-1.0)
    assert payload["gate"]["verdict"] == "FAIL" and payload["n_paired"] == 60


def test_compare_passes_a_candidate_against_itself_and_is_inconclusive_when_tiny(filled_store, tmp_path):
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"min_items": 30, "metrics": {"chrf": {"max_drop": 1.0, "higher_is_better": True}}}))
    same = _cli("compare", "--store", str(filled_store), "--baseline", "fake/base", "--candidate", "fake/base",
                "--metrics", "chrf", "--gate", str(gate))
    assert same.returncode == 0, same.stderr
    gate.write_text(json.dumps({"min_items": 100, "metrics": {"chrf": {"max_drop": 1.0, "higher_is_better": True}}}))
    tiny = _cli("compare", "--store", str(filled_store), "--baseline", "fake/base", "--candidate", "fake/base",
                "--metrics", "chrf", "--gate", str(gate))
    assert tiny.returncode == 2


def test_compare_names_missing_models_and_stores(tmp_path, filled_store):
    missing = _cli("compare", "--store", str(tmp_path / "none.db"), "--baseline", "a/b", "--candidate", "c/d")
    assert missing.returncode == 2 and "store not found" in missing.stderr
    unknown = _cli("compare", "--store", str(filled_store), "--baseline", "fake/base", "--candidate", "fake/zzz")
    assert unknown.returncode == 2 and "no run of model 'fake/zzz'" in unknown.stderr
