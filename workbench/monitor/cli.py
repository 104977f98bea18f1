"""`workbench drift`: the drift monitor from the command line, ready for a scheduler.

    workbench drift logs/2026-11.jsonl.gz --reference data/eval.jsonl --window week

Exit codes (shared by every command): 0 no drift and no alert, 1 drift or an alert found, 3 could
not run (bad input raises InputError with file, row and field; the CLI layer prints it and exits 3).
Every flag sets the drift notebook parameter of the same name (see DriftConfig); `--params FILE`
and `-p NAME VALUE` set any of them; flags win over -p, -p over the file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.errors import InputError
from workbench.monitor.config import build_config
from workbench.project.lookup import BUNDLED_PREFIX, find_params_file
from workbench.project.params import parse_cli_value
from workbench.task.config import build_config as migration_config

# flag dest -> DriftConfig field, for the flags that map one to one
_DIRECT = {"reference": "reference", "window": "window", "timestamp_field": "timestamp_field",
           "input_field": "input_field", "response_field": "response_field", "model_field": "model_field",
           "id_field": "id_field", "judge_fields": "judge_fields", "outcome_fields": "outcome_fields", "signals": "signals", "alpha": "alpha",
           "correction": "correction", "min_window_rows": "min_window_rows", "expected_format": "expected_format",
           "models": "models", "lifecycle_file": "lifecycle_file", "warn_days": "retirement_warn_days",
           "today": "today", "name": "report_name", "timezone": "timezone", "export_per_window": "export_per_window",
           "seed": "seed", "chunk_rows": "chunk_rows"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add `drift` with its options to a subparsers object."""
    p = subparsers.add_parser(
        "drift", help="input drift, quality over time and retirement watch for production logs "
                      "(exit 0 none, 1 drift or alert, 3 could not run)",
        description="Compare production logs with the dataset a migration was validated on, window by window; "
                    "check response quality and the retirement dates of the models in use. Writes "
                    "reports/<name>/{report.ipynb, report.html, drift.json, drifted_items.jsonl}.")
    p.add_argument("production", nargs="?", default=None,
                   help="production log: .jsonl, .csv (optionally .gz) or .parquet with a timestamp column "
                        "(default: the bundled demo log)")
    p.add_argument("--reference", default=None, metavar="DATASET",
                   help="the dataset the migration was validated on (jsonl, csv, parquet, datasets folder)")
    p.add_argument("--window", default=None, help="'day', 'week' (default: evens out weekday patterns) or N "
                   "(rows per window)")
    p.add_argument("--timezone", default=None, help="where days and weeks begin (IANA name, default UTC)")
    p.add_argument("--timestamp-field", default=None, metavar="NAME", help="default: timestamp")
    p.add_argument("--input-field", default=None, metavar="NAME", help="default: input (text or chat messages)")
    p.add_argument("--response-field", default=None, metavar="NAME", help="default: response")
    p.add_argument("--no-responses", action="store_true", help="the log has no responses: skip quality checks")
    p.add_argument("--model-field", default=None, metavar="NAME", help="default: model")
    p.add_argument("--id-field", default=None, metavar="NAME", help="request id column, kept as item_id on export")
    p.add_argument("--judge-field", dest="judge_fields", action="append", default=None, metavar="NAME",
                   help="numeric judge-score column, averaged per window (repeatable)")
    p.add_argument("--outcome-field", dest="outcome_fields", action="append", default=None, metavar="NAME",
                   help="numeric business-outcome column (satisfaction, an escalation flag, thumbs-up as true/false): "
                        "per-window mean, 95%% CI and change test (repeatable)")
    p.add_argument("--signals", nargs="+", default=None, choices=["length", "language", "vocabulary", "embedding"],
                   help="input drift tests (default: all four)")
    p.add_argument("--no-embeddings", action="store_true", help="skip the embedding test (no model load)")
    p.add_argument("--alpha", type=float, default=None, help="error rate across all tests (default 0.05)")
    p.add_argument("--correction", choices=["bh", "holm"], default=None,
                   help="bh: Benjamini-Hochberg (default), holm: Holm")
    p.add_argument("--min-window-rows", type=int, default=None, metavar="N",
                   help="smaller windows are shown, not tested (default 30)")
    p.add_argument("--allow-gaps", action="store_true", help="go on when a window between the first and last is empty")
    p.add_argument("--alert", dest="alerts", action="append", default=[], metavar="METRIC:max=X",
                   help="quality threshold, e.g. refusal_rate:max=0.05, judge_score:min=3.5, "
                        "wrong_language_rate:off (repeatable)")
    p.add_argument("--expected-format", default=None, metavar="FORMAT",
                   help="json, plain, bullet_list, numbered_list, headings or code: alert on other formats")
    p.add_argument("--model", dest="models", action="append", default=None, metavar="NAME",
                   help="a model in use that the log does not name (repeatable)")
    p.add_argument("--lifecycle-file", default=None, metavar="TOML", help="release and retirement dates")
    p.add_argument("--warn-days", type=int, default=None, metavar="N", help="alert N days before retirement (default 90)")
    p.add_argument("--today", default=None, metavar="YYYY-MM-DD", help="date for the retirement watch")
    p.add_argument("--export-per-window", type=int, default=None, metavar="N",
                   help="drifted items exported per flagged window (default 100)")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N", help="rows read at a time (default 10000)")
    p.add_argument("--seed", type=int, default=None, help="fixes every sample and permutation (default 0)")
    p.add_argument("--name", default=None, help="report folder name (default: drift)")
    p.add_argument("--reports-dir", default=None, metavar="DIR", help="where <name>/ goes (default: reports)")
    p.add_argument("--params", default=None, metavar="FILE", help="drift parameters as TOML or JSON")
    p.add_argument("-p", dest="overrides", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="one parameter (VALUE parsed as JSON when it parses, else a string)")
    p.add_argument("--no-report", action="store_true",
                   help="write drift.json and drifted_items.jsonl only (no notebook, no HTML; faster)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")


