"""Batched vs one-by-one local generation (`hf/`), and vLLM beside it when it is installed.

Baseline and candidate run in the same process on the same prompts and the same loaded model:
one-by-one (batch 1) against batches of `--batch` (left padding). Prints tokens/s for each, the
ratio (goal >= 3x on CPU at batch 8, >= 5x on a GPU at batch 32) and whether the greedy texts
agree. With `--vllm`, the same prompts then go to `vllm/<model>` in one call (vLLM batches them
itself), reported against the same one-by-one baseline.

    .venv/bin/python bench/bench_local_generation.py [--prompts 16] [--max-tokens 32] [--threads N]
    .venv/bin/python bench/bench_local_generation.py --conversion   # also time a fresh GGUF conversion
    # on a GPU, a 0.5-1B model from disk:
    .venv/bin/python bench/bench_local_generation.py --model /models/Qwen2.5-0.5B-Instruct \
        --device cuda --batch 32 --prompts 64 --max-tokens 64 [--vllm]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in one sentence.",
    "Give me three tips for better sleep.",
    "What is 12 times 7?",
    "Translate 'good morning' to Spanish.",
    "Name a famous physicist and what they discovered.",
    "Why is the sky blue?",
    "A customer says their parcel arrived late and damaged. Write a short apology.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "What are the primary colours?",
    "How do I boil an egg?",
    "List three uses of a paperclip.",
    "What does a CPU do?",
    "Suggest a name for a bakery.",
    "Is a tomato a fruit or a vegetable?",
]


async def measure(adapter, requests, batch: int) -> tuple[float, int, list[str]]:
    started = time.perf_counter()
    outcomes = []
    for start in range(0, len(requests), batch):
        outcomes += await adapter.generate(requests[start:start + batch], 3600)
    elapsed = time.perf_counter() - started
    bad = [o for o in outcomes if not hasattr(o, "text")]
    if bad:
        raise SystemExit(f"generation failed: {bad[0]}")
    return elapsed, sum(o.completion_tokens for o in outcomes), [o.text for o in outcomes]


def time_conversion() -> None:
    from workbench.models.local_models import resolve_local_model

    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        source = resolve_local_model("smollm2-135m-instruct", cache_dir=Path(cache))
        convert_s = time.perf_counter() - started
        started = time.perf_counter()
        resolve_local_model("smollm2-135m-instruct", cache_dir=Path(cache))
        print(f"GGUF -> safetensors conversion: {convert_s:.1f} s; cached resolve: "
              f"{time.perf_counter() - started:.3f} s ({source.path.name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help="bundled name, model folder or .gguf file (loaded from disk only)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when available)")
    parser.add_argument("--vllm", action="store_true", help="also time vllm/<model> (needs vllm and a GPU)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16")
    parser.add_argument("--conversion", action="store_true", help="also time a fresh GGUF conversion")
    args = parser.parse_args()

    import torch

    import workbench  # noqa: F401  (offline defaults)
    from workbench.models import Request, Sampling, get_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.conversion:
        time_conversion()
    device = None if args.device == "auto" else args.device
    adapter = get_model(f"hf/{args.model}", batch_size=args.batch, device=device, dtype=args.dtype)
    questions = (QUESTIONS * (args.prompts // len(QUESTIONS) + 1))[:args.prompts]
    # vLLM first, so a machine without it says so before minutes of hf runs.
    engine = get_model(f"vllm/{args.model}", batch_size=len(questions)) if args.vllm else None
    requests = [Request(f"q{i}", messages=({"role": "user", "content": q},),
                        sampling=Sampling(max_tokens=args.max_tokens)) for i, q in enumerate(questions)]

    async def run() -> None:
        await adapter.prepare()
        print(f"model: {adapter.name} ({adapter.dtype}, {adapter.device}, {torch.get_num_threads()} threads, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); load {adapter.load_seconds:.1f} s")
        await measure(adapter, requests[:1], 1)  # warm-up
        one_s, one_tokens, one_texts = await measure(adapter, requests, 1)
        many_s, many_tokens, many_texts = await measure(adapter, requests, args.batch)
        one_rate, many_rate = one_tokens / one_s, many_tokens / many_s
        same = sum(a == b for a, b in zip(one_texts, many_texts))
        print(f"{len(requests)} prompts, max_tokens={args.max_tokens}")
        print(f"one-by-one: {one_tokens} tokens in {one_s:.1f} s = {one_rate:.1f} tokens/s")
        print(f"batch {args.batch}:   {many_tokens} tokens in {many_s:.1f} s = {many_rate:.1f} tokens/s")
        print(f"ratio: {many_rate / one_rate:.2f}x tokens/s (goal >= 3x on CPU at batch 8, >= 5x on a GPU "
              f"at batch 32); greedy texts identical: {same}/{len(requests)}")
        await adapter.aclose()
        if engine is not None:
            started = time.perf_counter()
            await engine.prepare()
            print(f"vllm engine start: {time.perf_counter() - started:.1f} s")
            await measure(engine, requests[:1], 1)  # warm-up
            vllm_s, vllm_tokens, vllm_texts = await measure(engine, requests, len(requests))
            vllm_rate = vllm_tokens / vllm_s
            same = sum(a == b for a, b in zip(one_texts, vllm_texts))
            print(f"vllm (one call): {vllm_tokens} tokens in {vllm_s:.1f} s = {vllm_rate:.1f} tokens/s = "
                  f"{vllm_rate / one_rate:.2f}x one-by-one hf, {vllm_rate / many_rate:.2f}x batched hf; "
                  f"greedy texts identical to hf: {same}/{len(requests)}")
            await engine.aclose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
