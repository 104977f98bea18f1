"""Strict parsing of judge output: a verdict is read from one required place, or not at all.

Accepted forms (anything else raises ParseError, which the caller retries and then records as a
judge error; a parse failure is never turned into a tie or a default score):
- a final non-empty line `Score: N` (N in 1..5; `Score: [[N]]` and `N/5` allowed) or
  `Verdict: [[A]]` / `[[B]]` / `[[C]]` (C = tie; a bare `[[A]]` line is allowed, MT-Bench style).
  Markdown emphasis around the line (`**Score:** 4`) is tolerated; the text above is the rationale.
- the whole output a JSON object (optionally in a ```json fence) with `score` (an integer 1..5)
  or `verdict` (A | B | C | tie), and optionally `rationale` / `explanation` / `reason`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from workbench.values import without_cut_characters

_SCORE_LINE = re.compile(r"^score\s*:\s*(?:\[\[\s*([1-5])\s*\]\]|([1-5])(?:\s*/\s*5)?)\s*\.?$", re.IGNORECASE)
# Closing brackets are optional so that a completion prompt ending in "Verdict: [[" whose stop
# sequence swallowed "]]" still parses; the letter itself must stand alone.
_VERDICT_LINE = re.compile(r"^(?:verdict\s*:\s*)?\[\[\s*([ABC])\s*(?:\]\]?)?\s*\.?$", re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL | re.IGNORECASE)
_RATIONALE_KEYS = ("rationale", "explanation", "reason", "reasoning")
_VERDICTS = {"A": "A", "B": "B", "C": "tie", "TIE": "tie"}


class ParseError(ValueError):
    """The judge's output does not contain a verdict in an accepted form."""


@dataclass(frozen=True)
class ParsedScore:
    score: int
    rationale: str | None


@dataclass(frozen=True)
class ParsedVerdict:
    verdict: str  # A | B | tie, in the order the responses were SHOWN (not yet mapped to a/b)
    rationale: str | None


def parse_score(text: str) -> ParsedScore:
    obj = _json_object(text)
    if obj is not None:
        score = obj.get("score")
        if isinstance(score, str) and score.strip().isdigit():
            score = int(score.strip())
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ParseError(f"JSON output has no integer 'score' from 1 to 5 (got {obj.get('score')!r})")
        return ParsedScore(score, _json_rationale(obj))
    rationale, last = _split_last_line(text)
    match = _SCORE_LINE.match(_unemphasize(last))
    if not match:
        raise ParseError(f"final line is not 'Score: N' with N from 1 to 5: {_clip(last)!r}")
    return ParsedScore(int(match.group(1) or match.group(2)), rationale)


def parse_verdict(text: str) -> ParsedVerdict:
    obj = _json_object(text)
    if obj is not None:
        value = obj.get("verdict")
        verdict = _VERDICTS.get(value.strip().upper()) if isinstance(value, str) else None
        if verdict is None:
            raise ParseError(f"JSON output has no 'verdict' of A, B, C or tie (got {value!r})")
        return ParsedVerdict(verdict, _json_rationale(obj))
    rationale, last = _split_last_line(text)
    match = _VERDICT_LINE.match(_unemphasize(last))
    if not match:
        raise ParseError(f"final line is not 'Verdict: [[A]]', '[[B]]' or '[[C]]': {_clip(last)!r}")
    return ParsedVerdict(_VERDICTS[match.group(1).upper()], rationale)


def _split_last_line(text: str) -> tuple[str | None, str]:
    lines = [line for line in (text or "").strip().splitlines()]
    if not lines:
        raise ParseError("empty output")
    rationale = "\n".join(lines[:-1]).strip()
    return (rationale or None), lines[-1].strip()


def _unemphasize(line: str) -> str:
    """`**Score:** 4`, `*Verdict: [[A]]*`, `# Score: 4` -> the plain line."""
    return line.replace("**", "").replace("__", "").strip().strip("*_`#> ").strip()


def _json_object(text: str) -> dict | None:
    """The output as a JSON object when it is one (whole output, optionally fenced); else None.
    Output that looks like JSON but does not parse is an error, not a fallback to line parsing."""
    stripped = (text or "").strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        obj = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ParseError(f"output looks like JSON but does not parse: {exc.msg} at char {exc.pos}") from None
    if not isinstance(obj, dict):
        raise ParseError("JSON output is not an object")
    return {str(k).lower(): v for k, v in obj.items()}


def _json_rationale(obj: dict) -> str | None:
    for key in _RATIONALE_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _clip(text: str, limit: int = 120) -> str:
    text = without_cut_characters(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
