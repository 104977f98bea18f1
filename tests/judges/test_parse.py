"""Strict parsing: a verdict comes from the required final line or a JSON object, or not at all."""
from __future__ import annotations

import pytest

from workbench.judges.parse import ParseError, parse_score, parse_verdict


@pytest.mark.parametrize("text, score", [
    ("The answer is right.\nScore: 5", 5),
    ("Mostly fine.\n\nScore: 4\n", 4),
    ("ok\n**Score:** 3", 3),
    ("ok\n**Score: 2**", 2),
    ("ok\nscore: [[1]]", 1),
    ("ok\nScore: 4/5", 4),
    ("Score: 3.", 3),
    ('{"rationale": "good", "score": 5}', 5),
    ('```json\n{"score": "2", "explanation": "meh"}\n```', 2),
])
def test_score_accepted_forms(text, score):
    assert parse_score(text).score == score


def test_score_rationale_is_the_text_above_the_final_line():
    parsed = parse_score("Line one.\nLine two.\nScore: 4")
    assert parsed.rationale == "Line one.\nLine two."
    assert parse_score("Score: 4").rationale is None
    assert parse_score('{"score": 1, "rationale": "wrong city"}').rationale == "wrong city"


@pytest.mark.parametrize("text", [
    "",
    "   \n ",
    "Score: 6",
    "Score: 0",
    "Score: 4 because it is good",       # the final line must be the score alone
    "Score: 4\nThanks for asking!",       # a score that is not on the final line
    "Score: four",
    "I would give it a 4.",
    "Score: 3.5",
    '{"score": 7}',
    '{"score": true}',
    '{"rating": 4}',
    '{"score": 4',                        # looks like JSON, does not parse: no fallback
    "[1, 2]",
])
def test_score_rejected_forms(text):
    with pytest.raises(ParseError):
        parse_score(text)


@pytest.mark.parametrize("text, verdict", [
    ("A is better.\nVerdict: [[A]]", "A"),
    ("Verdict: [[B]]", "B"),
    ("Equal.\nVerdict: [[C]]", "tie"),
    ("[[A]]", "A"),                        # MT-Bench's bare form
    ("**Verdict: [[b]]**", "B"),
    ("Verdict: [[A", "A"),                 # completion prompt whose stop sequence ate the brackets
    ('{"verdict": "tie", "rationale": "same"}', "tie"),
    ('{"Verdict": "C"}', "tie"),
])
def test_verdict_accepted_forms(text, verdict):
    assert parse_verdict(text).verdict == verdict


@pytest.mark.parametrize("text", [
    "",
    "Verdict: A",
    "Verdict: [[D]]",
    "Verdict: [[AB]]",
    "Verdict: [[A]] and also B",
    "Verdict: [[A]]\nActually, B.",
    "Assistant A is better.",
    "tie",
    '{"verdict": "both"}',
    '{"winner": "A"}',
])
def test_verdict_rejected_forms(text):
    with pytest.raises(ParseError):
        parse_verdict(text)


def test_parse_error_names_the_offending_line():
    with pytest.raises(ParseError, match="Score: 9"):
        parse_score("blah\nScore: 9")
