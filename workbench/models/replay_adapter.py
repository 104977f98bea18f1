"""`replay/<file>`: recorded responses (e.g. the old model's production log) served as a model,
so a migration can start from what the baseline really said instead of regenerating it.

The file is .jsonl or .csv with `item_id` and `response` (names configurable), and optionally
`sample_index`, `model_version`, `latency_s`, `prompt_tokens`, `completion_tokens`, `cost_usd` and
`tool_calls`: the calls the model made, a list of `{"name", "arguments"}` (or OpenAI's
`{"function": {"name", "arguments"}}`; arguments an object or the JSON text the model sent), as JSON
text in a CSV cell. A row with calls may leave `response` empty.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict

from workbench.errors import InputError, ModelCallError, Problem
from workbench.hashing import content_hash
from workbench.items.tool_calls import ToolCall, calls_to_json, function_of
from workbench.models.base import Adapter, Outcome, Request, Response

_NUMERIC = {"latency_s": float, "prompt_tokens": int, "completion_tokens": int, "cost_usd": float}


class ReplayOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_field: str = "item_id"
    response_field: str = "response"


class ReplayAdapter(Adapter):
    provider = "replay"
    options_model = ReplayOptions
    max_batch = 64
    concurrent = False
    local_files = True

    def __init__(self, model: str, options: ReplayOptions, base_dir: Path | None = None):
        super().__init__(model, options)
        path = Path(model).expanduser()
        # relative to the user's project; the identity names the file and its content, not the folder
        self.path = Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path
        self.records = load_recording(self.path, options.id_field, options.response_field)
        self._identity = {"provider": self.provider, "file": self.path.name, "content": content_hash(
            {f"{k[0]}#{k[1]}": v.text if not v.tool_calls else [v.text, calls_to_json(v.tool_calls)]
             for k, v in sorted(self.records.items())})}

    def identity(self) -> dict[str, Any]:
        return self._identity

    def key_payload(self, request: Request) -> dict[str, Any]:
        # A recorded answer belongs to its item, whatever prompt the other models get.
        return {"item_id": request.item_id, "sample_index": request.sample_index}

    async def generate(self, requests: Sequence[Request], timeout_s: float) -> list[Outcome]:
        out: list[Outcome] = []
        for request in requests:
            found = self.records.get((request.item_id, request.sample_index)) or (
                self.records.get((request.item_id, 0)) if request.sampling.greedy else None)
            out.append(found if found is not None else ModelCallError(
                "unavailable", f"{self.path.name} has no recorded response for item '{request.item_id}'"
                               f" (sample {request.sample_index})"))
        return out


def load_recording(path: Path, id_field: str, response_field: str) -> dict[tuple[str, int], Response]:
    """Parse and validate the whole file first: every problem is reported with its row and field."""
    if not path.is_file():
        raise InputError(Problem(str(path), None, None, "recorded responses file not found"))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(Problem(str(path), None, None, f"not UTF-8 (byte {exc.start})")) from None
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    if path.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    problems.append(Problem(str(path), n, None, f"not valid JSON ({exc.msg})"))
    elif path.suffix == ".csv":
        rows = list(enumerate(csv.DictReader(io.StringIO(text)), start=1))
    else:
        raise InputError(Problem(str(path), None, None, "recorded responses must be .jsonl or .csv"))
    records: dict[tuple[str, int], Response] = {}
    seen: dict[tuple[str, int], int] = {}
    for n, row in rows:
        item, response = row.get(id_field), row.get(response_field)
        if item in (None, ""):
            problems.append(Problem(str(path), n, id_field, "missing"))
            continue
        calls, problem = _recorded_calls(row.get("tool_calls"))
        if problem:
            problems.append(Problem(str(path), n, "tool_calls", problem))
            continue
        if response in (None, "") and calls:
            response = ""
        if not isinstance(response, str):
            problems.append(Problem(str(path), n, response_field, "missing or not text"))
            continue
        try:
            sample = int(row.get("sample_index") or 0)
            numbers = {k: cast(row[k]) for k, cast in _NUMERIC.items() if row.get(k) not in (None, "")}
        except (TypeError, ValueError) as exc:
            problems.append(Problem(str(path), n, None, f"bad number ({exc})"))
            continue
        key = (str(item), sample)
        if key in seen:
            problems.append(Problem(str(path), n, id_field, f"duplicate of row {seen[key]} ('{item}', sample {sample})"))
            continue
        seen[key] = n
        numbers = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in numbers.items()}
        records[key] = Response(text=response, finish_reason="recorded", model_version=row.get("model_version"),
                                tool_calls=calls, **numbers)
    if problems:
        raise InputError(problems)
    return records


def _recorded_calls(value: Any) -> tuple[tuple[ToolCall, ...], str | None]:
    """A row's recorded calls, or why they cannot be read."""
    if value is None or value == "":
        return (), None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            return (), f"not valid JSON ({exc.msg})"
    if not isinstance(value, list):
        return (), "tool_calls must be a list of {name, arguments}"
    calls = []
    for k, call in enumerate(value):
        function = function_of(call) if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            return (), f"call {k + 1} has no function name"
        calls.append(ToolCall.parse(function["name"], function.get("arguments", function.get("parameters")),
                                    call.get("id")))
    return tuple(calls), None
