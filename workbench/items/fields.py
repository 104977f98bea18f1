"""The fields an item of a real application carries besides `input`, checked once, for every file format.

- `messages`: a conversation of system / user / assistant / tool turns; the model answers after the
  last turn (a user turn, or a tool result). An assistant turn may carry `tool_calls`.
- `tools`: OpenAI-style function declarations (`{"type": "function", "function": {name, description,
  parameters}}` or the bare function object). BFCL's types (`dict`, `float`, `tuple`, `any`) are
  accepted and sent to APIs as JSON Schema (`api_tools`).
- `tool_choice`: "auto", "none", "required", or `{"type": "function", "function": {"name": ...}}`.
- `response_format`: a JSON Schema the answer must follow (bare, or OpenAI's `{"type": "json_schema",
  "json_schema": {"name", "schema"}}`, or `{"type": "json_object"}` for any JSON object).
- `context`: retrieved passages, a string or a list of strings.
- `expected_calls`: the accepted calls (see `workbench.items.tool_calls`); `[]` means no call should be
  made (BFCL's irrelevance), `"any"` that some call should be (BFCL's relevance).

CSV cells hold these as JSON text; JSONL, parquet and `datasets` folders as JSON values or JSON text.
Every problem names the file, the row and the field (`messages[2].role`).
"""
from __future__ import annotations

import copy
import json
from typing import Any, Mapping, Sequence

from workbench.errors import Problem
from workbench.items.tool_calls import ToolNames, expected_call, function_of, tool_names
from workbench.values import is_blank

MESSAGES, TOOLS, TOOL_CHOICE, RESPONSE_FORMAT, CONTEXT, EXPECTED_CALLS = (
    "messages", "tools", "tool_choice", "response_format", "context", "expected_calls")
APP_FIELDS = (MESSAGES, TOOLS, TOOL_CHOICE, RESPONSE_FORMAT, CONTEXT, EXPECTED_CALLS)
ROLES = ("system", "user", "assistant", "tool")
TOOL_CHOICES = ("auto", "none", "required")
ANY_CALL = "any"
_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


def check_app_fields(fields: dict[str, Any], source: str, row: int) -> list[Problem]:
    """Parse (JSON text -> values) and check the application fields of one row, in place."""
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(source, row, field, message))

    for name in APP_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if is_blank(value):
            del fields[name]  # an empty cell: the row has no such field
            continue
        if isinstance(value, str) and _json_text(name, value):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                if name != CONTEXT:  # a passage may well start with "["
                    bad(name, f"not valid JSON ({exc.msg} at column {exc.colno})")
                    del fields[name]
                    continue
        fields[name] = _plain(value)
    if MESSAGES in fields:
        _check_messages(fields[MESSAGES], bad)
    declared = None
    if TOOLS in fields:
        declared = _check_tools(fields[TOOLS], bad)
    if TOOL_CHOICE in fields:
        check_tool_choice(fields[TOOL_CHOICE], declared, bad)
    if RESPONSE_FORMAT in fields:
        check_response_format(fields[RESPONSE_FORMAT], bad)
    if CONTEXT in fields:
        _check_context(fields[CONTEXT], bad)
    if EXPECTED_CALLS in fields:
        check_expected_calls(fields[EXPECTED_CALLS], declared, bad)
    return problems


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The text of the conversation's last user turn: the item's `input` for metrics, slices and
    widgets when the file gives a conversation instead."""
    for message in reversed(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return None


def context_text(context: Any) -> str:
    """Passages as one text, numbered when there are several (what templates and judges show)."""
    if isinstance(context, str):
        return context
    passages = [str(p) for p in context or ()]
    if len(passages) == 1:
        return passages[0]
    return "\n\n".join(f"[{n}] {p}" for n, p in enumerate(passages, start=1))


def api_tools(tools: Sequence[Mapping[str, Any]], names: ToolNames | None = None) -> list[dict[str, Any]]:
    """Declarations as OpenAI-style APIs take them: `{"type": "function", "function": ...}`, BFCL's
    types as JSON Schema, names mapped to ones the API accepts."""
    out = []
    for tool in tools:
        function = dict(function_of(tool))
        if names is not None:
            function["name"] = names.to_api.get(function["name"], function["name"])
        if "parameters" in function:
            function["parameters"] = json_schema(function["parameters"])
        out.append({"type": "function", "function": function})
    return out


def json_schema(schema: Any) -> Any:
    """A copy of a parameters schema with BFCL's Python type names as JSON Schema's."""
    schema = copy.deepcopy(schema)

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind in _BFCL_TYPES:
                if _BFCL_TYPES[kind] is None:
                    node.pop("type")
                else:
                    node["type"] = _BFCL_TYPES[kind]
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(schema)
    return schema


def response_schema(response_format: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema inside a response_format (None for `json_object`: any object)."""
    if response_format.get("type") == "json_schema":
        return dict(response_format.get("json_schema", {}).get("schema") or {})
    if response_format.get("type") == "json_object":
        return None
    return dict(response_format)


