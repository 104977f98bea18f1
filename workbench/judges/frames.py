"""Checking and reading the items / responses DataFrames the judges take."""
from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.task.dataset import require_columns
from workbench.values import is_missing
from workbench.errors import InputError, Problem
from workbench.hashing import content_hash


missing = is_missing  # one notion of missing (workbench.values)


def items_by_id(items: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """item_id -> row. Duplicate ids are an error: a judgment must refer to one input."""
    require_columns(items, "items", ("item_id", "input"))
    records: dict[str, dict[str, Any]] = {}
    problems = []
    for row, record in enumerate(items.to_dict(orient="records"), start=1):
        item_id = str(record["item_id"])
        if item_id in records:
            problems.append(Problem("items", row, "item_id", f"duplicate item_id '{item_id}'"))
        if missing(record["input"]):
            problems.append(Problem("items", row, "input", "empty input"))
        records[item_id] = record
    if problems:
        raise InputError(problems)
    return records


def response_records(responses: pd.DataFrame, name: str) -> list[dict[str, Any]]:
    """Rows of a responses frame with item_id as str and sample_index filled (0 when absent)."""
    require_columns(responses, name, ("item_id", "model", "response"))
    records, seen, problems = [], set(), []
    for row, record in enumerate(responses.to_dict(orient="records"), start=1):
        record["item_id"] = str(record["item_id"])
        index = record.get("sample_index")
        record["sample_index"] = 0 if missing(index) else int(index)
        key = (record["item_id"], str(record["model"]), record["sample_index"])
        if key in seen:
            problems.append(Problem(name, row, "item_id", f"duplicate response for item '{key[0]}', model '{key[1]}', "
                                                          f"sample_index {key[2]}"))
        seen.add(key)
        records.append(record)
    if problems:
        raise InputError(problems)
    return records


def single_model(records: list[dict[str, Any]], name: str) -> str:
    models = sorted({str(r["model"]) for r in records})
    if len(models) != 1:
        raise InputError(Problem(name, None, "model", f"expected the responses of exactly one model, found {models or 'none'}"))
    return models[0]


def response_key(record: dict[str, Any]) -> str:
    """The stored response's cache key, or (for frames built by hand) a hash of its text."""
    key = record.get("cache_key")
    return str(key) if not missing(key) else "text:" + content_hash(str(record["response"]))


def response_error(record: dict[str, Any]) -> str:
    error = record.get("error")
    return "no response to judge" + ("" if missing(error) else f" (generation failed: {error})")


def text_or_empty(value: Any) -> str:
    return "" if missing(value) else str(value)
