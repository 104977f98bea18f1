"""Read the tool calls a local model wrote into its text (`hf/`, `vllm/`): APIs return calls as
data, a local model writes them, in whatever form it learnt.

Recognised, in this order, anywhere in the answer:
1. `<tool_call>...</tool_call>` blocks (the Hermes / Qwen form the prompt asks for), several
   allowed, a last one left open when the model stopped; inside: one call object or a list of them,
   optionally in a code fence;
2. fenced code blocks (```json, ```tool_call or a bare ```) holding a call object or a list of them;
3. bare JSON: a call object, or a list of call objects, in the text.
A call object is `{"name": ..., "arguments": {...}}`; `"parameters"` is taken for `"arguments"`
(Llama 3.1), and OpenAI's `{"type": "function", "function": {...}}` is unwrapped. Arguments given as
a JSON string are decoded (`ToolCall.parse`).

What cannot be read is still a call: a `<tool_call>` block or a fenced / bare object that starts like
a call (`{"name": ...`) but is not valid JSON becomes a `ToolCall` with `error` set, `arguments`
None and the block's text as `raw_arguments` (the name when it can be read), so a scorer counts a
broken call, never a text answer. JSON that is not call-shaped (a JSON answer) stays text. The text
outside the calls is the response text.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

from workbench.items.tool_calls import ToolCall
from workbench.models.base import Request

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCED = re.compile(r"```[ \t]*(?:json|tool_call|tool_code|javascript)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)
_FENCE_INSIDE = re.compile(r"^\s*```[^\n]*\n?(.*?)\n?```\s*$", re.DOTALL)
_CALL_START = re.compile(r"\[?\s*\{\s*\"(?:name|function)\"\s*:")
_NAME = re.compile(r"\"name\"\s*:\s*\"((?:[^\"\\]|\\.)*)\"")
_CALL_KEYS = {"name", "arguments", "parameters", "id", "type"}
_DECODER = json.JSONDecoder()


def read_calls(request: Request, text: str, reason: str | None) -> tuple[str, tuple[ToolCall, ...], str | None]:
    """A local model's answer to `request`: (text outside the calls, the calls, the finish reason).
    Only a request with tools is read for calls; one that stopped after calling finishes with
    "tool_calls", as APIs say. Other answers come back as they are."""
    if not request.tools:
        return text, (), reason
    rest, calls = parse_tool_calls(text)
    if not calls:
        return text, (), reason
    return rest, calls, "tool_calls" if reason == "stop" else reason


def parse_tool_calls(text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """(the text outside the calls, the calls in the order written)."""
    found: list[tuple[int, list[ToolCall]]] = []
    kept: list[str] = []
    last = 0
    for match in _TAGGED.finditer(text):
        kept.append(text[last:match.start()])
        found.append((match.start(), _tagged_calls(match.group(1))))
        last = match.end()
    kept.append(text[last:])
    rest = "\n".join(part for part in (p.strip() for p in kept) if part)
    if not found:
        rest, calls = _untagged_calls(text)
        return rest, tuple(calls)
    # Calls outside the tags too (a model mixing forms): read them from the remaining text.
    rest, more = _untagged_calls(rest)
    return rest, tuple(call for _, group in found for call in group) + tuple(more)


def _tagged_calls(block: str) -> list[ToolCall]:
    """The calls in one <tool_call> block: never nothing (an empty or broken block is a broken call)."""
    content = block.strip()
    fenced = _FENCE_INSIDE.match(content)
    if fenced:
        content = fenced.group(1).strip()
    if not content:
        return [_broken(content, "the <tool_call> block is empty")]
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        return [_broken(content, f"the <tool_call> block is not valid JSON ({exc.msg} at column {exc.colno})")]
    entries = value if isinstance(value, list) and value else [value]
    return [_call(entry, content, lenient=True) for entry in entries]


def _untagged_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Calls in fenced blocks, then bare JSON calls; returns the text without them."""
    calls: list[ToolCall] = []

    def fenced(match: re.Match) -> str:
        content = match.group(1).strip()
        try:
            value = json.loads(content)
        except json.JSONDecodeError as exc:
            if _CALL_START.match(content):
                calls.append(_broken(content, f"the fenced call is not valid JSON ({exc.msg} at column {exc.colno})"))
                return ""
            return match.group(0)
        if _call_shaped(value):
            calls.extend(_call(entry, content) for entry in _entries(value))
            return ""
        return match.group(0)

    text = _FENCED.sub(fenced, text)
    kept: list[str] = []
    position = 0
    scan = 0
    while True:
        start = _next_json_start(text, scan)
        if start < 0:
            break
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            if _CALL_START.match(text, start):
                raw = text[start:].strip()
                kept.append(text[position:start])
                calls.append(_broken(raw, f"the call is not valid JSON ({exc.msg} at column {exc.colno})"))
                position = len(text)
                break
            scan = start + 1
            continue
        if _call_shaped(value):
            kept.append(text[position:start])
            calls.extend(_call(entry, text[start:end]) for entry in _entries(value))
            position = end
        scan = end
    kept.append(text[position:])
    rest = "\n".join(part for part in (p.strip() for p in kept) if part)
    return rest, calls


def _next_json_start(text: str, scan: int) -> int:
    starts = [i for i in (text.find("{", scan), text.find("[", scan)) if i >= 0]
    return min(starts) if starts else -1


def _entries(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _call_shaped(value: Any) -> bool:
    """A call object, or a non-empty list of them (strict: a JSON answer must not pass for a call)."""
    if isinstance(value, list):
        return bool(value) and all(_one_call_shaped(v) for v in value)
    return _one_call_shaped(value)


def _one_call_shaped(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    value = _unwrap(value)
    return (isinstance(value.get("name"), str) and bool(value["name"])
            and ("arguments" in value or "parameters" in value) and set(value) <= _CALL_KEYS)


def _unwrap(value: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = value.get("function")
    if isinstance(inner, Mapping) and set(value) <= {"type", "function", "id"}:
        return {**inner, **({"id": value["id"]} if "id" in value else {})}
    return value


def _call(entry: Any, raw: str, lenient: bool = False) -> ToolCall:
    """A ToolCall from one decoded call object. `lenient` (inside <tool_call> tags, where the model
    said it is calling): a missing argument object means no arguments; a missing name is an error."""
    if not isinstance(entry, Mapping):
        return _broken(raw, f"a call is a JSON object with name and arguments, got a JSON {type(entry).__name__}")
    entry = _unwrap(entry)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        return _broken(raw, "the call has no function name")
    arguments = entry.get("arguments", entry.get("parameters", {} if lenient else None))
    call_id = entry.get("id") if isinstance(entry.get("id"), str) else None
    if arguments is None or isinstance(arguments, (Mapping, str)):
        return ToolCall.parse(name, arguments, call_id)
    return ToolCall.parse(name, json.dumps(arguments, ensure_ascii=False), call_id)  # a list or a number: an error


def _broken(raw: str, error: str) -> ToolCall:
    named = _NAME.search(raw)
    try:
        name = json.loads(f'"{named.group(1)}"') if named else ""
    except json.JSONDecodeError:
        name = named.group(1) if named else ""
    return ToolCall(name=name, arguments=None, raw_arguments=raw, error=error)
