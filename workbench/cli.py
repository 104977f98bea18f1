"""`workbench` command line: a thin layer over the pipeline, with one set of exit codes for CI.

Exit codes, every command:
  0  PASS (compare, report) / everything answered (generate) / done (init, score)
  1  FAIL (compare, report) / some items failed after retries (generate, optimize) / drift or alert (drift)
  2  INCONCLUSIVE (compare, report): the evidence does not decide
  3  could not run: bad input or usage, a missing or damaged store, an internal error
     (one line on stderr; the traceback only with --debug)
"""
from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shlex
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, NoReturn, Sequence

from workbench import memory
from workbench.errors import (
    EXIT_CODES_HELP,
    EXIT_COULD_NOT_RUN,
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    VERDICT_EXIT_CODES,
    InputError,
    WorkbenchError,
    printable,
)
from workbench.generation import options as model_options
from workbench.models import preload
from workbench.monitor.cli import add_parser as add_drift
from workbench.monitor.cli import run as run_drift
from workbench.monitor.cycle_cli import add_parsers as add_cycle
from workbench.optimize.cli import add_parsers as add_optimize
from workbench.progress import reporter
from workbench.project.doctor import report_lines, requirement_problems
from workbench.project.lookup import find_params_file, package_version, resolve, say_demo, shown_path
from workbench.project.params import parse_cli_value
from workbench.secrets import redact
from workbench.task.config import MAX_TOKENS, SEED_MAX, MigrationConfig, build_config, check_api_base


class UsageError(Exception):
    """argparse's usage errors, raised instead of exiting 2 (2 means INCONCLUSIVE here)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


# ---- shared options -------------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    """The report's parameters: a file, `-p NAME VALUE`, and flags for the most used ones."""
    p.add_argument("--params", default=None, metavar="FILE", help="parameters as TOML or JSON (see `workbench init`)")
    p.add_argument("-p", dest="overrides", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="one parameter (VALUE parsed as JSON when it parses, else a string)")
    p.add_argument("--store", default=None, help="the store (default .workbench/store.db in the project; "
                   "postgresql://user@host/db for a shared one)")
    p.add_argument("--dataset", default=None, help="items: jsonl, csv, parquet or a datasets folder")
    p.add_argument("--baseline", default=None, metavar="MODEL", help="the model in production, provider/model")
    p.add_argument("--baseline-prompt", default=None, metavar="NAME@VERSION", help="its prompt version")
    p.add_argument("--candidate", action="append", default=None, metavar="MODEL", help="repeatable")
    p.add_argument("--candidate-prompt", action="append", default=None, metavar="NAME@VERSION",
                   help="once for all candidates, or once per --candidate")
    p.add_argument("--judge", default=None, metavar="MODEL", help="judge model ('none' for no judge)")
    p.add_argument("--gate", default=None, metavar="FILE", help="gate rules (.toml or .json)")
    _add_model_options(p)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-options", default=None, metavar="FILE",
                   help="adapter options by model name (.toml or .json, the table [model_options.\"<model>\"] "
                        "of params.toml), merged over the parameters option by option")


