"""On a CUDA GPU only (skipped elsewhere; `pytest -m gpu` on a GPU machine): the hf/ adapter's
default path there (CUDA, bf16 where supported, 32 rows at once) answers with both bundled models,
and where vLLM is installed the real `vllm/` adapter does too, on vLLM's own engine (not the
stand-in of test_vllm_adapter.py)."""
from __future__ import annotations

import asyncio

import pytest

from workbench.models import Request, Response, Sampling, get_model


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")]

SMOL = "hf/smollm2-135m-instruct"
GEMMA = "hf/gemma3-270m"
FEW_SHOT = ("Q: What is the capital of Italy?\nA: Rome.\n\n"
            "Q: What is the capital of Japan?\nA: Tokyo.\n\n"
            "Q: What is the capital of France?\nA:")
QUESTIONS = ["Hi!", "What is 2 + 2?", "Name three primary colours.",
             "Explain in one sentence why the sky is blue during the day.",
             "Translate 'good morning' to French.", "What is the capital of France?"]


def chat(item_id: str, text: str, **sampling) -> Request:
    return Request(item_id, messages=({"role": "user", "content": text},), sampling=Sampling(**sampling))


def run(adapter, requests) -> list[Response]:
    outcomes = asyncio.run(adapter.generate(requests, 600.0))
    for outcome in outcomes:
        assert isinstance(outcome, Response), outcome
    return outcomes


@pytest.fixture(scope="module")
def smol_cuda():
    adapter = get_model(SMOL)  # the default device: CUDA here
    asyncio.run(adapter.prepare())
    yield adapter
    asyncio.run(adapter.aclose())


def test_hf_defaults_to_cuda_with_its_dtype_and_rows(smol_cuda):
    import torch

    assert smol_cuda.device.startswith("cuda") and smol_cuda.slots == 32 and smol_cuda.max_batch == 4 * 32
    expected = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    assert smol_cuda.dtype == expected and smol_cuda.identity()["dtype"] == expected  # a CPU answer is not reused
    assert next(smol_cuda._loaded.model.parameters()).device.type == "cuda"


def test_hf_on_cuda_answers_a_chat_question(smol_cuda):
    [answer] = run(smol_cuda, [chat("q", "What is the capital of France?", max_tokens=24)])
    assert "Paris" in answer.text and answer.finish_reason == "stop"
    assert answer.prompt_tokens > 10 and 0 < answer.completion_tokens <= 24


def test_hf_on_cuda_batched_greedy_matches_one_by_one(smol_cuda):
    """As on CPU (test_hf_adapter.py), but in bf16, whose coarser rounding flips near-ties more
    often: at most two of the six may diverge, and only after their first 10 characters."""
    requests = [chat(f"q{i}", q, max_tokens=16) for i, q in enumerate(QUESTIONS)]
    batched = run(smol_cuda, requests)
    single = [run(smol_cuda, [r])[0] for r in requests]
    mismatches = [(s.text, b.text) for s, b in zip(single, batched) if s.text != b.text]
    assert len(mismatches) <= 2, mismatches
    assert all(one[:10] == many[:10] for one, many in mismatches), mismatches
    assert [s.prompt_tokens for s in single] == [b.prompt_tokens for b in batched]


def test_hf_on_cuda_gemma_answers_a_few_shot_prompt():
    adapter = get_model(GEMMA)
    try:
        [answer] = run(adapter, [Request("g", prompt=FEW_SHOT, sampling=Sampling(max_tokens=8, stop=("\n",)))])
    finally:
        asyncio.run(adapter.aclose())
    assert adapter.device.startswith("cuda") and "Paris" in answer.text


def test_real_vllm_answers_and_repeats_itself():
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install vllm on a CUDA machine)")
    adapter = get_model("vllm/smollm2-135m-instruct", gpu_memory_utilization=0.3, max_model_len=2048)
    try:
        requests = [chat(f"q{i}", q, max_tokens=24) for i, q in enumerate(QUESTIONS)]
        first = run(adapter, requests)
        again = run(adapter, requests)
    finally:
        asyncio.run(adapter.aclose())
    assert "Paris" in first[-1].text
    assert [r.text for r in first] == [r.text for r in again]  # greedy on one engine: the same answers
    assert all(r.prompt_tokens > 0 and 0 < r.completion_tokens <= 24 for r in first)
    assert adapter.identity()["weights_sha256"] == get_model(SMOL).identity()["weights_sha256"]  # same weights