def api_response_format(response_format: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's form of a response_format (a bare schema is wrapped, named `answer`)."""
    if response_format.get("type") in ("json_schema", "json_object"):
        return dict(response_format)
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": dict(response_format)}}


# --- checks ------------------------------------------------------------------------------------

def _check_messages(messages: Any, bad) -> None:
    if not isinstance(messages, list) or not messages:
        bad(MESSAGES, "messages must be a non-empty list of turns ({\"role\": ..., \"content\": ...})")
        return
    for n, turn in enumerate(messages):
        where = f"{MESSAGES}[{n}]"
        if not isinstance(turn, dict):
            bad(where, f"a turn must be an object, got {type(turn).__name__}")
            continue
        role = turn.get("role")
        if role not in ROLES:
            bad(f"{where}.role", f"unknown role {role!r}; use one of {', '.join(ROLES)}")
            continue
        unknown = set(turn) - {"role", "content", "name", "tool_calls", "tool_call_id"}
        if unknown:
            bad(where, f"unknown key(s) {', '.join(sorted(unknown))} (a turn has role, content, name, "
                       "tool_calls, tool_call_id)")
        content = turn.get("content")
        calls = turn.get("tool_calls")
        if calls is not None:
            if role != "assistant":
                bad(f"{where}.tool_calls", "only an assistant turn can carry tool_calls")
            else:
                _check_turn_calls(calls, f"{where}.tool_calls", bad)
        if content is None and not (role == "assistant" and calls):
            bad(f"{where}.content", f"a {role} turn needs content (text)")
        elif content is not None and not isinstance(content, str):
            bad(f"{where}.content", f"content must be text, got {type(content).__name__}")
    if not any(isinstance(t, dict) and t.get("role") == "user" for t in messages):
        bad(MESSAGES, "a conversation needs at least one user turn")
    elif isinstance(messages[-1], dict) and messages[-1].get("role") not in ("user", "tool"):
        bad(f"{MESSAGES}[{len(messages) - 1}].role", "the last turn must be the user's (or a tool result) for "
                                                     "the model to answer it")


def _check_turn_calls(calls: Any, where: str, bad) -> None:
    if not isinstance(calls, list):
        bad(where, "tool_calls must be a list")
        return
    for n, call in enumerate(calls):
        function = function_of(call) if isinstance(call, dict) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str) or not function["name"]:
            bad(f"{where}[{n}]", "a tool call needs a function name")