def _config(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    """The one config object of every command: defaults, the parameters file, `-p`, the flags, then
    `extra` (a command's own flags for config fields, e.g. generate's `--model`)."""
    overrides: dict[str, Any] = {name: parse_cli_value(value) for name, value in args.overrides}
    flags = {"store": args.store, "dataset": args.dataset, "baseline": args.baseline,
             "baseline_prompt": args.baseline_prompt, "candidates": args.candidate,
             "candidate_prompts": args.candidate_prompt}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    overrides.update(extra or {})
    if args.judge is not None:
        overrides["judge"] = None if args.judge.lower() == "none" else args.judge
    if args.gate:  # the gate given is the gate used: it replaces an inline [gate] of the parameters file
        overrides["gate_file"] = str(Path(args.gate).resolve())
        overrides["gate"] = {}
    params_file = project_params(args)
    own_data = params_file is None and not _demo_data(overrides)
    if own_data:  # the demo's prompts are written for the demo's data: other data is sent as it is
        overrides.setdefault("baseline_prompt", None)
        overrides.setdefault("candidate_prompts", [None])
    config = build_config(params_file, overrides)
    if args.model_options:
        given = model_options.load_model_options(args.model_options)
        model_options.check(given, config.models(), source=args.model_options)  # named by its file
        config = config.model_copy(update={"model_options": model_options.merge(config.model_options, given)})
    if params_file is None:
        say_demo(f"store {config.store_shown}" + (f", reports in {config.base_dir / 'reports'}"
                                                 if args.command == "report" else "")
                 + (", prompts: none unless given (the demo's are for its data)" if own_data else ""))
    return config


def _demo_data(overrides: dict[str, Any]) -> bool:
    """Whether a command outside a project runs on the demo's own data file (the default dataset)."""
    demo = MigrationConfig.model_fields["dataset"].default
    given = overrides.get("dataset", demo)
    return given == demo or resolve(given, Path.cwd()).resolve() == resolve(demo, Path.cwd()).resolve()


def project_params(args: argparse.Namespace) -> str | None:
    """`--params`, else the project's params.toml found upwards from the current folder (as the
    notebooks find it), named on stderr when it is not in the current folder; None outside a project."""
    if args.params:
        return args.params
    found = find_params_file()
    if found is not None and found.parent != Path.cwd().resolve():
        print(f"project: {shown_path(found)}", file=sys.stderr)
    return str(found) if found is not None else None


def _progress(args: argparse.Namespace) -> Any:
    return reporter("quiet" if args.quiet else "auto")


def _quiet_libraries(args: argparse.Namespace) -> None:
    """Weight-loading bars of transformers belong on an interactive terminal, not in a CI log."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


# ---- commands -------------------------------------------------------------------------------------
def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="run models over a dataset into the store (cached, resumable), selecting "
                       "items, prompts and settings exactly as compare and report do", epilog=EXIT_CODES_HELP)
    p.add_argument("data", nargs="?", default=None,
                   help="jsonl, csv, parquet file or a datasets save_to_disk folder (default: the parameters' dataset)")
    p.add_argument("--model", action="append", default=None, metavar="NAME",
                   help="provider/model, e.g. litellm/openai/gpt-4o-mini or hf/smollm2-135m-instruct (repeatable): "
                        "the first takes the baseline's place, the others the candidates', each with that place's "
                        "prompt unless --prompt says otherwise (default: the baseline and every candidate)")
    p.add_argument("--prompt", action="append", metavar="NAME@VERSION",
                   help="prompt version ('none': the raw input): once for all models, or once per --model in the "
                        "same order (default: the parameters' baseline_prompt and candidate_prompts)")
    p.add_argument("--prompts-dir", default=None, help="the project's prompt versions (default: prompts/ of the "
                   "project; bundled ones are found too)")
    p.add_argument("--samples", type=int, default=1, help="answers per item and model (sampled answers are cached "
                   "one by one; use with --temperature above 0)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the "
                   "parameters', 0: greedy)")
    p.add_argument("--max-tokens", type=int, default=None, help="answer length cap (default: the parameters')")
    p.add_argument("--seed", type=int, default=None,
                   help="sampling seed, part of the cache key; also fixes the sample (default: the parameters')")
    p.add_argument("--concurrency", type=int, default=None, help="calls in flight at once (default: the parameters' "
                   "concurrency, 4)")
    p.add_argument("--timeout", type=float, default=None,
                   help="hard limit per call, seconds (default: the parameters' timeout_s, else by model kind: 60 "
                        "for API models, whose call is one request; 600 for local hf/ and vllm/ models, whose call "
                        "is a batch of many rows)")
    p.add_argument("--max-attempts", type=int, default=4,
                   help="tries per call for errors worth retrying: rate limits, timeouts, server errors "
                        "(default %(default)s)")
    p.add_argument("--api-base", default=None, help="OpenAI-compatible server for API models (litellm/, openai/)")
    p.add_argument("--limit", type=int, default=None, help="N items: the report's stratified, seeded sample "
                   "(sample_size); default: the parameters' sample_size (-p sample_size null: every item)")
    p.add_argument("--input-field", default=None, metavar="NAME", help="the column holding each item's input")
    p.add_argument("--id-field", default=None, metavar="NAME",
                   help="the column holding item ids (missing: ids from content)")
    p.add_argument("--no-progress", action="store_true", help="same as --quiet")
    _add_config_args(p)
    _add_common(p)


def _generate_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """generate's flags as config fields: `--model` fills the baseline's then the candidates' places
    (so `compare` with the same models and flags selects these runs), `--prompt` their prompts."""
    overrides: dict[str, Any] = {}
    if args.data is not None:  # a file named on the command line: relative to the current folder
        overrides["dataset"] = str(Path(args.data).resolve()) if Path(args.data).exists() else args.data
    if args.prompts_dir is not None:
        overrides["prompts_dir"] = (str(Path(args.prompts_dir).resolve()) if Path(args.prompts_dir).is_dir()
                                    else args.prompts_dir)
    fields = {"api_base": args.api_base, "input_field": args.input_field, "id_field": args.id_field,
              "temperature": args.temperature, "max_tokens": args.max_tokens, "seed": args.seed,
              "concurrency": args.concurrency, "timeout_s": args.timeout, "sample_size": args.limit}
    overrides.update({name: value for name, value in fields.items() if value is not None})
    models, prompts = args.model or [], args.prompt or []
    if models and (args.baseline or args.candidate):
        raise InputError("--model and --baseline/--candidate both name the models: give one or the other")
    if prompts and (args.baseline_prompt or args.candidate_prompt):
        raise InputError("--prompt and --baseline-prompt/--candidate-prompt both name the prompts: give one or the other")
    if prompts and len(prompts) != 1 and len(prompts) != len(models):
        raise InputError(f"--prompt given {len(prompts)} times for {len(models)} --model: give one, or one per model")
    if models:
        overrides["baseline"] = models[0]
        if len(models) > 1:
            overrides["candidates"] = models[1:]
    if prompts:
        given = [None if p.strip().lower() in ("", "none", "null") else p for p in prompts]
        overrides["baseline_prompt"] = given[0]
        if len(given) == 1 or len(models) > 1:
            overrides["candidate_prompts"] = given[1:] if len(given) > 1 else given
    return overrides


def _generation(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """generate's config and the spec of each arm it runs: every `--model` (in the baseline's, then the
    candidates' places), else the parameters' baseline and candidates; each with its prompt, options,
    the api_base where it has none of its own, and `timeout_s` or its kind's default."""
    config = _config(args, _generate_overrides(args))
    arms = config.arms()[:len(args.model)] if args.model else config.arms()
    return config, [config.model_spec(model, prompt) for model, prompt in arms]


def _positive(args: argparse.Namespace, names: Sequence[str], minimum: float = 1) -> None:
    for name in names:
        value = getattr(args, name.replace("-", "_"))
        if value is not None and value < minimum:
            raise InputError(f"--{name} must be at least {minimum:g}, got {value:g}")


def _in_range(args: argparse.Namespace) -> None:
    """Numbers a model or a store could not take (nan, inf, 1e20 tokens) are input errors naming the flag."""
    if args.temperature is not None and not (math.isfinite(args.temperature) and 0 <= args.temperature <= 2):
        raise InputError(f"--temperature must be a number from 0 to 2, got {args.temperature:g}")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError(f"--timeout must be a finite number of seconds above 0, got {args.timeout:g}")
    if args.max_tokens is not None and args.max_tokens > MAX_TOKENS:
        raise InputError(f"--max-tokens must be at most {MAX_TOKENS}, got {args.max_tokens}")
    if args.seed is not None and not 0 <= args.seed <= SEED_MAX:
        raise InputError(f"--seed must be from 0 to {SEED_MAX}, got {args.seed}")


def cmd_generate(args: argparse.Namespace) -> int:
    """The report's first half without the judge, through the same config object: the same items
    (sample), prompts, sampling, concurrency and store as `compare` and `report` select."""
    from workbench.generation.runner import generate  # heavy (numpy, pandas): not for --help
    from workbench.pipeline import call_policy, open_store, plan_run, sampling  # heavy (numpy, pandas): not for --help

    _positive(args, ["samples", "max-tokens", "concurrency", "max-attempts", "limit"])
    _in_range(args)
    check_api_base(args.api_base)
    config, specs = _generation(args)

    # a missing key or model package is named before anything is read or written (exit 3, not "40 not sent")
    missing = requirement_problems([spec.name for spec in specs], [], endpoint=config.endpoint,
                                   model_options=config.model_options)
    if missing:
        raise InputError(missing)
    # checked, sampled and rendered once, before the store is opened, and handed on
    plan = plan_run(config, specs=specs, samples=args.samples, calls=True)
    if len(plan.items) < plan.available:  # the same items compare and report read, said so
        print(f"items: {len(plan.items)} of {plan.available}, the stratified sample of sample_size {config.sample_size} "
              "(seeded); -p sample_size null for every item", file=sys.stderr)
    policy = call_policy(config).model_copy(update={"max_attempts": args.max_attempts})  # timeouts: per spec
    quiet = args.quiet or args.no_progress
    with open_store(config, allow_calls=True) as store:
        _, stats = generate(plan.items, specs, store, samples=args.samples, sampling=sampling(config), policy=policy,
                            prompts_dir=config.prompts_path, progress=reporter("quiet" if quiet else "auto"),
                            responses=False, prepared=plan.requests)  # answers stay in the store: memory flat
    for name, info in stats.per_model.items():
        print(printable(f"{name}: {_call_counts(info)}"), file=sys.stderr)
        for kind, entry in info["error_kinds"].items():  # a server's message: untrusted text
            print(printable(f"  {entry['count']} x {kind}, e.g. {entry['example']}"), file=sys.stderr)
    print(json.dumps(stats.as_dict()))
    unsent = [f"{name}: nothing was sent ({info.get('not_sent_example')}); fix that and re-run"
              for name, info in stats.per_model.items()
              if info.get("not_sent") and info["not_sent"] == info["errors"] and not info["calls_made"]
              and not info["cached"]]
    if unsent:  # a key or request problem, not a model that failed: could not run
        raise InputError(unsent)
    return EXIT_FAIL if stats.errors else EXIT_OK


def _call_counts(info: dict[str, Any]) -> str:
    """e.g. `0 calls made, 20 not sent (auth: OPENAI_API_KEY is not set), 0 cached, 20 errors`."""
    parts = [f"{info['calls_made']} calls made"]
    if info.get("not_sent"):
        example = info.get("not_sent_example")
        parts.append(f"{info['not_sent']} not sent" + (f" ({example})" if example else ""))
    answered, failed = info.get("answered_elsewhere") or 0, info.get("failed_elsewhere") or 0
    parts.append(f"{info['cached']} cached" + (f" ({answered} answered by another process meanwhile)" if answered else ""))
    parts.append(f"{info['errors']} errors" + (f" ({failed} given up by another process)" if failed else ""))
    return ", ".join(parts)


def _add_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score the stored responses (reference metrics, judge); makes no generation call",
                       epilog=EXIT_CODES_HELP)
    _add_config_args(p)
    _add_common(p)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="paired comparison with CIs and the gate verdict, from the store",
                       epilog=EXIT_CODES_HELP)
    _add_config_args(p)
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write the verdict record as JSON")
    _add_common(p)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="generate, judge and execute the report notebook into reports/<name>/",
                       epilog=EXIT_CODES_HELP)
    _add_config_args(p)
    p.add_argument("--notebook", default=None, help="report notebook (default: the project's "
                   "notebooks/migration_report.ipynb when it has one, else the bundled one)")
    p.add_argument("--reports-dir", default=None, help="where <report_name>/ goes (default: reports/ in the project)")
    _add_common(p)


