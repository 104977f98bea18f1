"""The report as an analyst reads it: numbers rounded, text left and numbers right, the changed-
behaviour examples narrowed to what explains each row (its flag first), no cut characters."""
import re

import numpy as np
import pandas as pd

from workbench.report import view


def _cells(html: str) -> list[tuple[str, str]]:
    return re.findall(r"<t[dh] style='text-align:(\w+)[^']*'>([^<]*)</t[dh]>", html)


def test_numbers_are_rounded_and_right_aligned_and_text_left_aligned():
    frame = pd.DataFrame({"model": ["hf/gemma3-270m"], "delta": [-68.76020424539921], "n": [np.int64(32)],
                          "share": [0.123456]})
    cells = _cells(view.table(frame))
    assert ("left", "model") in cells and ("right", "delta") in cells
    assert ("left", "hf/gemma3-270m") in cells and ("right", "-68.8") in cells and ("right", "32") in cells
    assert ("right", "0.123") in cells
    assert "68.7602" not in view.table(frame)


def test_side_by_side_rounds_its_numbers_and_keeps_text_left():
    html = view.side_by_side([{"item_id": "i1", "input": "a question", "delta": -68.76020424539921}],
                             ["item_id", "input", "delta"])
    assert "-68.8" in html and "68.76020" not in html
    assert re.search(r"text-align:left[^>]*>a question<", html)


def test_changed_examples_are_narrowed_with_the_selecting_flag_first():
    behaviour = pd.DataFrame({
        "item_id": ["a", "b", "c"], "language": ["en", "ja", "en"], "missing": [False] * 3,
        "baseline_chars": [10, 20, 30], "candidate_chars": [12, 25, 31], "length_delta": [2, 5, 1],
        "baseline_format": ["plain", "plain", "plain"], "candidate_format": ["json", "plain", "plain"],
        "format_changed": [True, False, False], "became_refusal": [False, False, False],
        "candidate_refusal_phrase": [None, None, None], "baseline_language_detected": ["en", "ja", "en"],
        "candidate_language_detected": ["en", "en", "en"], "language_changed": [False, True, False],
        **{f"extra_{k}": [0, 0, 0] for k in range(15)}})
    examples = view.changed_examples(behaviour)
    assert list(examples.columns) == ["changed", "item_id", "language", "baseline_format", "candidate_format",
                                      "baseline_language_detected", "candidate_language_detected"]
    assert list(examples["changed"]) == ["format changed", "language changed"]
    assert list(examples["item_id"]) == ["a", "b"]
    assert view.changed_examples(behaviour[behaviour["item_id"] == "c"]).empty


def test_cut_characters_are_never_shown():
    """A judge error ended in a character cut in half (U+FFFD) where the output hit max_tokens."""
    assert view.esc("final line is not 'Verdict: [[A]]': 'the customer\ufffd'") == \
        "final line is not &#x27;Verdict: [[A]]&#x27;: &#x27;the customer&#x27;"
    from workbench.judges.parse import _clip

    assert "\ufffd" not in _clip("abc\ufffd" * 50)
