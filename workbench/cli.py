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
    p.add_argument("--api-base", default=None, help="OpenAI-compatible server for API models (litellm/, openai/)")
    p.add_argument("--limit", type=int, default=None, help="only the first N items")
    p.add_argument("--no-progress", action="store_true")


def _model_specs(args: argparse.Namespace):
    from workbench.runner import ModelSpec

    prompts = args.prompt or [None]
    if len(prompts) == 1:
        prompts = prompts * len(args.model)
    if len(prompts) != len(args.model):
        raise InputError(f"--prompt given {len(args.prompt)} times for {len(args.model)} --model: give one, or one per model")
    return [ModelSpec.with_endpoint(name, prompt, args.api_base) for name, prompt in zip(args.model, prompts)]


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


def _add_comparison_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--baseline", required=True, metavar="NAME")
    p.add_argument("--candidate", required=True, metavar="NAME")
    p.add_argument("--judge", default=None, metavar="NAME", help="pairwise judge model (both orders, cached)")
    p.add_argument("--criterion", default="correctness", help="judge criterion: built-in name or a sentence")
    p.add_argument("--judge-template", default="chat-v1", help="chat-v1 (API, instruction-tuned) or completion-v1 (small local)")
    p.add_argument("--metrics", nargs="+", default=["chrf", "rouge_l", "bleu", "length_chars"])
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score two models' stored responses (reference metrics, optional judge)")
    _add_comparison_args(p)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="paired comparison with CIs and the gate verdict (exit 0 PASS, 1 FAIL, 2 INCONCLUSIVE)")
    _add_comparison_args(p)
    p.add_argument("--gate", default=None, metavar="FILE", help="gate thresholds (.toml or .json)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write the comparison as JSON")


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="execute the migration-report notebook (exit 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 no report)")
    p.add_argument("--params", default=None, metavar="FILE", help="parameters as JSON or TOML")
    p.add_argument("-p", dest="overrides", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="one parameter (VALUE parsed as JSON when it parses, else a string)")
    p.add_argument("--notebook", default=None, help="report notebook (default: notebooks/migration_report.ipynb)")
    p.add_argument("--reports-dir", default=None, help="where reports/<name>/ goes (default: reports)")


def _comparison(args: argparse.Namespace, gate=None):
    from workbench.compare import compare_from_store
    from workbench.store import Store

    if not Path(args.store).is_file():
        raise InputError(f"{args.store}: store not found (run `workbench generate` first)")
    with Store(args.store) as store:
        return compare_from_store(store, args.baseline, args.candidate, metrics=args.metrics, judge=args.judge,
                                  judge_template=args.judge_template, criterion=args.criterion, gate=gate, n_resamples=args.resamples, seed=args.seed)


def cmd_score(args: argparse.Namespace) -> int:
    comparison, extra = _comparison(args)
    scores = extra["scores"]
    means = scores.groupby(["model", "metric"])["value"].mean().unstack("metric")
    print(means.to_string(float_format=lambda v: f"{v:.4f}"), file=sys.stderr)
    print(json.dumps({"scored": int(scores["value"].notna().sum()), "unscorable": int(scores["value"].isna().sum()),
                      "judge": extra["judge"] or None, "paired_items": comparison.n_paired}))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.gate import GateConfig, load_gate_config
    from workbench.migration import DEFAULT_GATE

    gate = load_gate_config(args.gate) if args.gate else GateConfig(**DEFAULT_GATE)
    comparison, _ = _comparison(args, gate)
    payload = comparison.to_dict()
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(text, encoding="utf-8")
    print(comparison.gate.summary(), file=sys.stderr)
    print(json.dumps({"verdict": comparison.gate.verdict, "n_paired": comparison.n_paired}))
    return comparison.gate.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    from workbench.report import EXIT_NO_REPORT, parse_cli_value, run_report

    overrides = {name: parse_cli_value(value) for name, value in args.overrides}
    try:
        code, out_dir = run_report(args.params, overrides, args.notebook, args.reports_dir)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_REPORT
    verdict = json.loads((out_dir / "verdict.json").read_text(encoding="utf-8"))
    if code == EXIT_NO_REPORT:
        print(f"error: no complete report: {verdict.get('error')}; see {out_dir / 'report.html'}", file=sys.stderr)
    print(json.dumps({"verdict": verdict.get("verdict"), "complete": verdict.get("complete"), "report": str(out_dir)}))
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Can this application switch from model A to model B?")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    _add_score(sub)
    _add_compare(sub)
    _add_report(sub)
    return parser


COMMANDS = {"generate": cmd_generate, "score": cmd_score, "compare": cmd_compare, "report": cmd_report}


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
