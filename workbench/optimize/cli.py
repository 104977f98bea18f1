"""`workbench optimize` and `workbench prompts {list,diff}`: thin glue over `optimize()` and the
prompt functions. `add_parsers(subparsers)` adds both commands to the workbench CLI and returns
{command: run(args) -> exit code}; exit codes as every command: 0 done, 1 some calls failed,
3 could not run (bad input raises InputError, which the CLI maps to 3).

Imports stay inside the functions: `workbench --help` must not pay for pandas or gepa.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from workbench.errors import EXIT_FAIL, EXIT_OK
from workbench.progress import reporter
from workbench.project.lookup import BUNDLED_PREFIX, find_params_file, say_demo, shown_path
from workbench.project.params import load_params_file, parse_cli_value
from workbench.task.config import build_config
from workbench.task.prompts import diff_prompts, list_prompts, load_prompt

EPILOG = "exit codes: 0 done, 1 some calls failed, 3 could not run (bad input, missing or damaged store)"

# flag -> OptimizeConfig field, for the most used parameters (every field is reachable with -p)
FLAGS: dict[str, tuple[str, type, str]] = {
    "--dataset": ("dataset", str, "items: jsonl, csv, parquet or a datasets folder"),
    "--target": ("target", str, "the model whose prompt is re-tuned"),
    "--start-prompt": ("start_prompt", str, "name@version to start from"),
    "--objective": ("objective", str, "reference | source | judge"),
    "--metric": ("metric", str, "metric of the reference and source objectives (default chrf)"),
    "--baseline": ("baseline", str, "source mode: the model being replaced"),
    "--baseline-prompt": ("baseline_prompt", str, "its prompt version"),
    "--judge": ("judge", str, "judge mode: the judge model"),
    "--optimizer-model": ("optimizer_model", str, "proposes instruction rewrites (any registered model)"),
    "--dev-size": ("dev_size", int, "dev items (the search's)"),
    "--test-size": ("test_size", int, "held-out test items"),
    "--split-column": ("split_column", str, "a column of 'dev'/'test' labels that gives the split"),
    "--max-calls": ("max_calls", int, "budget: distinct model calls, confirmation included"),
    "--max-cost": ("max_cost_usd", float, "budget: USD"),
    "--max-wall-s": ("max_wall_s", float, "budget: seconds"),
    "--output-prompt": ("output_prompt", str, "name@version of the result"),
    "--store": ("store", str, "the store (default .workbench/store.db)"),
    "--prompts-dir": ("prompts_dir", str, "the project's prompt versions (default prompts/)"),
    "--api-base": ("api_base", str, "OpenAI-compatible server for litellm/ and openai/ models"),
}


def add_parsers(subparsers: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add `optimize` and `prompts` to the workbench CLI; returns their run functions by name."""
    p = subparsers.add_parser("optimize", help="re-tune a prompt for a model: demonstrations, instruction rewrites, "
                              "confirmed on held-out test, saved as a new prompt version", epilog=EPILOG)
    p.add_argument("--params", default=None, metavar="FILE", help="parameters as TOML or JSON")
    p.add_argument("-p", dest="overrides", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="one parameter (VALUE parsed as JSON when it parses, else a string)")
    for flag, (field, kind, text) in FLAGS.items():
        p.add_argument(flag, dest=field, type=kind, default=None, help=text)
    p.add_argument("--moves", default=None, help="comma-separated: fewshot,instructions")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write the result as JSON")
    _add_common(p)

    prompts = subparsers.add_parser("prompts", help="list prompt versions, or show what changed between two",
                                    epilog=EPILOG)
    which = prompts.add_subparsers(dest="prompts_command", required=True, metavar="{list,diff}",
                                   parser_class=type(prompts))
    listing = which.add_parser("list", help="every version with its parent, author and creation time")
    listing.add_argument("--prompts-dir", default="prompts", help="the project's prompt versions (default %(default)s)")
    _add_common(listing)
    diff = which.add_parser("diff", help="what changed from version A to version B")
    diff.add_argument("a", metavar="A", help="name@version")
    diff.add_argument("b", metavar="B", help="name@version")
    diff.add_argument("--prompts-dir", default="prompts", help="the project's prompt versions (default %(default)s)")
    diff.add_argument("--html", default=None, metavar="OUT", help="also write the side-by-side view as HTML")
    _add_common(diff)
    return {"optimize": cmd_optimize, "prompts": cmd_prompts}


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or trial lines on stderr")


