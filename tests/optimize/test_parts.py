"""The optimizer's pure parts: the split, demonstrations, the budget, the objective's orientation."""
from __future__ import annotations

import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.optimize.budget import Budget, BudgetExhausted
from workbench.optimize.fewshot import demo_sets, with_demos
from workbench.optimize.objective import delta_ci, make_objective
from workbench.optimize.split import split_items
from workbench.project.lookup import bundled
from workbench.task.prompts import load_prompt, prompt_from_data


@pytest.fixture(scope="module")
def demo_items() -> pd.DataFrame:
    from workbench.task.dataset import load_items

    return load_items(bundled("data/support_reviews.jsonl"))


def test_split_is_stratified_disjoint_and_reproducible(demo_items):
    split = split_items(demo_items, 32, 32, seed=0, strata=["language", "task"])
    dev, test = set(split.dev["item_id"]), set(split.test["item_id"])
    assert len(dev) == len(test) == 32 and not dev & test
    for part in (split.dev, split.test):  # every slice is kept, evenly
        assert part.groupby(["language", "task"]).size().tolist() == [8, 8, 8, 8]
    again = split_items(demo_items, 32, 32, seed=0, strata=["language", "task"])
    assert again.dev["item_id"].tolist() == split.dev["item_id"].tolist()
    bigger = split_items(demo_items, 48, 32, seed=0, strata=["language", "task"])
    assert bigger.test["item_id"].tolist() == split.test["item_id"].tolist()  # test never depends on dev's size
    other = split_items(demo_items, 32, 32, seed=1, strata=["language", "task"])
    assert set(other.test["item_id"]) != test
    assert split.strata == ("language", "task")


def test_a_given_split_column_and_its_errors(demo_items):
    labelled = demo_items.assign(part=["dev" if i % 3 else "test" for i in range(len(demo_items))])
    split = split_items(labelled, 1, 1, seed=0, strata=["task"], split_column="part")
    assert len(split.test) == 43 and len(split.dev) == 85
    with pytest.raises(InputError, match="values must be 'dev' or 'test'"):
        split_items(labelled.assign(part="train"), 1, 1, seed=0, strata=[], split_column="part")
    with pytest.raises(InputError, match="the test split has 0 item"):
        split_items(labelled.assign(part="dev"), 1, 1, seed=0, strata=[], split_column="part")


def test_demonstrations_match_the_slice_and_never_take_a_slices_last_item(demo_items):
    dev = split_items(demo_items, 32, 32, seed=0, strata=["language", "task"]).dev
    teacher = pd.Series(dev["reference"].values, index=dev["item_id"].astype(str).values)
    sets = demo_sets(dev, teacher, ("language", "task"), max_demos=2, n_sets=4, seed=0)
    assert [len(s) for s in sets] == [8, 4, 8, 4]  # 2 then 1 per slice, 4 slices
    assert len({tuple(sorted(s)) for s in sets}) == 4
    start = load_prompt("support_chat@v1")
    data = with_demos(start, dev, sets[1], teacher, ("language", "task"))
    prompt = prompt_from_data(data, "support_chat", "trial")
    assert len(prompt.examples) == 4 and "parent" not in data
    item = dev[dev["item_id"].isin(sets[1])].iloc[0].to_dict()
    shown = [e for e in prompt.examples if e.applies_to(item)]
    assert len(shown) == 1 and shown[0].output == item["reference"]  # one demo of this item's own slice
    messages = prompt.render({**item, "item_id": "x"}).messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    tiny = dev.groupby(["language", "task"]).head(1)  # one item per slice: nothing can be spared
    assert demo_sets(tiny, teacher, ("language", "task"), 2, 3, 0) == []


def test_budget_counts_distinct_calls_and_keeps_the_reserve():
    budget = Budget(max_calls=10, reserved=4)
    budget.require(6, "x")
    budget.record({"a": None, "b": None, "a2": None})
    assert budget.new_keys(["a", "c", "c"]) == ["c"] and budget.calls == 3
    with pytest.raises(BudgetExhausted, match="4 kept for the test confirmation"):
        budget.require(4, "search")
    budget.require(7, "confirmation", use_reserve=True)
    priced = Budget(max_calls=100, max_cost_usd=1.0, reserved=10)
    priced.record({"a": 0.05})
    priced.require(9, "x")  # 0.05 + 9 * 0.05 + reserve 10 * 0.05 = 1.0
    with pytest.raises(BudgetExhausted, match="cost"):
        priced.require(10, "x")


def test_objectives_are_oriented_and_bounded():
    chrf = make_objective("reference", "chrf", None, "correctness")
    assert (chrf.sign, chrf.perfect, chrf.floor) == (1.0, 100.0, 0.0)
    assert make_objective("source", "rouge_l", "hf/gemma3-270m", "c").name == "rouge_l vs hf/gemma3-270m"
    assert make_objective("judge", "chrf", None, "helpfulness").perfect == 5.0
    with pytest.raises(InputError, match="does not compare with a reference"):
        make_objective("reference", "length_chars", None, "c")
    same = pd.Series([1.0, 2.0, 3.0], index=list("abc"))
    assert delta_ci(same, same, 200, 0)["delta"] == 0.0
    better = delta_ci(same + 1, same.drop("c"), 200, 0)
    assert better["delta"] == 1.0 and better["n_paired"] == 2  # paired on the items both scored
