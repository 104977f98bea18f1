"""The migration gate on constructed cases whose right answer is known."""
from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.errors import InputError
from workbench.comparison.gate import (
    Estimate,
    GateConfig,
    GateEvidence,
    MetricDelta,
    evaluate_gate,
    load_gate_config,
)
from workbench.stats import paired_delta_ci, proportion_ci, win_rate_ci

NONINF = {"win_rate": {"noninferiority_margin": 0.05}}


def _scores(wins: int, losses: int, ties: int) -> np.ndarray:
    return np.r_[np.ones(wins), np.zeros(losses), np.full(ties, 0.5)]


def _win_evidence(scores: np.ndarray, **extra) -> GateEvidence:
    return GateEvidence(win_rate=Estimate.from_ci(win_rate_ci(scores, confidence=0.90)), **extra)


def _metric(cand, base, higher_is_better=True) -> MetricDelta:
    return MetricDelta.from_ci(paired_delta_ci(cand, base, confidence=0.90), higher_is_better)


def test_clearly_worse_candidate_fails():
    rng = np.random.default_rng(0)
    base = rng.normal(0.8, 0.1, 400)
    ev = _win_evidence(_scores(100, 250, 50), metric_deltas={"accuracy": _metric(base - 0.2, base)})
    cfg = GateConfig.model_validate({**NONINF, "metrics": {"accuracy": {"max_drop": 0.02, "higher_is_better": True}}})
    res = evaluate_gate(cfg, ev)
    assert res.verdict == "FAIL" and res.exit_code == 1
    assert [r.status for r in res.rules] == ["FAIL", "FAIL"]
    assert "0.3125" in res.rules[0].reason and ">= 0.45" in res.rules[0].reason


def test_equal_candidate_passes_a_noninferiority_gate_with_400_items():
    rng = np.random.default_rng(1)
    base = rng.normal(0.7, 0.15, 400)
    cand = base + rng.normal(0, 0.02, 400)
    latency_b = rng.exponential(1.0, 400)
    ev = _win_evidence(
        _scores(150, 150, 100),
        metric_deltas={"rougeL": _metric(cand, base), "latency_s": _metric(latency_b, latency_b, False)},
        error_rate=Estimate.from_ci(proportion_ci(0, 400)),
        cost_ratio=Estimate(0.6),
        p95_latency_ratio=Estimate(0.9, 0.8, 1.0, 400),
        position_consistency=Estimate(0.9, 0.86, 0.93, 400),
    )
    cfg = GateConfig.model_validate({
        **NONINF,
        "metrics": {"rougeL": {"max_drop": 0.02, "higher_is_better": True},
                    "latency_s": {"max_drop": 0.2, "higher_is_better": False}},
        "max_error_rate": 0.02, "max_cost_ratio": 1.0, "max_p95_latency_ratio": 1.2,
        "min_position_consistency": 0.8,
    })
    res = evaluate_gate(cfg, ev)
    assert res.verdict == "PASS", res.summary()
    assert res.exit_code == 0 and len(res.rules) == 7


def test_tiny_sample_is_inconclusive():
    ev = _win_evidence(_scores(4, 3, 1))  # n = 8
    res = evaluate_gate(GateConfig.model_validate(NONINF), ev)
    assert res.verdict == "INCONCLUSIVE" and "only 8 items" in res.rules[0].reason
    # Even without a minimum, the interval straddles 0.45: more items are needed, not a verdict.
    res = evaluate_gate(GateConfig.model_validate({**NONINF, "min_items": 1}), ev)
    assert res.verdict == "INCONCLUSIVE" and "straddles" in res.rules[0].reason and res.exit_code == 2


def test_missing_evidence_is_never_a_silent_pass():
    cfg = GateConfig.model_validate({**NONINF, "metrics": {"bleu": {"max_drop": 1, "higher_is_better": True}},
                                     "max_cost_ratio": 1.5})
    res = evaluate_gate(cfg, _win_evidence(_scores(150, 150, 100)))
    by_name = {r.name: r for r in res.rules}
    assert by_name["win_rate_noninferiority"].status == "PASS"
    assert by_name["metric:bleu"].status == "INCONCLUSIVE" and "bleu" in by_name["metric:bleu"].reason
    assert by_name["max_cost_ratio"].status == "INCONCLUSIVE" and "cost ratio" in by_name["max_cost_ratio"].reason
    assert res.verdict == "INCONCLUSIVE"


def test_fail_outranks_inconclusive_and_nan_is_missing():
    cfg = GateConfig.model_validate({"max_cost_ratio": 1.0, "min_position_consistency": 0.8})
    ev = GateEvidence(cost_ratio=Estimate(2.0), position_consistency=Estimate(float("nan")))
    res = evaluate_gate(cfg, ev)
    assert [r.status for r in res.rules] == ["FAIL", "INCONCLUSIVE"] and res.verdict == "FAIL"


