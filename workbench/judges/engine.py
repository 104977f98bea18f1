"""Turn judge tasks into verdicts: reuse stored verdicts, call the judge model for the rest through
`workbench.generation.calls.execute` (cached like any model call), parse strictly, re-ask a bounded number of
times, and record every verdict in `judgments` and every failure in `judge_errors`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from workbench.errors import InputError
from workbench.generation import calls
from workbench.hashing import content_hash, request_key
from workbench.judges.parse import ParsedScore, ParsedVerdict, ParseError, parse_score, parse_verdict
from workbench.judges.spec import JudgeSpec
from workbench.judges.templates import Kind, Rendered, answer_text, reask
from workbench.models import get_model
from workbench.models.base import Adapter, Request, Response
from workbench.progress import PhaseReporter, phase
from workbench.store import Store

_SWAP = {"A": "B", "B": "A", "tie": "tie"}


@dataclass(frozen=True)
class JudgeTask:
    """One judgment to make: one criterion, one (pair of) response(s), one order, one judge sample."""

    judge_key: str
    kind: Kind
    criterion: str
    item_id: str
    response_key_a: str
    response_key_b: str | None
    position: str | None  # pairwise: 'ab' (response a shown first) or 'ba'
    sample_index: int  # the judge's sample index
    rendered: Rendered


@dataclass(frozen=True)
class Outcome:
    """The result of one task. `verdict` is in the a/b naming (already mapped back for 'ba')."""

    judge_key: str
    score: float | None = None
    verdict: str | None = None
    rationale: str | None = None
    raw_output: str | None = None
    error: str | None = None
    cached: bool = False


@dataclass
class JudgeStats:
    """What a judge run did: tasks, verdicts reused from the store, model calls made, errors."""

    tasks: int = 0
    cached: int = 0
    model_calls: int = 0
    retries: int = 0
    errors: int = 0
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "cached": self.cached, "model_calls": self.model_calls,
                "retries": self.retries, "errors": self.errors, "wall_s": round(self.wall_s, 3)}


def to_ab(screen_verdict: str, position: str | None) -> str:
    """A verdict about the responses as shown -> the a/b naming ('ba' showed b first)."""
    return _SWAP[screen_verdict] if position == "ba" else screen_verdict


def _parser(kind: Kind) -> Callable[[str], ParsedScore | ParsedVerdict]:
    return parse_score if kind == "pointwise" else parse_verdict


async def arun_tasks(store: Store, spec: JudgeSpec, adapter: Adapter, tasks: Sequence[JudgeTask],
                     policy: calls.CallPolicy | None = None, progress: PhaseReporter | None = None,
                     cache_only: bool = False) -> tuple[dict[str, Outcome], JudgeStats]:
    """Outcome per judge_key. Tasks sharing a key (identical contents) are judged once."""
    started = time.perf_counter()
    unique = list({t.judge_key: t for t in tasks}.values())
    stats = JudgeStats(tasks=len(unique))
    results = load_judgments(store, [t.judge_key for t in unique])
    stats.cached = len(results)

    template = spec.template_set()
    identity = adapter.identity()
    spec_json = json.dumps(spec.record(identity), sort_keys=True, ensure_ascii=False)
    assert spec.sampling is not None

    pending = [(t, t.rendered, 0) for t in unique if t.judge_key not in results]
    if cache_only and pending:
        failed = store.latest_judge_errors([t.judge_key for t, _, _ in pending])
        never = [t for t, _, _ in pending if t.judge_key not in failed]
        if never:
            raise InputError(f"judge {spec.model}: {len(never)} of {len(unique)} verdicts are not in the store; "
                             "judge them first (`workbench report` makes every call a comparison needs)")
        for task, _, _ in pending:
            results[task.judge_key] = Outcome(task.judge_key, error=failed[task.judge_key])
        stats.errors = len(pending)
        pending = []
    while pending:
        keyed = []
        planned: dict[str, calls.PlannedCall] = {}
        for task, rendered, attempt in pending:
            request = Request(item_id=task.item_id, messages=rendered.messages, prompt=rendered.prompt,
                              sampling=spec.sampling, sample_index=task.sample_index)
            key = request_key(identity, request.payload())
            planned.setdefault(key, calls.PlannedCall(key, request))
            keyed.append(key)
        stats.model_calls += len(planned) - len(store.cached_keys(list(planned)))
        round_name = f"judging with {spec.model}" + (" (re-asks)" if any(a for _, _, a in pending) else "")
        bar = phase(progress, round_name, len(planned))
        try:
            outcomes = await calls.execute(adapter, list(planned.values()), store, policy, bar)
        finally:
            bar.close()

        retry, rows, errors = [], [], []
        for (task, rendered, attempt), key in zip(pending, keyed):
            outcome = outcomes.get(key)
            if not isinstance(outcome, Response):
                message = f"judge model call failed: {outcome}" if outcome is not None else "judge model call returned nothing"
                errors.append((task, message, None))
                continue
            try:
                parsed = _parser(task.kind)(answer_text(template, task.kind, outcome.text))
            except ParseError as exc:
                if attempt < spec.retries:
                    retry.append((task, reask(template, task.kind, rendered, outcome.text), attempt + 1))
                else:
                    truncated = " (output cut at max_tokens)" if outcome.finish_reason == "length" else ""
                    errors.append((task, f"unparseable judge output after {attempt + 1} attempt(s){truncated}: {exc}",
                                   outcome.text))
                continue
            if isinstance(parsed, ParsedScore):
                result = Outcome(task.judge_key, score=float(parsed.score), rationale=parsed.rationale,
                                 raw_output=outcome.text)
            else:
                result = Outcome(task.judge_key, verdict=to_ab(parsed.verdict, task.position),
                                 rationale=parsed.rationale, raw_output=outcome.text)
            results[task.judge_key] = result
            rows.append((task, result))
        _write(store, spec_json, rows, errors)
        for task, message, raw in errors:
            results[task.judge_key] = Outcome(task.judge_key, raw_output=raw, error=message)
        stats.errors += len(errors)
        stats.retries += len(retry)
        pending = retry
    stats.wall_s = time.perf_counter() - started
    return results, stats


def resolve_adapter(spec: JudgeSpec, adapter: Adapter | None) -> tuple[Adapter, bool]:
    """The judge adapter and whether we built it (and so must close it). A passed adapter (e.g. a
    loaded local model, reused across calls) must be the spec's model."""
    if adapter is None:
        return get_model(spec.model, **spec.options), True
    if adapter.name != spec.model:
        raise InputError(f"judge adapter is '{adapter.name}' but the judge spec names '{spec.model}'")
    return adapter, False


