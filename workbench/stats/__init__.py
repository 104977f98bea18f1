"""Paired statistics for model comparisons: pure functions over aligned per-item arrays.

Conventions: one value per item, both models aligned by item (use `pair_by_item`); preference scores
are from the candidate's side (1 win, 0.5 tie, 0 loss); rates are fractions in [0, 1]; bad input
(empty, NaN, misaligned) raises `StatsInputError` (an InputError and a ValueError). scipy is imported
inside the functions that need it.
"""
from workbench.stats._validate import StatsInputError
from workbench.stats.agreement import cohen_kappa, krippendorff_alpha, majority_label, reliability_matrix
from workbench.stats.bootstrap import (
    BootstrapCI,
    BootstrapRequest,
    bootstrap_ci,
    bootstrap_distribution,
    bootstrap_distributions,
    bootstrap_indices,
    delta_request,
    paired_bootstraps,
    paired_delta_ci,
    paired_ratio_ci,
    ratio_request,
    values_request,
    win_rate_ci,
)
from workbench.stats.bradley_terry import BradleyTerry, bradley_terry
from workbench.stats.judge_reliability import (
    HumanAgreement,
    LengthPreference,
    PositionConsistency,
    combine_orders,
    human_agreement,
    length_preference,
    position_consistency,
)
from workbench.stats.length_control import LengthControlled, length_controlled_win_rate
from workbench.stats.paired_tests import (
    McNemar,
    NonInferiority,
    SignTest,
    mcnemar_test,
    noninferiority_test,
    sign_test,
    win_rate_noninferiority,
)
from workbench.stats.pairing import (
    IdOverlap,
    Paired,
    distinct_count,
    id_overlap,
    increasing_ids,
    metric_pairs,
    pair_by_item,
    per_item,
)
from workbench.stats.proportions import ProportionCI, proportion_ci
from workbench.stats.slices import slice_deltas, slice_win_rates
from workbench.stats.winrate import WinRate, alpaca_eval_scores, alpaca_eval_winrate, scores_from_verdicts, win_rate

__all__ = [
    "BootstrapCI", "BradleyTerry", "HumanAgreement", "LengthControlled", "LengthPreference", "McNemar",
    "NonInferiority", "Paired", "PositionConsistency", "ProportionCI", "SignTest", "StatsInputError", "WinRate",
    "alpaca_eval_scores", "alpaca_eval_winrate", "bootstrap_ci", "bootstrap_distribution", "bootstrap_indices",
    "bradley_terry", "cohen_kappa", "combine_orders", "human_agreement", "krippendorff_alpha",
    "length_controlled_win_rate", "length_preference", "majority_label", "mcnemar_test", "noninferiority_test",
    "pair_by_item", "paired_delta_ci", "paired_ratio_ci", "position_consistency", "proportion_ci",
    "reliability_matrix", "scores_from_verdicts", "sign_test", "slice_deltas", "slice_win_rates", "win_rate",
    "win_rate_ci", "win_rate_noninferiority",
]
__all__ += ["BootstrapRequest", "IdOverlap", "bootstrap_distributions", "delta_request", "distinct_count",
            "id_overlap", "increasing_ids", "metric_pairs", "paired_bootstraps", "per_item",
            "ratio_request", "values_request"]

# Prediction-powered human win rates, active labelling and the stopping rule (issue 13).
from workbench.stats.active_labeling import (  # noqa: E402
    LabelQueue,
    active_win_rate,
    propose_probabilities,
    sample_queue,
)
from workbench.stats.ppi import PPIWinRate, StoppingAdvice, labels_needed, ppi_win_rate  # noqa: E402

__all__ += [
    "LabelQueue", "PPIWinRate", "StoppingAdvice", "active_win_rate", "labels_needed", "ppi_win_rate",
    "propose_probabilities", "sample_queue",
]
