from __future__ import annotations

import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.metrics import behaviour_diff, detect_format, detect_refusal, format_transitions, summarize_behaviour
from workbench.metrics.behaviour import response_language


@pytest.mark.parametrize("text, expected", [
    ('{"answer": "yes"}', "json"),
    ('```json\n[{"id": 1}]\n```', "json"),
    ("42", "plain"),
    ("Run this:\n```bash\npip install x\n```", "code"),
    ("# Summary\nAll good.\n## Details\nMore.", "headings"),
    ("Steps:\n1. Open settings\n2. Click reset\n3. Confirm", "numbered_list"),
    ("手順：\n１．設定を開く\n２．リセットを押す", "numbered_list"),
    ("①設定を開く\n②リセットを押す", "numbered_list"),
    ("Options:\n- refund\n- replacement", "bullet_list"),
    ("ご利用いただける方法：\n・返金\n・交換", "bullet_list"),
    ("- only one bullet here", "plain"),
    ("Thanks for reaching out. Your refund is on its way.", "plain"),
    ("-5 degrees today\n-3 tomorrow", "plain"),  # negative numbers are not bullets
])
def test_detect_format(text, expected):
    assert detect_format(text) == expected


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "I can’t assist with this request.",  # curly apostrophe
    "I am unable to provide that information.",
    "As an AI language model, I cannot browse the internet.",
    "I must decline to answer.",
    "I won't be able to help with that request.",
    "申し訳ありませんが、そのご質問にはお答えできません。",
    "申し訳ございませんが、そのご依頼には対応いたしかねます。",
    "その内容についてはお手伝いすることはできません。",
    "AIアシスタントとして、その判断をすることはできません。",
])
def test_refusals_are_detected(text):
    assert detect_refusal(text) is not None


@pytest.mark.parametrize("text", [
    "I'm sorry your package arrived late. We have issued a refund.",
    "I can help with that! Your order ships tomorrow.",
    "I'm sorry, but I can't find your order number in our system. Could you check it?",
    "Unfortunately we can't refund shipping costs, but the item price is refunded.",
    "申し訳ございませんが、セール品は返品できません。",  # apology + policy: an answer, not a refusal
    "ご迷惑をおかけして申し訳ありません。明日発送いたします。",
    "ご質問ありがとうございます。返金は五営業日以内に処理されます。",
])
def test_support_answers_are_not_refusals(text):
    assert detect_refusal(text) is None


def test_json_language_ignores_keys():
    assert response_language('{"summary_of_the_review": "とても良い商品です", "rating_value": 5}') == "ja"
    assert response_language('{"summary": "Great product"}') == "en"


ITEMS = pd.DataFrame({"item_id": ["1", "2", "3", "4", "5"], "language": ["en", "ja", "ja", "en", "en"],
                      "task": ["a", "a", "b", "b", "b"]})
BASE = {
    "1": "Your refund was issued and should arrive in five business days.",
    "2": "返金は五営業日以内に処理されます。",
    "3": '{"summary": "配送が早くて良い"}',
    "4": "Sure, here is how to reset it.",
    "5": "Thanks!",
}
CAND = {
    "1": "I'm sorry, but I can't help with that.",
    "2": "Your refund will be processed within five business days.",  # answered in English
    "3": "- 配送が早い\n- 梱包が丁寧",
    "4": "Sure, here is how to reset it. Open settings, then choose reset, then confirm the dialog.",
    "5": None,  # failed call
}


def test_behaviour_diff_per_item():
    diff = behaviour_diff(ITEMS, pd.Series(BASE), CAND).set_index("item_id")
    assert bool(diff.loc["1", "became_refusal"]) and "can't help" in diff.loc["1", "candidate_refusal_phrase"]
    assert not diff.loc["1", "baseline_refusal"]
    assert bool(diff.loc["2", "candidate_wrong_language"]) and not diff.loc["2", "baseline_wrong_language"]
    assert bool(diff.loc["2", "language_changed"]) and diff.loc["2", "candidate_language_detected"] == "en"
    assert (diff.loc["3", "baseline_format"], diff.loc["3", "candidate_format"]) == ("json", "bullet_list")
    assert bool(diff.loc["3", "format_changed"]) and not diff.loc["3", "candidate_wrong_language"]
    assert diff.loc["4", "length_ratio"] == pytest.approx(len(CAND["4"]) / len(BASE["4"]))
    assert diff.loc["4", "length_delta"] == len(CAND["4"]) - len(BASE["4"])
    assert diff.loc["5", "missing"] == "candidate"
    assert pd.isna(diff.loc["5", "format_changed"]) and pd.isna(diff.loc["5", "length_ratio"])


def test_summary_rates_exclude_missing_pairs():
    diff = behaviour_diff(ITEMS, BASE, CAND)
    overall = summarize_behaviour(diff).iloc[0]
    assert overall["n_pairs"] == 4 and overall["n_missing"] == 1
    assert overall["became_refusal_rate"] == pytest.approx(1 / 4)
    assert overall["format_changed_rate"] == pytest.approx(1 / 4)
    assert overall["candidate_wrong_language_rate"] == pytest.approx(1 / 4)
    assert overall["baseline_wrong_language_rate"] == 0.0
    by_lang = summarize_behaviour(diff, by="language")
    assert list(by_lang.index) == ["en", "ja"]
    assert by_lang.loc["ja", "candidate_wrong_language_rate"] == pytest.approx(1 / 2)
    sliced = summarize_behaviour(diff.merge(ITEMS[["item_id", "task"]], on="item_id"), by=["task", "language"])
    assert sliced.loc[("b", "en"), "n_missing"] == 1
    table = format_transitions(diff)
    assert table.loc["json", "bullet_list"] == 1


def test_frames_pair_by_sample_and_reject_ambiguity():
    base = pd.DataFrame({"item_id": ["1", "1"], "sample_index": [0, 1], "model": "a", "response": ["x", "y"]})
    cand = pd.DataFrame({"item_id": ["1", "1"], "sample_index": [0, 1], "model": "b", "response": ["x", "- a\n- b"]})
    diff = behaviour_diff(ITEMS, base, cand)
    assert diff["sample_index"].tolist() == [0, 1] and diff["format_changed"].tolist() == [False, True]
    with pytest.raises(InputError, match="several models"):
        behaviour_diff(ITEMS, pd.concat([base, cand]), cand)
    with pytest.raises(InputError, match="ids not in the items"):
        behaviour_diff(ITEMS, {"99": "x"}, {"99": "y"})
    with pytest.raises(InputError, match="expected text"):
        behaviour_diff(ITEMS, {"1": 3}, {"1": "y"})