def _add_init(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="scaffold a migration project: params.toml, gate.toml, prompts/, data/, notebooks",
                       epilog=EXIT_CODES_HELP)
    p.add_argument("directory", help="the project folder (created; must be empty if it exists)")
    p.add_argument("--example", choices=("support", "tools"), default="support",
                   help="support: the text support/review demo (default); tools: a tool-calling support assistant "
                        "(order status, refund, store hours) with expected calls and a recorded baseline log")
    _add_common(p)


def _read_store(args: argparse.Namespace) -> Any:
    """What `score` and `compare` show: the configuration's store read a chunk of items at a time
    (no answer text kept past its chunk), no call made. The process is the command's own, so Arrow's
    buffers come from the C heap (`memory.arrow_in_the_c_heap`)."""
    memory.arrow_in_the_c_heap()  # before pandas loads pyarrow: Arrow's C++ default pool is chosen then
    from workbench.pipeline import run_pipeline  # heavy (numpy, pandas): not for --help

    return run_pipeline(_config(args), allow_calls=False, texts=False)


def cmd_score(args: argparse.Namespace) -> int:
    result = _read_store(args)
    means = result.scores.groupby(["model", "metric"])["value"].mean().unstack("metric")
    print(means.to_string(float_format=lambda v: f"{v:.4f}"), file=sys.stderr)
    print(json.dumps({"scored": int(result.scores["value"].notna().sum()),
                      "unscorable": int(result.scores["value"].isna().sum()), "judge_calls": result.judge_calls,
                      "paired_items": {name: c.n_paired for name, c in result.comparisons.items()}}))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    result = _read_store(args)  # first: it chooses Arrow's pool before pandas loads
    from workbench.pipeline import comparison_json  # heavy (numpy, pandas): not for --help

    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(comparison_json(result), encoding="utf-8")
    print(f"gate rules used ({result.config.gate_source()}): "
          f"{json.dumps(result.verdict_json()['gate']['rules'])}", file=sys.stderr)
    for name, comparison in result.comparisons.items():
        print(f"{name}: {comparison.gate.summary()}", file=sys.stderr)
        for note in comparison.notes:
            print(f"  note: {note}", file=sys.stderr)
    print(json.dumps({"verdict": result.verdict, "n_paired": {n: c.n_paired for n, c in result.comparisons.items()}}))
    return VERDICT_EXIT_CODES[result.verdict]


