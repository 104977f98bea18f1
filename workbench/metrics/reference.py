"""Reference-based metrics: BLEU, chrF (sacrebleu), ROUGE-L (rouge-score), normalised exact match.

Scales follow the libraries so numbers match published ones: BLEU and chrF are 0-100
(sacrebleu), ROUGE-L F1 is 0-1 (rouge-score). Each row is tokenized for its own language:
Japanese with MeCab/IPAdic (sacrebleu's `ja-mecab`), everything else with sacrebleu's `13a`;
for ROUGE-L, English uses rouge-score's default tokenizer (lower-case, Porter stemmer) and
other space-delimited languages lower-cased Unicode words (the default drops non-ASCII letters). chrF works on characters
with whitespace removed, so it needs no tokenizer and is the most robust of the three on
Japanese. Languages without spaces that we have no tokenizer for are refused, not scored as 0.
"""
from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Sequence

from workbench.errors import InputError
from workbench.metrics.base import Metric
from workbench.metrics.text import EN, JA, JapaneseRougeTokenizer, normalize_for_match


def _library(name: str) -> str:
    """`name-<installed version>`: part of a cached metric's version, since its scores follow the library's."""
    try:
        return f"{name}-{version(name)}"
    except PackageNotFoundError:
        return f"{name}-absent"


UNSUPPORTED_LANGUAGES = frozenset({"zh", "ko", "th", "my", "km", "lo"})


def _check_language(language: str) -> None:
    if language in UNSUPPORTED_LANGUAGES:
        raise InputError(
            f"no word tokenizer configured for language {language!r}: BLEU/ROUGE-L would be "
            "meaningless; use chrf or semantic_similarity for it"
        )


