"""Items and answers as plain text, for judges and for people reading a table: one transcript of a
conversation, the retrieved passages, the tools on offer, and an answer's calls written out.

A plain item's text is its `input`, unchanged, so judge prompts (and their cached verdicts) for plain
items are what they were before conversations existed.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from workbench.items.fields import CONTEXT, MESSAGES, TOOLS, context_text
from workbench.items.tool_calls import ToolCall, function_of, tool_names
from workbench.values import is_missing, present


def task_text(item: Mapping[str, Any]) -> str:
    """What the model was asked, as one text: the passages, the tools, then the conversation (each turn
    on its own, calls written as `name(arg=value)`) or the input."""
    parts = []
    context = present(item.get(CONTEXT))
    if context is not None:
        parts.append(f"Retrieved passages:\n{context_text(context)}")
    tools = present(item.get(TOOLS))
    if tools:
        parts.append("Tools available: " + ", ".join(tool_names(tools)))
    messages = present(item.get(MESSAGES))
    if messages:
        parts.append("Conversation:\n" + transcript(messages))
    else:
        parts.append(f"Input:\n{item['input']}" if parts else str(item["input"]))
    return parts[0] if len(parts) == 1 else "\n\n".join(parts)


def transcript(messages: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for turn in messages:
        role = turn.get("role", "?")
        if turn.get("content"):
            lines.append(f"[{role}] {turn['content']}")
        for call in turn.get("tool_calls") or ():
            lines.append(f"[{role}] calls {_call_text(call)}")
    return "\n".join(lines)


def answer_text(text: Any, calls: Sequence[ToolCall] | None) -> str:
    """An answer as one text: its words, then each call it made (`-> calls name(arg=value)`)."""
    words = "" if is_missing(text) else str(text)
    if not isinstance(calls, (list, tuple)) or not calls:  # NaN in a frame of mixed rows: no calls
        return words
    made = "\n".join(f"-> calls {call.pretty()}" for call in calls)
    return f"{words}\n{made}" if words.strip() else made


def _call_text(call: Mapping[str, Any]) -> str:
    function = function_of(call)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        return ToolCall.parse(str(function.get("name", "")), arguments).pretty()
    return ToolCall.parse(str(function.get("name", "")), json.loads(json.dumps(arguments))).pretty()
