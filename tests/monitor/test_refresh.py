"""`workbench refresh`: the bundled drift demo log's drift result becomes the next version of a small
evaluation set. Provenance is checked against the log itself, de-duplication against the real
all-MiniLM-L6-v2 embeddings, the diff against the written rows; bad input exits 3 and writes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.monitor._project import demo_log, make_project
from workbench.cli import main
from workbench.errors import InputError
from workbench.monitor.config import build_config as drift_config
from workbench.monitor.refresh import EmptyRefresh, RefreshConfig, allocate, deduplicate, primary_signal, refresh
from workbench.monitor.run import run_for_report

FAST = ["length", "language", "vocabulary"]


def _drift(root: Path, log: str, name: str, reference: str = "data/eval.jsonl") -> Path:
    out = root / "reports" / name
    config = drift_config(None, {"reference": reference, "production": log, "window": "week", "signals": FAST,
                                 "id_field": "request_id", "today": "2026-11-16", "project_dir": str(root),
                                 "output_dir": str(out), "report_name": name})
    run_for_report(config)
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("refresh"))
    stable = make_project(tmp_path_factory.mktemp("stable"), stable=True)
    return root, _drift(root, "logs/prod.jsonl", "drift"), stable, _drift(stable, "logs/stable.jsonl", "drift")


@pytest.fixture(scope="module")
def refreshed(project):
    root, drift, _, _ = project
    return refresh(RefreshConfig(dataset="data/eval.jsonl", drift=str(drift), max_new_items=20, project_dir=str(root)))


def test_provenance_names_window_signal_and_the_logged_request(project, refreshed):
    root, drift, _, _ = project
    assert refreshed.created and refreshed.path == root / "data" / "eval.v2.jsonl"
    rows = pd.read_json(refreshed.path, lines=True, dtype=False)
    old, new = rows[rows["origin"] == "eval_set"], rows[rows["origin"] == "production"]
    assert len(old) == 48 and (old["origin_id"] == old["item_id"]).all() and (old["target"] == "reference").all()
    assert len(new) == refreshed.counts["added"] == 20
    log = {r["request_id"]: (i + 1, r) for i, r in enumerate(demo_log())}
    flagged = {w["window"]: set(w["signals"]) for w in json.loads((drift / "drift.json").read_text())["flagged_windows"]}
    for row in new.to_dict(orient="records"):
        line, logged = log[row["origin_id"]]  # the log's own request id, kept as item_id
        assert row["item_id"] == row["origin_id"] and row["input"] == logged["input"]
        assert row["origin_row"] == line and row["origin_log"] == "prod.jsonl"
        assert row["origin_window"] in flagged and row["origin_signal"] in flagged[row["origin_window"]]
        assert row["origin_signal"] == primary_signal(row["drift_signals"])
        assert row["target"] == "source" and row["source_response"] == logged["response"]
        assert row["source_model"] == logged["model"]
    # drawn evenly across the signals that flagged them (language and vocabulary drift in the demo log)
    assert refreshed.counts["added_by_signal"] == {"language": 10, "vocabulary": 10}
    manifest = json.loads(refreshed.manifest_path.read_text(encoding="utf-8"))
    assert manifest["parent"]["path"] == str(root / "data" / "eval.jsonl")
    assert manifest["drift"]["flagged_windows"] == list(flagged) and manifest["drift"]["production_sha256"]


def test_near_duplicates_removed_at_the_stated_threshold(refreshed):
    from workbench.metrics.semantic import load_model

    rows = pd.read_json(refreshed.path, lines=True, dtype=False)
    vectors = load_model().encode(rows["input"].tolist(), normalize_embeddings=True)
    sims = vectors @ vectors.T
    production = np.flatnonzero((rows["origin"] == "production").to_numpy())
    for i in production:  # no production item is a near-duplicate of anything else in the set
        others = np.delete(sims[i], i)
        assert others.max() < 0.90, rows["input"][i]
    removed = refreshed.removed
    assert refreshed.counts["near_duplicates"] == (removed["reason"] == "near").sum() > 0
    assert (removed.loc[removed["reason"] == "near", "cosine"] >= 0.90).all()
    known = set(rows.loc[rows["origin"] == "eval_set", "item_id"]) | {r["request_id"] for r in demo_log()}
    assert removed["duplicate_of"].isin(known).all() and not removed["origin_id"].isin(set(rows["item_id"])).any()
    assert json.loads(refreshed.manifest_path.read_text())["removed"] == json.loads(removed.to_json(orient="records"))


def test_diff_counts_match_the_written_versions(refreshed):
    rows = pd.read_json(refreshed.path, lines=True, dtype=False)
    diff = refreshed.diff.set_index(["slice", "value"])
    assert diff.loc[("origin", "eval_set"), "before"] == 48 and diff.loc[("origin", "production"), "after"] == 20
    for language, n in rows["language"].value_counts().items():
        assert diff.loc[("language", language), "after"] == n
    assert diff.loc[("language", "en"), "before"] == 24 and diff.loc[("task", "support_reply"), "before"] == 24
    assert (diff["change"] == diff["after"] - diff["before"]).all()


def test_a_rerun_reuses_the_version_byte_for_byte(project, refreshed):
    root, drift, _, _ = project
    before = refreshed.path.read_bytes()
    again = refresh(RefreshConfig(dataset="data/eval.jsonl", drift=str(drift), max_new_items=20, project_dir=str(root)))
    assert not again.created and again.path == refreshed.path and again.path.read_bytes() == before
    assert sorted(p.name for p in (root / "data").glob("eval.v*.jsonl")) == ["eval.v2.jsonl"]


def test_human_target_and_keep_share_and_inherited_task(project, tmp_path):
    root, drift, _, _ = project
    result = refresh(RefreshConfig(dataset="data/eval.jsonl", drift=str(drift), max_new_items=6, keep_share=0.5,
                                   target="human", inherit_fields=["task"], output_dir=str(tmp_path),
                                   project_dir=str(root)))
    rows = pd.read_json(result.path, lines=True, dtype=False)
    old = rows[rows["origin"] == "eval_set"]
    assert len(old) == 24 and old.groupby(["language", "task"]).size().tolist() == [6, 6, 6, 6]  # stratified
    label = pd.read_json(result.to_label, lines=True, dtype=False)
    assert len(label) == 6 and (label["target"] == "human").all() and label["task"].notna().all()
    assert set(label["nearest_id"]) <= set(old["item_id"])


def test_allocate_spreads_evenly_and_passes_on_unused_shares():
    assert allocate({"language": 30, "vocabulary": 30}, 20) == {"language": 10, "vocabulary": 10}
    assert allocate({"language": 3, "vocabulary": 30, "length": 5}, 20) == {"language": 3, "vocabulary": 12, "length": 5}
    assert allocate({"language": 2}, 10) == {"language": 2}


def test_deduplicate_exact_and_near_with_given_vectors():
    table = {"a": [1, 0], "A  ": [1, 0], "b": [0, 1], "b2": [0.1, 0.995], "c": [0.7071, 0.7071]}
    embed = lambda texts: np.array([table[t] for t in texts], dtype=float)  # noqa: E731
    candidates = pd.DataFrame({"input": ["A  ", "b", "b2", "c"], "origin_id": ["p1", "p2", "p3", "p4"]})
    candidates.attrs["kept_ids"] = ["k1"]
    survivors, removed = deduplicate(["a"], candidates, 0.9, embed)
    assert survivors["origin_id"].tolist() == ["p2", "p4"]
    assert removed[["origin_id", "reason", "duplicate_of"]].values.tolist() == [["p1", "exact", "k1"], ["p3", "near", "p2"]]


def test_bad_input_exits_3_and_writes_nothing(project, capsys, monkeypatch):
    root, drift, stable, stable_drift = project
    monkeypatch.chdir(root)
    written = sorted(p.name for p in (root / "data").iterdir())
    # a drift result computed against another set
    other = _drift(root, "logs/prod.jsonl", "drift-other", reference="bundled:support_reviews.jsonl")
    assert main(["refresh", "--dataset", "data/eval.jsonl", "--drift", str(other)]) == 3
    err = capsys.readouterr().err
    assert "computed against bundled:support_reviews.jsonl" in err and "workbench drift --reference" in err
    # nothing drifted
    with pytest.raises(EmptyRefresh, match="nothing to refresh"):
        refresh(RefreshConfig(dataset="data/eval.jsonl", drift=str(stable_drift), project_dir=str(stable)))
    assert main(["refresh", "--dataset", str(stable / "data" / "eval.jsonl"), "--drift", str(stable_drift)]) == 3
    assert "nothing to refresh" in capsys.readouterr().err
    # not a drift report
    assert main(["refresh", "--dataset", "data/eval.jsonl", "--drift", "data"]) == 3
    assert "no drift.json here" in capsys.readouterr().err
    with pytest.raises(InputError, match="dedup_threshold"):
        RefreshConfig.from_parameters({"dataset": "x", "drift": "y", "dedup_threshold": 1.5})
    assert sorted(p.name for p in (root / "data").iterdir()) == written
    assert not list((stable / "data").glob("eval.v*"))


def test_refresh_from_a_production_log_checks_drift_first(project, tmp_path, capsys, monkeypatch):
    root, _, _, _ = project
    monkeypatch.chdir(root)
    (tmp_path / "drift.toml").write_text('window = "week"\nsignals = ["length", "language", "vocabulary"]\n'
                                         'id_field = "request_id"\n', encoding="utf-8")
    code = main(["refresh", "--dataset", "data/eval.jsonl", "--production", "logs/prod.jsonl", "--drift-params",
                 str(tmp_path / "drift.toml"), "--max-new", "20", "--output-dir", str(tmp_path / "out")])
    out = capsys.readouterr()
    line = json.loads(out.out.strip().splitlines()[-1])
    assert code == 0 and line["created"] and line["added"] == 20 and line["path"] == str(tmp_path / "out" / "eval.v2.jsonl")
    assert "DRIFT in 2 window(s)" in out.err and "origin=production: 0 -> 20 (+20)" in out.err
    assert (root / "reports" / "refresh-drift" / "drift.json").is_file()
    # the same rows as from the drift report of the same log
    assert (tmp_path / "out" / "eval.v2.jsonl").read_bytes() == (root / "data" / "eval.v2.jsonl").read_bytes()
