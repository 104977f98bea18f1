"""The comparison's defaults: the confidence of every interval and the gate used when none is given.

Their own module, free of numpy and pydantic, because the configuration (read by `workbench --help`),
the comparison and the project scaffold all need them, and the configuration sits above the comparison.
"""
from __future__ import annotations

from typing import Any

CONFIDENCE = 0.95  # every interval the comparison computes and the gate reads

DEFAULT_GATE: dict[str, Any] = {
    "min_items": 30,
    "win_rate": {"noninferiority_margin": 0.10},
    "metrics": {"chrf": {"max_drop": 5.0, "higher_is_better": True},
                "semantic_similarity": {"max_drop": 0.05, "higher_is_better": True}},
    "max_error_rate": 0.05,
    "min_position_consistency": 0.60,
}