def cmd_report(args: argparse.Namespace) -> int:
    from workbench.report.command import (  # heavy (numpy, pandas): not for --help
        bundled_notebook,
        report_notebook,
        run_report,
    )

    config = _config(args)
    notebook = Path(args.notebook) if args.notebook else report_notebook(config)
    if notebook.resolve() == bundled_notebook("migration_report.ipynb").resolve():
        print("report notebook: the bundled migration_report.ipynb", file=sys.stderr)
    else:
        print(f"report notebook: {shown_path(notebook)}" + ("" if args.notebook else " (the project's own)"),
              file=sys.stderr)
    code, out_dir = run_report(config, notebook, args.reports_dir, progress=_progress(args))
    verdict = json.loads((out_dir / "verdict.json").read_text(encoding="utf-8"))
    if code == EXIT_COULD_NOT_RUN:
        print(printable(f"error: no complete report: {verdict.get('error')}; see {out_dir / 'report.html'}"),
              file=sys.stderr)
    print(json.dumps({"verdict": verdict.get("verdict"), "complete": verdict.get("complete"), "report": str(out_dir)}))
    return code


def cmd_init(args: argparse.Namespace) -> int:
    from workbench.project.scaffold import init_project  # heavy (numpy, pandas): not for --help

    folder = init_project(args.directory, args.example)
    print(f"created {folder}: edit params.toml, then `cd {shlex.quote(args.directory)} && workbench doctor && "
          "workbench report` (every command run inside the folder uses its params.toml)", file=sys.stderr)
    return EXIT_OK


