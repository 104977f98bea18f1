"""Tools on local models (hf/): the rendering (the model's own template with a tools block, else the
documented Hermes-style system prompt), the parser of the calls a model writes, and real SmolLM2
generation both ways: the bundled template (no tools block) and a copy of the same model whose
template has one (tests/models/data/hermes_tools_template.jinja), loaded from disk."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from workbench.errors import InputError, ModelCallError
from workbench.items.tool_calls import ToolCall
from workbench.models import Request, Response, Sampling, get_model
from workbench.models.local_chat import (CHAT_TEMPLATE, FORMAT_VERSION, HERMES, TOOLS_FOOTER, TOOLS_HEADER,
                                         chat_inputs, completion_problem, render_plain, render_without_template,
                                         text_turns)
from workbench.models.tool_parsing import parse_tool_calls, read_calls

TEMPLATE = Path(__file__).parent / "data" / "hermes_tools_template.jinja"
SMOL = "hf/smollm2-135m-instruct"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                    "unit": {"type": "string", "enum": ["C", "F"]}},
                   "required": ["city"]}}}
# BFCL's form: bare function object, a dotted name and Python type names ("dict", "float")
FACTORIAL = {"name": "math.factorial", "description": "Factorial of a number.",
             "parameters": {"type": "dict", "properties": {"number": {"type": "float"}}, "required": ["number"]}}
HISTORY = (
    {"role": "system", "content": "You are the support bot of a shop."},
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 12, "sky": "rain"}'},
    {"role": "assistant", "content": "It is 12 degrees and raining in Paris."},
    {"role": "user", "content": "And in Rome, in Fahrenheit?"},
)


def ask(item_id: str, text: str, tools=(WEATHER,), **fields) -> Request:
    sampling = fields.pop("sampling", Sampling(max_tokens=48))
    return Request(item_id, messages=({"role": "user", "content": text},), tools=tuple(tools), sampling=sampling,
                   **fields)


# --- the parser on fixed strings ---------------------------------------------------------------------

def calls_of(text: str) -> list[tuple[str, dict | None]]:
    return [(c.name, c.arguments) for c in parse_tool_calls(text)[1]]


def test_tagged_calls_several_and_the_text_around_them():
    text = ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
            '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\", \\"unit\\": \\"F\\"}"}'
            '</tool_call>\nOne moment.')
    rest, calls = parse_tool_calls(text)
    assert rest == "Let me check.\nOne moment."
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris"}),
                                                      ("get_weather", {"city": "Rome", "unit": "F"})]
    assert all(c.valid for c in calls) and calls[0].raw_arguments == '{"city": "Paris"}'


@pytest.mark.parametrize("text, expected", [
    # a list inside one tag, and a fence inside a tag
    ('<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]</tool_call>',
     [("a", {}), ("b", {"x": 1})]),
    ('<tool_call>\n```json\n{"name": "a", "arguments": {"x": 1}}\n```\n</tool_call>', [("a", {"x": 1})]),
    # a last tag the model never closed, and a tag without arguments (a call without arguments)
    ('<tool_call>{"name": "a", "arguments": {"x": 1}}', [("a", {"x": 1})]),
    ('<tool_call>{"name": "now"}</tool_call>', [("now", {})]),
    # bare JSON: an object, Llama's "parameters", a list, OpenAI's wrapper, in the middle of text
    ('{"name": "a", "arguments": {"x": 1}}', [("a", {"x": 1})]),
    ('{"name": "a", "parameters": {"x": 1}}', [("a", {"x": 1})]),
    ('[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "parameters": {}}]', [("a", {"x": 1}), ("b", {})]),
    ('{"type": "function", "function": {"name": "a", "arguments": "{\\"x\\": 2}"}}', [("a", {"x": 2})]),
    ('Sure! {"name": "a", "arguments": {"x": [1, {"y": "}"}]}} is what I call.', [("a", {"x": [1, {"y": "}"}]})]),
    # fenced blocks
    ('Here:\n```json\n{"name": "a", "arguments": {"x": 1}}\n```', [("a", {"x": 1})]),
    ('```\n[{"name": "a", "arguments": {}}]\n```', [("a", {})]),
    # JSON that is no call stays text
    ('{"answer": 4}', []),
    ('```json\n{"name": "Bob", "age": 3}\n```', []),
    ('{"name": "Bob", "arguments": {}, "age": 3}', []),
    ('I think {not json} and [1, 2] here', []),
    ('The weather is fine.', []),
])
def test_call_forms(text, expected):
    assert calls_of(text) == expected


def test_text_outside_bare_and_fenced_calls_is_the_answer():
    assert parse_tool_calls('Sure! {"name": "a", "arguments": {}} Done.')[0] == "Sure!\nDone."
    assert parse_tool_calls('Here:\n```json\n{"name": "a", "arguments": {}}\n```\nok')[0].split() == ["Here:", "ok"]
    assert parse_tool_calls('```json\n{"answer": 4}\n```')[0] == '```json\n{"answer": 4}\n```'


@pytest.mark.parametrize("text, name, error", [
    ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris",}\n</tool_call>', "get_weather",
     "not valid JSON"),
    ('<tool_call></tool_call>', "", "empty"),
    ('<tool_call>get_weather(city="Paris")</tool_call>', "", "not valid JSON"),
    ('<tool_call>{"arguments": {"city": "Paris"}}</tool_call>', "", "no function name"),
    ('<tool_call>{"name": "get_weather", "arguments": [1, 2]}</tool_call>', "get_weather", "JSON list"),
    ('<tool_call>{"name": "get_weather", "arguments": "city=Paris"}</tool_call>', "get_weather", "not valid JSON"),
    ('Calling {"name": "get_weather", "arguments": {"city": "Par', "get_weather", "not valid JSON"),
    ('```json\n{"name": "get_weather", "arguments": {city: Paris}}\n```', "get_weather", "not valid JSON"),
])
def test_an_unparseable_call_is_a_call_with_its_error_never_text(text, name, error):
    rest, calls = parse_tool_calls(text)
    [call] = calls
    assert call.name == name and call.arguments is None and not call.valid
    assert error in call.error and (call.raw_arguments or error == "empty")  # the model's text is kept
    assert "<tool_call>" not in rest and '"arguments"' not in rest


def test_only_requests_with_tools_are_read_for_calls():
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    assert read_calls(Request("t", messages=({"role": "user", "content": "x"},)), text, "stop") == (text, (), "stop")
    rest, calls, reason = read_calls(ask("t", "x"), text, "stop")
    assert rest == "" and calls == (ToolCall("get_weather", {"city": "Paris"}, '{"city": "Paris"}'),)
    assert reason == "tool_calls"
    assert read_calls(ask("t", "x"), text, "length")[2] == "length"  # cut short: it says so
    assert read_calls(ask("t", "x"), "No call.", "stop") == ("No call.", (), "stop")


# --- rendering without the model --------------------------------------------------------------------

def test_a_plain_text_request_renders_as_before():
    messages = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"})
    request = Request("p", messages=messages)
    assert chat_inputs(request, tools_in_template=False) == ([dict(m) for m in messages], None)
    assert chat_inputs(request, tools_in_template=True) == ([dict(m) for m in messages], None)
    assert render_without_template(request) == render_plain(messages) == "Be brief.\n\nHi"


def test_hermes_format_merges_with_the_system_message_and_lists_every_tool():
    request = Request("h", messages=HISTORY, tools=(WEATHER, FACTORIAL))
    messages, tools = chat_inputs(request, tools_in_template=False)
    assert tools is None
    system = messages[0]
    assert system["role"] == "system" and system["content"].startswith("You are the support bot of a shop.\n\n# Tools")
    assert [m["role"] for m in messages].count("system") == 1
    listed = system["content"].split("<tools>\n")[1].split("\n</tools>")[0].splitlines()
    declared = [json.loads(line) for line in listed]
    assert [d["function"]["name"] for d in declared] == ["get_weather", "math.factorial"]  # names as declared
    assert declared[1]["function"]["parameters"]["type"] == "object"  # BFCL's dict as JSON Schema
    assert declared[1]["function"]["parameters"]["properties"]["number"]["type"] == "number"
    assert TOOLS_HEADER in system["content"] and TOOLS_FOOTER in system["content"]
    # earlier calls and results as text, in the same format
    assert messages[2] == {"role": "assistant", "content": '<tool_call>\n{"name": "get_weather", "arguments": '
                                                           '{"city": "Paris"}}\n</tool_call>'}
    assert messages[3] == {"role": "user", "content": '<tool_response>\n{"temp": 12, "sky": "rain"}\n</tool_response>'}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]


def test_no_system_message_gets_one_and_tool_results_in_a_row_share_a_user_turn():
    messages = ({"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": "Checking both.", "tool_calls": [
                    {"id": "1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"id": "2", "function": {"name": "get_weather", "arguments": "{broken"}}]},
                {"role": "tool", "tool_call_id": "1", "content": "12"},
                {"role": "tool", "tool_call_id": "2", "content": "20"})
    rendered, _ = chat_inputs(Request("n", messages=messages, tools=(WEATHER,)), tools_in_template=False)
    assert rendered[0]["role"] == "system" and rendered[0]["content"].startswith("# Tools")
    assert rendered[2]["content"].startswith("Checking both.\n<tool_call>\n")
    assert '"arguments": "{broken"' in rendered[2]["content"]  # shown as the model wrote it
    assert rendered[3] == {"role": "user", "content": "<tool_response>\n12\n</tool_response>\n"
                                                      "<tool_response>\n20\n</tool_response>"}
    assert len(rendered) == 4
    assert text_turns(messages[:1]) == [dict(messages[0])]


def test_template_path_passes_tools_and_structured_calls():
    messages, tools = chat_inputs(Request("t", messages=HISTORY, tools=(FACTORIAL,)), tools_in_template=True)
    assert tools == [{"type": "function", "function": {**FACTORIAL, "parameters": {
        "type": "object", "properties": {"number": {"type": "number"}}, "required": ["number"]}}}]
    assert messages[0] == HISTORY[0]  # nothing added: the template renders the tools itself
    assert messages[2]["tool_calls"] == [{"type": "function", "id": "call_1",
                                          "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert messages[2]["content"] == ""


@pytest.mark.parametrize("choice, offered, instruction", [
    ("auto", True, None),
    ("none", False, None),
    ("required", True, "You must call at least one of these functions."),
    ({"type": "function", "function": {"name": "get_weather"}}, True, "You must call the function `get_weather`."),
])
def test_tool_choice(choice, offered, instruction):
    for in_template in (False, True):
        messages, tools = chat_inputs(ask("c", "Weather?", tool_choice=choice), tools_in_template=in_template)
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        assert ("<tools>" in system or tools is not None) is offered
        if instruction:
            assert system.endswith(instruction)
        else:
            assert "You must call" not in system


def test_response_format_is_an_instruction_in_the_system_message():
    schema = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
    for response_format in (schema, {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}):
        messages, _ = chat_inputs(Request("f", messages=HISTORY[:2], response_format=response_format), False)
        assert messages[0]["content"].startswith("You are the support bot of a shop.\n\nAnswer with JSON only")
        assert messages[0]["content"].endswith(json.dumps(schema))
    messages, _ = chat_inputs(Request("f", messages=HISTORY[1:2], response_format={"type": "json_object"}), True)
    assert messages[0] == {"role": "system", "content": "Answer with one JSON object only: no other text, no code fence."}


def test_completion_prompts_with_tools_fail_at_planning_naming_the_model():
    prompt = Request("c1", prompt="Q: weather in Paris?\nA:", tools=(WEATHER,))
    assert "completion prompt" in completion_problem(prompt)
    assert completion_problem(Request("c2", prompt="Q:", tools=(WEATHER,), tool_choice="none")) is None
    assert completion_problem(Request("c3", prompt="Q:", response_format={"type": "object"})) is None
    adapter = get_model(SMOL)
    with pytest.raises(InputError) as err:
        adapter.key_payload(prompt)
    assert "hf/smollm2-135m-instruct" in str(err.value) and "c1" in str(err.value)


def test_cache_keys_carry_the_format_version_only_when_it_is_used():
    adapter = get_model(SMOL)
    text = Request("k", messages=({"role": "user", "content": "Hi"},))
    assert adapter.key_payload(text) == text.payload()  # stores written before keep their answers
    for request in (ask("k", "Hi"), Request("k", messages=HISTORY),
                    Request("k", messages=HISTORY[1:2], response_format={"type": "json_object"})):
        assert adapter.key_payload(request) == {**request.payload(), "local_rendering": FORMAT_VERSION}


def test_common_length_and_prefix_cut():
    import torch

    from workbench.models.hf_adapter import _common_length, _Prefix

    assert _common_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]], limit=10) == 2
    assert _common_length([[1, 2, 3, 4], [1, 2, 3, 4]], limit=3) == 3  # every prompt keeps its last token
    assert _common_length([[1, 2, 3]], limit=2) == 2 and _common_length([[7], [8]], limit=5) == 0
    keys = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(1, 2, 5, 3)
    cut = _Prefix([1, 2, 3, 4, 5], [(keys, keys + 1)]).cut(3)
    assert cut.ids == [1, 2, 3] and cut.kv[0][0].shape == (1, 2, 3, 3) and torch.equal(cut.kv[0][1], keys[:, :, :3] + 1)


# --- the real model: bundled template (no tools block) and a copy whose template has one -------------

@pytest.fixture(scope="module")
def bundled_folder() -> Path:
    from workbench.models.local_models import resolve_local_model

    return resolve_local_model("smollm2-135m-instruct").path  # converted once, cached


@pytest.fixture(scope="module")
def tools_folder(bundled_folder, tmp_path_factory) -> Path:
    """SmolLM2 with a chat template that renders tools: the same weights (linked), its own template."""
    folder = tmp_path_factory.mktemp("smollm2-tools")
    for file in bundled_folder.iterdir():
        if file.is_file() and file.name != "chat_template.jinja":
            (folder / file.name).symlink_to(file)
    (folder / "chat_template.jinja").write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_template_detection_on_real_tokenizers(bundled_folder, tools_folder):
    from transformers import AutoTokenizer

    from workbench.models.local_chat import template_takes_tools

    bundled = AutoTokenizer.from_pretrained(str(bundled_folder), local_files_only=True)
    with_tools = AutoTokenizer.from_pretrained(str(tools_folder), local_files_only=True)
    assert not template_takes_tools(bundled)  # transformers would drop the tools silently
    assert template_takes_tools(with_tools)


def test_the_copy_with_a_tools_template_is_another_model_for_the_cache(tools_folder):
    assert get_model(f"hf/{tools_folder}").identity()["weights_sha256"] != get_model(SMOL).identity()["weights_sha256"]


def prompt_text(adapter, request: Request) -> str:
    loaded = adapter._load_locked()
    prepared = adapter._prepare(loaded, 0, request)
    assert not isinstance(prepared, ModelCallError), prepared
    return loaded.tokenizer.decode(prepared.ids)


def run(adapter, requests):
    return asyncio.run(adapter.generate(requests, 600))


@pytest.fixture(scope="module")
def smol():
    adapter = get_model(SMOL, device="cpu")
    yield adapter
    asyncio.run(adapter.aclose())


@pytest.fixture(scope="module")
def smol_tools(tools_folder):
    adapter = get_model(f"hf/{tools_folder}", device="cpu")
    yield adapter
    asyncio.run(adapter.aclose())


@pytest.mark.slow
def test_a_template_with_a_tools_block_renders_the_declarations_itself(smol_tools):
    request = Request("t", messages=HISTORY, tools=(WEATHER, FACTORIAL))
    text = prompt_text(smol_tools, request)
    assert smol_tools.tools_rendering == CHAT_TEMPLATE
    assert "## Functions you can call\n<tools>" in text and TOOLS_HEADER not in text  # the template's own block
    assert text.startswith("<|im_start|>system\nYou are the support bot of a shop.\n\n## Functions")
    for tool in (WEATHER["function"], FACTORIAL):
        assert f'"name": "{tool["name"]}"' in text and tool["description"] in text
    assert '"number": {"type": "number"}' in text  # BFCL's float as JSON Schema
    # the conversation's call and result, rendered by the template from structured turns
    assert '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>' in text
    assert '<tool_response>\n{"temp": 12, "sky": "rain"}\n</tool_response>' in text
    assert text.endswith("<|im_start|>user\nAnd in Rome, in Fahrenheit?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow
def test_the_bundled_template_gets_the_system_prompt_format(smol):
    text = prompt_text(smol, Request("b", messages=HISTORY, tools=(WEATHER,)))
    assert smol.tools_rendering == HERMES
    assert text.startswith("<|im_start|>system\nYou are the support bot of a shop.\n\n" + TOOLS_HEADER)
    assert json.dumps(WEATHER) in text and TOOLS_FOOTER in text
    assert "named SmolLM" not in text  # the request's system message, not the template's default
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n' \
           '</tool_call><|im_end|>' in text
    assert '<|im_start|>user\n<tool_response>\n{"temp": 12, "sky": "rain"}\n</tool_response><|im_end|>' in text
    # the same request without tools: the template alone, as before
    plain = prompt_text(smol, Request("p", messages=({"role": "user", "content": "Hi"},)))
    assert plain.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


@pytest.mark.slow
def test_a_known_emitted_call_is_parsed_through_the_real_tokenizer(smol_tools):
    """The answer path (tokens -> text -> calls) on tokens the model could have emitted."""
    from workbench.models.hf_adapter import _Decoder, _Prepared, _Row

    loaded = smol_tools._load_locked()
    emitted = ('I will look that up.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Rome", "unit": "F"}}'
               '</tool_call>\n<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"</tool_call>')
    tokens = loaded.tokenizer(emitted, add_special_tokens=False)["input_ids"]
    request = ask("k", "Weather in Rome?")
    row = _Row(_Prepared(0, request, [1, 2, 3]), started=0.0, position=3, tokens=tokens, reason="stop",
               count=len(tokens) + 1, finished=1.0)
    decoder = _Decoder(smol_tools, loaded, deadline=0, timeout_s=1, cancel=None)
    response = decoder._response(row)
    assert response.text == "I will look that up."
    good, broken = response.tool_calls
    assert (good.name, good.arguments, good.valid) == ("get_weather", {"city": "Rome", "unit": "F"}, True)
    assert broken.name == "get_weather" and broken.arguments is None and "not valid JSON" in broken.error
    assert response.finish_reason == "tool_calls"
    assert response.model_version.endswith(f" tools={CHAT_TEMPLATE}")


def assert_well_formed(response: Response, rendering: str) -> None:
    """What holds whatever a small model writes: every call is a parsed call or an error with the
    model's text, no call is left in the text, and the response says how the tools were rendered."""
    assert isinstance(response, Response), response
    assert isinstance(response.tool_calls, tuple)
    for call in response.tool_calls:
        assert isinstance(call, ToolCall) and call.raw_arguments is not None
        assert (call.error is None and isinstance(call.arguments, dict)) or (call.error and call.arguments is None)
    assert "<tool_call>" not in response.text
    assert response.text or response.tool_calls or response.completion_tokens
    assert response.finish_reason in (("tool_calls", "length") if response.tool_calls else ("stop", "length"))
    assert f"tools={rendering}" in response.model_version