def _check_tools(tools: Any, bad) -> list[str] | None:
    if not isinstance(tools, list):
        bad(TOOLS, "tools must be a list of function declarations")
        return None
    names: list[str] = []
    for n, tool in enumerate(tools):
        where = f"{TOOLS}[{n}]"
        if not isinstance(tool, dict):
            bad(where, f"a tool must be an object, got {type(tool).__name__}")
            continue
        if "function" in tool and tool.get("type", "function") != "function":
            bad(f"{where}.type", f"only function tools are supported, got {tool.get('type')!r}")
        function = function_of(tool)
        name = function.get("name")
        if not isinstance(name, str) or not name.strip():
            bad(f"{where}.name", "a tool needs a name")
            continue
        if name in names:
            bad(f"{where}.name", f"tool '{name}' is declared twice")
        names.append(name)
        parameters = function.get("parameters")
        if parameters is not None:
            problem = schema_problem(json_schema(parameters))
            if problem:
                bad(f"{where}.parameters", f"tool '{name}': parameters are not a valid JSON Schema ({problem})")
    return names


def check_tool_choice(choice: Any, declared: Sequence[str] | None, bad) -> None:
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            bad(TOOL_CHOICE, f"tool_choice must be one of {', '.join(TOOL_CHOICES)} or "
                             "{\"type\": \"function\", \"function\": {\"name\": ...}}, got " + repr(choice))
        return
    name = function_of(choice).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str):
        bad(TOOL_CHOICE, "tool_choice object must name a function: {\"type\": \"function\", \"function\": "
                         "{\"name\": ...}}")
    elif declared is not None and name not in declared:
        bad(TOOL_CHOICE, f"tool_choice names '{name}', which is not a declared tool ({', '.join(declared)})")


def check_response_format(response_format: Any, bad) -> None:
    if not isinstance(response_format, dict):
        bad(RESPONSE_FORMAT, "response_format must be a JSON Schema object")
        return
    kind = response_format.get("type")
    if kind == "json_object":
        return
    if kind == "json_schema" and not isinstance(response_format.get("json_schema", {}).get("schema"), dict):
        bad(RESPONSE_FORMAT, "a json_schema response_format needs json_schema.schema (an object)")
        return
    problem = schema_problem(response_schema(response_format))
    if problem:
        bad(RESPONSE_FORMAT, f"not a valid JSON Schema ({problem})")


def _check_context(context: Any, bad) -> None:
    if isinstance(context, str):
        return
    if not isinstance(context, list) or not all(isinstance(p, str) for p in context):
        bad(CONTEXT, "context must be a string or a list of strings (the retrieved passages)")


def check_expected_calls(expected: Any, declared: Sequence[str] | None, bad) -> None:
    if expected == ANY_CALL:
        return
    if not isinstance(expected, list):
        bad(EXPECTED_CALLS, f"expected_calls must be a list of calls ([] for none, \"{ANY_CALL}\" for any call)")
        return
    for n, entry in enumerate(expected):
        try:
            call = expected_call(entry)
        except ValueError as exc:
            bad(f"{EXPECTED_CALLS}[{n}]", str(exc))
            continue
        if declared is not None and call.name not in declared:
            bad(f"{EXPECTED_CALLS}[{n}]", f"names '{call.name}', which is not a declared tool "
                                          f"({', '.join(declared) or 'none declared'})")


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a valid JSON Schema (Draft 2020-12), or None."""
    import jsonschema

    if not isinstance(schema, dict):
        return f"a schema is an object, got {type(schema).__name__}"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return exc.message
    return None


def declared_names(tools: Any) -> list[str] | None:
    return tool_names(tools) if isinstance(tools, list) else None


def _json_text(name: str, value: str) -> bool:
    """Whether a text cell holds JSON to decode: always, except a context passage (unless it is a JSON
    list of passages), a tool_choice keyword and the expected_calls keyword "any"."""
    if name == CONTEXT:
        return value.lstrip().startswith("[")
    if name == TOOL_CHOICE or (name == EXPECTED_CALLS and value == ANY_CALL):
        return value.lstrip().startswith("{")
    return True


def _plain(value: Any) -> Any:
    """numpy arrays and scalars (parquet, `datasets`) as plain lists and values."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None or k not in ("tool_calls", "tool_call_id",
                                                                                     "name")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