def _by_language(languages: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, lang in enumerate(languages):
        _check_language(lang)
        groups[lang].append(i)
    return groups


def bleu_tokenizer(language: str) -> str:
    """sacrebleu tokenizer name for a language."""
    _check_language(language)
    return "ja-mecab" if language == JA else "13a"


@functools.lru_cache(maxsize=8)
def _bleu(tokenize: str):
    from sacrebleu.metrics import BLEU

    # effective_order: sentence-level BLEU without it is 0 whenever a 4-gram is missing.
    return BLEU(tokenize=tokenize, effective_order=True)


@functools.lru_cache(maxsize=1)
def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF()


def _bleu_batch(responses: Sequence[str], references: Sequence[str], languages: Sequence[str]) -> list[float]:
    out = [0.0] * len(responses)
    for lang, rows in _by_language(languages).items():
        scorer = _bleu(bleu_tokenizer(lang))
        for i in rows:
            out[i] = scorer.sentence_score(responses[i], [references[i]]).score
    return out


def _chrf_batch(responses: Sequence[str], references: Sequence[str], languages: Sequence[str]) -> list[float]:
    scorer = _chrf()
    return [scorer.sentence_score(h, [r]).score for h, r in zip(responses, references)]


class _StemmedTokenizer:
    """rouge-score's default tokenizer with Porter stemming, the stems memoised.

    Same tokens as `DefaultTokenizer(use_stemmer=True)` (it calls the same function), but
    stemming each word once instead of on every occurrence makes English ROUGE-L ~2x faster:
    nltk's Porter stemmer was over half the cost of scoring a 50-word pair."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self._porter = porter.PorterStemmer()
        self.stem = functools.lru_cache(maxsize=2**16)(self._porter.stem)

    def tokenize(self, text: str) -> list[str]:
        from rouge_score import tokenize

        return tokenize.tokenize(text, self)


class _UnicodeWordTokenizer:
    """Lower-cased Unicode words, no stemming: for space-delimited languages other than English.

    rouge-score's default tokenizer keeps only [a-z0-9], so "für" becomes "f", "r" and "été"
    becomes "t"; its Porter stemmer is English-only."""

    _WORD = re.compile(r"\w+")

    def tokenize(self, text: str) -> list[str]:
        return self._WORD.findall(unicodedata.normalize("NFKC", text).lower())


@functools.lru_cache(maxsize=8)
def _rouge_scorer(language: str):
    from rouge_score import rouge_scorer

    if language == JA:
        tokenizer = JapaneseRougeTokenizer()
    elif language == EN:
        tokenizer = _StemmedTokenizer()
    else:
        tokenizer = _UnicodeWordTokenizer()
    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizer)


def _rouge_l_batch(responses: Sequence[str], references: Sequence[str], languages: Sequence[str]) -> list[float]:
    out = [0.0] * len(responses)
    for lang, rows in _by_language(languages).items():
        scorer = _rouge_scorer(lang)
        for i in rows:
            out[i] = scorer.score(references[i], responses[i])["rougeL"].fmeasure
    return out


def _exact_match_batch(responses: Sequence[str], references: Sequence[str], languages: Sequence[str]) -> list[float]:
    return [
        float(normalize_for_match(h, lang) == normalize_for_match(r, lang))
        for h, r, lang in zip(responses, references, languages)
    ]


BLEU = Metric(
    name="bleu",
    fn=_bleu_batch,
    higher_is_better=True,
    aggregation="mean",
    needs_reference=True,
    value_range=(0.0, 100.0),
    description="Sentence BLEU (sacrebleu, effective order; ja-mecab for Japanese, 13a otherwise), 0-100.",
    params={"tokenize": {"ja": "ja-mecab", "other": "13a"}, "effective_order": True},
    version=f"1/{_library('sacrebleu')}/{_library('mecab-python3')}",
)
CHRF = Metric(
    name="chrf",
    fn=_chrf_batch,
    higher_is_better=True,
    aggregation="mean",
    needs_reference=True,
    value_range=(0.0, 100.0),
    description="Sentence chrF (sacrebleu defaults: char order 6, beta 2), 0-100; tokenizer-free, fine on Japanese.",
    params={"char_order": 6, "word_order": 0, "beta": 2},
    version=f"1/{_library('sacrebleu')}",
)
ROUGE_L = Metric(
    name="rouge_l",
    fn=_rouge_l_batch,
    higher_is_better=True,
    aggregation="mean",
    needs_reference=True,
    value_range=(0.0, 1.0),
    description="ROUGE-L F1 (rouge-score); MeCab words for Japanese, default tokenizer + Porter stemmer for "
                "English, Unicode words for other languages.",
    params={"tokenizer": {"ja": "mecab-ipadic", "en": "rouge-score default, stemmed", "other": "unicode words"}},
    version=f"1/{_library('rouge-score')}/{_library('mecab-python3')}",
)
EXACT_MATCH = Metric(
    name="exact_match",
    fn=_exact_match_batch,
    higher_is_better=True,
    aggregation="rate",
    needs_reference=True,
    value_range=(0.0, 1.0),
    description="1 if response equals reference after NFKC, case-fold, punctuation/article/whitespace normalisation.",
)

METRICS: tuple[Metric, ...] = (BLEU, CHRF, ROUGE_L, EXACT_MATCH)


# --- corpus level ---

@dataclass(frozen=True)
class CorpusScore:
    """A corpus-level score with sacrebleu's reproducibility signature."""

    metric: str
    language: str
    score: float
    n: int
    signature: str


def corpus_score(name: str, responses: Sequence[str], references: Sequence[str],
                 language: str = "en") -> CorpusScore:
    """Corpus-level BLEU or chrF (sacrebleu): n-gram statistics pooled over all rows, the number
    MT papers report. One language per call: a corpus BLEU over mixed tokenizations is not a
    number anyone can compare with."""
    if len(responses) != len(references):
        raise ValueError("responses and references differ in length")
    if name == "bleu":
        from sacrebleu.metrics import BLEU as SacreBLEU

        scorer = SacreBLEU(tokenize=bleu_tokenizer(language))
    elif name == "chrf":
        from sacrebleu.metrics import CHRF as SacreCHRF

        scorer = SacreCHRF()
    else:
        raise ValueError(f"corpus-level scores exist for 'bleu' and 'chrf', not {name!r}")
    if not responses:  # sacrebleu cannot score (or sign) an empty corpus
        return CorpusScore(name, language, math.nan, 0, "")
    result = scorer.corpus_score(list(responses), [list(references)])
    return CorpusScore(name, language, float(result.score), len(responses), str(scorer.get_signature()))
