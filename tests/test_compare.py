"""compare(): evidence stays honest when the judge is useless or a model answered nothing."""
import numpy as np
import pandas as pd

from workbench.compare import compare
from workbench.gate import GateConfig


def _frames(n=40):
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "input": ["q"] * n, "reference": ["ref"] * n,
                          "language": ["en", "ja"] * (n // 2)})
    def resp(model, text):
        return pd.DataFrame({"item_id": items["item_id"], "model": model, "sample_index": 0, "response": text,
                             "error": None, "latency_s": 0.1, "cost_usd": None, "prompt_tokens": 1,
                             "completion_tokens": 1})
    return items, resp("m/base", "short"), resp("m/cand", "a much longer answer")


def test_a_judge_that_only_ties_gives_undefined_length_bias_not_a_crash():
    items, base, cand = _frames()
    verdicts = pd.DataFrame({"item_id": items["item_id"], "verdict_ab": "A", "verdict_ba": "B", "verdict": "tie",
                             "consistent": False})
    result = compare(items, base, cand, verdicts=verdicts,
                     gate=GateConfig(min_items=10, win_rate={"noninferiority_margin": 0.1}, min_position_consistency=0.7))
    reliability = result.judge_reliability.set_index("measure")
    assert np.isnan(reliability.loc["P(judge prefers the longer answer)", "value"])
    assert reliability.loc["position consistency (same verdict in both orders)", "value"] == 0.0
    assert result.gate.verdict == "INCONCLUSIVE"  # an untrusted judge decides nothing


def test_a_candidate_that_answered_nothing_is_reported_not_crashed():
    items, base, cand = _frames()
    cand = cand.assign(response=None, error="server: down")
    result = compare(items, base, cand, gate=GateConfig(min_items=10, max_error_rate=0.05))
    assert result.n_paired == 0 and len(result.errors) == 40
    assert result.gate.verdict == "FAIL"  # 100% errors on 40 items: the whole CI is above 5%
