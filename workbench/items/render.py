"""One item plus its model's prompt version -> what the model is sent (`Rendered`), for every item shape.

The rules, in one place:
- **No prompt version:** a conversation (`messages`) is sent as it is; a plain item as one user turn
  holding its `input`.
- **A chat prompt version:** its system message comes first (merged with the conversation's own system
  turn, the version's text first), then its examples as user/assistant turns, then the conversation;
  the version's `user` template is applied to the last user turn (`{input}` is that turn's text).
  Turns after it (an assistant's tool call, the tool's result) follow unchanged.
- **A completion prompt version** takes plain items only: a conversation, tools or a response_format
  cannot be put into one text prompt faithfully, so they are an input error naming the item.
- **Retrieved context:** a template that names `{context}` gets the passages there (numbered when
  there are several); otherwise they are added to the system message as `CONTEXT_SYSTEM` says.
- **Tools:** the version's tools, then the item's (an item's tool of the same name replaces the
  version's); `tool_choice` and `response_format`: the item's, else the version's. Expected calls must
  name a tool of the final set.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from workbench.errors import InputError, Problem
from workbench.items.fields import (
    CONTEXT,
    EXPECTED_CALLS,
    MESSAGES,
    RESPONSE_FORMAT,
    TOOL_CHOICE,
    TOOLS,
    check_expected_calls,
    check_tool_choice,
    context_text,
)
from workbench.items.tool_calls import function_of
from workbench.task.prompts import PromptVersion, Rendered
from workbench.values import present

CONTEXT_SYSTEM = ("Answer from the retrieved passages below. If they do not contain the answer, say so.\n\n"
                  "Passages:\n{context}")


_SHAPED = frozenset((MESSAGES, CONTEXT, TOOLS, TOOL_CHOICE, RESPONSE_FORMAT, EXPECTED_CALLS))  # beyond a plain input


def render_items(items: Iterable[Mapping[str, Any]], prompt: PromptVersion | None) -> list[Rendered]:
    """Render every item, or raise ONE InputError listing every item that cannot be rendered."""
    rendered: list[Rendered] = []
    problems: list[Problem] = []
    for item in items:
        try:
            rendered.append(render_item(item, prompt))
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    return rendered


def render_item(item: Mapping[str, Any], prompt: PromptVersion | None) -> Rendered:
    """What the model is sent for one item (a dict or a DataFrame row), by the module's rules."""
    if prompt is None and (_SHAPED.isdisjoint(item.keys()) or all(present(item.get(name)) is None for name in _SHAPED)):
        return Rendered(({"role": "user", "content": str(item["input"])},), None, (), None)  # the usual plain item
    messages = present(item.get(MESSAGES))
    context = present(item.get(CONTEXT))
    tools = _merge_tools(prompt.tools if prompt else (), present(item.get(TOOLS)) or ())
    tool_choice = present(item.get(TOOL_CHOICE)) or (prompt.tool_choice if prompt else None)
    response_format = present(item.get(RESPONSE_FORMAT)) or (prompt.response_format if prompt else None)
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        where = prompt.source if prompt else "items"
        what = f"item '{item.get('item_id')}'" + (f", prompt {prompt.ref}" if prompt else "")
        problems.append(Problem(where, None, field, f"{what}: {message}"))

    names = [function_of(t).get("name", "") for t in tools]
    expected = present(item.get(EXPECTED_CALLS))
    if expected is not None:
        check_expected_calls(expected, names, bad)
    if tool_choice is not None:
        check_tool_choice(tool_choice, names, bad)
    if prompt is not None and prompt.mode == "completion":
        for field, value in ((MESSAGES, messages), (TOOLS, tools), (RESPONSE_FORMAT, response_format)):
            if value:
                bad(field, f"a completion prompt cannot carry {field}; use a chat prompt version")
    if problems:
        raise InputError(problems)

    view = dict(item)
    if context is not None:
        view[CONTEXT] = context_text(context)
    if prompt is None:
        turns = [dict(m) for m in messages] if messages else [{"role": "user", "content": str(item["input"])}]
        base = Rendered((), None, (), None)
    else:
        base = prompt.render(view)
        if base.prompt is not None:  # completion: the text prompt is the whole request
            return base
        turns = _apply_version(list(base.messages), messages) if messages else [dict(m) for m in base.messages]
    if context is not None and not (prompt and "context" in prompt.variables):
        turns = _with_system(turns, CONTEXT_SYSTEM.format(context=view[CONTEXT]), first=False)
    return Rendered(tuple(turns), None, base.stop, base.max_tokens, tools=tuple(tools), tool_choice=tool_choice,
                    response_format=response_format)


def _apply_version(version_turns: list[dict[str, Any]], conversation: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The version's system turn and examples, then the conversation with its last user turn as the
    version's user template rendered it (`version_turns` ends with that turn)."""
    rendered_user = version_turns[-1]
    system = version_turns[0]["content"] if version_turns and version_turns[0]["role"] == "system" else None
    examples = version_turns[1 if system is not None else 0:-1]
    turns = [dict(m) for m in conversation]
    last_user = max(i for i, m in enumerate(turns) if m.get("role") == "user")
    turns[last_user] = {**turns[last_user], "content": rendered_user["content"]}
    first_real = 1 if turns and turns[0].get("role") == "system" else 0
    out = turns[:first_real] + examples + turns[first_real:]
    return _with_system(out, system, first=True) if system is not None else out


def _with_system(turns: list[dict[str, Any]], text: str, *, first: bool) -> list[dict[str, Any]]:
    """`text` merged into the conversation's system turn (before or after its own text), or a new one."""
    if turns and turns[0].get("role") == "system":
        own = turns[0].get("content") or ""
        merged = f"{text}\n\n{own}" if first else f"{own}\n\n{text}"
        return [{**turns[0], "content": merged.strip()}] + turns[1:]
    return [{"role": "system", "content": text}] + turns


def _merge_tools(version_tools: Sequence[Mapping[str, Any]], item_tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not version_tools and not item_tools:  # the usual item: nothing to merge (100k items, every call counts)
        return []
    own = {function_of(t).get("name") for t in item_tools}
    return [dict(t) for t in version_tools if function_of(t).get("name") not in own] + [dict(t) for t in item_tools]
