"""The text a local model (`hf/`, `vllm/`) reads for a request: its chat template, tools, tool turns
and a response_format, rendered the same way by both adapters.

Tools go through the model's own chat template (`apply_chat_template(messages, tools=...)`) when the
template has a tools block. Whether it has one is checked by rendering a probe conversation with
and without a probe tool (`template_takes_tools`): transformers silently drops tools a template never
reads (the bundled SmolLM2-135M-Instruct and Gemma 3 270M templates have none).

A template without a tools block gets ONE documented format, `hermes-system-prompt-v1` (the
Hermes / Qwen 2.5 convention many open models are trained on):
- the system message (the request's own, with this appended after a blank line, or a new first
  message) lists the tools, one JSON declaration a line (OpenAI form, BFCL's types as JSON Schema):

      # Tools

      You may call one or more functions to assist with the user query.

      You are provided with function signatures within <tools></tools> XML tags:
      <tools>
      {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}
      </tools>

      For each function call, return a json object with function name and arguments within
      <tool_call></tool_call> XML tags:
      <tool_call>
      {"name": <function-name>, "arguments": <args-json-object>}
      </tool_call>

- an earlier assistant turn's calls are its text followed by one `<tool_call>` block per call;
- tool results (consecutive `tool` turns together) are a user turn of `<tool_response>` blocks.
`tool_choice`: "none" offers no tools; "required" adds "You must call at least one of these
functions."; a named function "You must call the function `NAME`." (both after the tools, in the
system message, for templates with a tools block too). "auto" adds nothing.

`response_format` (hf/ has no constrained decoding; vLLM also constrains, see its adapter) is an
instruction at the end of the system message: "Answer with JSON only ... that follows this JSON
Schema: {...}" (`schema-in-system-prompt-v1`).

A model without any chat template reads the same turns as plain text (`render_plain`). A completion
request (`prompt=`) is sent verbatim: tools cannot be offered in it (`completion_problem` says so
before any call), a response_format is left to the prompt's own wording.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Sequence

from workbench.errors import InputError
from workbench.items.fields import api_tools, response_schema
from workbench.items.tool_calls import function_of
from workbench.models.base import Request

log = logging.getLogger(__name__)

CHAT_TEMPLATE = "chat-template"  # tools through the model's own template
HERMES = "hermes-system-prompt-v1"  # tools in the system prompt (templates without a tools block)
SCHEMA_PROMPT = "schema-in-system-prompt-v1"  # response_format as an instruction
# The version of the formats above, in the cache key of every request that uses one of them.
FORMAT_VERSION = "local-tools-v1"

TOOLS_HEADER = ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
TOOLS_FOOTER = ("</tools>\n\nFor each function call, return a json object with function name and arguments "
                "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
                "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>")
_PROBE_TOOL = {"type": "function", "function": {
    "name": "workbench_probe_7c1e", "description": "Probe: does this chat template render tools?",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}


def uses_local_format(request: Request) -> bool:
    """Whether the request's rendering depends on the formats above (tools, tool turns or a
    response_format): its cache key then carries FORMAT_VERSION."""
    return bool(request.tools) or request.response_format is not None or request.tool_choice is not None \
        or any(_is_tool_turn(m) for m in request.messages)


def local_key_payload(model_name: str, request: Request) -> dict[str, Any]:
    """A local adapter's cache-key payload: a request with tools, tool turns or a response_format also
    carries FORMAT_VERSION (whether the template has a tools block is part of the weights hash); a
    plain text request keeps the key it always had. A completion prompt with tools fails here, at
    planning, before anything is written."""
    problem = completion_problem(request)
    if problem:
        raise InputError(f"model '{model_name}': {problem}")
    payload = request.payload()
    if uses_local_format(request):
        payload["local_rendering"] = FORMAT_VERSION
    return payload


def completion_problem(request: Request) -> str | None:
    """Why a completion request cannot be sent as asked (tools need chat messages), or None."""
    if request.prompt is not None and request.tools and request.tool_choice != "none":
        return (f"item '{request.item_id}' is a completion prompt (prompt=) with tools: local models get tools "
                "through chat messages only; use a chat prompt version (messages) or drop the tools")
    return None


def template_takes_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders tools: a probe conversation rendered with and
    without a probe tool must differ and show the tool's name. A template that fails on tools takes
    none."""
    chat = [{"role": "user", "content": "Hello"}]
    try:
        plain = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        with_tool = tokenizer.apply_chat_template(chat, tools=[_PROBE_TOOL], tokenize=False,
                                                  add_generation_prompt=True)
    except Exception as exc:  # a template that raises on tools (or on the probe) cannot take them
        log.info("chat template failed on a probe tool (%s: %s): tools go in the system prompt",
                 type(exc).__name__, exc)
        return False
    return plain != with_tool and _PROBE_TOOL["function"]["name"] in with_tool


def tools_rendering(request: Request, tools_in_template: bool) -> str | None:
    """How this request's tools reach the model (None: it has none)."""
    if not request.tools:
        return None
    return CHAT_TEMPLATE if tools_in_template else HERMES