@pytest.mark.slow
def test_real_generation_with_tools_both_ways(smol, smol_tools):
    """Real answers, batched, with tools, tool turns and a forced call: their content is the model's
    (135M parameters calls tools poorly); their structure is checked."""
    short = Sampling(max_tokens=24)
    requests = [ask("r", "Call get_weather for Rome in Fahrenheit.", tool_choice="required", sampling=short),
                Request("h", messages=HISTORY, tools=(WEATHER,), sampling=short),
                ask("f", "What is 5 factorial?", tools=(WEATHER, FACTORIAL), sampling=short,
                    tool_choice={"type": "function", "function": {"name": "math.factorial"}})]
    for adapter, rendering in ((smol, HERMES), (smol_tools, CHAT_TEMPLATE)):
        outcomes = run(adapter, requests)
        for response in outcomes:
            assert_well_formed(response, rendering)
        calls = [c.pretty() for r in outcomes for c in r.tool_calls]
        print(f"\n{adapter.name} ({rendering}): {len(calls)} calls: {calls[:6]}; "
              f"texts: {[r.text[:60] for r in outcomes]}")
        # The same requests one by one give the same answers (the batch does not change the rendering).
        assert [(o.text, o.tool_calls) for o in run(adapter, requests[:1])] == \
            [(outcomes[0].text, outcomes[0].tool_calls)]


