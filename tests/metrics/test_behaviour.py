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


# ---- copying the input -----------------------------------------------------------------------------
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from workbench.metrics.copying import (  # noqa: E402
    content_tokens, copy_checks, copy_flags, copy_measures, delta_without_copies, input_copy_share)

DEMO = Path(__file__).resolve().parents[2] / "data" / "support_reviews.jsonl"


def test_content_tokens_are_words_and_cjk_characters_normalised():
    assert content_tokens("Hello, WORLD!  Ｓｏｎｉｑ Air-Pro") == ["hello", "world", "soniq", "air", "pro"]
    assert content_tokens("返品は５日以内、OK?") == ["返", "品", "は", "5", "日", "以", "内", "ok"]


def test_copy_share_counts_only_verbatim_runs():
    source = "How do I pair my Soniq Air Pro with a new phone?"
    assert input_copy_share(source, source) == 1.0
    assert input_copy_share("Put both earbuds in the case and hold the button.", source) == 0.0
    # "pair my soniq air pro" (5 tokens) is a verbatim run; the other 5 answer tokens are not
    assert input_copy_share("To pair my Soniq Air Pro, open the app first.", source) == pytest.approx(5 / 10)
    assert np.isnan(input_copy_share("...", source))
    assert input_copy_share("Soniq Air", source) == 1.0  # shorter than n: compared whole


def test_copy_share_works_on_japanese_by_character():
    source = "Soniq Air Proを新しいスマホに接続したいのですが、どうすればいいですか？"
    assert input_copy_share(source, source) == 1.0
    answer = "イヤホンをケースに入れ、ケースのボタンを5秒間長押ししてください。"
    assert input_copy_share(answer, source) == 0.0
    echoed = copy_measures("質問: " + source + "\n回答:", source)
    assert echoed[1] == 1.0 and echoed[2] is True  # the whole input repeated: a copy


def test_demo_references_are_not_copies_but_echoes_of_every_input_are():
    items = pd.read_json(DEMO, lines=True)
    refs = [copy_measures(r, i) for r, i in zip(items["reference"], items["input"])]
    support = items["task"].eq("support_reply").to_numpy()
    assert not any(c for (_, _, c), s in zip(refs, support) if s), "a real support answer is not a copy"
    assert sum(c for _, _, c in refs) <= 2, "summaries in their own words are not copies"
    for text in items["input"]:
        assert copy_measures(text, text)[2]
        assert copy_measures(f"Customer: {text}\nAgent:", text)[2]
        assert copy_measures(f"{text}\n\nThank you for contacting Soniq support, we will reply within a day.", text)[2]


def test_behaviour_diff_reports_copy_rates_per_model():
    items = ITEMS.assign(input=["Where is my refund?", "返金はいつ届きますか？", "配送の感想を一言で", "How do I reset it?", "Thanks!"])
    base = dict(BASE, **{"2": "返金はいつ届きますか？", "4": "How do I reset it? How do I reset it?"})
    diff = behaviour_diff(items, base, CAND).set_index("item_id")
    assert diff.loc["2", "baseline_copied_input"] and not diff.loc["2", "candidate_copied_input"]
    assert diff.loc["4", "baseline_input_copy"] == 1.0 and diff.loc["1", "baseline_input_copy"] == 0.0
    assert pd.isna(diff.loc["5", "candidate_copied_input"])  # failed call
    summary = summarize_behaviour(diff.reset_index()).iloc[0]
    assert summary["baseline_copied_input_rate"] == pytest.approx(2 / 4)  # over the 4 pairs
    assert summary["candidate_copied_input_rate"] == 0.0
    no_input = behaviour_diff(ITEMS, BASE, CAND)
    assert no_input["baseline_copied_input"].isna().all()
    assert np.isnan(summarize_behaviour(no_input).iloc[0]["baseline_copied_input_rate"])


def test_copy_flags_for_any_number_of_models():
    items = pd.DataFrame({"item_id": ["a", "b"], "input": ["Where is my parcel right now?", "Cancel my order please."]})
    responses = pd.DataFrame({"item_id": ["a", "a", "b", "b", "a"], "model": ["m1", "m2", "m1", "m2", "m3"],
                              "response": ["Where is my parcel right now?", "It ships today.", None,
                                           "Your order is cancelled.", "Cancel my order please."]})
    flags = copy_flags(items, responses)
    assert flags["copied_input"].tolist() == [True, False, pd.NA, False, False]
    assert flags["input_copy"].iloc[0] == 1.0 and np.isnan(flags["input_copy"].iloc[2])