def optimize_config(args: argparse.Namespace) -> Any:
    from workbench.optimize.config import build_optimize_config  # heavy (numpy, pandas): not for --help

    overrides: dict[str, Any] = {name: parse_cli_value(value) for name, value in args.overrides}
    for _flag, (field, _kind, _text) in FLAGS.items():
        if getattr(args, field) is not None:
            overrides[field] = getattr(args, field)
    if args.moves is not None:
        overrides["moves"] = [m.strip() for m in args.moves.split(",") if m.strip()]
    project = find_params_file()
    if project is None:
        if not args.params:
            say_demo("re-tuning the demo's candidate prompt on the bundled data; store .workbench/store.db here")
        return build_optimize_config(args.params, overrides)

    given = {**project_defaults(project), **(load_params_file(args.params) if args.params else {}), **overrides}
    base = Path(args.params).resolve().parent if args.params else project.parent
    return build_optimize_config(None, given, base=base)


def project_defaults(params_file: Path) -> dict[str, Any]:
    """Inside a project, the optimizer re-tunes the project's first candidate on the project's data,
    store and prompts (paths made absolute, so an optimize.toml elsewhere keeps them)."""
    config = build_config(params_file)
    dataset = config.dataset if config.dataset.startswith(BUNDLED_PREFIX) else str(config.path(config.dataset))
    defaults = {"dataset": dataset, "target": config.candidates[0], "baseline": config.baseline,
                "baseline_prompt": config.baseline_prompt, "store": str(config.store_path),
                "prompts_dir": str(config.prompts_path), "api_base": config.api_base,
                "model_options": config.model_options, "max_tokens": config.max_tokens,
                "temperature": config.temperature, "seed": config.seed, "concurrency": config.concurrency}
    if config.prompt_for(0):
        defaults["start_prompt"] = config.prompt_for(0)
    return defaults


def follow_up(report_command: str) -> str:
    """The report command the optimizer suggests, runnable as printed from the current folder: with
    the project's parameters when there is a project (a later `cd` cannot lose them)."""
    project = find_params_file()
    if project is None or project.parent == Path.cwd().resolve():
        return report_command
    return report_command.replace("workbench report", f"workbench report --params {shlex.quote(shown_path(project))}", 1)


def cmd_optimize(args: argparse.Namespace) -> int:
    from workbench.optimize.run import optimize  # heavy (numpy, pandas): not for --help
    from workbench.optimize.trials import trial_line  # heavy (numpy, pandas): not for --help

    config = optimize_config(args)
    quiet = args.quiet

    def show(row: dict[str, Any]) -> None:
        if not quiet:
            print(trial_line(row), file=sys.stderr, flush=True)

    result = optimize(config, progress=reporter("quiet" if quiet else "auto"), on_trial=show)
    if not quiet:  # the message may already begin with its status ("overfitting: ...")
        said = result.message if result.message.startswith(f"{result.status}:") else f"{result.status}: {result.message}"
        print(said, file=sys.stderr)
        if result.stopped:
            print(f"search ended: {result.stopped}", file=sys.stderr)
        if result.saved and result.report_command:
            print(f"saved {result.saved} ({result.saved_path}); compare in a report with:\n  {follow_up(result.report_command)}",
                  file=sys.stderr)
        elif result.saved:
            print(f"saved {result.saved} ({result.saved_path}) for inspection only: {result.status}, not a win",
                  file=sys.stderr)
    summary = result.to_dict()
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**summary, "trials": json.loads(result.trials.to_json(orient="records"))},
                                  indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps({k: summary[k] for k in ("run_id", "status", "start", "best", "saved", "dev", "test",
                                                "budget", "failed_calls", "stopped")}, ensure_ascii=False))
    return EXIT_FAIL if result.failed_calls else EXIT_OK


def cmd_prompts(args: argparse.Namespace) -> int:
    if args.prompts_command == "list":
        for ref in list_prompts(args.prompts_dir):
            prompt = load_prompt(ref, args.prompts_dir)
            history = "; ".join(part for part in (
                f"parent {prompt.parent}" if prompt.parent else "", f"by {prompt.author}" if prompt.author else "",
                prompt.created.isoformat() if prompt.created else "") if part)
            print(f"{ref}\t{prompt.mode}\t{history or '-'}\t{prompt.description}")
        return EXIT_OK
    diff = diff_prompts(load_prompt(args.a, args.prompts_dir), load_prompt(args.b, args.prompts_dir))
    sys.stdout.write(diff.text())
    if args.html:
        Path(args.html).write_text(f"<!doctype html><meta charset='utf-8'>{diff._repr_html_()}", encoding="utf-8")
    return EXIT_OK