def config_from_args(args: argparse.Namespace):
    overrides: dict[str, Any] = {name: parse_cli_value(value) for name, value in args.overrides}
    if args.production is not None:
        overrides["production"] = args.production
    for dest, field in _DIRECT.items():
        value = getattr(args, dest)
        if value is not None:
            overrides[field] = value
    if args.window is not None and str(args.window).isdigit():
        overrides["window"] = f"{args.window} rows"
    if args.no_responses:
        overrides["response_field"] = None
    if args.no_embeddings:
        overrides["signals"] = [s for s in overrides.get("signals", ["length", "language", "vocabulary", "embedding"])
                                if s != "embedding"]
    if args.allow_gaps:
        overrides["allow_gaps"] = True
    if args.alerts:
        overrides["quality_alerts"] = {**overrides.get("quality_alerts", {}), **parse_alerts(args.alerts)}
    project = None if args.params else find_params_file()
    if project is not None and "reference" not in overrides:  # the data the project's migration was validated on
        overrides["reference"] = project_reference(project)
    config = build_config(args.params, overrides, base=project.parent if project is not None else None)
    if args.production is None and "production" not in overrides and not args.params:
        where = f"the bundled demo log against {config.reference}" if project is not None else \
            "the bundled demo log and reference"
        if project is None:
            print(f"no params.toml here or in a parent folder: using {where} (give a production log, "
                  "--reference DATASET, or run in a project)", file=sys.stderr)
        else:
            print(f"no production log given: using {where} (give a production log)", file=sys.stderr)
    return config


def project_reference(params_file: Path) -> str:
    """The project's dataset (from its params.toml), as the drift reference."""
    config = migration_config(params_file)
    return config.dataset if config.dataset.startswith(BUNDLED_PREFIX) else str(config.path(config.dataset))


def parse_alerts(specs: list[str]) -> dict[str, dict[str, float] | None]:
    """'refusal_rate:max=0.05', 'judge_score:min=3.5,max=5', 'wrong_language_rate:off'."""
    out: dict[str, dict[str, float] | None] = {}
    for spec in specs:
        metric, _, bounds = spec.partition(":")
        if not metric or not bounds:
            raise InputError(f"--alert '{spec}': use METRIC:max=X, METRIC:min=Y or METRIC:off")
        if bounds.strip() == "off":
            out[metric] = None
            continue
        parsed: dict[str, float] = {}
        for part in bounds.split(","):
            side, _, value = part.partition("=")
            try:
                if side not in ("min", "max"):
                    raise ValueError
                parsed[side] = float(value)
            except ValueError:
                raise InputError(f"--alert '{spec}': '{part}' is not min=NUMBER or max=NUMBER") from None
        out[metric] = parsed
    return out


def run(args: argparse.Namespace) -> int:
    """Run `workbench drift`; returns 0 (no drift, no alert) or 1 (drift or alert). Raises InputError
    on bad input (exit 3 in the CLI layer)."""
    from workbench.monitor.report import report_dir, run_report  # heavy (pandas): not for --help

    config = config_from_args(args)
    if args.no_report:
        from workbench.monitor.run import run_for_report  # heavy (pandas): not for --help

        out_dir = report_dir(config, args.reports_dir)
        result = run_for_report(config.model_copy(update={"output_dir": str(out_dir)}))
        code, lines = result.exit_code, result.summary_lines()
        payload = result.to_dict()
    else:
        code, out_dir, payload = run_report(config, args.reports_dir)
        lines = _summary_from_json(payload)
    for line in lines:
        print(line, file=sys.stderr)
    items = out_dir / "drifted_items.jsonl"
    print(json.dumps({"drift": payload["drift"], "alert": payload["alert"], "exit_code": code,
                      "flagged_windows": [w["window"] for w in payload["flagged_windows"]],
                      "alerts": len(payload["alerts"]), "report": str(out_dir),
                      "drifted_items": str(items) if payload["drifted_items"]["rows"] else None}, ensure_ascii=False))
    return code


def _summary_from_json(payload: dict[str, Any]) -> list[str]:
    lines = [f"{payload['rows_read']} rows; {payload['method']}"]
    if payload["flagged_windows"]:
        lines.append(f"DRIFT in {len(payload['flagged_windows'])} window(s):")
        lines += [f"  {w['window']}: {','.join(w['signals'])} - {w['evidence']}" for w in payload["flagged_windows"]]
    else:
        from workbench.monitor.run import no_drift_line  # heavy (pandas): not for --help

        lines.append(no_drift_line(payload["reference"]["inputs"]))
    lines += [f"OUTCOME {o['window']}: {o['outcome']} {o['mean']:.3g} (95% CI {o['ci_low']:.3g} to {o['ci_high']:.3g}) "
              f"against {o['baseline_mean']:.3g} in {o['baseline_window']}" for o in payload.get("outcomes", []) if o["changed"]]
    lines += [f"ALERT {a['window'] + ': ' if a.get('window') else ''}{a['message']}" for a in payload["alerts"]]
    lines += [f"warning: {w}" for w in payload["warnings"]]
    return lines
