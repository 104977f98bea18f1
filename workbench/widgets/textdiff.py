"""Word-level diff of two texts, rendered as escaped HTML.

Why script-aware tokens: Japanese (and Chinese) text has no spaces, so a whitespace word
split would turn a whole sentence into one "word" and every edit into a full replacement.
Han, kana and Hangul characters are therefore single tokens, while runs of other word
characters (Latin, digits, Cyrillic...) stay whole words; whitespace and punctuation are
tokens of their own. Every piece of text is passed through `html.escape` before it is put
into markup: the texts are model output and must never be interpreted by the browser.
"""
from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass
from typing import Literal

# Han (CJK unified + ext. A + compatibility), Hiragana, Katakana (+ phonetic ext., half-width), Hangul.
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|\s+|[^\w\s]", re.UNICODE)

Op = Literal["equal", "insert", "delete"]


@dataclass(frozen=True)
class Segment:
    """A run of text that is common to both texts, only in the candidate, or only in the baseline."""

    op: Op
    text: str


def tokenize(text: str) -> list[str]:
    """Split `text` into diff tokens; ``"".join(tokenize(t)) == t`` always holds."""
    return _TOKEN.findall(text)


def diff_segments(baseline: str, candidate: str, max_tokens: int = 4000) -> list[Segment]:
    """Diff two texts token by token, merging adjacent runs of the same kind.

    `difflib` is quadratic in the worst case, so texts longer than `max_tokens` tokens are
    diffed line by line instead: still correct, only coarser. `autojunk` is off because with it
    frequent tokens (spaces, particles) become "junk" and long texts diff into nonsense.
    """
    a, b = tokenize(baseline), tokenize(candidate)
    if len(a) > max_tokens or len(b) > max_tokens:
        a, b = baseline.splitlines(keepends=True), candidate.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    segments: list[Segment] = []

    def add(op: Op, text: str) -> None:
        if not text:
            return
        if segments and segments[-1].op == op:
            segments[-1] = Segment(op, segments[-1].text + text)
        else:
            segments.append(Segment(op, text))

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            add("equal", "".join(b[j1:j2]))
        else:  # replace = delete + insert; plain delete/insert have one side empty
            add("delete", "".join(a[i1:i2]))
            add("insert", "".join(b[j1:j2]))
    return segments


def similarity(baseline: str, candidate: str) -> float:
    """Share of characters the two texts have in common (1.0 = identical), from the token diff."""
    total = len(baseline) + len(candidate)
    if total == 0:
        return 1.0
    common = sum(len(s.text) for s in diff_segments(baseline, candidate) if s.op == "equal")
    return 2.0 * common / total


def diff_html(baseline: str, candidate: str, max_tokens: int = 4000) -> str:
    """The candidate text with insertions in ``<ins>`` and removed baseline text in ``<del>``.

    The result is an HTML fragment; every text piece is escaped. Wrap it in an element with
    ``white-space: pre-wrap`` to keep line breaks.
    """
    parts = []
    for seg in diff_segments(baseline, candidate, max_tokens=max_tokens):
        text = html.escape(seg.text, quote=True)
        if seg.op == "equal":
            parts.append(text)
        elif seg.op == "insert":
            parts.append(f'<ins class="wb-ins">{text}</ins>')
        else:
            parts.append(f'<del class="wb-del">{text}</del>')
    return "".join(parts)