def _add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check everything a report needs (models, packages, keys, files) and list "
                       "every missing piece with the command that fixes it; makes no call", epilog=EXIT_CODES_HELP)
    _add_config_args(p)
    _add_common(p)


def cmd_doctor(args: argparse.Namespace) -> int:
    """0 when everything the report needs is here, 3 with the list of what is missing."""
    config = _config(args)
    params_file = Path(args.params).resolve() if args.params else find_params_file()
    ok, missing = report_lines(config, params_file)
    for line in ok:
        print(line)
    if not missing:
        print("everything the report needs is here")
        return EXIT_OK
    print(f"missing ({len(missing)}):")
    for line in missing:
        print(f"  - {line}")
    return EXIT_COULD_NOT_RUN


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="workbench", description="Can this application switch from model A to model B?",
                    epilog=EXIT_CODES_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                        help="show the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                metavar="{init,doctor,generate,score,compare,report,drift,optimize,prompts}")
    _add_init(sub)
    _add_doctor(sub)
    _add_generate(sub)
    _add_score(sub)
    _add_compare(sub)
    _add_report(sub)

    add_drift(sub)
    COMMANDS.update(add_optimize(sub))

    COMMANDS.update(add_cycle(sub))  # refresh, cycle
    return parser


def cmd_drift(args: argparse.Namespace) -> int:
    return run_drift(args)


COMMANDS = {"init": cmd_init, "doctor": cmd_doctor, "generate": cmd_generate, "score": cmd_score, "compare": cmd_compare,
            "report": cmd_report, "drift": cmd_drift}


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit code. Run as the command itself (no `argv`), the process ends here once the
    command is done, its threads joined and its exit handlers run: see `_exit_now`."""
    if argv is None:
        _exit_now(_main(sys.argv[1:]))
    return _main(argv)


def _exit_now(code: int) -> NoReturn:
    """End the process without tearing down every module: after litellm (3,000 modules, thousands of
    pydantic classes) the interpreter's own teardown takes about a third as long as the import did
    (3.7-5.9 s at load 12 on the project's machine). Everything a normal exit does that matters still happens first:
    non-daemon threads are joined, atexit handlers run (logging's flush, litellm's callbacks), the
    standard streams are flushed. The store is closed by the command itself."""
    atexit.unregister(preload.wait)  # a background import left unfinished: no teardown follows to trip on it
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`workbench ... | head`): nothing more can be said
            pass
    os._exit(code)


def _main(argv: Sequence[str]) -> int:
    argv = list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(printable(f"usage error: {redact(str(exc))} (see `workbench --help`)"), file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    _quiet_libraries(args)
    try:
        return COMMANDS[args.command](args)
    except WorkbenchError as exc:
        print(printable(f"error: {redact(str(exc))}"), file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    except KeyboardInterrupt:
        print("interrupted: completed calls are stored; re-run the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # an internal error must never read as a verdict
        if getattr(args, "debug", False):
            traceback.print_exc()
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
        print(printable(f"internal error: {redact(detail)} (run again with --debug for the traceback)"), file=sys.stderr)
        return EXIT_COULD_NOT_RUN


if __name__ == "__main__":
    sys.exit(main())