def _paired(n_copied: int, copied_gain: float, clean_gain: float, n_clean: int = 40, seed: int = 0) -> pd.DataFrame:
    """Baseline ahead by `copied_gain` on items where it copied and by `clean_gain` elsewhere."""
    rng = np.random.default_rng(seed)
    cand = rng.uniform(0.3, 0.6, n_copied + n_clean)
    gain = np.r_[np.full(n_copied, copied_gain), np.full(n_clean, clean_gain)] + rng.normal(0, 0.02, n_copied + n_clean)
    return pd.DataFrame({"baseline": cand + gain, "candidate": cand,
                         "baseline_copied": [True] * n_copied + [False] * n_clean, "candidate_copied": False})


def test_a_lead_made_of_copied_answers_disappears():
    row = delta_without_copies(_paired(n_copied=30, copied_gain=0.4, clean_gain=0.0))
    assert row["ci_high"] < 0 and row["leader"] == "baseline"
    assert (row["n"], row["n_copied"], row["n_kept"]) == (70, 30, 40)
    assert row["ci_low_kept"] <= 0 <= row["ci_high_kept"]
    assert row["lead_disappears"] is True and "baseline's lead" in row["reading"] and "30 items" in row["reading"]


def test_a_lead_that_changes_sign_disappears_and_a_real_lead_holds():
    flipped = delta_without_copies(_paired(n_copied=30, copied_gain=0.5, clean_gain=-0.1))
    assert flipped["delta"] < 0 < flipped["ci_low_kept"] and flipped["lead_disappears"] is True
    assert "changes sign" in flipped["reading"]
    holds = delta_without_copies(_paired(n_copied=10, copied_gain=0.4, clean_gain=0.1))
    assert holds["lead_disappears"] is False and "holds" in holds["reading"]
    lower = delta_without_copies(_paired(n_copied=10, copied_gain=0.4, clean_gain=0.1), higher_is_better=False)
    assert lower["leader"] == "candidate"  # lower is better: the candidate's lower scores lead


def test_no_lead_or_too_few_items_left_gives_no_verdict():
    none = delta_without_copies(_paired(n_copied=5, copied_gain=0.0, clean_gain=0.0))
    assert pd.isna(none["lead_disappears"]) and none["reading"] == "no lead on all items"
    all_copied = _paired(n_copied=30, copied_gain=0.4, clean_gain=0.0, n_clean=1)
    row = delta_without_copies(all_copied)
    assert pd.isna(row["lead_disappears"]) and "cannot be checked" in row["reading"] and np.isnan(row["delta_kept"])


def test_copy_checks_per_metric_from_long_frames():
    paired = _paired(n_copied=30, copied_gain=0.4, clean_gain=0.0)
    ids = [f"i{k}" for k in range(len(paired))]
    scores = pd.concat([
        pd.DataFrame({"item_id": ids, "model": "base", "metric": "chrf", "value": paired["baseline"]}),
        pd.DataFrame({"item_id": ids, "model": "cand", "metric": "chrf", "value": paired["candidate"]}),
        pd.DataFrame({"item_id": ids, "model": "base", "metric": "length", "value": 1.0}),
        pd.DataFrame({"item_id": ids, "model": "cand", "metric": "length", "value": 1.0})])
    copies = pd.DataFrame({"item_id": ids * 2, "model": ["base"] * len(ids) + ["cand"] * len(ids),
                           "copied_input": list(paired["baseline_copied"]) + [False] * len(ids)})
    table = copy_checks(scores, copies, "base", "cand").set_index("metric")
    assert table.loc["chrf", "lead_disappears"] is True and table.loc["chrf", "n_copied"] == 30
    assert table.loc["chrf", "delta"] == pytest.approx(float((paired["candidate"] - paired["baseline"]).mean()))
    assert pd.isna(table.loc["length", "lead_disappears"])
    with pytest.raises(InputError, match="copied_input"):
        copy_checks(scores, copies.drop(columns="copied_input"), "base", "cand")


# --- tool calls and JSON answers against the baseline (no expected calls) -------------------------------

