"""The README's headline, checked: the demo (`workbench report` with its defaults, the real bundled
local models, no fakes) says FAIL, and SmolLM2-135M loses to the few-shot Gemma baseline on chrF by
12.2 points (95% CI -15.7 to -8.5). Then a re-run on the warm store makes no call and gives the same
numbers. The cold run takes minutes on a 2-core CPU, so it runs once for the module.

Tolerance: generation is greedy and the bootstrap is seeded, so on one machine the numbers repeat to
the last digit. Across CPUs, BLAS kernels and torch builds a float rounding can flip one greedy token,
which changes that item's answer from there on: one of the 96 items moving by up to ~60 chrF points
moves the mean delta by ~0.6 and each CI bound by about as much. So the point estimate must be within
1.0 of -12.2 and each bound within 1.5 of the README's (room for one such item, not for a different
result): a change that moves the headline further is a regression the README must be updated for.
On CUDA the models run in bf16, a different computation, so there only the verdict and the sign of
the whole interval (the evidence of the headline) are checked.
Measured here (2-core CPU, 2026-12-07): chrF delta -12.17, 95% CI -15.72 to -8.45, n = 96; the cold run
took 52 min on a machine shared with five other test runs (about 6 min alone), the warm re-run 98 s.
"""
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CANDIDATE = "hf/smollm2-135m-instruct"
HEADLINE = {"value": -12.2, "ci_low": -15.7, "ci_high": -8.5}  # README.md, "Quick start"
DELTA_TOLERANCE = 1.0   # chrF points, see the module docstring
BOUND_TOLERANCE = 1.5
# the demo's verdict.json from the code before issue 19's one path (fca9f46: a7504d2 with the bundled
# prompts found), with the digest of the stored answers and verdicts it was computed from
BEFORE = Path(__file__).parent / "data" / "demo_verdict_before_issue19.json"


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _report(tmp: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "workbench.cli", "report", "-p", "store", json.dumps(str(tmp / "store.db")),
           "--reports-dir", str(tmp / "reports")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=REPO)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo exactly as `scripts/demo.sh` runs it (defaults: 96 items, both models, the pairwise
    judge), with its store and reports in a temporary folder."""
    tmp = tmp_path_factory.mktemp("demo")
    proc = _report(tmp)
    out = tmp / "reports" / "demo"
    return tmp, proc, out


def _chrf_rule(verdict: dict) -> dict:
    return next(r for r in verdict["candidates"][CANDIDATE]["rules"] if r["name"] == "metric:chrf")


@pytest.mark.slow
def test_the_demo_fails_with_the_readme_headline(demo):
    _, proc, out = demo
    assert proc.returncode == 1, proc.stderr[-4000:]  # FAIL is exit 1: the CI gate the README sells
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "FAIL" and verdict["complete"] is True
    candidate = verdict["candidates"][CANDIDATE]
    assert candidate["verdict"] == "FAIL"
    chrf = _chrf_rule(verdict)
    assert chrf["status"] == "FAIL" and chrf["numbers"]["n"] == 96, chrf
    numbers = chrf["numbers"]
    if _cuda():
        assert numbers["ci_high"] < 0, numbers
    else:
        assert numbers["value"] == pytest.approx(HEADLINE["value"], abs=DELTA_TOLERANCE), numbers
        assert numbers["ci_low"] == pytest.approx(HEADLINE["ci_low"], abs=BOUND_TOLERANCE), numbers
        assert numbers["ci_high"] == pytest.approx(HEADLINE["ci_high"], abs=BOUND_TOLERANCE), numbers
    assert numbers["confidence"] == 0.95
    semantic = next(r for r in candidate["rules"] if r["name"] == "metric:semantic_similarity")
    assert semantic["numbers"]["value"] < 0  # "and semantic similarity" (README)
    # "the 135M judge is 0% position-consistent, so the report marks its win rate as untrusted rather
    # than counting it": its rules are undecided, neither passed nor failed on the judge's word
    consistency = next(r for r in candidate["judge_reliability"] if r["measure"].startswith("position consistency"))
    assert consistency["value"] < 0.60, consistency
    rules = {r["name"]: r for r in candidate["rules"]}
    assert rules["min_position_consistency"]["status"] == "INCONCLUSIVE"
    assert "too inconsistent to be evidence" in rules["min_position_consistency"]["reason"]
    assert rules["win_rate_noninferiority"]["status"] == "INCONCLUSIVE"
    assert "failed its position-consistency check" in rules["win_rate_noninferiority"]["reason"]


@pytest.mark.slow
def test_the_demo_report_names_its_models_and_shows_results(demo):
    _, proc, out = demo
    manifest = json.loads((out / "manifest.json").read_text())
    models = manifest["models"]
    assert set(models) == {"hf/gemma3-270m", CANDIDATE}
    assert all(len(m["identity"]["weights_sha256"]) == 64 for m in models.values())
    assert models["hf/gemma3-270m"]["prompt"] == "support_fewshot@v1"
    assert manifest["calls"]["generation_made"] == 2 * 96  # each model answered each sampled item once
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Judge reliability" in html and "Model lifecycle" in html and "plotly" in html
    assert "Loading weights" not in html and "it/s]" not in html  # results, not progress bars


@pytest.mark.slow
def test_a_warm_rerun_makes_no_call_and_gives_the_same_numbers(demo):
    tmp, first, out = demo
    before = json.loads((out / "verdict.json").read_text())
    proc = _report(tmp)
    assert proc.returncode == first.returncode == 1, proc.stderr[-4000:]
    after = json.loads((out / "verdict.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calls"]["made"] == 0 and manifest["calls"]["generation_made"] == 0
    assert _chrf_rule(after)["numbers"] == _chrf_rule(before)["numbers"]
    assert after["verdict"] == before["verdict"] == "FAIL"


def evidence_digest(store: Path) -> str:
    """sha256 of every stored answer and judge verdict the demo's comparison reads (read through the
    pipeline's first half, no call): equal digests mean the comparison's inputs are identical."""
    from workbench.pipeline import gathered, plan_run
    from workbench.task.config import build_config

    config = build_config(None, {"store": str(store)}, base=REPO)
    with gathered(plan_run(config), allow_calls=False) as evidence:
        answers = evidence.responses[["model", "item_id", "sample_index", "response"]]
        verdicts = [result.verdicts[["item_id", "sample_index", "verdict_ab", "verdict_ba"]]
                    for result in evidence.judgments.values()]
    rows = [answers.sort_values(["model", "item_id", "sample_index"]).to_json(orient="values"),
            *(v.sort_values(["item_id", "sample_index"]).to_json(orient="values") for v in verdicts)]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def computed_part(verdict: dict) -> dict:
    """verdict.json without what changes by the day (the lifecycle's days left) and what is timed,
    not computed (the latency ratio: each cold run measures its own calls' latencies)."""
    kept = {k: v for k, v in verdict.items() if k != "lifecycle"}
    kept["candidates"] = {name: {**c, "ratios": [r for r in c.get("ratios", []) if "latency" not in r["measure"]]}
                          for name, c in verdict.get("candidates", {}).items()}
    return kept


EMBEDDED = "semantic_similarity"  # the demo's metric scored by a model now, not read from the answers alone
EMBEDDED_REL = 1e-6  # its scores differ between CPUs in the last bits (AMD EPYC: 5e-9 relative)


def embedded_within(expected: object, inside: bool = False) -> object:
    """`expected` with each number of the embedding-scored metric (a row or rule of `EMBEDDED`) as
    `pytest.approx` to `EMBEDDED_REL`; every other value as it is, to be compared exactly."""
    if isinstance(expected, dict):
        inside = inside or EMBEDDED in (expected.get("metric"), expected.get("name", "").removeprefix("metric:"))
        return {key: embedded_within(value, inside) for key, value in expected.items()}
    if isinstance(expected, list):
        return [embedded_within(value, inside) for value in expected]
    if inside and isinstance(expected, float):
        return pytest.approx(expected, rel=EMBEDDED_REL)
    return expected


def test_only_the_embedded_metric_s_numbers_get_a_tolerance():
    rule = {"name": f"metric:{EMBEDDED}", "numbers": {"value": -0.2892032462599066, "n": 96}, "reason": "x"}
    rows = [{"metric": EMBEDDED, "delta": 0.5}, {"metric": "chrf", "delta": -12.170850016847105}]
    expected = embedded_within({"rules": [rule], "metric_deltas": rows})
    near = {"rules": [{**rule, "numbers": {"value": -0.28920323186321184, "n": 96}}],
            "metric_deltas": [{"metric": EMBEDDED, "delta": 0.5 * (1 + 1e-8)}, rows[1]]}
    assert near == expected
    one_ulp = {"metric": "chrf", "delta": math.nextafter(rows[1]["delta"], 0.0)}
    assert {**near, "metric_deltas": [near["metric_deltas"][0], one_ulp]} != expected  # another metric: to the last bit
    assert {**near, "rules": [{**rule, "numbers": {"value": -0.2893, "n": 96}}]} != expected  # beyond the tolerance
    assert {**near, "rules": [{**rule, "numbers": {"value": -0.2892032462599066, "n": 95}}]} != expected  # counts exact


@pytest.mark.slow
def test_every_number_of_the_demo_verdict_is_what_the_code_before_gave(demo):
    """The one path (issue 19) moved where the numbers are computed, not what they are: on the same
    stored answers and verdicts, every number of verdict.json (each metric delta and CI, win rate,
    judge-reliability measure, ratio, McNemar check, gate rule) equals the recording to the last
    digit. On a machine whose models answered differently (a float rounding flipping a greedy token)
    the inputs differ, and the headline test above checks the numbers within its tolerance instead.
    The semantic similarity's scores are an embedding model's, computed now: their float sums differ
    between CPUs in the last bits, so its numbers match to `EMBEDDED_REL` (`embedded_within`)."""
    tmp, proc, out = demo
    assert proc.returncode == 1, proc.stderr[-4000:]
    before = json.loads(BEFORE.read_text(encoding="utf-8"))
    if evidence_digest(tmp / "store.db") != before["evidence_sha256"]:
        pytest.skip("this machine's models answered differently from the recording's: not the same inputs")
    computed = computed_part(json.loads((out / "verdict.json").read_text()))
    assert computed == embedded_within(computed_part(before["verdict"]))