def load_judgments(store: Store, keys: Sequence[str]) -> dict[str, Outcome]:
    return {key: Outcome(key, score=row["score"], verdict=row["verdict"], rationale=row["rationale"],
                         raw_output=row["raw_output"], cached=True)
            for key, row in store.stored_judgments(keys).items()}


def _write(store: Store, spec_json: str, rows: list[tuple[JudgeTask, Outcome]],
           errors: list[tuple[JudgeTask, str, str | None]]) -> None:
    """Verdicts and errors of one round, atomically (an interrupted run keeps finished rounds)."""
    store.put_judgments(
        [{"judge_key": t.judge_key, "judge_spec_json": spec_json, "kind": t.kind, "criterion": t.criterion,
          "item_id": t.item_id, "response_key_a": t.response_key_a, "response_key_b": t.response_key_b,
          "position": t.position, "sample_index": t.sample_index, "verdict": r.verdict, "score": r.score,
          "rationale": r.rationale, "raw_output": r.raw_output} for t, r in rows],
        [{"judge_key": t.judge_key, "item_id": t.item_id, "message": message, "raw_output": raw}
         for t, message, raw in errors])


def judge_key(spec: JudgeSpec, adapter_identity: dict[str, Any], kind: Kind, criterion: Any,
              contents: dict[str, str | None], position: str | None, sample_index: int) -> str:
    """Content hash of everything that decides one verdict: the spec, the judge model's identity,
    the criterion, the judged texts (input, reference, responses), the order and the sample index."""
    return content_hash({"kind": kind, "spec": spec.key_part(), "adapter": adapter_identity,
                         "criterion": criterion.key_part(), "contents": contents,
                         "position": position, "sample_index": sample_index})
