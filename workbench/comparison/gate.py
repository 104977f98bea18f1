"""The migration gate: thresholds in, PASS / FAIL / INCONCLUSIVE out, with a reason per rule.

The gate is pure: it compares already-computed numbers (`GateEvidence`) with a `GateConfig`.
Each rule looks at a confidence interval, not just a point estimate:
  PASS when the whole CI is on the good side of the threshold, FAIL when the whole CI is on the bad
  side, INCONCLUSIVE when it straddles the threshold (more items would decide it).
A configured rule without evidence, or with too few items behind it, is INCONCLUSIVE and says what is
missing: the gate never passes by silence. Overall: FAIL if any rule fails, else INCONCLUSIVE if any
rule is inconclusive, else PASS.
A judge below the position-consistency minimum is a verdict on the *evidence*, not the candidate:
that rule and the judge's win-rate rule become INCONCLUSIVE (an untrusted judge can neither pass nor
fail a migration).
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import VERDICT_EXIT_CODES, InputError, Problem
from workbench.hashing import json_safe
from workbench.stats.proportions import bounded_mean_ci, proportion_ci

Status = Literal["PASS", "FAIL", "INCONCLUSIVE"]
PASS: Status = "PASS"
FAIL: Status = "FAIL"
INCONCLUSIVE: Status = "INCONCLUSIVE"

# ---------------------------------------------------------------- config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WinRateRule(_Strict):
    """Exactly one of: a minimum for the CI's lower bound, or a non-inferiority margin (win rate > 0.5 - margin).

    Both compare the evidence CI's lower bound. The comparison computes two-sided intervals at
    `workbench.comparison.defaults.CONFIDENCE` (95%), so requiring the lower bound above the threshold is a
    one-sided test at 2.5%.
    """

    min_lower_bound: float | None = Field(None, ge=0, le=1)
    noninferiority_margin: float | None = Field(None, ge=0, lt=0.5)
    # judge: the pairwise judge's win rate; human: human labels alone; ppi: the judge on every item
    # corrected by the human labels (prediction-powered, unbiased for the human preference)
    source: Literal["judge", "ppi", "human"] = "judge"

    @model_validator(mode="after")
    def _exactly_one(self) -> "WinRateRule":
        if (self.min_lower_bound is None) == (self.noninferiority_margin is None):
            raise ValueError("set exactly one of min_lower_bound or noninferiority_margin")
        return self

    @property
    def threshold(self) -> float:
        return self.min_lower_bound if self.min_lower_bound is not None else 0.5 - self.noninferiority_margin


class MetricRule(_Strict):
    """The candidate may be worse than the baseline by at most `max_drop` (in the metric's own units)."""

    max_drop: float = Field(ge=0, allow_inf_nan=False)  # inf would pass everything
    higher_is_better: bool


class GateConfig(_Strict):
    """Thresholds; every rule is optional but at least one must be set. Ratios are candidate / baseline."""

    min_items: int = Field(30, ge=1, description="fewer items behind a rule -> INCONCLUSIVE (what it decides on: "
                           "labelled items for the human and ppi win rates, judged pairs for the judge's, paired "
                           "items for metrics, calls for the error rate)")
    win_rate: WinRateRule | None = None
    metrics: dict[str, MetricRule] = Field(default_factory=dict)
    max_error_rate: float | None = Field(None, ge=0, le=1)
    max_cost_ratio: float | None = Field(None, gt=0)
    max_p95_latency_ratio: float | None = Field(None, gt=0)
    min_position_consistency: float | None = Field(None, ge=0, le=1)
    min_days_to_retirement: int | None = Field(None, ge=0, description="the candidate must not retire sooner")

    @model_validator(mode="after")
    def _some_rule(self) -> "GateConfig":
        if not (self.win_rate or self.metrics or any(v is not None for v in (
                self.max_error_rate, self.max_cost_ratio, self.max_p95_latency_ratio, self.min_position_consistency,
                self.min_days_to_retirement))):
            raise ValueError("no rule configured: a gate with no rules cannot pass anything")
        return self


def _problems(exc: ValidationError, file: str) -> list[Problem]:
    return [Problem(file, None, ".".join(str(p) for p in err["loc"]) or None, err["msg"]) for err in exc.errors()]


def load_gate_config(path: str | Path) -> GateConfig:
    """Read a GateConfig from a .json or .toml file; errors name the file and the field."""
    path = Path(path)
    name = str(path)
    if path.suffix.lower() not in (".json", ".toml"):
        raise InputError(Problem(name, None, None, "gate config must be a .json or .toml file"))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(Problem(name, None, None, f"cannot read: {exc.strerror or exc}")) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(name, None, None, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")) from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise InputError(Problem(name, None, None, f"invalid TOML: {exc}")) from None
    if not isinstance(data, dict):
        raise InputError(Problem(name, None, None, "the top level must be an object/table of settings"))
    try:
        return GateConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(_problems(exc, name)) from None


# ---------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Estimate:
    """A computed number with its CI (None = not computed) and the number of items behind it."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    confidence: float | None = None

    @classmethod
    def from_ci(cls, ci: Any) -> "Estimate":
        """From a stats result with estimate/low/high/n/confidence (e.g. BootstrapCI)."""
        return cls(float(ci.estimate), float(ci.low), float(ci.high), int(ci.n), getattr(ci, "confidence", None))


@dataclass(frozen=True)
class MetricDelta:
    """Mean per-item delta candidate - baseline (metric units) with its CI; direction from the metric registry."""

    delta: float
    ci_low: float | None
    ci_high: float | None
    higher_is_better: bool
    n: int | None = None
    confidence: float | None = None

    @classmethod
    def from_ci(cls, ci: Any, higher_is_better: bool) -> "MetricDelta":
        """From a paired-delta result with estimate/low/high/n/confidence (e.g. paired_delta_ci)."""
        return cls(float(ci.estimate), float(ci.low), float(ci.high), higher_is_better, int(ci.n),
                   getattr(ci, "confidence", None))


@dataclass(frozen=True)
class GateEvidence:
    """Everything the gate looks at, already computed; leave out what was not measured."""

    win_rate: Estimate | None = None  # candidate win rate vs baseline, ties as 0.5
    metric_deltas: dict[str, MetricDelta] = field(default_factory=dict)
    error_rate: Estimate | None = None  # candidate's share of failed calls
    cost_ratio: Estimate | None = None  # candidate cost / baseline cost
    p95_latency_ratio: Estimate | None = None  # candidate p95 latency / baseline p95 latency
    position_consistency: Estimate | None = None  # judge position consistency
    retirement: "Retirement | None" = None  # the candidate's retirement date, as the lifecycle sources know it


@dataclass(frozen=True)
class Retirement:
    """The candidate's retirement: days left (None: no date is known) and where that was looked up."""

    model: str
    days_left: int | None
    retires: str | None
    source: str


# ---------------------------------------------------------------- result


@dataclass(frozen=True)
class RuleResult:
    name: str
    status: Status
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateResult:
    verdict: Status
    rules: list[RuleResult]

    @property
    def exit_code(self) -> int:
        """For CI jobs: 0 PASS, 1 FAIL, 2 INCONCLUSIVE."""
        return VERDICT_EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN/inf become None) for verdict.json."""
        return {"verdict": self.verdict, "rules": [json_safe(asdict(r)) for r in self.rules]}

    def summary(self) -> str:
        lines = [f"Gate verdict: {self.verdict}"]
        lines += [f"  [{r.status}] {r.name}: {r.reason}" for r in self.rules]
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _interval_rule(
    name: str, what: str, value: float | None, low: float | None, high: float | None, n: int | None,
    threshold: float, *, at_least: bool, min_items: int | None, require_ci: bool, confidence: float | None = None,
) -> RuleResult:
    """Compare a CI with a threshold: `at_least` means the true value must be >= threshold, else <=."""
    numbers = {"value": value, "ci_low": low, "ci_high": high, "threshold": threshold, "n": n,
               "confidence": confidence}
    if not _finite(value):
        return RuleResult(name, INCONCLUSIVE, f"no usable evidence for {what} (value is {value!r})", numbers)
    if min_items is not None and (n is None or n < min_items):
        got = "an unknown number of" if n is None else f"only {n}"
        return RuleResult(name, INCONCLUSIVE,
                          f"{what} = {_fmt(value)} rests on {got} items (< min_items={min_items})", numbers)
    has_ci = _finite(low) and _finite(high)
    if has_ci and low > high:
        return RuleResult(name, INCONCLUSIVE, f"{what}: CI bounds are inverted ({low!r} > {high!r})", numbers)
    if not has_ci and require_ci:
        return RuleResult(name, INCONCLUSIVE, f"{what} = {_fmt(value)} has no confidence interval", numbers)
    lo, hi = (low, high) if has_ci else (value, value)
    rel = ">=" if at_least else "<="
    if has_ci:
        level = f"{confidence:.0%} " if confidence else ""
        count = f", n={n}" if n is not None else ""
        shown = f"{what} = {_fmt(value)} ({level}CI {_fmt(lo)} to {_fmt(hi)}{count})"
    else:
        shown = f"{what} = {_fmt(value)} (point estimate, no CI)"
    if (lo >= threshold) if at_least else (hi <= threshold):
        return RuleResult(name, PASS, f"{shown}; required {rel} {_fmt(threshold)}", numbers)
    if (hi < threshold) if at_least else (lo > threshold):
        return RuleResult(name, FAIL, f"{shown}; required {rel} {_fmt(threshold)}, missed by the whole interval",
                          numbers)
    return RuleResult(name, INCONCLUSIVE, f"{shown} straddles the threshold {_fmt(threshold)}; more items needed",
                      numbers)


def _missing(name: str, what: str) -> RuleResult:
    return RuleResult(name, INCONCLUSIVE, f"configured, but the evidence has no {what}", {})


def _win_rate_rule(rule: WinRateRule, ev: GateEvidence, min_items: int) -> RuleResult:
    source = {"judge": "judge", "ppi": "prediction-powered (judge + humans)", "human": "human"}[rule.source]
    if rule.noninferiority_margin is not None:
        name, what = "win_rate_noninferiority", f"{source} win rate (non-inferiority margin {rule.noninferiority_margin:g})"
    else:
        name, what = "win_rate_lower_bound", f"{source} win rate"
    e = ev.win_rate
    if e is None:
        return _missing(name, f"{source} win rate of the candidate" + (" (no human labels yet)" if rule.source != "judge" else ""))
    return _interval_rule(name, what, e.value, e.ci_low, e.ci_high, e.n, rule.threshold, at_least=True,
                          min_items=min_items, require_ci=True, confidence=e.confidence)


def _metric_rule(metric: str, rule: MetricRule, ev: GateEvidence, min_items: int) -> RuleResult:
    name = f"metric:{metric}"
    d = ev.metric_deltas.get(metric)
    if d is None:
        return _missing(name, f"delta for metric '{metric}'")
    if d.higher_is_better != rule.higher_is_better:
        say = {True: "higher is better", False: "lower is better"}
        return RuleResult(name, INCONCLUSIVE,
                          f"direction mismatch: the gate config says {say[rule.higher_is_better]}, the evidence says "
                          f"{say[d.higher_is_better]}; fix the config", {"delta": d.delta})
    # The candidate may be worse by at most max_drop: delta >= -max_drop if higher is better, else <= +max_drop.
    better = "higher" if rule.higher_is_better else "lower"
    threshold = -rule.max_drop if rule.higher_is_better else rule.max_drop
    result = _interval_rule(
        name, f"'{metric}' delta (candidate - baseline; {better} is better)", d.delta, d.ci_low, d.ci_high, d.n,
        threshold, at_least=rule.higher_is_better, min_items=min_items, require_ci=True, confidence=d.confidence)
    result.numbers["max_drop"] = rule.max_drop
    return result


def _retirement_rule(min_days: int, retirement: Retirement | None) -> RuleResult:
    """A migration to a model that retires within `min_days` is a migration to do again soon. A model
    with no known retirement date passes, saying where the date was looked for."""
    name = "min_days_to_retirement"
    if retirement is None:
        return _missing(name, "retirement date of the candidate")
    numbers = {"days_left": retirement.days_left, "retires": retirement.retires, "threshold": min_days,
               "source": retirement.source}
    if retirement.days_left is None:
        return RuleResult(name, PASS, f"{retirement.model}: no retirement date is known (looked up in: "
                          f"{retirement.source}); required at least {min_days} days", numbers)
    status = PASS if retirement.days_left >= min_days else FAIL
    return RuleResult(name, status, f"{retirement.model} retires on {retirement.retires}, in {retirement.days_left} "
                      f"days ({retirement.source}); required at least {min_days} days", numbers)


def _measured(reason: str) -> str:
    """The measurement part of an interval rule's reason ("x = 0.3 (95% CI ...)"), without its verdict."""
    for verdict_words in ("; required", " straddles the threshold", " rests on "):
        reason = reason.split(verdict_words, 1)[0]
    return reason


def _distrust_inconsistent_judge(rules: list[RuleResult], judge_win_rate: bool) -> list[RuleResult]:
    """An inconsistent judge cannot decide: its own rule and (when the win rate is the judge's alone)
    the win-rate rule become INCONCLUSIVE. A human or prediction-powered win rate does not rest on
    the judge's unchecked verdicts, so it stands."""
    judge = next((r for r in rules if r.name == "min_position_consistency"), None)
    if judge is None or judge.status != FAIL:
        return rules
    out = []
    for rule in rules:
        if rule is judge:  # marked INCONCLUSIVE, so its words must not read as a FAIL ("missed by ...")
            rule = RuleResult(rule.name, INCONCLUSIVE, f"{_measured(rule.reason)}; below the required "
                              f"{_fmt(rule.numbers.get('threshold'))}: the judge is too inconsistent to be evidence, "
                              "so its verdicts decide nothing", rule.numbers)
        elif rule.name.startswith("win_rate_") and judge_win_rate:
            rule = RuleResult(rule.name, INCONCLUSIVE, f"not decided: {_measured(rule.reason)} comes from a judge that "
                              "failed its position-consistency check", rule.numbers)
        out.append(rule)
    return out


def _smallest_n(passes: Any, start: int, limit: int = 1_000_000) -> int | None:
    """The smallest n >= start for which passes(n) holds (monotone in n), or None below `limit`."""
    high = max(start, 1)
    while not passes(high):
        high *= 2
        if high > limit:
            return None
    low = max(start, high // 2)
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if passes(mid) else (mid + 1, high)
    return high


def unreachable_rules(config: GateConfig, n_items: int, *, n_calls: int | None = None,
                      value_ranges: dict[str, tuple[float, float]] | None = None) -> list[str]:
    """Rules that cannot PASS at this sample size even when nothing regressed (no failed call, every
    metric delta 0, every judge verdict a tie), each with the number of items it would need: the
    intervals are honest at small n, so a tight threshold needs enough items to be met at all.
    `n_calls`: the candidate's calls (items x samples; default n_items); `value_ranges`: the
    metrics' scales (a metric without one has no floor and is not checked)."""
    calls = n_items if n_calls is None else n_calls
    per_item = max(1, calls // max(n_items, 1))
    out = []
    if config.min_items > n_items:
        out.append(f"min_items = {config.min_items}, but the sample has {n_items} items: every rule that counts items "
                   f"stays INCONCLUSIVE; use at least {config.min_items} items")
    if config.max_error_rate is not None and config.max_error_rate < 1:
        def error_rate_passes(n: int) -> bool:
            return proportion_ci(0, n).high <= config.max_error_rate
        if not error_rate_passes(calls):
            need = _smallest_n(error_rate_passes, calls)
            out.append(f"max_error_rate = {config.max_error_rate:g} cannot pass with {calls} calls even with no error "
                       f"(the 95% interval of 0 of {calls} reaches {proportion_ci(0, calls).high:.3f}); it needs "
                       + (f"at least {-(-need // per_item)} items" if need else "a higher threshold"))
    for metric, rule in sorted(config.metrics.items()):
        scale = (value_ranges or {}).get(metric)
        if scale is None:
            continue
        span = float(scale[1]) - float(scale[0])

        def metric_passes(n: int, rule: MetricRule = rule, span: float = span) -> bool:
            low, high = bounded_mean_ci(np.zeros(n), value_range=(-span, span))
            return (low >= -rule.max_drop) if rule.higher_is_better else (high <= rule.max_drop)
        if not metric_passes(n_items):
            need = _smallest_n(metric_passes, n_items)
            out.append(f"metrics.{metric}: max_drop = {rule.max_drop:g} cannot pass with {n_items} items even when "
                       f"nothing changed (on its scale {scale[0]:g} to {scale[1]:g} the interval of {n_items} equal "
                       "items is wider than that); it needs "
                       + (f"at least {need} items" if need else "a larger max_drop"))
    if config.win_rate is not None and config.win_rate.threshold < 0.5:
        def win_rate_passes(n: int) -> bool:
            return bounded_mean_ci(np.full(n, 0.5))[0] >= config.win_rate.threshold
        if not win_rate_passes(n_items):
            need = _smallest_n(win_rate_passes, n_items)
            out.append(f"win_rate: the bound {config.win_rate.threshold:g} cannot be cleared with {n_items} judged items "
                       f"even if every verdict were a tie; it needs at least {need} items")
    return out


def evaluate_gate(config: GateConfig, evidence: GateEvidence) -> GateResult:
    """Apply every configured rule to the evidence; see the module docstring for the semantics."""
    rules: list[RuleResult] = []
    if config.win_rate is not None:
        rules.append(_win_rate_rule(config.win_rate, evidence, config.min_items))
    for metric, rule in sorted(config.metrics.items()):
        rules.append(_metric_rule(metric, rule, evidence, config.min_items))
    simple = [
        ("max_error_rate", config.max_error_rate, evidence.error_rate, "candidate error rate", False, True),
        ("max_cost_ratio", config.max_cost_ratio, evidence.cost_ratio, "cost ratio (candidate / baseline)", False,
         False),
        ("max_p95_latency_ratio", config.max_p95_latency_ratio, evidence.p95_latency_ratio,
         "p95 latency ratio (candidate / baseline)", False, False),
        ("min_position_consistency", config.min_position_consistency, evidence.position_consistency,
         "judge position consistency", True, False),
    ]
    for name, threshold, est, what, at_least, uses_min_items in simple:
        if threshold is None:
            continue
        if est is None:
            rules.append(_missing(name, what))
            continue
        rules.append(_interval_rule(name, what, est.value, est.ci_low, est.ci_high, est.n, threshold,
                                    at_least=at_least, min_items=config.min_items if uses_min_items else None,
                                    require_ci=False, confidence=est.confidence))
    if config.min_days_to_retirement is not None:
        rules.append(_retirement_rule(config.min_days_to_retirement, evidence.retirement))
    rules = _distrust_inconsistent_judge(rules, config.win_rate is None or config.win_rate.source == "judge")
    statuses = {r.status for r in rules}
    verdict: Status = FAIL if FAIL in statuses else INCONCLUSIVE if INCONCLUSIVE in statuses else PASS
    return GateResult(verdict, rules)
