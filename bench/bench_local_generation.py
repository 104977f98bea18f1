"""Local generation throughput (`hf/`): one-by-one vs static batches vs continuous batching, side by
side in one process on one loaded model, and vLLM beside them where a GPU exists.

Modes, all through the adapter the way `workbench.generation.calls` drives it (prompts longest first, calls
of `adapter.max_batch` requests each):
  one-by-one   a call per prompt (the baseline of every ratio);
  static       `scheduling="static"`: a batch of `--batch` rows runs until its longest answer ends;
  continuous   the default: a finished row's slot goes to the next waiting prompt at once.
`--reference` adds transformers' own continuous batching (`model.generate_batch`, default config)
on the same prompts. The machine these numbers come from is usually shared, so the modes are
interleaved in `--rounds` rounds: each round runs the batched modes on every prompt and the
one-by-one baseline on a 1/rounds share of them, so a change of load hits all modes alike. Each
ratio divides tokens/s summed over rounds; the greedy texts of every mode are compared with the
one-by-one texts.

    .venv/bin/python bench/bench_local_generation.py --reference     # CPU: 64 prompts, 128 tokens, batch 16
    .venv/bin/python bench/bench_local_generation.py --batch 8 --rounds 4
    .venv/bin/python bench/bench_local_generation.py --conversion    # also time a fresh GGUF conversion
    # GPU machine (marked for GPU: needs CUDA; bf16, batch 32, 128 prompts, and vllm/ when installed):
    .venv/bin/python bench/bench_local_generation.py --gpu [--model /models/Qwen2.5-0.5B-Instruct]

`--json PATH` writes the record (modes, ratios, load, versions) for docs/bench/local.md.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
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
    "Write a limerick about a cat who learns to code.",
    "What is the difference between weather and climate?",
    "Give a one-line definition of machine learning.",
    "How many legs does a spider have?",
    "Describe the taste of coffee to someone who never had it.",
    "What should I pack for a weekend hiking trip?",
    "Who wrote Pride and Prejudice?",
    "Explain what a prime number is, with two examples.",
    "Write a two-sentence horror story.",
    "What is the boiling point of water at sea level in Fahrenheit?",
    "Suggest three names for a pet goldfish.",
    "Why do leaves change colour in autumn?",
    "What is 15% of 80?",
    "Give me a tip for learning a new language.",
    "Summarise the water cycle in three steps.",
    "Write a polite email line declining a meeting invitation.",
]


class Mode:
    """Tokens, seconds and texts of one mode, summed over rounds."""

    def __init__(self, name: str):
        self.name, self.tokens, self.seconds, self.texts, self.rounds = name, 0, 0.0, {}, []

    def add(self, seconds: float, outputs: dict[str, tuple[str, int]]) -> None:
        tokens = sum(n for _, n in outputs.values())
        self.tokens += tokens
        self.seconds += seconds
        self.rounds.append(round(tokens / seconds, 2))
        for key, (text, _) in outputs.items():
            self.texts.setdefault(key, text)

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


async def through_adapter(adapter, requests, per_call: int) -> tuple[float, dict[str, tuple[str, int]]]:
    """Calls of `per_call` requests, longest prompt first (what workbench.generation.calls does for hf/)."""
    ordered = sorted(requests, key=lambda r: len(r.messages[0]["content"]), reverse=True)
    started = time.perf_counter()
    outcomes = []
    for start in range(0, len(ordered), per_call):
        outcomes += await adapter.generate(ordered[start:start + per_call], 3600)
    elapsed = time.perf_counter() - started
    bad = [o for o in outcomes if not hasattr(o, "text")]
    if bad:
        raise SystemExit(f"generation failed: {bad[0]}")
    return elapsed, {r.item_id: (o.text, o.completion_tokens) for r, o in zip(ordered, outcomes)}


def through_generate_batch(adapter, requests) -> tuple[float, dict[str, tuple[str, int]]]:
    """transformers' continuous batching (`generate_batch`, its default config), greedy."""
    from transformers import GenerationConfig

    loaded = adapter._loaded  # the bench reuses the adapter's loaded model and tokenizer
    tokenizer, model = loaded.tokenizer, loaded.model
    prompts = [adapter._prepare(loaded, i, r).ids for i, r in enumerate(requests)]
    config = GenerationConfig(max_new_tokens=requests[0].sampling.max_tokens, do_sample=False,
                              eos_token_id=sorted(loaded.eos_ids), pad_token_id=loaded.pad_id)
    started = time.perf_counter()
    results = model.generate_batch(inputs=prompts, generation_config=config, progress_bar=False)
    elapsed = time.perf_counter() - started
    outputs = {}
    for request, result in zip(requests, sorted(results.values(), key=lambda r: int(r.request_id.split("_")[-1]))):
        tokens = list(result.generated_tokens)
        kept = [t for t in tokens if t not in loaded.eos_ids]
        outputs[request.item_id] = (tokenizer.decode(kept, skip_special_tokens=True), len(tokens))
    return elapsed, outputs


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
    parser.add_argument("--gpu", action="store_true",
                        help="GPU record: device cuda, bf16, batch 32, 128 prompts, vllm/ when installed")
    parser.add_argument("--vllm", action="store_true", help="also time vllm/<model> (needs vllm and a GPU; --gpu "
                        "adds it when installed)")
    parser.add_argument("--prompts", type=int, default=None, help="default 64 (128 with --gpu)")
    parser.add_argument("--max-tokens", type=int, default=None, help="default 128")
    parser.add_argument("--batch", type=int, default=None, help="rows decoded at once (default: the adapter's)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (see above)")
    parser.add_argument("--reference", action="store_true", help="also time transformers' generate_batch")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (GPU default)")
    parser.add_argument("--conversion", action="store_true", help="also time a fresh GGUF conversion")
    parser.add_argument("--json", default=None, help="write the record to this file")
    args = parser.parse_args()
    if args.gpu:
        args.device = "cuda"
        args.batch = args.batch or 32
    prompts = args.prompts or (128 if args.gpu else 64)
    max_tokens = args.max_tokens or 128

    import torch

    import workbench  # noqa: F401  (offline defaults)
    from workbench.errors import InputError
    from workbench.models import Request, Sampling, get_model

    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu: no CUDA GPU visible to torch on this machine (this record is for GPU machines)")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.conversion:
        time_conversion()
    device = None if args.device == "auto" else args.device
    options = {"device": device, "dtype": args.dtype, "batch_size": args.batch}
    continuous = get_model(f"hf/{args.model}", **options)
    static = get_model(f"hf/{args.model}", scheduling="static", **options)
    questions = (QUESTIONS * (prompts // len(QUESTIONS) + 1))[:prompts]
    # vLLM first, so a machine without it says so before minutes of hf runs (--gpu: a note, not a stop).
    engine = None
    if args.vllm or args.gpu:
        try:
            engine = get_model(f"vllm/{args.model}", batch_size=len(questions))
        except InputError as exc:
            if args.vllm:
                raise
            print(f"vllm/ row skipped: {exc}")
    requests = [Request(f"q{i}", messages=({"role": "user", "content": q},),
                        sampling=Sampling(max_tokens=max_tokens)) for i, q in enumerate(questions)]
    rounds = max(1, min(args.rounds, len(requests)))

    async def run() -> dict:
        await continuous.prepare()
        static._loaded, static._lock = continuous._loaded, continuous._lock  # one loaded model for both
        print(f"model: {continuous.name} ({continuous.dtype}, {continuous.device}, {torch.get_num_threads()} threads, "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); load {continuous.load_seconds:.1f} s; "
              f"{len(requests)} prompts, max_tokens={max_tokens}, batch {continuous.slots}, "
              f"{continuous.max_batch} requests per call, {rounds} rounds", flush=True)
        await continuous.generate(requests[:2], 3600)  # warm-up
        modes = {name: Mode(name) for name in ("one-by-one", "static", "continuous")
                 + (("transformers generate_batch",) if args.reference else ())}
        loads = [os.getloadavg()[0]]
        for r in range(rounds):
            share = requests[r::rounds]
            for name in ([*modes][1:] + ["one-by-one"] if r % 2 else [*modes]):  # alternate the order
                if name == "one-by-one":
                    modes[name].add(*await through_adapter(continuous, share, 1))
                elif name == "static":
                    modes[name].add(*await through_adapter(static, requests, static.max_batch))
                elif name == "continuous":
                    modes[name].add(*await through_adapter(continuous, requests, continuous.max_batch))
                else:
                    modes[name].add(*through_generate_batch(continuous, requests))
                loads.append(os.getloadavg()[0])
            print(f"round {r + 1}/{rounds}: " + ", ".join(f"{m.name} {m.rounds[-1]:.1f}" for m in modes.values())
                  + f" tokens/s; load average {loads[-1]:.1f}", flush=True)
        base = modes["one-by-one"]
        record: dict = {"model": continuous.name, "device": continuous.device, "dtype": continuous.dtype,
                        "threads": torch.get_num_threads(), "prompts": len(requests), "max_tokens": max_tokens,
                        "batch": continuous.slots, "rounds": rounds, "load_average": [min(loads), max(loads)],
                        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                        "torch": torch.__version__, "transformers": _version("transformers"), "modes": {}}
        print(f"{'mode':<28}{'tokens':>8}{'seconds':>9}{'tokens/s':>10}{'ratio':>8}  greedy texts = one-by-one")
        for mode in modes.values():
            same = sum(mode.texts[k] == base.texts[k] for k in base.texts)
            ratio = mode.rate / base.rate
            print(f"{mode.name:<28}{mode.tokens:>8}{mode.seconds:>9.1f}{mode.rate:>10.1f}{ratio:>7.2f}x  "
                  f"{same}/{len(base.texts)}")
            record["modes"][mode.name] = {"tokens": mode.tokens, "seconds": round(mode.seconds, 2),
                                          "tokens_per_s": round(mode.rate, 2), "ratio": round(ratio, 3),
                                          "per_round_tokens_per_s": mode.rounds, "identical": same}
        print(f"load average during the run: {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
        await continuous.aclose()
        if engine is not None:
            started = time.perf_counter()
            await engine.prepare()
            print(f"vllm engine start: {time.perf_counter() - started:.1f} s")
            await engine.generate(requests[:1], 3600)  # warm-up
            vllm_s, outputs = await through_adapter(engine, requests, len(requests))
            tokens = sum(n for _, n in outputs.values())
            same = sum(outputs[k][0] == base.texts[k] for k in base.texts)
            print(f"vllm (one call): {tokens} tokens in {vllm_s:.1f} s = {tokens / vllm_s:.1f} tokens/s = "
                  f"{tokens / vllm_s / base.rate:.2f}x one-by-one hf, {tokens / vllm_s / modes['continuous'].rate:.2f}x "
                  f"continuous hf; greedy texts identical to hf one-by-one: {same}/{len(base.texts)}")
            record["modes"]["vllm"] = {"tokens": tokens, "seconds": round(vllm_s, 2),
                                       "tokens_per_s": round(tokens / vllm_s, 2),
                                       "ratio": round(tokens / vllm_s / base.rate, 3), "identical": same}
            await engine.aclose()
        return record

    record = asyncio.run(run())
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