def test_direction_mismatch_is_reported():
    cfg = GateConfig.model_validate({"metrics": {"latency_s": {"max_drop": 0.1, "higher_is_better": True}}})
    ev = GateEvidence(metric_deltas={"latency_s": MetricDelta(0.0, -0.01, 0.01, False, 400)})
    r = evaluate_gate(cfg, ev).rules[0]
    assert r.status == "INCONCLUSIVE" and "direction mismatch" in r.reason


def test_lower_is_better_metric_that_rose_fails():
    cfg = GateConfig.model_validate({"metrics": {"latency_s": {"max_drop": 0.1, "higher_is_better": False}}})
    ev = GateEvidence(metric_deltas={"latency_s": MetricDelta(0.5, 0.4, 0.6, False, 400)})
    res = evaluate_gate(cfg, ev)
    assert res.verdict == "FAIL" and res.rules[0].numbers["value"] == 0.5 and "<= 0.1" in res.rules[0].reason


def test_min_lower_bound_rule_and_result_serialises():
    cfg = GateConfig.model_validate({"win_rate": {"min_lower_bound": 0.55}})
    res = evaluate_gate(cfg, _win_evidence(_scores(300, 80, 20)))
    assert res.verdict == "PASS"
    out = json.loads(json.dumps(res.to_dict()))
    assert out["verdict"] == "PASS" and out["rules"][0]["numbers"]["threshold"] == 0.55
    assert res.summary().startswith("Gate verdict: PASS")