def rendering_note(request: Request, tools_in_template: bool) -> str:
    """What a response's model_version adds for a request rendered with tools or a response_format
    (empty for plain text): the run's responses say which rendering the model read."""
    notes = []
    rendering = tools_rendering(request, tools_in_template)
    if rendering:
        notes.append(f"tools={rendering}")
    if request.response_format is not None and request.prompt is None:
        notes.append(f"response_format={SCHEMA_PROMPT}")
    return "".join(f" {n}" for n in notes)


def chat_inputs(request: Request, tools_in_template: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The messages to hand the chat template and the tools to pass it (None: none, or they are in
    the system message). A plain text request comes back exactly as it was."""
    offered = api_tools(request.tools) if request.tools and request.tool_choice != "none" else []
    instructions: list[str] = []
    if tools_in_template:
        messages = [_template_turn(m) for m in request.messages]
    else:
        messages = text_turns(request.messages)
        if offered:
            instructions.append(tools_block(offered))
    if offered:
        instructions += _choice_instruction(request.tool_choice)
    if request.response_format is not None:
        instructions.append(format_instruction(request.response_format))
    return with_system(messages, instructions), (offered or None) if tools_in_template else None


def render_chat(tokenizer: Any, request: Request, tools_in_template: bool) -> str:
    """The prompt text of a chat request through the tokenizer's chat template."""
    messages, tools = chat_inputs(request, tools_in_template)
    if tools is None:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)


def render_without_template(request: Request) -> str:
    """The prompt text of a chat request for a model without a chat template."""
    messages, _ = chat_inputs(request, tools_in_template=False)
    return render_plain(messages)


def render_plain(messages: Sequence[Mapping[str, Any]]) -> str:
    """Chat messages as plain text for a model without a chat template: a lone user message (with
    an optional system message before it) verbatim, else 'Role: content' blocks ending in 'Assistant:'."""
    roles = [m.get("role") for m in messages]
    if roles == ["user"] or roles == ["system", "user"]:
        return "\n\n".join(str(m.get("content", "")) for m in messages)
    lines = [f"{str(m.get('role', 'user')).capitalize()}: {m.get('content', '')}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"


# --- the documented formats ---------------------------------------------------------------------

def tools_block(tools: Sequence[Mapping[str, Any]]) -> str:
    """The Hermes-style tool list for the system message (see the module docstring)."""
    lines = [json.dumps(tool, ensure_ascii=False) for tool in tools]
    return "\n".join([TOOLS_HEADER, *lines, TOOLS_FOOTER])


def call_block(name: str, arguments: Any) -> str:
    """One call as the model is asked to write it."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


def format_instruction(response_format: Mapping[str, Any]) -> str:
    schema = response_schema(response_format)
    if schema is None:
        return "Answer with one JSON object only: no other text, no code fence."
    return ("Answer with JSON only (no other text, no code fence) that follows this JSON Schema:\n"
            + json.dumps(schema, ensure_ascii=False))


def _choice_instruction(choice: str | Mapping[str, Any] | None) -> list[str]:
    if choice == "required":
        return ["You must call at least one of these functions."]
    if isinstance(choice, Mapping):
        return [f"You must call the function `{function_of(choice).get('name')}`."]
    return []


def with_system(messages: list[dict[str, Any]], instructions: Sequence[str]) -> list[dict[str, Any]]:
    """`instructions` after the request's system message (a blank line between), or as a new first one."""
    if not instructions:
        return messages
    extra = "\n\n".join(instructions)
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first.get('content') or ''}\n\n{extra}" if first.get("content") else extra
        return [first, *messages[1:]]
    return [{"role": "system", "content": extra}, *messages]


def text_turns(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls and tool results as text turns (templates without tool support); other turns as they are."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            calls = [call_block(*_name_and_arguments(call)) for call in message["tool_calls"]]
            text = message.get("content") or ""
            out.append({"role": "assistant", "content": "\n".join(([text] if text else []) + calls)})
        elif role == "tool":
            block = f"<tool_response>\n{message.get('content') or ''}\n</tool_response>"
            if out and out[-1].get("role") == "user" and out[-1].get("_tool_results"):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool_results": True})
        else:
            out.append(dict(message))
    return [{k: v for k, v in m.items() if k != "_tool_results"} for m in out]


def _template_turn(message: Mapping[str, Any]) -> dict[str, Any]:
    """A turn as chat templates with tool support read it: calls as {"type": "function", "function":
    {"name", "arguments": an object}}, content "" rather than None."""
    turn = dict(message)
    if turn.get("tool_calls"):
        calls = []
        for call in turn["tool_calls"]:
            name, arguments = _name_and_arguments(call)
            entry: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
            if isinstance(call, Mapping) and call.get("id") is not None:
                entry["id"] = call["id"]
            calls.append(entry)
        turn["tool_calls"] = calls
    if turn.get("content") is None:
        turn["content"] = ""
    return turn


def _name_and_arguments(call: Mapping[str, Any]) -> tuple[str, Any]:
    """A recorded call's name and its arguments as an object (a JSON string is decoded when it can be)."""
    function = function_of(call)
    arguments = function.get("arguments", function.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            pass  # shown as the model wrote it
    return str(function.get("name", "")), arguments


def _is_tool_turn(message: Mapping[str, Any]) -> bool:
    return message.get("role") == "tool" or bool(message.get("tool_calls"))
