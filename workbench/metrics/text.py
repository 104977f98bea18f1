"""Language-aware text helpers shared by the metrics and the behavioural diff.

Japanese has no spaces between words, so any whitespace or ASCII tokenizer silently scores it
as nothing (rouge-score's default tokenizer drops every non-ASCII character). Japanese text is
therefore segmented with MeCab + IPAdic, exactly the tokenizer sacrebleu uses for `ja-mecab`
(install `sacrebleu[ja]`, i.e. mecab-python3 and ipadic wheels from PyPI). We fail loudly when
it is missing rather than fall back to another tokenizer, because scores from two tokenizers
are not comparable and a silent switch would make two runs of a report disagree.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

JA = "ja"
EN = "en"
UNKNOWN = "unknown"

_KANA = r"\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_KANJI = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA_RE = re.compile(f"[{_KANA}]")
_JA_RE = re.compile(f"[{_KANA}{_KANJI}\u3005]")  # 々 counts as Japanese
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f\uff21-\uff3a\uff41-\uff5a]")
_FENCE_RE = re.compile(r"```.*?(?:```|\Z)", re.S)

JA_SHARE_THRESHOLD = 0.25
"""Share of Japanese characters among letters above which text counts as Japanese.

Counted in characters, a Japanese word is ~2 characters and an English one ~5, so Japanese
text with product names or a URL stays well above 0.25, while English text quoting a Japanese
name stays below it."""


def normalize_language(value: Any) -> str | None:
    """Map an item's `language` value to "ja", another lower-case code, or None when missing.

    Any "ja*" / "japanese" value means Japanese; other codes are kept (they are tokenized as
    space-delimited languages, which is right for English and most European languages).
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    code = str(value).strip().lower()
    if not code:
        return None
    if code.startswith("ja") or code in {"jp", "jpn", "japanese", "日本語"}:
        return JA
    if code.startswith("en") or code == "english":
        return EN
    return code


def script_counts(text: str) -> tuple[int, int, int]:
    """(Japanese characters, kana characters, Latin letters) in `text`."""
    return len(_JA_RE.findall(text)), len(_KANA_RE.findall(text)), len(_LATIN_RE.findall(text))


def detect_language(text: str, ignore_code: bool = True) -> str:
    """"ja", "en" or "unknown" from the script share of the letters (no model, deterministic).

    "en" means Latin script (we only distinguish the project's two languages). Text with kanji
    but no kana is Chinese-like, not Japanese, so kana are required. Fenced code blocks are
    ignored by default: code is Latin whatever language the answer is written in.
    """
    if ignore_code:
        text = _FENCE_RE.sub(" ", text)
    ja, kana, latin = script_counts(text)
    if ja + latin == 0:
        return UNKNOWN
    if kana > 0 and ja / (ja + latin) >= JA_SHARE_THRESHOLD:
        return JA
    if latin > 0 and latin / (ja + latin) >= 0.5:
        return EN
    return UNKNOWN


def resolve_language(item_language: Any, *texts: str | None) -> str:
    """The language to tokenize with: the item's declared one, else detected from the texts given
    (reference first), else "en"."""
    lang = normalize_language(item_language)
    if lang is not None:
        return lang
    for text in texts:
        if isinstance(text, str) and text.strip():
            found = detect_language(text)
            if found != UNKNOWN:
                return found
    return EN


# --- Japanese segmentation (MeCab + IPAdic, as sacrebleu's ja-mecab) ---

@functools.lru_cache(maxsize=1)
def _mecab_tokenizer():
    """sacrebleu's own ja-mecab tokenizer, built once per process (its tagger takes ~10 ms)."""
    try:
        from sacrebleu.tokenizers.tokenizer_ja_mecab import TokenizerJaMecab

        return TokenizerJaMecab()
    except (ImportError, RuntimeError) as exc:  # sacrebleu raises RuntimeError without MeCab
        raise RuntimeError(
            "Japanese tokenization needs MeCab + IPAdic: pip install 'sacrebleu[ja]' "
            "(mecab-python3 and ipadic wheels)"
        ) from exc


def japanese_words(text: str) -> list[str]:
    """MeCab word segmentation (IPAdic), identical to sacrebleu's ja-mecab tokenizer."""
    segmented = _mecab_tokenizer()(text)
    return segmented.split() if segmented else []


def _is_punct_or_symbol(token: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PSZ" for ch in token)


def words(text: str, language: str) -> list[str]:
    """Words for counting length: MeCab words for Japanese, whitespace tokens otherwise.

    Punctuation-only tokens are not words (MeCab emits "。" and "、" as tokens)."""
    raw = japanese_words(text) if language == JA else text.split()
    return [t for t in raw if not _is_punct_or_symbol(t)]


class JapaneseRougeTokenizer:
    """rouge-score tokenizer for Japanese: NFKC, lower-case, MeCab words, punctuation dropped.

    Mirrors what rouge-score's default tokenizer does for English (lower-case, alphanumerics
    only), but keeps kana and kanji, which the default replaces with spaces.
    """

    def tokenize(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        return [t for t in japanese_words(text) if not _is_punct_or_symbol(t)]


# --- normalisation for exact match ---

_EN_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")


def normalize_for_match(text: str, language: str) -> str:
    """SQuAD-style normalisation so that trivial differences are not mismatches.

    Both: NFKC (full-width "５" == "5"), case-fold, drop punctuation and symbols.
    English (and other space-delimited languages): drop articles, collapse whitespace.
    Japanese: drop all whitespace, which carries no meaning between Japanese words.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    if language == JA:
        return "".join(text.split())
    text = _EN_ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())
