"""The rater's screen as raters meet it: no advice to stop on two labels, no model name or task name in
any message, both sides shown alike, the task each item asks about, no anchoring on the judge."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.widgets.labeler import PairLabeler

A, B = "hf/base-model", "litellm/new-model"
TASK = f"{A} vs {B}"  # the report's default task name names both models


def _pairs(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": [f"i{k:02d}" for k in range(n)],
        "input": [f"The earbuds broke after a week, review {k}" if k % 2 else f"How do I reset it? ({k})"
                  for k in range(n)],
        "response_a": [f" baseline answer {k}" for k in range(n)],  # the baseline's habit: a leading space
        "response_b": [f"candidate answer {k}\n" for k in range(n)],
        "task": ["review_summary" if k % 2 else "support_reply" for k in range(n)],
        "model_a": A, "model_b": B, "slice": ["en", "ja"] * (n // 2),
    })


def _judge(pairs: pd.DataFrame, choice: str = "B") -> pd.DataFrame:
    ids = pairs["item_id"].tolist()
    ab = ["A" if k % 3 == 0 else choice for k in range(len(ids))]
    ba = [choice] * len(ids)
    return pd.DataFrame({"item_id": ids, "choice": ["tie" if x != y else x for x, y in zip(ab, ba)],
                         "choice_ab": ab, "choice_ba": ba})


def _everything_shown(labeler: PairLabeler) -> str:
    return " ".join([labeler.view.value, labeler.status.value, labeler.feedback.value, labeler.keys_hint.value]
                    + [b.description + b.tooltip for b in labeler.buttons.values()])


def _label(labeler: PairLabeler, prefer: str) -> None:
    """`prefer`: 'baseline', 'candidate' or 'tie', whatever side each is shown on."""
    if prefer == "tie":
        labeler.choose("tie")
        return
    left, _right = labeler.sides(labeler.current_item)
    labeler.choose("left" if (left == A) == (prefer == "baseline") else "right")


def test_two_labels_for_the_baseline_do_not_tell_the_rater_to_stop(tmp_path):
    pairs = _pairs()
    labeler = PairLabeler(tmp_path / "s.db", TASK, pairs, rater="ann", keyboard="none", judge=_judge(pairs),
                          gate_threshold=0.45)
    _label(labeler, "baseline")
    _label(labeler, "baseline")
    advice = labeler.labels_needed()
    assert advice is not None and not advice.decided and advice.more_labels == 28  # the gate's 30 labels
    assert "you may stop" not in labeler.feedback.value and "28 more" in labeler.feedback.value
    assert "[0.000, 0.000]" not in advice.reason


def test_two_ties_in_active_order_do_not_tell_the_rater_to_stop(tmp_path):
    pairs = _pairs()
    labeler = PairLabeler(tmp_path / "s.db", "active task", pairs, rater="ann", keyboard="none",
                          judge=_judge(pairs, choice="tie"), gate_threshold=0.45, order="active", budget=20)
    _label(labeler, "tie")
    _label(labeler, "tie")
    advice = labeler.labels_needed()
    assert advice is not None and not advice.decided and "you may stop" not in labeler.feedback.value


def test_no_model_name_or_task_name_in_any_message_a_rater_sees(tmp_path):
    pairs = _pairs(12)
    store = tmp_path / "s.db"
    seen = []
    labeler = PairLabeler(store, TASK, pairs, rater=None, keyboard="text", judge=_judge(pairs), gate_threshold=0.45,
                          min_labels=4)
    seen.append(_everything_shown(labeler))
    labeler.start("")  # an empty rater id: the error message
    seen.append(_everything_shown(labeler))
    labeler.start("ann")
    labeler.undo()  # nothing to undo
    seen.append(_everything_shown(labeler))
    labeler.back()  # already at the first item
    seen.append(_everything_shown(labeler))
    while labeler.current_item is not None:
        _label(labeler, "candidate")
        seen.append(_everything_shown(labeler))
    labeler.undo()
    seen.append(_everything_shown(labeler))
    # the refusals a rater can meet when opening the notebook: another comparison, another order
    for attempt in (lambda: PairLabeler(store, TASK, pairs.assign(model_b="hf/other-model"), rater="ann",
                                        keyboard="none"),
                    lambda: PairLabeler(store, TASK, pairs, rater="ann", keyboard="none", judge=_judge(pairs),
                                        order="active")):
        with pytest.raises(InputError) as refused:
            attempt()
        seen.append(str(refused.value))
    text = " ".join(seen)
    for name in (A, B, "hf/other-model", "base-model", "new-model", TASK):
        assert name not in text, name
    assert "agreement" not in text.lower()  # no live agreement with the judge on the rater's screen


def test_both_sides_are_shown_after_the_same_whitespace_normalisation(tmp_path):
    labeler = PairLabeler(tmp_path / "s.db", TASK, _pairs(4), rater="ann", keyboard="none")
    shown = re.findall(r"<div class='wb-(?:left|right)'[^>]*><b>[^<]*</b><div class='wb-text'[^>]*>(.*?)</div></div>",
                       labeler.view.value, re.S)
    assert len(shown) == 2 and all(text == text.strip() for text in shown)
    assert {text.split(" answer")[0] for text in shown} == {"baseline", "candidate"}


def test_each_item_says_what_the_rater_is_asked_to_judge(tmp_path):
    labeler = PairLabeler(tmp_path / "s.db", TASK, _pairs(6), rater="ann", keyboard="none", seed=1)
    asked = {}
    while labeler.current_item is not None:
        item = labeler.current_item
        asked[item] = re.search(r"<div class='wb-task'[^>]*>(.*?)</div>", labeler.view.value).group(1)
        labeler.choose("tie")
    assert "summar" in asked["i01"] and "review" in asked["i01"]
    assert "reply" in asked["i00"]


def test_a_task_named_in_the_notebook_parameters_reaches_the_labeler():
    import json

    from workbench.report.command import bundled_notebook, notebook_parameters

    path = bundled_notebook("label_pairs.ipynb")
    assert notebook_parameters(path)["task"] == ""
    code = "".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
    assert '"labels_task": task' in code and "min_labels=config.gate_config().min_items" in code