def test_load_json_and_toml(tmp_path):
    j = tmp_path / "gate.json"
    j.write_text(json.dumps({**NONINF, "max_error_rate": 0.01}))
    assert load_gate_config(j).win_rate.threshold == pytest.approx(0.45)
    t = tmp_path / "gate.toml"
    t.write_text('min_items = 50\nmax_cost_ratio = 1.2\n[metrics.bleu]\nmax_drop = 1.0\nhigher_is_better = true\n')
    cfg = load_gate_config(t)
    assert cfg.min_items == 50 and cfg.metrics["bleu"].max_drop == 1.0


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("g.json", json.dumps({**NONINF, "max_eror_rate": 0.1}), "field 'max_eror_rate'"),
        ("g.json", json.dumps({"metrics": {"bleu": {"max_drop": -1, "higher_is_better": True}}}),
         "field 'metrics.bleu.max_drop'"),
        ("g.json", json.dumps({"win_rate": {"min_lower_bound": 0.5, "noninferiority_margin": 0.05}}),
         "exactly one"),
        ("g.json", json.dumps({"min_items": 10}), "no rule configured"),
        ("g.json", '{"max_cost_ratio": 1.0,\n "oops"}', "line 2"),
        ("g.toml", "max_cost_ratio = \n", "invalid TOML"),
        ("g.yaml", "max_cost_ratio: 1", ".json or .toml"),
    ],
)
def test_bad_config_files_name_the_file_and_field(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_gate_config(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_gate_config(tmp_path / "nope.json")


def test_non_finite_numbers_serialise_as_null_and_inverted_cis_are_caught():
    cfg = GateConfig.model_validate({"max_cost_ratio": 1.0, "max_p95_latency_ratio": 1.0})
    ev = GateEvidence(cost_ratio=Estimate(float("nan")), p95_latency_ratio=Estimate(0.9, 1.0, 0.8))
    res = evaluate_gate(cfg, ev)
    assert [r.status for r in res.rules] == ["INCONCLUSIVE", "INCONCLUSIVE"]
    assert "inverted" in res.rules[1].reason
    text = json.dumps(res.to_dict(), allow_nan=False)
    assert '"value": null' in text


def test_inconsistent_judge_makes_its_win_rate_inconclusive_not_a_fail():
    cfg = GateConfig.model_validate({"min_items": 10, "win_rate": {"noninferiority_margin": 0.05},
                                     "min_position_consistency": 0.7,
                                     "metrics": {"chrf": {"max_drop": 1.0, "higher_is_better": True}}})
    ev = GateEvidence(win_rate=Estimate(0.2, 0.15, 0.25, 200), position_consistency=Estimate(0.4, 0.33, 0.47, 200),
                      metric_deltas={"chrf": MetricDelta(0.5, 0.1, 0.9, True, 200)})
    result = evaluate_gate(cfg, ev)
    by_name = {r.name: r for r in result.rules}
    assert by_name["min_position_consistency"].status == "INCONCLUSIVE"
    assert by_name["win_rate_noninferiority"].status == "INCONCLUSIVE"
    assert "position-consistency" in by_name["win_rate_noninferiority"].reason
    assert by_name["metric:chrf"].status == "PASS"
    assert result.verdict == "INCONCLUSIVE"


def test_an_inconclusive_judge_rule_never_reads_as_a_fail():
    """An INCONCLUSIVE rule whose reason said "missed by the whole interval" read as a FAIL."""
    cfg = GateConfig.model_validate({"min_items": 10, "win_rate": {"noninferiority_margin": 0.05},
                                     "min_position_consistency": 0.7})
    ev = GateEvidence(win_rate=Estimate(0.2, 0.15, 0.25, 200), position_consistency=Estimate(0.4, 0.33, 0.47, 200))
    by_name = {r.name: r for r in evaluate_gate(cfg, ev).rules}
    for name in ("min_position_consistency", "win_rate_noninferiority"):
        assert by_name[name].status == "INCONCLUSIVE"
        assert "missed" not in by_name[name].reason and "FAIL" not in by_name[name].reason
    assert "= 0.4 (CI 0.33 to 0.47, n=200); below the required 0.7: the judge is too inconsistent" in \
        by_name["min_position_consistency"].reason
    assert by_name["win_rate_noninferiority"].reason.startswith("not decided: judge win rate")
    assert "= 0.2 (" in by_name["win_rate_noninferiority"].reason
    few = GateEvidence(win_rate=Estimate(0.5, 0.3, 0.7, 5), position_consistency=Estimate(0.0, 0.0, 0.24, 200))
    reason = {r.name: r for r in evaluate_gate(cfg, few).rules}["win_rate_noninferiority"].reason
    assert reason == ("not decided: judge win rate (non-inferiority margin 0.05) = 0.5 comes from a judge that "
                      "failed its position-consistency check")


def test_consistent_judge_keeps_its_win_rate_verdict():
    cfg = GateConfig.model_validate({"min_items": 10, "win_rate": {"noninferiority_margin": 0.05},
                                     "min_position_consistency": 0.7})
    ev = GateEvidence(win_rate=Estimate(0.2, 0.15, 0.25, 200), position_consistency=Estimate(0.9, 0.85, 0.94, 200))
    assert evaluate_gate(cfg, ev).verdict == "FAIL"


def test_rules_out_of_reach_name_the_items_they_need():
    from workbench.comparison.defaults import DEFAULT_GATE
    from workbench.comparison.gate import unreachable_rules

    cfg = GateConfig.model_validate({**DEFAULT_GATE, "metrics": {"exact_match": {"max_drop": 0.05,
                                                                                "higher_is_better": True}}})
    scales = {"exact_match": (0.0, 1.0)}
    lines = unreachable_rules(cfg, 32, value_ranges=scales)
    assert any(line.startswith("max_error_rate = 0.05 cannot pass with 32 calls") and "at least 73 items" in line
               for line in lines)
    assert any(line.startswith("metrics.exact_match: max_drop = 0.05") for line in lines)
    needed = int(next(line for line in lines if "exact_match" in line).split("at least ")[1].split()[0])
    assert unreachable_rules(cfg, needed, value_ranges=scales) == [] or all(
        "exact_match" not in line for line in unreachable_rules(cfg, needed, value_ranges=scales))
    assert unreachable_rules(cfg, needed - 1, value_ranges=scales) != []
    # the error rate's n is exactly where 0 failures first clear the threshold
    assert proportion_ci(0, 73).high <= 0.05 < proportion_ci(0, 72).high
    assert unreachable_rules(GateConfig.model_validate({"max_error_rate": 0.05, "min_items": 30}), 200) == []
    assert "min_items = 30, but the sample has 12 items" in unreachable_rules(cfg, 12)[0]


@pytest.mark.parametrize("days_left, status", [(400, "PASS"), (10, "FAIL"), (None, "PASS")])
def test_a_gate_rule_on_the_candidates_retirement(days_left, status):
    from workbench.comparison.gate import Retirement

    retires = None if days_left is None else "2027-01-01"
    ev = GateEvidence(retirement=Retirement("litellm/x", days_left, retires, "lifecycle_file"))
    res = evaluate_gate(GateConfig.model_validate({"min_days_to_retirement": 90}), ev)
    assert res.verdict == status and res.rules[0].name == "min_days_to_retirement"
    assert ("no retirement date is known" in res.rules[0].reason) == (days_left is None)
    missing = evaluate_gate(GateConfig.model_validate({"min_days_to_retirement": 90}), GateEvidence())
    assert missing.verdict == "INCONCLUSIVE"  # never a pass by silence
