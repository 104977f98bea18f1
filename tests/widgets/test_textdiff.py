"""Word-level (and, for Japanese, character-level) diff used by the explorer."""
from __future__ import annotations

import html
import random
import re

import pytest

from workbench.widgets.textdiff import DIFF_LEGEND, MIN_SHARED, diff_html, diff_or_plain, diff_segments, similarity, tokenize

TEXTS = [
    "",
    "Hello, world!  Two  spaces\nand a newline.",
    "今日は晴れです。明日も晴れるでしょう。",
    "Mixed 日本語 and English: 価格は¥1,200です (tax incl.)",
    "emoji 🎉 and tabs\tand ｶﾀｶﾅ half-width",
    "한국어 문장입니다.",
]


@pytest.mark.parametrize("text", TEXTS)
def test_tokens_rejoin_to_the_original_text(text):
    assert "".join(tokenize(text)) == text


def test_latin_words_stay_whole_and_cjk_splits_per_character():
    assert tokenize("the cat, 2024") == ["the", " ", "cat", ",", " ", "2024"]
    assert tokenize("日本語のテキスト") == list("日本語のテキスト")
    assert tokenize("GPT4は速い") == ["GPT4", "は", "速", "い"]


def _rebuild(segments, side):
    keep = {"equal", "insert"} if side == "candidate" else {"equal", "delete"}
    return "".join(s.text for s in segments if s.op in keep)


@pytest.mark.parametrize("a,b", [(a, b) for a in TEXTS for b in TEXTS])
def test_segments_rebuild_both_texts(a, b):
    segments = diff_segments(a, b)
    assert _rebuild(segments, "baseline") == a
    assert _rebuild(segments, "candidate") == b
    assert all(s.text for s in segments)
    assert all(x.op != y.op for x, y in zip(segments, segments[1:])), "adjacent runs are merged"


def test_one_changed_word_is_the_only_change():
    segments = diff_segments("the cat sat on the mat", "the dog sat on the mat")
    changed = [(s.op, s.text) for s in segments if s.op != "equal"]
    assert changed == [("delete", "cat"), ("insert", "dog")]


def test_japanese_diff_is_character_level_not_whole_sentence():
    segments = diff_segments("今日は晴れです。", "今日は雨です。")
    assert [(s.op, s.text) for s in segments] == [
        ("equal", "今日は"), ("delete", "晴れ"), ("insert", "雨"), ("equal", "です。")]


def test_identical_and_empty_inputs():
    assert [(s.op, s.text) for s in diff_segments("same text", "same text")] == [("equal", "same text")]
    assert [(s.op, s.text) for s in diff_segments("", "new")] == [("insert", "new")]
    assert diff_segments("", "") == []
    assert similarity("abc def", "abc def") == 1.0
    assert similarity("", "") == 1.0
    assert similarity("abc", "xyz") == 0.0
    assert 0.5 < similarity("a b c d", "a b c e") < 1.0


def test_long_texts_fall_back_to_lines_and_stay_correct():
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "東京", "大阪"]
    lines_a = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(60)]
    lines_b = list(lines_a)
    lines_b[10] = "a completely new line"
    a, b = "\n".join(lines_a), "\n".join(lines_b)
    segments = diff_segments(a, b, max_tokens=100)
    assert _rebuild(segments, "baseline") == a and _rebuild(segments, "candidate") == b
    inserted = [s.text for s in segments if s.op == "insert"]
    assert inserted == ["a completely new line\n"]  # whole lines, not words


def test_html_is_escaped_in_every_segment_kind():
    base = 'Keep <b>bold</b> & "quotes" <img src=x onerror=alert(1)>'
    cand = 'Keep <b>bold</b> & "quotes" <script>alert(1)</script>'
    out = diff_html(base, cand)
    assert "<script" not in out and "<img" not in out and "<b>" not in out
    # dropping deletions (and the ins tags) gives back exactly the escaped candidate, and vice versa
    as_candidate = re.sub(r'<del class="wb-del">.*?</del>', "", out).replace('<ins class="wb-ins">', "").replace("</ins>", "")
    as_baseline = re.sub(r'<ins class="wb-ins">.*?</ins>', "", out).replace('<del class="wb-del">', "").replace("</del>", "")
    assert as_candidate == html.escape(cand, quote=True)
    assert as_baseline == html.escape(base, quote=True)
    assert out.count('<ins class="wb-ins">') >= 1 and out.count('<del class="wb-del">') >= 1


def test_html_marks_only_the_changed_japanese_characters():
    out = diff_html("今日は晴れです。", "今日は雨です。")
    assert out == '今日は<del class="wb-del">晴れ</del><ins class="wb-ins">雨</ins>です。'


def test_unrelated_phrases_are_one_removal_and_one_addition_with_spaces_kept():
    segments = diff_segments("the cat sat", "the dog ran")
    assert [(s.op, s.text) for s in segments] == [("equal", "the "), ("delete", "cat sat"), ("insert", "dog ran")]
    raw = diff_segments("the cat sat", "the dog ran", cleanup=False)
    assert ("equal", " ") in [(s.op, s.text) for s in raw]  # what made the old view alternate word by word


def test_cleanup_keeps_real_common_runs():
    segments = diff_segments("a b c d", "a x c y")
    assert [(s.op, s.text) for s in segments] == [("equal", "a "), ("delete", "b"), ("insert", "x"), ("equal", " c "),
                                                   ("delete", "d"), ("insert", "y")]


@pytest.mark.parametrize("seed", range(20))
def test_cleaned_segments_still_rebuild_both_random_texts(seed):
    rng = random.Random(seed)
    vocab = ["a", "the", "cat", "dog", ",", " ", "  ", "\n", "今日", "は", "晴れ", "。", "<b>", "&"]
    a = "".join(rng.choice(vocab) for _ in range(rng.randint(0, 60)))
    b = "".join(rng.choice(vocab) for _ in range(rng.randint(0, 60)))
    segments = diff_segments(a, b)
    assert _rebuild(segments, "baseline") == a and _rebuild(segments, "candidate") == b
    assert all(x.op != y.op for x, y in zip(segments, segments[1:]))
    assert all(s.op != "insert" or nxt.op != "delete" for s, nxt in zip(segments, segments[1:])), "delete before insert"


def test_unrelated_answers_fall_back_to_plain_escaped_text():
    base = "Your refund was issued and should arrive in five business days."
    cand = "<script>alert(1)</script> I am sorry, but I cannot help with that request."
    assert similarity(base, cand) < 0.1  # shared spaces and "the" do not count as common text
    body, shared, diffed = diff_or_plain(base, cand)
    assert not diffed and shared < MIN_SHARED
    assert body == html.escape(cand, quote=True) and "<script" not in body
    body, shared, diffed = diff_or_plain("Your refund was issued today.", "Your refund was issued <script>x</script> today.")
    assert diffed and shared >= MIN_SHARED
    assert body == 'Your refund was issued <ins class="wb-ins">&lt;script&gt;x&lt;/script&gt; </ins>today.'


def test_legend_names_both_marks():
    assert '<ins class="wb-ins">added by the candidate</ins>' in DIFF_LEGEND
    assert '<del class="wb-del">baseline text the candidate dropped</del>' in DIFF_LEGEND
