"""What a tool call is, once: the call a model made, the calls an item accepts, and the names APIs take.

A model's call is a `ToolCall` (name, parsed arguments, the raw argument string as the model sent it,
and why it could not be parsed, if so). An unparseable call is kept as such, never turned into text,
so a scorer can count it as a wrong call rather than a missing one.

Expected calls come in two forms, both normalised to `ExpectedCall` (name -> accepted values per
argument):
- BFCL's possible-answer form `{"get_weather": {"city": ["Paris", "paris"], "unit": ["", "C"]}}`:
  a list of accepted values per argument, where `""` among them means the argument may be omitted;
- the plain form `{"name": "get_weather", "arguments": {"city": "Paris"}}`: exactly these values,
  every argument given is required.

Function names such as BFCL's `math.factorial` are refused by OpenAI-style APIs (names must match
`^[A-Za-z0-9_-]{1,64}$`); `api_name` maps them reversibly (`math.factorial` -> `math_factorial`, with a
suffix when two names would collide) and `ToolNames.original` maps an answered call back.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

API_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OMITTED = ""  # BFCL: an accepted value of "" means the argument may be left out


@dataclass(frozen=True)
class ToolCall:
    """One call a model made. `arguments` is None when `raw_arguments` is not a JSON object
    (`error` then says why); `id` is the provider's call id, when it gives one."""

    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    id: str | None = None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None and self.arguments is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "arguments": self.arguments, "raw_arguments": self.raw_arguments}
        if self.id is not None:
            out["id"] = self.id
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ToolCall":
        return cls(name=str(data["name"]), arguments=data.get("arguments"),
                   raw_arguments=str(data.get("raw_arguments") or ""), id=data.get("id"), error=data.get("error"))

    @classmethod
    def parse(cls, name: str, raw_arguments: Any, call_id: str | None = None) -> "ToolCall":
        """A call from a name and its arguments as the model sent them (a JSON string, or an object
        already decoded by the provider)."""
        if isinstance(raw_arguments, Mapping):
            return cls(name=name, arguments=dict(raw_arguments),
                       raw_arguments=json.dumps(raw_arguments, ensure_ascii=False), id=call_id)
        raw = "" if raw_arguments is None else str(raw_arguments)
        if not raw.strip():
            return cls(name=name, arguments={}, raw_arguments=raw, id=call_id)  # a call without arguments
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            return cls(name=name, arguments=None, raw_arguments=raw, id=call_id,
                       error=f"arguments are not valid JSON ({exc.msg} at column {exc.colno})")
        if not isinstance(value, dict):
            return cls(name=name, arguments=None, raw_arguments=raw, id=call_id,
                       error=f"arguments are a JSON {type(value).__name__}, not an object")
        return cls(name=name, arguments=value, raw_arguments=raw, id=call_id)

    def pretty(self) -> str:
        """`name(arg=value, ...)` for people: widgets, report tables, diffs."""
        if self.arguments is None:
            return f"{self.name}(<unparseable: {self.raw_arguments[:200]}>)"
        args = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in self.arguments.items())
        return f"{self.name}({args})"


def calls_to_json(calls: Sequence[ToolCall]) -> str | None:
    """The store's form of a response's calls: None when there are none (a text answer)."""
    return json.dumps([c.to_json() for c in calls], ensure_ascii=False, sort_keys=True) if calls else None


def calls_from_json(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    return tuple(ToolCall.from_json(entry) for entry in json.loads(text))


@dataclass(frozen=True)
class ExpectedCall:
    """One accepted call: for each argument, the accepted values; `optional` arguments may be left
    out (BFCL's `""`)."""

    name: str
    accepted: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()

    def to_bfcl(self) -> dict[str, dict[str, list[Any]]]:
        return {self.name: {arg: [*values, *([OMITTED] if arg in self.optional else [])]
                            for arg, values in self.accepted.items()}}


def expected_call(entry: Mapping[str, Any]) -> ExpectedCall:
    """Normalise one expected call in either form (see the module docstring); ValueError says what
    is wrong with its shape."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"an expected call must be an object, got {type(entry).__name__}")
    if "name" in entry:
        unknown = set(entry) - {"name", "arguments"}
        if unknown:
            raise ValueError(f"unknown key(s) {sorted(unknown)} in an expected call (plain form: name, arguments)")
        name, arguments = entry["name"], entry.get("arguments", {})
        if not isinstance(name, str) or not name:
            raise ValueError("an expected call's name must be non-empty text")
        if not isinstance(arguments, Mapping):
            raise ValueError(f"expected call '{name}': arguments must be an object")
        return ExpectedCall(name, {str(k): (v,) for k, v in arguments.items()})
    if len(entry) != 1:
        raise ValueError("an expected call is {\"name\": ..., \"arguments\": {...}} or BFCL's "
                         "{function_name: {argument: [accepted values]}}")
    name, arguments = next(iter(entry.items()))
    if not isinstance(arguments, Mapping):
        raise ValueError(f"expected call '{name}': its arguments must be an object of accepted-value lists")
    accepted: dict[str, tuple[Any, ...]] = {}
    optional: set[str] = set()
    for arg, values in arguments.items():
        if not isinstance(values, list):
            raise ValueError(f"expected call '{name}', argument '{arg}': accepted values must be a list")
        if any(_is_omitted(v) for v in values):
            optional.add(str(arg))
        accepted[str(arg)] = tuple(v for v in values if not _is_omitted(v))
    return ExpectedCall(str(name), accepted, frozenset(optional))


def _is_omitted(value: Any) -> bool:
    return isinstance(value, str) and value == OMITTED


def tool_names(tools: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The function names a tool list declares (OpenAI form `{"type": "function", "function": {...}}`
    or the bare function object)."""
    return [function_of(tool).get("name", "") for tool in tools or ()]


def function_of(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """The function declaration inside an OpenAI-style tool, or the tool itself when bare."""
    inner = tool.get("function")
    return inner if isinstance(inner, Mapping) else tool


class ToolNames:
    """A reversible map between declared names and the names an API accepts."""

    def __init__(self, names: Iterable[str]):
        self.to_api: dict[str, str] = {}
        taken: set[str] = set()
        for name in names:
            if name in self.to_api:
                continue
            mapped = api_name(name)
            if mapped in taken:  # two names mapped to one: keep both apart by a short hash of the original
                mapped = f"{mapped[:55]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
            taken.add(mapped)
            self.to_api[name] = mapped
        self.from_api = {mapped: name for name, mapped in self.to_api.items()}

    @property
    def changed(self) -> bool:
        return any(name != mapped for name, mapped in self.to_api.items())

    def original(self, name: str) -> str:
        return self.from_api.get(name, name)


def api_name(name: str) -> str:
    """`name` if an API takes it, else every refused character as `_` (and cut to 64)."""
    if API_NAME.match(name):
        return name
    mapped = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
    return mapped or "tool"
