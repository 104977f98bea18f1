"""The vllm/ adapter: a clear error without vLLM, and a faithful translation to vLLM's offline API.

vLLM needs a CUDA GPU and is not installed here, so the translation is checked against a
stand-in `vllm` module that records what the adapter asks of `LLM` and `SamplingParams` and
answers with vLLM's output shape (RequestOutput.prompt_token_ids, .outputs[0].text,
.token_ids, .finish_reason). The real engine runs in test_gpu.py, on a GPU machine with vLLM.
"""
from __future__ import annotations

import asyncio
import gc
import importlib.machinery
import sys
import types
from types import SimpleNamespace

import pytest

from workbench.errors import InputError, ModelCallError
from workbench.models import Request, Response, Sampling, get_model
from workbench.models import vllm_adapter
from workbench.models.hf_adapter import sample_seed
from workbench.models.loaded_models import loaded_local_models, release_local_models


def test_without_vllm_the_error_says_how_to_install_it(monkeypatch):
    real = vllm_adapter.importlib.util.find_spec
    monkeypatch.setattr(vllm_adapter.importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n, *a))
    with pytest.raises(InputError) as err:
        get_model("vllm/smollm2-135m-instruct")
    assert "pip install vllm" in str(err.value) and "hf/<model>" in str(err.value)


def test_unknown_option_is_an_error():
    with pytest.raises(InputError, match="beam_width"):
        get_model("vllm/smollm2-135m-instruct", beam_width=4)


class _Tokenizer:
    renders_tools = False  # like a chat template with a tools block (True) or without one (False)

    def apply_chat_template(self, messages, tokenize, add_generation_prompt, tools=None):
        assert tokenize is False and add_generation_prompt is True
        block = "<tools>" + ",".join(t["function"]["name"] for t in tools) if tools and self.renders_tools else ""
        return "<chat>" + "|".join(m["content"] for m in messages) + block + "<assistant>"

    def __call__(self, text, add_special_tokens):
        assert add_special_tokens is False
        return {"input_ids": [ord(c) for c in text]}


class _LLM:
    instances: list["_LLM"] = []
    answers: dict[str, str] = {}  # what the stand-in answers to a prompt containing the key

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        _LLM.instances.append(self)

    def get_tokenizer(self):
        return _Tokenizer()

    def generate(self, prompts, params, use_tqdm):
        self.calls.append((prompts, params))
        outputs = []
        for prompt, param in zip(prompts, params):
            n_prompt = len(prompt.get("prompt_token_ids") or prompt["prompt"].split())
            reason = "abort" if prompt.get("prompt") == "abort me" else ("length" if param.max_tokens < 3 else "stop")
            text = "".join(map(chr, prompt.get("prompt_token_ids") or []))
            answer = next((a for marker, a in _LLM.answers.items() if marker in text), "answer")
            outputs.append(SimpleNamespace(prompt_token_ids=list(range(n_prompt)), outputs=[
                SimpleNamespace(text=answer, token_ids=[1, 2], finish_reason=reason)]))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    module.LLM = _LLM
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    params = types.ModuleType("vllm.sampling_params")  # vLLM >= 0.10.2 names structured outputs so
    params.StructuredOutputsParams = lambda **kw: SimpleNamespace(**kw)
    module.sampling_params = params
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", params)
    monkeypatch.setattr(_Tokenizer, "renders_tools", False)
    monkeypatch.setattr(_LLM, "answers", {})
    _LLM.instances.clear()
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    release_local_models()  # every test starts its own stand-in engine (the folders' content is the same)
    yield folder
    gc.collect()  # adapters a test never closed let go of their engine
    release_local_models()