@pytest.mark.slow
def test_a_shared_tools_prompt_is_prefilled_once_with_the_same_answers(smol, monkeypatch):
    """Tool requests begin with the same long system prompt: its keys and values are computed once
    and start every row (in a batch, and kept for the next calls); the greedy answers are those of a
    whole prefill (measured here: identical)."""
    import workbench.models.hf_adapter as hf

    minimum = hf.MIN_SHARED_PREFIX
    requests = [Request(f"s{i}", messages=({"role": "system", "content": "You are a shop's support bot."},
                                           {"role": "user", "content": q}), tools=(WEATHER, FACTORIAL),
                        sampling=Sampling(max_tokens=6))
                for i, q in enumerate(["Where is my order A1234?", "Weather in Paris?", "What is 5 factorial?"])]
    smol._load_locked().prefix = None
    smol.stats.clear()
    together = run(smol, requests)
    shared = dict(smol.stats)
    one_by_one = [run(smol, [r])[0] for r in requests]  # the kept prefix serves these calls too
    kept = dict(smol.stats)
    monkeypatch.setattr(hf, "MIN_SHARED_PREFIX", 10**9)
    smol._loaded.prefix = None
    smol.stats.clear()
    whole = [run(smol, [r])[0] for r in requests]
    print(f"\nshared: {shared}\nwhole: {dict(smol.stats)}")
    assert shared["prefix_prefills"] == 1 and shared["prefix_reused_tokens"] >= 3 * minimum
    assert kept["prefix_reused_tokens"] > shared["prefix_reused_tokens"]  # the later calls took it too
    assert smol.stats["prefilled_tokens"] > 2 * (kept["prefilled_tokens"])  # whole prompts: much more work
    assert [o.text for o in together] == [o.text for o in whole] == [o.text for o in one_by_one]
    assert [o.prompt_tokens for o in together] == [o.prompt_tokens for o in whole]
