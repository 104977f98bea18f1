"""Local generation with tools (`hf/`): continuous batching against one by one, with tools and
without, side by side in one process on one loaded model.

A request with tools is longer (the declarations sit in the system prompt, or in the template's
tools block) and its answer is read for calls. The question: does batching still pay as much?
Four modes through the adapter the way `workbench.generation.calls` drives it (the helpers of
`bench_local_generation.py`): text one-by-one / continuous, tools one-by-one / continuous, on the
same support questions (order lookup, refund, store hours, weather; English and Japanese), greedy.
Modes are interleaved in `--rounds` rounds (the batched modes on every prompt, the one-by-one
baselines on a 1/rounds share), so a change of the shared machine's load hits all modes alike.
Printed: tokens/s of wall time and of process CPU time (the steadier number on a shared machine; run
with `--threads 1` there, as OpenMP threads waiting for a descheduled partner count busy time),
each ratio (continuous / one-by-one, text and tools), their quotient, prompt tokens, how much of
the prompts the shared-prefix cache saved, the calls parsed (valid / broken) and whether the
continuous answers (text and calls) equal the one-by-one answers.

    .venv/bin/python bench/bench_local_tools.py                       # 16 prompts, 32 tokens, batch 8
    .venv/bin/python bench/bench_local_tools.py --threads 1           # a loaded, shared machine
    .venv/bin/python bench/bench_local_tools.py --model <folder whose template takes tools>
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_local_generation import Mode, _version  # noqa: E402  (the same bookkeeping as the text bench)


class TimedMode(Mode):
    """A mode's tokens, wall seconds and CPU seconds, summed over rounds."""

    def __init__(self, name: str):
        super().__init__(name)
        self.cpu_seconds = 0.0

    @property
    def cpu_rate(self) -> float:
        return self.tokens / self.cpu_seconds

TOOLS = [
    {"type": "function", "function": {"name": "lookup_order", "description": "Status of an order by its id.",
                                      "parameters": {"type": "object", "properties": {
                                          "order_id": {"type": "string", "description": "e.g. A1234"}},
                                          "required": ["order_id"]}}},
    {"type": "function", "function": {"name": "refund", "description": "Refund an order, fully or in part.",
                                      "parameters": {"type": "object", "properties": {
                                          "order_id": {"type": "string"},
                                          "amount": {"type": "number", "description": "in EUR; omit for all"}},
                                          "required": ["order_id"]}}},
    {"type": "function", "function": {"name": "store_hours", "description": "Opening hours of a store.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "day": {"type": "string"}},
                                          "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
                                          "required": ["city"]}}},
]
QUESTIONS = [
    "Where is my order A1234?",
    "Please refund order B5521, the mug arrived broken.",
    "When does the Berlin store open on Sunday?",
    "What's the weather in Paris in Fahrenheit?",
    "I want 15 euros back for order C9001, one item was missing.",
    "Has order Z0042 shipped yet?",
    "Is the Osaka store open today?",
    "Thanks, that's all!",
    "注文番号A1234の配送状況を教えてください。",
    "注文B5521を返金してください。",
    "東京店の日曜日の営業時間は？",
    "大阪の天気はどうですか？",
    "Can you check order D7788 and refund it if it was cancelled?",
    "What are the opening hours in Lyon on Monday?",
    "Tell me a joke about parcels.",
    "My order E3141 never arrived; refund it please.",
]
SYSTEM = "You are the customer-support assistant of an online shop. Use the tools when they help."


def requests_for(questions, tools, max_tokens):
    from workbench.models import Request, Sampling

    return [Request(f"{'t' if tools else 'x'}{i}", messages=({"role": "system", "content": SYSTEM},
                                                             {"role": "user", "content": q}),
                    tools=tuple(tools), sampling=Sampling(max_tokens=max_tokens)) for i, q in enumerate(questions)]