def test_requests_translate_to_sampling_params_and_back(fake_vllm):
    adapter = get_model(f"vllm/{fake_vllm}", tensor_parallel_size=2, dtype="bfloat16")
    assert adapter.identity()["provider"] == "vllm" and len(adapter.identity()["weights_sha256"]) == 64
    sampled = Request("s", prompt="Once upon", sampling=Sampling(temperature=0.7, top_p=0.9, seed=5, max_tokens=2,
                                                                   stop=("\n",)), sample_index=3)
    requests = [
        Request("c", messages=({"role": "user", "content": "Hi"},), sampling=Sampling(max_tokens=9)),
        sampled,
        Request("e"),
        Request("a", prompt="abort me"),
    ]
    chat, sample, empty, aborted = asyncio.run(adapter.generate(requests, 30))
    [engine] = _LLM.instances
    assert engine.kwargs["model"] == str(fake_vllm.resolve()) and engine.kwargs["tensor_parallel_size"] == 2
    assert engine.kwargs["dtype"] == "bfloat16"
    [(prompts, params)] = engine.calls
    assert prompts[0] == {"prompt_token_ids": [ord(c) for c in "<chat>Hi<assistant>"]}
    assert prompts[1] == {"prompt": "Once upon"}
    greedy_params, sampled_params = params[0], params[1]
    assert (greedy_params.temperature, greedy_params.seed, greedy_params.max_tokens, greedy_params.stop) == (0.0, None, 9, None)
    assert (sampled_params.temperature, sampled_params.top_p, sampled_params.seed, sampled_params.stop) == \
        (0.7, 0.9, sample_seed(sampled), ["\n"])
    assert isinstance(chat, Response) and chat.finish_reason == "stop" and chat.completion_tokens == 2
    assert chat.prompt_tokens == len("<chat>Hi<assistant>") and chat.cost_usd is None
    assert isinstance(sample, Response) and sample.finish_reason == "length"
    assert isinstance(empty, ModelCallError) and empty.kind == "bad_request"
    assert isinstance(aborted, ModelCallError) and "abort" in str(aborted)
    asyncio.run(adapter.aclose())


# --- tools, tool_choice and response_format ---------------------------------------------------------

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
FACTORIAL = {"name": "math.factorial", "parameters": {"type": "dict", "properties": {"n": {"type": "float"}}}}
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def ask(item_id: str, text: str, **fields) -> Request:
    return Request(item_id, messages=({"role": "user", "content": text},), **fields)


def rendered(prompt: dict) -> str:
    return "".join(map(chr, prompt["prompt_token_ids"]))


def call_schema(name: str, parameters: dict) -> dict:
    return {"type": "object", "properties": {"name": {"type": "string", "enum": [name]}, "arguments": parameters},
            "required": ["name", "arguments"], "additionalProperties": False}


