"""HTML for what an application's item and answer carry beyond text: the conversation as turns, the
retrieved passages, the tools on offer, and the calls an answer made, diffed against the baseline's.

Every value is escaped (model output and item fields are untrusted); the classes are the explorer's
(`wb-tag`, `wb-good`, `wb-bad`, `wb-muted`), so this renders the same in JupyterLab and in static HTML.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from workbench.items.fields import CONTEXT, MESSAGES, TOOLS
from workbench.items.tool_calls import ToolCall, function_of
from workbench.values import esc, is_missing, present


def item_rows_html(item: Mapping[str, Any]) -> list[str]:
    """Table rows (`<tr>`) for the item's conversation, passages and tools; none for a plain item."""
    rows = []
    messages = present(item.get(MESSAGES))
    if messages:
        turns = "".join(_turn_html(turn) for turn in messages)
        rows.append(f'<tr><th>conversation</th><td>{turns}</td></tr>')
    context = present(item.get(CONTEXT))
    if context is not None:
        passages = [context] if isinstance(context, str) else list(context)
        body = "".join(f'<div class="wb-text"><span class="wb-tag">[{n}]</span>{esc(p)}</div>'
                       for n, p in enumerate(passages, start=1))
        rows.append(f"<tr><th>passages</th><td>{body}</td></tr>")
    tools = present(item.get(TOOLS))
    if tools:
        names = "".join(f'<span class="wb-tag" title="{esc(function_of(t).get("description", ""))}">'
                        f'{esc(function_of(t).get("name", ""))}</span>' for t in tools)
        rows.append(f"<tr><th>tools</th><td>{names}</td></tr>")
    return rows


def calls_html(calls: Any, base_calls: Any = None) -> str:
    """An answer's calls, one per line as `name({pretty arguments})`; with `base_calls` (the baseline's,
    for a candidate), each difference is marked: another tool, an argument dropped, added or changed,
    a call the baseline made that this answer did not, text instead of a call."""
    calls = _calls(calls)
    base = _calls(base_calls) if base_calls is not None else None
    if not calls and not base:
        return ""
    lines = []
    unmatched = list(base or ())
    for call in calls:
        twin = next((b for b in unmatched if b.name == call.name), None)
        if twin is not None:
            unmatched.remove(twin)
        lines.append(_call_line(call, twin, compare=base is not None))
    for missed in unmatched:
        lines.append(f'<div class="wb-text"><span class="wb-tag wb-bad">missing call</span>'
                     f'<del class="wb-del">{esc(missed.pretty())}</del></div>')
    if base and not calls:
        lines.insert(0, '<div class="wb-note">answered in text instead of calling (the baseline called)</div>')
    return f'<div class="wb-calls">{"".join(lines)}</div>'


def _call_line(call: ToolCall, twin: ToolCall | None, *, compare: bool) -> str:
    if not call.valid:
        return (f'<div class="wb-text"><span class="wb-tag wb-bad">unparseable call</span>{esc(call.name)}'
                f'({esc(call.raw_arguments)}) <span class="wb-muted">{esc(call.error)}</span></div>')
    marks = []
    if compare and twin is None:
        marks.append('<span class="wb-tag wb-bad">another tool / extra call</span>')
    args = call.arguments or {}
    base_args = (twin.arguments or {}) if twin is not None else {}
    shown = []
    for key, value in args.items():
        text = f"{esc(key)}={esc(json.dumps(value, ensure_ascii=False))}"
        if twin is not None and key not in base_args:
            text = f'<ins class="wb-ins" title="argument the baseline did not send">{text}</ins>'
        elif twin is not None and base_args.get(key) != value:
            text = (f'<del class="wb-del">{esc(key)}={esc(json.dumps(base_args[key], ensure_ascii=False))}</del> '
                    f'<ins class="wb-ins">{text}</ins>')
        shown.append(text)
    for key in base_args:
        if key not in args:
            shown.append(f'<del class="wb-del" title="argument dropped">{esc(key)}='
                         f'{esc(json.dumps(base_args[key], ensure_ascii=False))}</del>')
    return f'<div class="wb-text">{"".join(marks)}<b>{esc(call.name)}</b>({", ".join(shown)})</div>'


def _turn_html(turn: Mapping[str, Any]) -> str:
    role = str(turn.get("role", "?"))
    body = "" if is_missing(turn.get("content")) else esc(turn.get("content"))
    made = [ToolCall.parse(str(function_of(c).get("name", "")), function_of(c).get("arguments", {}))
            for c in turn.get("tool_calls") or ()]
    calls = "".join(f'<div class="wb-muted">calls {esc(c.pretty())}</div>' for c in made)
    return f'<div class="wb-text"><span class="wb-tag">{esc(role)}</span>{body}{calls}</div>'


def _calls(value: Any) -> list[ToolCall]:
    if isinstance(value, (list, tuple)):
        return [c if isinstance(c, ToolCall) else ToolCall.from_json(c) for c in value]
    return []
