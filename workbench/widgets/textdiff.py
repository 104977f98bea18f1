"""Word-level diff of two texts, rendered as escaped HTML.

Why script-aware tokens: Japanese (and Chinese) text has no spaces, so a whitespace word
split would turn a whole sentence into one "word" and every edit into a full replacement.
Han, kana and Hangul characters are therefore single tokens, while runs of other word
characters (Latin, digits, Cyrillic...) stay whole words; whitespace and punctuation are
tokens of their own. Every piece of text is passed through `html.escape` before it is put
into markup: the texts are model output and must never be interpreted by the browser.

Why the cleanup: two unrelated answers still share spaces, commas and "the"; a raw token diff
then alternates struck-through and inserted words glued to each other, which nobody can read.
Short equal runs between changes are folded into the changes (the "semantic cleanup" of
diff-match-patch), so a rewritten phrase shows as one removed and one added phrase, spaces
kept inside them; and answers that share little are better shown side by side without marks
(`diff_or_plain`), which says so.
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


def diff_segments(baseline: str, candidate: str, max_tokens: int = 4000, cleanup: bool = True) -> list[Segment]:
    """Diff two texts token by token, merging adjacent runs of the same kind.

    `difflib` is quadratic in the worst case, so texts longer than `max_tokens` tokens are
    diffed line by line instead: still correct, only coarser. `autojunk` is off because with it
    frequent tokens (spaces, particles) become "junk" and long texts diff into nonsense.
    `cleanup` folds short equal runs between changes into them (see the module docstring).
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
    return _cleanup(segments) if cleanup else segments


def _regroup(segments: list[Segment]) -> list[Segment]:
    """Each run of changes as one delete then one insert; adjacent equal runs merged."""
    out: list[Segment] = []
    dels: list[str] = []
    ins: list[str] = []

    def flush() -> None:
        for op, parts in (("delete", dels), ("insert", ins)):
            if parts:
                out.append(Segment(op, "".join(parts)))
        dels.clear()
        ins.clear()

    for seg in segments:
        if seg.op == "equal":
            flush()
            if out and out[-1].op == "equal":
                out[-1] = Segment("equal", out[-1].text + seg.text)
            else:
                out.append(seg)
        else:
            (dels if seg.op == "delete" else ins).append(seg.text)
    flush()
    return out


def _cleanup(segments: list[Segment]) -> list[Segment]:
    """Fold every equal run between two changes that is no longer than the larger side of the
    change before it and of the change after it into those changes; repeat until stable."""
    while True:
        segments = _regroup(segments)
        eq = [i for i, s in enumerate(segments) if s.op == "equal"]
        change = [0] * len(segments)  # longer side (delete or insert) of the changes around each equal
        for k, i in enumerate(eq):
            lo = eq[k - 1] + 1 if k else 0
            hi = eq[k + 1] if k + 1 < len(eq) else len(segments)
            before = max((len(s.text) for s in segments[lo:i]), default=0)
            after = max((len(s.text) for s in segments[i + 1:hi]), default=0)
            change[i] = min(before, after)  # 0 at either end of the text: never folded
        fold = {i for i in eq if 0 < len(segments[i].text) <= change[i]}
        if not fold:
            return segments
        segments = [x for i, s in enumerate(segments)
                    for x in ((Segment("delete", s.text), Segment("insert", s.text)) if i in fold else (s,))]


def _shared(segments: list[Segment], total: int) -> float:
    return 1.0 if total == 0 else 2.0 * sum(len(s.text) for s in segments if s.op == "equal") / total


def similarity(baseline: str, candidate: str) -> float:
    """Share of characters the two texts have in common (1.0 = identical), from the cleaned-up
    token diff, so the spaces and commas every two texts share do not count."""
    return _shared(diff_segments(baseline, candidate), len(baseline) + len(candidate))


MIN_SHARED = 0.3
"""Below this share in common a diff is mostly marks: the explorer shows the answers plainly."""

DIFF_LEGEND = ('<span class="wb-legend">diff vs baseline: <ins class="wb-ins">added by the candidate</ins> '
               '<del class="wb-del">baseline text the candidate dropped</del></span>')


def _segments_html(segments: list[Segment]) -> str:
    parts = []
    for seg in segments:
        text = html.escape(seg.text, quote=True)
        if seg.op == "equal":
            parts.append(text)
        elif seg.op == "insert":
            parts.append(f'<ins class="wb-ins">{text}</ins>')
        else:
            parts.append(f'<del class="wb-del">{text}</del>')
    return "".join(parts)


def diff_html(baseline: str, candidate: str, max_tokens: int = 4000) -> str:
    """The candidate text with insertions in ``<ins>`` and removed baseline text in ``<del>``.

    The result is an HTML fragment; every text piece is escaped. Wrap it in an element with
    ``white-space: pre-wrap`` to keep line breaks and spaces.
    """
    return _segments_html(diff_segments(baseline, candidate, max_tokens=max_tokens))


def diff_or_plain(baseline: str, candidate: str, min_shared: float = MIN_SHARED,
                  max_tokens: int = 4000) -> tuple[str, float, bool]:
    """(HTML, share in common, diffed): the marked-up diff when the texts share at least
    `min_shared` of their characters, else the escaped candidate text with no marks (diffed False)."""
    segments = diff_segments(baseline, candidate, max_tokens=max_tokens)
    shared = _shared(segments, len(baseline) + len(candidate))
    if shared < min_shared:
        return html.escape(candidate, quote=True), shared, False
    return _segments_html(segments), shared, True