def test_tool_call_diff_against_the_baseline():
    from workbench.items.tool_calls import ToolCall

    def call(name, **args):
        return ToolCall.parse(name, args)

    tools = [{"name": "lookup_order", "parameters": {"type": "object", "properties": {}}}]
    items = pd.DataFrame({"item_id": list("abcdefg"), "input": ["q"] * 7, "tools": [tools] * 6 + [None]})
    base = pd.DataFrame({"item_id": list("abcdefg"), "response": [""] * 5 + ["Hello", "plain"], "tool_calls": [
        (call("lookup_order", order_id="A1", verbose=True),), (call("lookup_order", order_id="A1"),),
        (call("lookup_order", order_id="A1"),), (call("lookup_order", order_id="A1"),),
        (call("lookup_order", order_id="A1", n=1),), (), ()]})
    cand = pd.DataFrame({"item_id": list("abcdefg"), "response": ["", "", "Your order shipped.", "", "", "", "text"],
                         "tool_calls": [
        (call("lookup_order", order_id="A1"),), (call("refund", order_id="A1"),), (),
        (ToolCall.parse("lookup_order", "{oops"),), (call("lookup_order", order_id="a1", n=1.0),),
        (call("lookup_order", order_id="B2"),), ()]})
    diff = behaviour_diff(items, base, cand).set_index("item_id")
    assert diff.loc["a", "dropped_argument"] and not diff.loc["a", "calls_agree"] and diff.loc["a", "same_tools"]
    assert diff.loc["b", "called_another_tool"] and not diff.loc["b", "same_tools"]
    assert diff.loc["c", "text_instead_of_call"] and not diff.loc["c", "same_call_count"]
    assert diff.loc["d", "candidate_unparseable"] and not diff.loc["d", "baseline_unparseable"]
    assert diff.loc["e", "calls_agree"] and diff.loc["e", "same_arguments"]  # "a1" == "A1", 1.0 == 1
    assert diff.loc["f", "called_when_baseline_did_not"] and diff.loc["f", "candidate_called"]
    assert pd.isna(diff.loc["g", "calls_agree"])  # no tools, no calls: not a tool item
    assert diff.loc["b", "candidate_calls"] == 'refund(order_id="A1")'
    summary = summarize_behaviour(diff.reset_index()).iloc[0]
    assert summary["calls_agree_rate"] == pytest.approx(1 / 6) and summary["n_tool_pairs"] == 6
    assert summary["calls_agree_ci_low"] < 1 / 6 < summary["calls_agree_ci_high"]
    assert summary["text_instead_of_call_rate"] == pytest.approx(1 / 6)


def test_json_agreement_with_the_baseline():
    items = pd.DataFrame({"item_id": ["j", "k", "t"], "input": ["q"] * 3,
                          "response_format": [{"type": "object"}, {"type": "object"}, None]})
    base = {"j": '{"intent": "refund", "order": "A1"}', "k": "not json", "t": '{"a": 1}'}
    cand = {"j": '{"intent": "refund", "order": "B2"}', "k": '{"a": 1}', "t": '{"a": 2}'}
    diff = behaviour_diff(items, base, cand).set_index("item_id")
    assert diff.loc["j", "json_agreement"] == 0.5
    assert pd.isna(diff.loc["k", "json_agreement"]) and pd.isna(diff.loc["t", "json_agreement"])
    assert summarize_behaviour(diff.reset_index()).iloc[0]["mean_json_agreement"] == 0.5
    assert diff["calls_agree"].isna().all()  # responses without tool_calls: no tool columns filled


def test_flags_are_boolean_arrays_and_no_block_of_objects_holds_them():
    from workbench.metrics.behaviour import _BOOL_COLUMNS

    empty, diff = behaviour_diff(ITEMS, {}, {}), behaviour_diff(ITEMS, BASE, CAND)
    assert all(str(frame[col].dtype) == "boolean" for col in _BOOL_COLUMNS for frame in (empty, diff))
    objects = {col for col in diff.columns if diff[col].dtype == object}
    assert objects <= {"missing", "baseline_refusal_phrase", "candidate_refusal_phrase", "baseline_calls",
                       "candidate_calls"}
    held = sum((block.values.base if block.values.base is not None else block.values).nbytes
               for block in diff._mgr.blocks if block.dtype == object)
    assert held == 8 * len(diff) * len(objects)  # the flags' old object block is not kept alive beside them