def test_tools_are_rendered_like_hf_and_constrained_like_vllms_server(fake_vllm):
    from workbench.models.local_chat import HERMES, TOOLS_HEADER

    _LLM.answers["weather in Paris"] = "Checking.\n" + CALL
    adapter = get_model(f"vllm/{fake_vllm}")
    schema = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
    requests = [ask("t", "weather in Paris?", tools=(WEATHER,)),
                ask("r", "weather in Rome?", tools=(WEATHER, FACTORIAL), tool_choice="required"),
                ask("n", "5!", tools=(WEATHER, FACTORIAL), tool_choice={"type": "function",
                                                                         "function": {"name": "math.factorial"}}),
                ask("j", "order?", response_format=schema),
                ask("o", "order?", response_format={"type": "json_object"}),
                ask("x", "no tools"),
                Request("c", prompt="Q: weather?", tools=(WEATHER,))]
    outcomes = asyncio.run(adapter.generate(requests, 30))
    [engine] = _LLM.instances
    [(prompts, params)] = engine.calls
    assert len(prompts) == 6  # the completion prompt with tools never reached vLLM
    assert isinstance(outcomes[-1], ModelCallError) and outcomes[-1].kind == "bad_request"
    assert "completion prompt" in str(outcomes[-1])
    # the template here has no tools block: the documented system prompt, as hf/ renders it
    assert rendered(prompts[0]).startswith("<chat>" + TOOLS_HEADER) and '"name": "get_weather"' in rendered(prompts[0])
    assert rendered(prompts[1]).count("You must call at least one of these functions.") == 1
    assert "You must call the function `math.factorial`." in rendered(prompts[2])
    assert "Answer with JSON only" in rendered(prompts[3]) and rendered(prompts[5]) == "<chat>no tools<assistant>"
    # what vLLM is asked to enforce
    factorial = call_schema("math.factorial", {"type": "object", "properties": {"n": {"type": "number"}}})
    weather = call_schema("get_weather", WEATHER["function"]["parameters"])
    assert not hasattr(params[0], "structured_outputs")  # "auto": free text
    assert params[1].structured_outputs.json == {"type": "array", "minItems": 1, "items": {"anyOf": [weather, factorial]}}
    assert params[2].structured_outputs.json == factorial
    assert params[3].structured_outputs.json == schema
    assert params[4].structured_outputs.json_object is True
    assert not hasattr(params[5], "structured_outputs")
    # the calls the model wrote, read by the same parser as hf/
    called = outcomes[0]
    assert isinstance(called, Response) and called.text == "Checking."
    assert [(c.name, c.arguments) for c in called.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert called.finish_reason == "tool_calls" and called.model_version.endswith(f"tools={HERMES}")
    assert outcomes[5].tool_calls == () and outcomes[5].text == "answer" and outcomes[5].finish_reason == "stop"
    assert outcomes[3].text == "answer" and outcomes[3].tool_calls == ()  # no tools: the text is never read for calls


def test_a_template_with_a_tools_block_gets_the_tools(fake_vllm, monkeypatch):
    from workbench.models.local_chat import CHAT_TEMPLATE, TOOLS_HEADER

    monkeypatch.setattr(_Tokenizer, "renders_tools", True)
    _LLM.answers["<tools>"] = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    adapter = get_model(f"vllm/{fake_vllm}")
    [answer] = asyncio.run(adapter.generate([ask("t", "weather?", tools=(WEATHER, FACTORIAL))], 30))
    [(prompts, _)] = _LLM.instances[0].calls
    assert rendered(prompts[0]) == "<chat>weather?<tools>get_weather,math.factorial<assistant>"
    assert TOOLS_HEADER not in rendered(prompts[0])
    assert answer.tool_calls[0].arguments == {"city": "Paris"} and answer.text == ""
    assert answer.model_version.endswith(f"tools={CHAT_TEMPLATE}")


def test_older_vllm_gets_guided_decoding(fake_vllm, monkeypatch):
    params = types.ModuleType("vllm.sampling_params")
    params.GuidedDecodingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", params)
    monkeypatch.setattr(sys.modules["vllm"], "sampling_params", params)
    adapter = get_model(f"vllm/{fake_vllm}")
    asyncio.run(adapter.generate([ask("o", "order?", response_format={"type": "json_object"})], 30))
    [(_, [sent])] = _LLM.instances[0].calls
    assert sent.guided_decoding.json_object is True and not hasattr(sent, "structured_outputs")


def test_vllm_cache_keys_and_completion_prompts_with_tools(fake_vllm):
    adapter = get_model(f"vllm/{fake_vllm}")
    text = ask("k", "Hi")
    assert adapter.key_payload(text) == text.payload()
    assert adapter.key_payload(ask("k", "Hi", tools=(WEATHER,)))["local_rendering"] == "local-tools-v1"
    with pytest.raises(InputError, match="completion prompt"):
        adapter.key_payload(Request("c", prompt="Q:", tools=(WEATHER,)))


def test_one_engine_per_weights_and_engine_options(fake_vllm):
    """The optimizer and the judge build an adapter per run: they share one engine (vLLM claims most
    of the GPU, two engines would not fit); other engine options start another; released, it stops."""
    first = get_model(f"vllm/{fake_vllm}")
    asyncio.run(first.generate([Request("a", prompt="Once")], 30))
    asyncio.run(first.aclose())
    again = get_model(f"vllm/{fake_vllm}", batch_size=8)  # a decoding option: the same engine
    asyncio.run(again.generate([Request("b", prompt="Twice")], 30))
    assert len(_LLM.instances) == 1 and len(_LLM.instances[0].calls) == 2
    other = get_model(f"vllm/{fake_vllm}", dtype="float16")
    asyncio.run(other.prepare())
    assert len(_LLM.instances) == 2
    assert sorted(m["dtype"] for m in loaded_local_models()) == ["auto", "float16"]
    asyncio.run(again.aclose())
    asyncio.run(other.aclose())
    assert len(release_local_models()) == 2 and loaded_local_models() == []
    asyncio.run(get_model(f"vllm/{fake_vllm}").prepare())
    assert len(_LLM.instances) == 3  # started again after the release