async def timed(adapter, requests, per_call: int):
    """Calls of `per_call` requests, longest question first; returns (wall s, CPU s, outputs, responses)."""
    ordered = sorted(requests, key=lambda r: len(r.messages[-1]["content"]), reverse=True)
    started, cpu = time.perf_counter(), time.process_time()
    outcomes = []
    for start in range(0, len(ordered), per_call):
        outcomes += await adapter.generate(ordered[start:start + per_call], 3600)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    bad = [o for o in outcomes if not hasattr(o, "text")]
    if bad:
        raise SystemExit(f"generation failed: {bad[0]}")
    answers = {r.item_id: o for r, o in zip(ordered, outcomes)}
    outputs = {key: (o.text + "".join(c.pretty() for c in o.tool_calls), o.completion_tokens)
               for key, o in answers.items()}
    return elapsed, cpu, outputs, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="bundled name, model folder or .gguf file")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8, help="rows decoded at once")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-shared-prefix", action="store_true",
                        help="prefill every prompt whole (what hf/ did before prompt beginnings were shared)")
    parser.add_argument("--json", default=None, help="write the record to this file")
    args = parser.parse_args()

    import torch

    import workbench  # noqa: F401  (offline defaults)
    from workbench.models import get_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.no_shared_prefix:
        import workbench.models.hf_adapter as hf

        hf.MIN_SHARED_PREFIX = 10**9
    adapter = get_model(f"hf/{args.model}", device=args.device, batch_size=args.batch)
    questions = (QUESTIONS * (args.prompts // len(QUESTIONS) + 1))[:args.prompts]
    text_requests = requests_for(questions, (), args.max_tokens)
    tool_requests = requests_for(questions, TOOLS, args.max_tokens)
    rounds = max(1, min(args.rounds, len(questions)))

    async def run() -> dict:
        await adapter.prepare()
        loaded = adapter._loaded
        prompt_tokens = {kind: sum(len(adapter._prepare(loaded, i, r).ids) for i, r in enumerate(reqs)) / len(reqs)
                         for kind, reqs in (("text", text_requests), ("tools", tool_requests))}
        print(f"model: {adapter.name} ({adapter.dtype}, {adapter.device}, {torch.get_num_threads()} threads); load "
              f"{adapter.load_seconds:.1f} s; tools rendered as {adapter.tools_rendering}; {len(questions)} prompts, "
              f"max_tokens={args.max_tokens}, batch {adapter.slots}, {adapter.max_batch} requests per call, {rounds} "
              f"rounds; mean prompt tokens: text {prompt_tokens['text']:.0f}, tools {prompt_tokens['tools']:.0f}",
              flush=True)
        await adapter.generate(tool_requests[:2], 3600)  # warm-up
        names = ["text one-by-one", "text continuous", "tools one-by-one", "tools continuous"]
        modes = {name: TimedMode(name) for name in names}
        answers: dict[str, dict] = {name: {} for name in names}
        loads = [os.getloadavg()[0]]
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                requests = tool_requests if name.startswith("tools") else text_requests
                if name.endswith("one-by-one"):
                    seconds, cpu, outputs, got = await timed(adapter, requests[r::rounds], 1)
                else:
                    seconds, cpu, outputs, got = await timed(adapter, requests, adapter.max_batch)
                modes[name].add(seconds, outputs)
                modes[name].cpu_seconds += cpu
                for key, response in got.items():
                    answers[name].setdefault(key, response)
                loads.append(os.getloadavg()[0])
            print(f"round {r + 1}/{rounds}: " + ", ".join(f"{m.name} {m.rounds[-1]:.1f}" for m in modes.values())
                  + f" tokens/s; load average {loads[-1]:.1f}", flush=True)
        record: dict = {"model": adapter.name, "device": adapter.device, "dtype": adapter.dtype,
                        "tools_rendering": adapter.tools_rendering, "threads": torch.get_num_threads(),
                        "shared_prefix": not args.no_shared_prefix,
                        "prompts": len(questions), "max_tokens": args.max_tokens, "batch": adapter.slots,
                        "rounds": rounds, "mean_prompt_tokens": prompt_tokens,
                        "load_average": [min(loads), max(loads)], "machine": platform.processor() or platform.machine(),
                        "cpus": os.cpu_count(), "torch": torch.__version__, "transformers": _version("transformers"),
                        "modes": {}}
        print(f"{'mode':<20}{'tokens':>8}{'wall s':>8}{'tok/s':>8}{'ratio':>7}{'CPU s':>8}{'tok/CPU s':>10}"
              f"{'ratio':>7}  answers = one-by-one")
        ratios, cpu_ratios = {}, {}
        for kind in ("text", "tools"):
            base, cont = modes[f"{kind} one-by-one"], modes[f"{kind} continuous"]
            ratios[kind] = cont.rate / base.rate
            cpu_ratios[kind] = cont.cpu_rate / base.cpu_rate
            for mode in (base, cont):
                same = sum(mode.texts[k] == base.texts[k] for k in base.texts)
                ratio, cpu_ratio = mode.rate / base.rate, mode.cpu_rate / base.cpu_rate
                print(f"{mode.name:<20}{mode.tokens:>8}{mode.seconds:>8.1f}{mode.rate:>8.1f}{ratio:>6.2f}x"
                      f"{mode.cpu_seconds:>8.1f}{mode.cpu_rate:>10.1f}{cpu_ratio:>6.2f}x  {same}/{len(base.texts)}")
                record["modes"][mode.name] = {"tokens": mode.tokens, "seconds": round(mode.seconds, 2),
                                              "tokens_per_s": round(mode.rate, 2), "ratio": round(ratio, 3),
                                              "cpu_seconds": round(mode.cpu_seconds, 2),
                                              "tokens_per_cpu_s": round(mode.cpu_rate, 2),
                                              "cpu_ratio": round(cpu_ratio, 3),
                                              "per_round_tokens_per_s": mode.rounds, "identical": same}
        calls = [c for response in answers["tools continuous"].values() for c in response.tool_calls]
        answered_with_calls = sum(bool(r.tool_calls) for r in answers["tools continuous"].values())
        record.update(ratio_text=round(ratios["text"], 3), ratio_tools=round(ratios["tools"], 3),
                      tools_over_text=round(ratios["tools"] / ratios["text"], 3),
                      cpu_ratio_text=round(cpu_ratios["text"], 3), cpu_ratio_tools=round(cpu_ratios["tools"], 3),
                      cpu_tools_over_text=round(cpu_ratios["tools"] / cpu_ratios["text"], 3),
                      adapter_stats=dict(adapter.stats),
                      calls={"answers_with_calls": answered_with_calls, "valid": sum(c.valid for c in calls),
                             "broken": sum(not c.valid for c in calls),
                             "examples": [c.pretty() for c in calls[:5]]})
        await adapter.aclose()
        print(f"continuous / one-by-one: text {ratios['text']:.2f}x, tools {ratios['tools']:.2f}x "
              f"(tools / text {ratios['tools'] / ratios['text']:.2f}); by CPU time: text {cpu_ratios['text']:.2f}x, "
              f"tools {cpu_ratios['tools']:.2f}x (tools / text {cpu_ratios['tools'] / cpu_ratios['text']:.2f}); "
              f"prompt tokens prefilled {adapter.stats['prefilled_tokens']}, taken from the shared prefix "
              f"{adapter.stats['prefix_reused_tokens']}; answers with calls "
              f"{answered_with_calls}/{len(questions)}, calls valid {record['calls']['valid']}, broken "
              f"{record['calls']['broken']}; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
        return record

    record = asyncio.run(run())
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
