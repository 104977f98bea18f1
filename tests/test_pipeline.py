"""The one pipeline: replay models, a real-HTTP judge, human labels recorded through the labeler's
API, and what reaches the comparison (human win rate, judge-human agreement, PPI, the gate)."""
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.judge_server import JudgeServer
from workbench.task.config import MigrationConfig
from workbench.errors import EvidenceError, InputError
from workbench.labels import LabelLog, sides
from workbench.pipeline import arm_labels, label_pairs, labels_task, run_pipeline

N = 40


@pytest.fixture
def project(tmp_path: Path) -> Path:
    items = [{"item_id": f"i{k:02d}", "input": f"question {k}", "reference": f"answer {k}",
              "language": ("en", "ja")[k % 2]} for k in range(N)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    # the candidate is GOOD on 3 items in 4, the baseline on 1 in 4: the candidate should win
    base = [{"item_id": r["item_id"], "response": f"answer {k}" + (" GOOD" if k % 4 == 0 else "")}
            for k, r in enumerate(items)]
    cand = [{"item_id": r["item_id"], "response": f"answer {k}" + (" GOOD" if k % 4 else "")}
            for k, r in enumerate(items)]
    for name, rows in (("base", base), ("cand", cand)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


GATE = {"min_items": 20, "win_rate": {"noninferiority_margin": 0.1},
        "metrics": {"chrf": {"max_drop": 50.0, "higher_is_better": True}}}


def _config(project: Path, url: str, **extra) -> MigrationConfig:
    extra.setdefault("gate", GATE)
    return MigrationConfig(project_dir=str(project), dataset="items.jsonl", baseline=f"replay/{project / 'base.jsonl'}",
                           baseline_prompt=None, candidates=[f"replay/{project / 'cand.jsonl'}"],
                           candidate_prompts=[None], judge="openai/judge", judge_template="chat-v1", api_base=url,
                           metrics=["chrf"], sample_size=None, bootstrap_resamples=200, **extra)


def _label(config: MigrationConfig, raters: dict[str, int]) -> None:
    """Raters label through the labeler's API: each prefers the side containing GOOD, with some noise."""
    task, pairs = label_pairs(config)
    with LabelLog(config.store_path, task) as log:
        for rater, stride in raters.items():
            for k, row in enumerate(pairs.itertuples()):
                if k >= 24:
                    break
                left, right = sides(0, row.item_id, rater, row.model_a, row.model_b)
                text = {row.model_a: row.response_a, row.model_b: row.response_b}
                action = "left" if "GOOD" in text[left] else "right"
                if stride and k % stride == 0:
                    action = "tie"
                log.record(row.item_id, rater, left, right, action, 0)


def test_labels_reach_the_comparison_by_default(project):
    with JudgeServer() as server:
        config = _config(project, server.url)
        first = run_pipeline(config)
        assert first.labels == {}
        _label(config, {"alice": 0, "bob": 5, "cy": 7})
        result = run_pipeline(config)
    name = result.candidates[0]
    assert labels_task(config, 0) == f"{result.baseline} vs {name}"
    comparison = result.comparisons[name]
    sources = comparison.win_rates.set_index("source")
    judge = sources.loc["judge", "win_rate"]
    human = sources.loc["human labels (3 raters)", "win_rate"]
    ppi = sources.loc["prediction-powered (judge on all items + human labels)"]
    assert judge == pytest.approx(0.75) and 0.6 < human <= 0.75
    assert ppi["ci_low"] < ppi["win_rate"] < ppi["ci_high"] and ppi["n"] == N
    agreement = comparison.judge_reliability.set_index("measure")
    assert agreement.loc["judge vs alice: agreement", "value"] == pytest.approx(1.0)
    assert agreement.loc["judge vs bob: agreement", "n"] == 24 and agreement.loc["judge vs bob: agreement", "value"] < 1
    assert "judge vs majority: agreement" in agreement.index
    assert any(note.startswith("Human labels (prediction-powered") for note in comparison.notes)
    verdict = result.verdict_json()["candidates"][name]
    assert any(w["source"].startswith("prediction-powered") for w in verdict["win_rates"])


def test_gate_can_read_the_ppi_or_human_win_rate(project):
    gate = {"min_items": 20, "win_rate": {"noninferiority_margin": 0.1, "source": "ppi"}}
    with JudgeServer() as server:
        config = _config(project, server.url, gate=gate)
        before = run_pipeline(config).comparisons
        rule = next(iter(before.values())).gate.rules[0]
        assert rule.status == "INCONCLUSIVE" and "no human labels yet" in rule.reason
        _label(config, {"alice": 0, "bob": 5})
        after = next(iter(run_pipeline(config).comparisons.values())).gate
    assert after.rules[0].status == "PASS" and "prediction-powered" in after.rules[0].reason


def test_same_model_with_two_prompts_is_two_arms(project):
    config = MigrationConfig(project_dir=str(project), dataset="items.jsonl", baseline="fake/m",
                             baseline_prompt="support_chat@v1", candidates=["fake/m"],
                             candidate_prompts=["support_chat@v2"], judge=None, metrics=["chrf"], sample_size=None,
                             bootstrap_resamples=200, gate={"metrics": {"chrf": {"max_drop": 5, "higher_is_better": True}}})
    with pytest.raises(InputError):  # support_chat needs a task field the items lack: refused before any write
        run_pipeline(config)
    assert not config.store_path.exists()
    labels = arm_labels(config)
    assert labels == ["fake/m [support_chat@v1]", "fake/m [support_chat@v2]"]


def test_a_candidate_without_any_answer_is_a_configuration_error(project, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the call fails before it leaves the machine
    config = MigrationConfig(project_dir=str(project), dataset="items.jsonl", baseline=f"replay/{project / 'base.jsonl'}",
                             baseline_prompt=None, candidates=["openai/missing-key-model"], candidate_prompts=[None],
                             judge=None, metrics=["chrf"], sample_size=None,
                             gate={"metrics": {"chrf": {"max_drop": 5, "higher_is_better": True}}},
                             api_base=None, timeout_s=5)
    with pytest.raises(EvidenceError, match="none of its 40 calls was answered.*auth"):
        run_pipeline(config)


def test_read_only_pipeline_needs_every_response_and_writes_nothing(project):
    with JudgeServer() as server:
        config = _config(project, server.url)
        with pytest.raises(Exception, match="store not found"):
            run_pipeline(config, allow_calls=False)
        assert not config.store_path.exists()
        run_pipeline(config)
        hits = server.total_hits()
        again = run_pipeline(config, allow_calls=False)
        assert server.total_hits() == hits  # judge verdicts come from the store too
        other = config.model_copy(update={"judge_criterion": "fluency"})
        with pytest.raises(InputError, match="verdicts are not in the store"):
            run_pipeline(other, allow_calls=False)  # never a surprise bill for a judge
        assert server.total_hits() == hits
    assert again.comparisons[again.candidates[0]].n_paired == N


def test_active_order_labels_reach_the_comparison_weighted(project):
    """The labeler's active queue is recorded in the store; the report's human and prediction-powered
    win rates then weight each label by its item's queue probability (active inference)."""
    from workbench import stats
    from workbench.comparison.compare import judge_item_scores
    from workbench.pipeline import judge_choices
    from workbench.store import open_store
    from workbench.widgets.labeler import PairLabeler

    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
        task, pairs = label_pairs(config)
        judge = judge_choices(config)
        assert set(judge.columns) == {"item_id", "choice", "choice_ab", "choice_ba"} and len(judge) == N
        assert set(pairs["slice"]) == {"en", "ja"}
        for rater in ("alice", "bob"):
            labeler = PairLabeler(config.store_path, task, pairs, rater=rater, keyboard="none", judge=judge,
                                  order="active", budget=16, seed=5)
            for _ in range(10):  # each rater prefers the side with GOOD, then stops early
                left, _right = labeler.sides(labeler.current_item)
                row = pairs.set_index("item_id").loc[labeler.current_item]
                text = {row["model_a"]: row["response_a"], row["model_b"]: row["response_b"]}
                labeler.choose("left" if "GOOD" in text[left] else "right")
            labeler.close()
        result = run_pipeline(config)
        with open_store(config.store_path) as store:
            queue = store.label_queue(task)
    comparison = result.comparisons[result.candidates[0]]
    sources = comparison.win_rates.set_index("source")
    ppi = sources.loc["prediction-powered (judge on all items + human labels)"]
    assert "active order" in ppi["note"]
    human = sources.loc["human labels (2 raters, weighted: active order)"]
    labels = result.labels[result.candidates[0]]
    assert set(labels["item_id"]) <= {item for item, _ in queue["queue"]}
    verdicts = result.judgments[result.candidates[0]].verdicts
    expected = stats.active_win_rate(judge_item_scores(verdicts),
                                     labels.assign(score=labels["choice"].map({"A": 0.0, "B": 1.0, "tie": 0.5}))
                                     [["item_id", "score"]], dict(queue["queue"]), queue_size=queue["queue_size"],
                                     confidence=0.95)
    assert ppi["win_rate"] == pytest.approx(expected.estimate) and ppi["ci_low"] == pytest.approx(expected.ci_low)
    assert human["win_rate"] == pytest.approx(expected.human_estimate)


@pytest.mark.slow
def test_the_raters_notebook_draws_and_records_the_active_queue(project):
    """label_pairs.ipynb with order = "active", run as a rater runs it (papermill, a real kernel): the queue
    is drawn from the stored judge verdicts, recorded, and its length is what the rater is told."""
    import nbformat
    import papermill

    from workbench.project.lookup import bundled
    from workbench.store import open_store

    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
    (project / "params.toml").write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in {
        "dataset": "items.jsonl", "baseline": config.baseline, "candidates": config.candidates, "judge": "openai/judge",
        "judge_template": "chat-v1", "api_base": server.url, "metrics": ["chrf"], "sample_size": 40,
        "baseline_prompt": "", "candidate_prompts": [""]}.items())
        + "\ngate = { min_items = 20, win_rate = { noninferiority_margin = 0.1 } }\n", encoding="utf-8")
    out = project / "label_pairs.ipynb"
    papermill.execute_notebook(str(bundled("notebooks/label_pairs.ipynb")), str(out), cwd=str(project),
                               parameters={"rater": "nb-rater", "order": "active", "budget": 12, "seed": 4},
                               kernel_name="python3", progress_bar=False)
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    with open_store(config.store_path) as store:
        queue = store.label_queue(labels_task(config, 0))
    assert queue is not None and queue["budget"] == 12 and queue["seed"] == 4
    assert f"{queue['queue_size']} items to label." in text


def test_the_labeler_reads_pairs_and_judge_choices_in_one_pass(project, monkeypatch):
    """One store open, one load of the items, one rendering of each arm's requests for the pairs and
    the judge's choices together (the labeler's own log is its one other open)."""
    import workbench.store
    from workbench.generation import runner
    from workbench.pipeline import judge_choices, labeling

    with JudgeServer() as server:
        config = _config(project, server.url)
        run_pipeline(config)
        opens, renders = [], []
        open_store, render = workbench.store.open_store, runner.render_items
        monkeypatch.setattr(workbench.store, "open_store", lambda *a, **k: (opens.append(a), open_store(*a, **k))[1])
        monkeypatch.setattr(runner, "render_items", lambda items, prompt: (renders.append(prompt),
                                                                          render(items, prompt))[1])
        session = labeling(config)
        assert len(opens) == 1 and renders == [None]  # both arms send the raw input: one rendering
        assert session.task == labels_task(config, 0) and len(session.pairs) == N
        assert session.judge.equals(judge_choices(config))
        assert set(session.judge["choice"]) <= {"A", "B", "tie"} and len(session.judge) == N


def test_arm_rows_is_a_view_where_the_arm_lies_together_and_a_pick_where_it_does_not():
    import numpy as np

    from workbench.pipeline import arm_rows

    together = pd.DataFrame({"model": ["a", "a", "b", "b", "b"], "value": np.arange(5.0)}, index=[7, 8, 9, 10, 11])
    rows = arm_rows(together, "b")
    pd.testing.assert_frame_equal(rows, together[together["model"] == "b"])
    assert np.shares_memory(rows["value"].to_numpy(), together["value"].to_numpy())  # no copy
    mixed = together.assign(model=["a", "b", "a", "b", "a"])
    pd.testing.assert_frame_equal(arm_rows(mixed, "a"), mixed[mixed["model"] == "a"])
    assert arm_rows(mixed, "z").empty and list(arm_rows(mixed, "z").columns) == ["model", "value"]
