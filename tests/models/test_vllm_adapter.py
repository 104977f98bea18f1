"""The vllm/ adapter: a clear error without vLLM, and a faithful translation to vLLM's offline API.

vLLM needs a CUDA GPU and is not installed here, so the translation is checked against a
stand-in `vllm` module that records what the adapter asks of `LLM` and `SamplingParams` and
answers with vLLM's output shape (RequestOutput.prompt_token_ids, .outputs[0].text,
.token_ids, .finish_reason). The real engine runs in test_gpu.py, on a GPU machine with vLLM.
"""
from __future__ import annotations

import asyncio
import importlib.machinery
import sys
import types
from types import SimpleNamespace

import pytest

from workbench.errors import InputError, ModelCallError
from workbench.models import Request, Response, Sampling, get_model
from workbench.models import vllm_adapter
from workbench.models.hf_adapter import sample_seed


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
    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "<chat>" + "|".join(m["content"] for m in messages) + "<assistant>"

    def __call__(self, text, add_special_tokens):
        assert add_special_tokens is False
        return {"input_ids": [ord(c) for c in text]}


class _LLM:
    instances: list["_LLM"] = []

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
            outputs.append(SimpleNamespace(prompt_token_ids=list(range(n_prompt)), outputs=[
                SimpleNamespace(text="answer", token_ids=[1, 2], finish_reason=reason)]))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    module = types.ModuleType("vllm")
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    module.LLM = _LLM
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    _LLM.instances.clear()
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    return folder


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
