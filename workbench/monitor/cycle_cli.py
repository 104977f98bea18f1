"""`workbench refresh` and `workbench cycle`: thin glue over `refresh()` and `run_cycle()`.
`add_parsers(subparsers)` adds both to the workbench CLI and returns {command: run(args) -> exit code}.

Exit codes as every command: refresh 0 written (or unchanged), 3 could not run (bad input, a drift
result of another set, nothing drifted: nothing is written); cycle 0 nothing triggered, else the
report's (0 PASS, 1 FAIL, 2 INCONCLUSIVE), 3 could not run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from workbench.errors import InputError
from workbench.monitor.config import build_config as drift_build
from workbench.progress import reporter
from workbench.project.lookup import resolve
from workbench.project.params import load_params_file, parse_cli_value
from workbench.task.config import build_config as report_build

REFRESH_EPILOG = ("exit codes: 0 new version written (or the same one found), 3 could not run (bad input, a drift "
                  "result of another set, nothing drifted)")
CYCLE_EPILOG = ("exit codes: 0 nothing triggered, or the report's PASS; 1 FAIL; 2 INCONCLUSIVE; 3 could not run "
                "(bad input: a log without timestamps, an unregistered successor, ...)")
REFRESH_FLAGS: dict[str, tuple[str, type, str]] = {
    "--dataset": ("dataset", str, "the current evaluation set (default: the dataset of --report-params)"),
    "--drift": ("drift", str, "the drift report folder (default reports/drift)"),
    "--output-dir": ("output_dir", str, "where <stem>.v<N>.jsonl goes (default: beside the set; data/ for a bundled set)"),
    "--keep-share": ("keep_share", float, "share of the current items kept (default 1)"),
    "--max-new": ("max_new_items", int, "production items added at most (default 200)"),
    "--dedup-threshold": ("dedup_threshold", float, "cosine similarity of a near-duplicate (default 0.90)"),
    "--target": ("target", str, "rows without a reference: source (production's answer) or human (to label)"),
    "--seed": ("seed", int, "fixes the draw of kept and production items (default 0)"),
}
CYCLE_FLAGS: dict[str, tuple[str, type, str]] = {
    "--report-params": ("report_params", str, "the migration report's parameters (default params.toml)"),
    "--production": ("production", str, "the production log or a glob; the newest match is checked"),
    "--today": ("today", str, "YYYY-MM-DD for the retirement check (default: today)"),
    "--retire-within": ("retire_within_days", int, "days before a retirement that trigger (default 90)"),
    "--name": ("report_name", str, "reports/<name>/ and reports/<name>-drift/ (default cycle)"),
}


def add_parsers(subparsers: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = subparsers.add_parser("refresh", help="turn a drift result into the next version of the evaluation set",
                              description="Keep the current items, add production items of the drifted windows "
                              "(stratified by signal, near-duplicates removed), record each item's provenance and "
                              "write <stem>.v<N>.jsonl with its .refresh.json (counts, diff by slice and language).",
                              epilog=REFRESH_EPILOG)
    _params(p)
    for flag, (dest, kind, text) in REFRESH_FLAGS.items():
        p.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    p.add_argument("--inherit-field", dest="inherit_fields", action="append", default=None, metavar="NAME",
                   help="a column each production item takes from its nearest current item, e.g. task (repeatable)")
    p.add_argument("--report-params", default=None, metavar="FILE",
                   help="the report's parameters: dataset and field names (default params.toml when present)")
    p.add_argument("--production", default=None, metavar="LOG",
                   help="instead of --drift: check this production log against the set first (drift parameters "
                        "from --drift-params; the drift result goes to reports/refresh-drift/)")
    p.add_argument("--drift-params", default=None, metavar="FILE", help="with --production: drift parameters (TOML)")
    _common(p)

    c = subparsers.add_parser("cycle", help="drift check -> refresh -> migration report, for a scheduler "
                              "(exit 0 nothing triggered, else the report's)",
                              description="Check the newest production log for drift and the models in use for "
                              "retirement; when either fires, refresh the evaluation set and run the migration report "
                              "(for the retiring model's successor). Prints one summary line.", epilog=CYCLE_EPILOG)
    _params(c)
    for flag, (dest, kind, text) in CYCLE_FLAGS.items():
        c.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    c.add_argument("--reports-dir", default=None, metavar="DIR", help="where the reports go (default: reports/)")
    _common(c)
    return {"refresh": run_refresh, "cycle": run_cycle_command}


def _params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default=None, metavar="FILE", help="parameters as TOML or JSON")
    p.add_argument("-p", dest="overrides", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="one parameter (VALUE parsed as JSON when it parses, else a string)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _overrides(args: argparse.Namespace, flags: dict[str, tuple[str, type, str]]) -> dict[str, Any]:
    given: dict[str, Any] = {name: parse_cli_value(value) for name, value in args.overrides}
    for dest, *_ in flags.values():
        value = getattr(args, dest)
        if value is not None:
            given[dest] = value
    return given


def run_refresh(args: argparse.Namespace) -> int:
    from workbench.monitor.refresh import build_config, refresh  # heavy (pandas): not for --help

    overrides = _overrides(args, REFRESH_FLAGS)
    if args.inherit_fields:
        overrides["inherit_fields"] = args.inherit_fields
    overrides.setdefault("drift", "reports/drift")
    report_params = args.report_params or ("params.toml" if Path("params.toml").is_file() else None)
    if report_params:
        report = report_build(report_params)
        for name in ("id_field", "input_field", "reference_field"):
            overrides.setdefault(name, getattr(report, name))
        overrides.setdefault("dataset", str(report.path(report.dataset)))
    if "dataset" not in overrides:
        raise InputError("refresh: give --dataset (the current evaluation set) or --report-params")
    if args.production:
        overrides["drift"] = str(_drift_first(args, overrides))
    result = refresh(build_config(args.params, overrides))
    print(result.summary(), file=sys.stderr)
    changed = result.diff[result.diff["change"] != 0]
    for _, row in changed.iterrows():
        print(f"  {row['slice']}={row['value']}: {row['before']} -> {row['after']} ({row['change']:+d})", file=sys.stderr)
    if result.to_label:
        print(f"{result.to_label.name}: items without a reference for the pair labeler: once the report ran on "
              f"{result.path.name}, open label_pairs.ipynb with overrides = {{\"dataset\": \"{result.to_label}\"}}",
              file=sys.stderr)
    print(json.dumps({"path": str(result.path), "created": result.created, "manifest": str(result.manifest_path),
                      "to_label": str(result.to_label) if result.to_label else None, **result.counts},
                     ensure_ascii=False))
    return 0


def _is_report_params(path: Path) -> bool:
    """A migration report's parameters file (it names the baseline), given where the cycle's belongs."""
    return "baseline" in load_params_file(path)


def _drift_first(args: argparse.Namespace, overrides: dict[str, Any]) -> Path:
    """The drift check of --production against the set, written where refresh reads it."""
    from workbench.monitor.run import run_for_report  # heavy (pandas): not for --help

    out = Path("reports") / "refresh-drift"
    config = drift_build(args.drift_params, {"reference": str(resolve(overrides["dataset"], Path.cwd())),
                                             "production": str(Path(args.production).resolve()),
                                             "reference_input_field": overrides.get("input_field", "input"),
                                             "output_dir": str(out.resolve()), "report_name": "refresh-drift"})
    result = run_for_report(config)
    for line in result.summary_lines():
        print(line, file=sys.stderr)
    return out.resolve()


def run_cycle_command(args: argparse.Namespace) -> int:
    from workbench.monitor.cycle import build_config, run_cycle  # heavy (pandas): not for --help

    params = args.params or ("cycle.toml" if Path("cycle.toml").is_file() else None)
    overrides = _overrides(args, CYCLE_FLAGS)
    if params and _is_report_params(Path(params)):  # `workbench cycle --params params.toml`
        folder = Path(params).resolve().parent
        overrides.setdefault("report_params", str(Path(params).resolve()))
        overrides.setdefault("project_dir", str(folder))
        params = str(folder / "cycle.toml") if (folder / "cycle.toml").is_file() else None
    result = run_cycle(build_config(params, overrides), args.reports_dir,
                       progress=reporter("quiet" if args.quiet else "auto"))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(result.summary, file=sys.stderr)
    print(json.dumps(result.record, ensure_ascii=False, default=str))
    return result.exit_code
