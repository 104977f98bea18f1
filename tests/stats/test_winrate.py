"""Win rate: reproduces AlpacaEval's published leaderboard numbers from its annotation files."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from workbench.stats import StatsInputError, alpaca_eval_scores, alpaca_eval_winrate, scores_from_verdicts, win_rate

LEADERBOARDS = {
    "alpaca_eval_gpt4": "AE1_alpaca_eval_gpt4_leaderboard.csv",
    "weighted_alpaca_eval_gpt4_turbo": "AE2_weighted_alpaca_eval_gpt4_turbo_leaderboard.csv",
}


def _leaderboard(path):
    with open(path, newline="") as fh:
        return {row[""]: row for row in csv.DictReader(fh)}


def _annotation_files(shared_data):
    files = sorted((shared_data / "alpaca_eval" / "results").glob("*/*/annotations.json"))
    if not files:
        from tests.real_parts import missing

        missing("no AlpacaEval annotation files under shared data (alpaca_eval/results/*/*/annotations.json)")
    return files


def test_reproduces_alpaca_eval_leaderboards(shared_data):
    checked = 0
    for path in _annotation_files(shared_data):
        model, annotator = path.parent.parent.name, path.parent.name
        board = _leaderboard(shared_data / "alpaca_eval" / "leaderboards" / LEADERBOARDS[annotator])
        published = board[model]
        ours = alpaca_eval_winrate([row["preference"] for row in json.loads(path.read_text())])
        # The leaderboard prints full float precision; only summation order may differ (~1e-15 relative).
        for key in ("win_rate", "standard_error", "discrete_win_rate"):
            assert math.isclose(ours[key], float(published[key]), rel_tol=1e-12), (model, annotator, key)
        for key in ("n_wins", "n_wins_base", "n_draws", "n_total"):
            assert ours[key] == int(published[key]), (model, annotator, key)
        checked += 1
    assert checked == 9


def test_alpaca_eval_encoding_drops_invalid_and_maps_draws():
    scores, dropped = alpaca_eval_scores([2.0, 1.0, 0.0, 1.5, None, float("nan"), 3.0, 1.25])
    np.testing.assert_allclose(scores, [1.0, 0.0, 0.5, 0.5, 0.25])
    assert dropped == 3


def test_ties_count_half_and_standard_error_is_ddof1():
    s = [1, 1, 0.5, 0, 0.5, 1]
    wr = win_rate(s)
    assert wr.win_rate == pytest.approx(4 / 6)
    assert wr.standard_error == pytest.approx(np.std(s, ddof=1) / np.sqrt(6))
    assert (wr.n, wr.n_wins, wr.n_losses, wr.n_ties) == (6, 3, 1, 2)


def test_single_item_has_undefined_standard_error():
    assert math.isnan(win_rate([1.0]).standard_error)


def test_verdicts_map_to_candidate_side_scores():
    got = scores_from_verdicts(["B", "A", "tie", "B"], candidate="B", baseline="A")
    np.testing.assert_array_equal(got, [1, 0, 0.5, 1])


@pytest.mark.parametrize(
    "verdicts, match",
    [(["B", "X"], "unknown label"), (["B", None], "missing verdict"), ([], "empty")],
)
def test_bad_verdicts_raise(verdicts, match):
    with pytest.raises(StatsInputError, match=match):
        scores_from_verdicts(verdicts, candidate="B", baseline="A")


@pytest.mark.parametrize(
    "scores, match", [([], "empty"), ([1, float("nan")], "NaN"), ([1, 2], r"\[0, 1\]"), ([[1, 0]], "1-D")]
)
def test_bad_scores_raise_value_errors(scores, match):
    with pytest.raises(ValueError, match=match):
        win_rate(scores)
