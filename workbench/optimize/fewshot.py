"""Move (a): demonstrations from the dev split, bootstrapped from a teacher's answers.

Works with any target, a tiny local model included, and needs no optimizer model. Each candidate
set takes up to `max_demos` dev items per slice (so a support-reply item is shown support-reply
examples in its own language, via the prompt's `match`), with the teacher's answer as the example
output: the reference (reference objective), the baseline model's answer (source-model mode), or
the target's own best-judged answer (judge objective), or an expected call (tools objective: the
demonstration's assistant turn calls the tool). A dev item used as a demonstration is left
out of that trial's dev score: its answer is in the prompt. Pure functions.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
import pandas as pd

from workbench.task.prompts import HISTORY_KEYS, PromptVersion


def demo_sets(dev: pd.DataFrame, teacher: pd.Series, strata: Sequence[str], max_demos: int, n_sets: int,
              seed: int) -> list[list[str]]:
    """Item ids of each candidate set (distinct sets, in the order to try them). Set i takes
    `max_demos - i % max_demos` items per slice (the largest first), never a slice's last item,
    so every slice keeps at least one dev item to be scored on."""
    have = dev[dev["item_id"].astype(str).isin(set(teacher.index))]
    keys = [c for c in strata if c in have.columns]
    groups = [g["item_id"].astype(str).tolist() for _, g in have.groupby(keys, sort=True)] if keys \
        else [have["item_id"].astype(str).tolist()]
    rng = np.random.default_rng(seed)
    sets: list[list[str]] = []
    for i in range(n_sets):
        per_slice = max_demos - i % max_demos
        chosen = [item for ids in groups if len(ids) > 1
                  for item in rng.choice(ids, size=min(per_slice, len(ids) - 1), replace=False).tolist()]
        if chosen and sorted(chosen) not in [sorted(s) for s in sets]:
            sets.append(chosen)
    return sets


def with_demos(base: PromptVersion, dev: pd.DataFrame, demo_ids: Sequence[str], teacher: pd.Series,
               strata: Sequence[str]) -> dict[str, Any]:
    """The base prompt's keys plus one `[[examples]]` entry per demonstration (after its own),
    each matched on the item's slice and giving the template fields the item fills in."""
    data = {k: copy.deepcopy(v) for k, v in base.data.items() if k not in HISTORY_KEYS}
    by_id = dev.assign(item_id=dev["item_id"].astype(str)).set_index("item_id")
    examples = list(data.get("examples", []))
    for item_id in demo_ids:
        item = by_id.loc[item_id]
        example: dict[str, Any] = {name: _text(item[name]) for name in sorted(base.placeholders)
                                   if name in item.index and _text(item[name]) is not None}
        answer = teacher[item_id]
        if isinstance(answer, list):  # expected calls: the demonstration calls the tools
            example["output"] = ""
            example["tool_calls"] = copy.deepcopy(answer)
        else:
            example["output"] = str(answer)
        match = {c: _text(item[c]) for c in strata if c in item.index and _text(item[c]) is not None}
        if match:
            example["match"] = match
        examples.append(example)
    data["examples"] = examples
    return data


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
