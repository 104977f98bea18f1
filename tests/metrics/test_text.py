from __future__ import annotations

import pytest

from workbench.metrics.text import (
    JapaneseRougeTokenizer,
    detect_language,
    normalize_for_match,
    normalize_language,
    resolve_language,
    words,
)


@pytest.mark.parametrize("text, expected", [
    ("ご注文の商品は明日発送されます。", "ja"),
    ("iPhone 15 Pro の返品は30日以内に受け付けています。", "ja"),  # Latin product names stay ja
    ("Your order ships tomorrow.", "en"),
    ("We shipped it from our Tokyo (東京) warehouse yesterday.", "en"),
    ("您的订单明天发货。", "unknown"),  # kanji without kana is not Japanese
    ("12345 !!!", "unknown"),
    ("", "unknown"),
    ("以下のコードで解決できます。\n```python\nfor item in items:\n    print(item.name, item.price)\n```", "ja"),
])
def test_detect_language(text, expected):
    assert detect_language(text) == expected


def test_normalize_language_maps_variants():
    assert [normalize_language(v) for v in ("ja", "JA-jp", "Japanese", "en-US", "fr", None, float("nan"), " ")] == [
        "ja", "ja", "ja", "en", "fr", None, None, None]


def test_resolve_language_prefers_item_then_reference_then_response():
    assert resolve_language("en", "日本語の参照文です。") == "en"
    assert resolve_language(None, "日本語の参照文です。", "English answer") == "ja"
    assert resolve_language(None, None, "English answer") == "en"
    assert resolve_language(None, None, "回答です。") == "ja"


def test_rouge_default_tokenizer_drops_japanese_ours_does_not():
    from rouge_score.tokenizers import DefaultTokenizer

    text = "返金は五営業日以内に処理されます。"
    assert DefaultTokenizer().tokenize(text) == []  # the bug this module exists for
    tokens = JapaneseRougeTokenizer().tokenize(text)
    assert tokens[:3] == ["返金", "は", "五"] and "。" not in tokens


def test_words_counts_japanese_words_not_characters():
    assert words("返金は五営業日以内に処理されます。", "ja") == ["返金", "は", "五", "営業", "日", "以内", "に", "処理", "さ", "れ", "ます"]
    assert words("Refunds take five days .", "en") == ["Refunds", "take", "five", "days"]


def test_normalize_for_match():
    assert normalize_for_match("The Answer: 42!", "en") == normalize_for_match("answer 42", "en")
    assert normalize_for_match("５営業日。", "ja") == normalize_for_match("5 営業日", "ja") == "5営業日"
    assert normalize_for_match("Paris", "en") != normalize_for_match("London", "en")
