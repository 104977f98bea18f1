"""`workbench` command line: a thin layer over the library, with exit codes CI can act on.

Exit codes: generate 0 all answered, 1 some items failed after retries, 2 bad input.
compare/report: 0 PASS, 1 FAIL, 2 INCONCLUSIVE (report: 3 when no report could be produced).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from workbench.errors import InputError, WorkbenchError

DEFAULT_STORE = ".workbench/store.db"


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="run models over a dataset into the store (cached, resumable)")
    p.add_argument("data", help="jsonl, csv, parquet file or a datasets save_to_disk folder")
    p.add_argument("--model", action="append", required=True, metavar="NAME",
                   help="provider/model, e.g. litellm/openai/gpt-4o-mini or hf/smollm2-135m-instruct (repeatable)")
    p.add_argument("--prompt", action="append", metavar="NAME@VERSION",
                   help="prompt version: once for all models, or once per --model in the same order")
    p.add_argument("--prompts-dir", default=None, help="folder of prompt versions (default: data/prompts)")
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout", type=float, default=60.0, help="hard limit per call, seconds")
    p.add_argument("--max-attempts", type=int, default=4)
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--api-base", default=None, help="OpenAI-compatible server for litellm/ models")
    p.add_argument("--limit", type=int, default=None, help="only the first N items")
    p.add_argument("--no-progress", action="store_true")


def _model_specs(args: argparse.Namespace):
    from workbench.runner import ModelSpec

    prompts = args.prompt or [None]
    if len(prompts) == 1:
        prompts = prompts * len(args.model)
    if len(prompts) != len(args.model):
        raise InputError(f"--prompt given {len(args.prompt)} times for {len(args.model)} --model: give one, or one per model")
    specs = []
    for name, prompt in zip(args.model, prompts):
        options = {"api_base": args.api_base} if args.api_base and name.startswith("litellm/") else {}
        specs.append(ModelSpec(name=name, prompt=prompt, options=options))
    return specs


def cmd_generate(args: argparse.Namespace) -> int:
    from workbench.calls import CallPolicy
    from workbench.data import load_items
    from workbench.models import Sampling
    from workbench.runner import generate
    from workbench.store import Store

    items = load_items(args.data)
    if args.limit is not None:
        items = items.head(args.limit)
    specs = _model_specs(args)
    sampling = Sampling(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)
    policy = CallPolicy(concurrency=args.concurrency, timeout_s=args.timeout, max_attempts=args.max_attempts)
    with Store(args.store) as store:
        frame, stats = generate(items, specs, store, samples=args.samples, sampling=sampling, policy=policy,
                                prompts_dir=args.prompts_dir, progress=not args.no_progress)
    for name, model_stats in stats.per_model.items():
        print(f"{name}: {model_stats['calls_made']} calls, {model_stats['cached']} cached, "
              f"{model_stats['errors']} errors", file=sys.stderr)
    print(json.dumps(stats.as_dict()))
    return 1 if stats.errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Can this application switch from model A to model B?")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    return parser


COMMANDS = {"generate": cmd_generate}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted: completed calls are stored; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
