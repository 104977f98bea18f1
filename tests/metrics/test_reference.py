from __future__ import annotations

import math

import pytest

from workbench.errors import InputError
from workbench.metrics import corpus_score, get_metric

from .conftest import JA_TRIPLES

# Floors for a close paraphrase, well above what a broken tokenizer gives (0 for ROUGE-L's
# default tokenizer on Japanese, ~0-5 for BLEU with 13a, which sees one "word" per sentence).
PARAPHRASE_FLOOR = {"bleu": 25.0, "chrf": 40.0, "rouge_l": 0.35}


@pytest.mark.parametrize("name", ["bleu", "chrf", "rouge_l"])
def test_identical_beats_paraphrase_beats_unrelated(name, triples):
    language, rows = triples
    metric = get_metric(name)
    top = metric.value_range[1]
    for ref, para, unrelated in rows:
        same, close, far = metric.compute([ref, para, unrelated], [ref] * 3, language)
        assert same == pytest.approx(top)
        assert PARAPHRASE_FLOOR[name] < close < top
        assert 0 <= far < close / 2, (name, language, ref, far, close)


def test_japanese_scores_need_the_japanese_tokenizer():
    """The same Japanese paraphrase scored with the English pipeline collapses: this is the
    failure the per-language tokenizers prevent."""
    ref, para, _ = JA_TRIPLES[0]
    assert get_metric("rouge_l").compute([para], [ref], "en") == [0.0]
    assert get_metric("bleu").compute([para], [ref], "en")[0] < 10
    assert get_metric("rouge_l").compute([para], [ref], "ja")[0] > 0.35
    assert get_metric("bleu").compute([para], [ref], "ja")[0] > 25


def test_values_are_the_libraries_values():
    import sacrebleu
    from rouge_score import rouge_scorer

    hyp, ref = "The cat sat on the mat today.", "The cat is sitting on the mat."
    assert get_metric("bleu").compute([hyp], [ref])[0] == pytest.approx(
        sacrebleu.sentence_bleu(hyp, [ref]).score)  # sentence_bleu uses effective order too
    assert get_metric("chrf").compute([hyp], [ref])[0] == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score)
    expected = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(ref, hyp)["rougeL"].fmeasure
    assert get_metric("rouge_l").compute([hyp], [ref])[0] == pytest.approx(expected)
    ja_hyp, ja_ref = "返金の処理は五営業日以内に行われます。", "返金は五営業日以内に処理されます。"
    assert get_metric("bleu").compute([ja_hyp], [ja_ref], "ja")[0] == pytest.approx(
        sacrebleu.sentence_bleu(ja_hyp, [ja_ref], tokenize="ja-mecab").score)


def test_mixed_languages_in_one_batch_use_each_rows_tokenizer():
    ja_ref, en_ref = "返金は五営業日以内に処理されます。", "Refunds are processed within five business days."
    metric = get_metric("rouge_l")
    mixed = metric.compute([ja_ref, en_ref], [ja_ref, en_ref], ["ja", "en"])
    assert mixed == [pytest.approx(1.0), pytest.approx(1.0)]


def test_empty_response_scores_zero_not_nan():
    for name in ("bleu", "chrf", "rouge_l", "exact_match"):
        value = get_metric(name).compute([""], ["Refunds take five days."])[0]
        assert value == 0.0 and not math.isnan(value)


def test_exact_match_normalises_case_punctuation_width():
    em = get_metric("exact_match")
    assert em.compute(["The Paris."], ["paris"]) == [1.0]
    assert em.compute(["５営業日"], ["5 営業日。"], "ja") == [1.0]
    assert em.compute(["Lyon"], ["Paris"]) == [0.0]


def test_unsupported_language_is_refused_not_scored():
    with pytest.raises(InputError, match="zh"):
        get_metric("bleu").compute(["您好"], ["您好"], "zh")


def test_corpus_scores_per_language():
    refs = ["返金は五営業日以内に処理されます。", "ご注文の商品は明日発送される予定です。"]
    hyps = ["返金の処理は五営業日以内に行われます。", "ご注文いただいた商品は明日発送する予定です。"]
    bleu = corpus_score("bleu", hyps, refs, language="ja")
    assert 20 < bleu.score < 100 and bleu.n == 2
    assert "tok:ja-mecab" in bleu.signature
    assert corpus_score("chrf", refs, refs, language="ja").score == pytest.approx(100)
    with pytest.raises(ValueError):
        corpus_score("rouge_l", hyps, refs)


def test_memoised_stemmer_tokenizes_exactly_like_rouge_score():
    from rouge_score.tokenizers import DefaultTokenizer

    from workbench.metrics.reference import _StemmedTokenizer

    text = ("Refunds are being processed; the processing takes five business days. Replacements "
            "were shipped, and shipping is free! Generously, generalisation happens, caresses ponies.")
    ours = _StemmedTokenizer()
    assert ours.tokenize(text) == DefaultTokenizer(use_stemmer=True).tokenize(text)
    assert ours.tokenize(text) == ours.tokenize(text)  # second call served from the memo
