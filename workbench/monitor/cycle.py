"""`workbench cycle`: the migration loop in one command, for a scheduler the user already has (cron,
a CI schedule, Airflow).

    drift check of the newest production log against the current evaluation set
      -> nothing found and no model in use retiring within `retire_within_days`: exit 0
      -> input drift: refresh the set (workbench.monitor.refresh), then the migration report on it
      -> a retiring model in use: the migration report for its successor (lifecycle file or `successors`)
      -> one summary line; the exit code is the report's verdict (0 PASS, 1 FAIL, 2 INCONCLUSIVE)

Every step is cached like the rest: the drift run is deterministic, a refresh whose bytes already
exist reuses that version, and the report's calls are served from the store. A re-run on the same
log finds the version it made (its manifest records the log's hash) and checks drift against that
version's parent again, so it repeats the same decisions and makes no model call.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from workbench.errors import EXIT_COULD_NOT_RUN, EXIT_OK, InputError, Problem
from workbench.models import split_name
from workbench.monitor.config import REPORT_NAME, iso_date
from workbench.monitor.config import build_config as drift_build
from workbench.models.lifecycle import lookup, staleness_warning
from workbench.monitor.refresh import (
    MANIFEST_SUFFIX,
    EmptyRefresh,
    RefreshConfig,
    _base_stem,
    _default_dir,
    refresh,
    versions,
)
from workbench.monitor.report import run_report as run_drift_report
from workbench.monitor.run import file_sha256, run_for_report
from workbench.project.params import ProjectParameters, build
from workbench.report.command import run_report
from workbench.task.config import build_config as report_build

SET_BY_CYCLE = ("reference", "production", "report_name", "project_dir", "output_dir", "today",
                "retirement_warn_days")
CYCLE_JSON = "cycle.json"


class CycleConfig(ProjectParameters):
    """Every parameter of a cycle. Unknown fields and wrong types are errors."""

    report_params: str = Field("params.toml", description="the migration report's parameters (baseline, candidates, "
                               "gate, dataset: the evaluation set the cycle refreshes)")
    production: str = Field("logs/*.jsonl*", description="the production log, or a glob: the newest match (by "
                            "modification time) is checked")
    report_name: str = Field("cycle", description="reports/<name>/ (the report) and reports/<name>-drift/")
    triggers: list[Literal["drift", "retirement", "alert"]] = Field(
        default_factory=lambda: ["drift", "retirement"], description="what starts a refresh and report: input drift, "
        "a model in use retiring soon, a quality or outcome alert")
    retire_within_days: int = Field(90, ge=0, description="a model in use retiring within this many days triggers")
    successors: dict[str, str] = Field(default_factory=dict, description="retiring model -> the model to report on "
                                       "(over the lifecycle file's `successor`)")
    successor_prompt: str | None = Field(None, description="the successor's prompt version (None: the first "
                                         "candidate's prompt)")
    lifecycle_max_age_days: int = Field(180, ge=1, description="warn when the lifecycle file was checked longer ago")
    drift: dict[str, Any] = Field(default_factory=dict, description="drift parameters (see `workbench drift`), "
                                  "e.g. window, signals, id_field; reference and production are set by the cycle")
    drift_notebook: bool = Field(True, description="False: drift.json and drifted_items.jsonl only (no notebook)")
    keep_share: float = Field(1.0, description="refresh: share of the current items kept")
    max_new_items: int = Field(200, description="refresh: production items added at most")
    dedup_threshold: float = Field(0.90, description="refresh: cosine similarity (all-MiniLM-L6-v2) of a "
                                   "near-duplicate")
    target: Literal["source", "human"] = Field("source", description="refresh: rows without a reference")
    inherit_fields: list[str] = Field(default_factory=list, description="refresh: columns a production item takes "
                                      "from its nearest current item (e.g. task, which prompts look up)")
    today: str | None = Field(None, description="YYYY-MM-DD for the retirement check (None: today)")
    seed: int = Field(0, description="fixes the refresh's draw")
    project_dir: str | None = Field(None, description="folder relative paths resolve against")

    @field_validator("today")
    @classmethod
    def _today(cls, value: str | None) -> str | None:
        return iso_date(value)

    @field_validator("drift")
    @classmethod
    def _drift(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(set(value) & set(SET_BY_CYCLE))
        if taken:
            raise ValueError(f"{', '.join(taken)} set by the cycle (use production, report_name, today, "
                             f"retire_within_days of the cycle instead)")
        return value

    @field_validator("successors")
    @classmethod
    def _successors(cls, value: dict[str, str]) -> dict[str, str]:
        for model in value.values():
            split_name(model)  # an unregistered provider is named before anything runs
        return value

    @model_validator(mode="after")
    def _check(self) -> "CycleConfig":
        if not REPORT_NAME.fullmatch(self.report_name):
            raise ValueError(f"report_name '{self.report_name}' must be letters, digits, '.', '_' or '-'")
        return self

    def today_date(self) -> dt.date:
        return dt.date.fromisoformat(self.today) if self.today else dt.date.today()


def build_config(params_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> CycleConfig:
    return build(CycleConfig, params_file, overrides)


@dataclass
class CycleResult:
    exit_code: int
    summary: str
    record: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# ---- steps ---------------------------------------------------------------------------------------

def newest_log(config: CycleConfig) -> Path:
    pattern = config.production
    if any(ch in pattern for ch in "*?["):
        base = config.base_dir
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        found = [Path(p) for p in glob.glob(full) if Path(p).is_file()]
        if not found:
            raise InputError(Problem(pattern, None, "production", f"no production log matches (looked in {base})"))
        return max(found, key=lambda p: (p.stat().st_mtime, p.name))
    path = Path(config.path(pattern))
    if not path.is_file():
        raise InputError(Problem(pattern, None, "production", f"production log not found (looked in {config.base_dir})"))
    return path


def current_set(dataset: Path, versions_dir: Path, log_sha: str | None) -> tuple[Path, str]:
    """(the set drift is checked against, why): the newest refreshed version, or its parent when that
    version was made from this very log (a re-run repeats the same decisions)."""
    found = versions(versions_dir, _base_stem(dataset))
    if not found:
        return dataset, "the report's dataset"
    newest = found[-1][1]
    manifest = newest.with_name(newest.name.removesuffix(".jsonl") + MANIFEST_SUFFIX)
    if manifest.is_file():
        record = json.loads(manifest.read_text(encoding="utf-8"))
        if log_sha and record.get("drift", {}).get("production_sha256") == log_sha:
            return Path(record["parent"]["path"]), f"the parent of {newest.name}, which this log produced"
    return newest, "the newest refreshed version"


def retiring(payload: dict[str, Any], within: int) -> list[dict[str, Any]]:
    rows = [{**r, "retires": str(r["retires"])[:10], "days_left": int(r["days_left"])}  # drift.json dates are timestamps
            for r in payload.get("retirement", []) if r.get("in_use") and r.get("days_left") is not None
            and r["days_left"] <= within]
    return sorted(rows, key=lambda r: r["days_left"])


def successor_of(model: str, config: CycleConfig, lifecycle: Path | None) -> str:
    named = config.successors.get(model)
    where = "successors in the cycle parameters"
    if named is None:
        entry = lookup([model], lifecycle)[0]
        named, where = entry.successor, f"the lifecycle file {lifecycle}"
    if not named:
        raise InputError(Problem(str(lifecycle) if lifecycle else "lifecycle_file", None, f"{model}.successor",
                                 f"{model} is in use and retires soon, and no successor is named: add "
                                 f"successor = \"provider/model\" under [models.\"{model}\"] in the lifecycle file, "
                                 f"or successors = {{\"{model}\" = \"...\"}} in the cycle parameters"))
    try:
        split_name(named)
    except InputError as exc:
        raise InputError(Problem(where, None, f"{model}.successor", f"successor '{named}' is not a registered model: "
                                 f"{str(exc).splitlines()[-1].lstrip(' -')}")) from None
    return named


def run_cycle(config: CycleConfig, reports_dir: str | Path | None = None, progress: Any = None,
              embed: Any = None) -> CycleResult:
    """Drift -> (refresh) -> report, as the module docstring says. Raises InputError for bad input."""
    params_path = Path(config.path(config.report_params))
    report_config = report_build(params_path)
    report_config.preflight()
    base = config.base_dir
    reports = Path(reports_dir).resolve() if reports_dir else base / "reports"
    today = config.today_date()
    warnings: list[str] = []
    lifecycle = Path(report_config.path(report_config.lifecycle_file)) if report_config.lifecycle_file else None
    stale = staleness_warning(lifecycle, today, config.lifecycle_max_age_days)
    if stale:
        warnings.append(stale)

    log = newest_log(config)
    log_sha = file_sha256(log)
    dataset = Path(report_config.path(report_config.dataset))
    probe = RefreshConfig(dataset=str(dataset), drift=".", project_dir=str(base))
    versions_dir = _default_dir(probe, dataset)
    reference, why = current_set(dataset, versions_dir, log_sha)

    drift_overrides = {**config.drift, "reference": str(reference), "production": str(log),
                       "report_name": f"{config.report_name}-drift", "today": today.isoformat(),
                       "retirement_warn_days": config.retire_within_days, "project_dir": str(base),
                       "lifecycle_file": str(lifecycle) if lifecycle else None,
                       "models": list(dict.fromkeys([*config.drift.get("models", []), report_config.baseline]))}
    drift_overrides.setdefault("reference_input_field", report_config.input_field)
    drift_config = drift_build(None, drift_overrides)
    drift_dir = reports / drift_config.report_name
    if config.drift_notebook:
        _, drift_dir, payload = run_drift_report(drift_config, reports)
    else:
        payload = run_for_report(drift_config.model_copy(update={"output_dir": str(drift_dir)}), embed).to_dict()
    warnings += payload.get("warnings", [])

    flagged = payload.get("flagged_windows", [])
    fired: list[str] = []
    if "drift" in config.triggers and flagged:
        fired.append("drift")
    retire = retiring(payload, config.retire_within_days) if "retirement" in config.triggers else []
    if retire:
        fired.append("retirement")
    alerts = [a for a in payload.get("alerts", []) if a.get("kind") != "retirement"]
    if "alert" in config.triggers and alerts:
        fired.append("alert")
    record: dict[str, Any] = {
        "log": str(log), "log_sha256": log_sha, "reference": str(reference), "reference_is": why,
        "drift_report": str(drift_dir), "flagged_windows": [w["window"] for w in flagged],
        "alerts": [a["message"] for a in payload.get("alerts", [])], "today": today.isoformat(),
        "lifecycle_file": str(lifecycle) if lifecycle else None, "triggers": fired, "warnings": warnings,
    }
    drift_text = (f"drift in {len(flagged)} window(s) ({', '.join(sorted({s for w in flagged for s in w['signals']}))})"
                  if flagged else f"no drift in {len(payload.get('windows', []))} window(s)")
    if not fired:
        summary = (f"cycle: {drift_text} of {log.name}; no model in use retires within {config.retire_within_days} "
                   f"days: nothing to run (exit 0)")
        record.update(exit_code=EXIT_OK, summary=summary)
        _write(drift_dir / CYCLE_JSON, record)
        return CycleResult(EXIT_OK, summary, record, warnings)

    # the report's dataset: a refreshed version when drift fired, else the current set
    report_dataset, refresh_text = reference, ""
    if "drift" in fired:
        refresh_config = RefreshConfig(
            dataset=str(reference), drift=str(drift_dir), output_dir=str(versions_dir), keep_share=config.keep_share,
            max_new_items=config.max_new_items, dedup_threshold=config.dedup_threshold, target=config.target,
            inherit_fields=config.inherit_fields, id_field=report_config.id_field,
            input_field=report_config.input_field, reference_field=report_config.reference_field, seed=config.seed,
            project_dir=str(base))
        try:
            refreshed = refresh(refresh_config, embed)
            report_dataset = refreshed.path
            record["refresh"] = {"path": str(refreshed.path), "created": refreshed.created,
                                 "manifest": str(refreshed.manifest_path), **refreshed.counts}
            refresh_text = f"; {_rel(refreshed.path, base)} (+{refreshed.counts['added']} production items)"
        except EmptyRefresh as exc:
            warnings.append(f"refresh added nothing ({str(exc).splitlines()[-1].lstrip(' -')}); the report runs on "
                            f"{reference.name}")
    overrides: dict[str, Any] = {"dataset": str(report_dataset), "report_name": config.report_name,
                                 "sample_size": None}
    trigger_text = drift_text
    if retire:
        first = retire[0]
        successor = successor_of(first["model"], config, lifecycle)
        prompt = config.successor_prompt or (report_config.candidate_prompts[0] if report_config.candidate_prompts
                                             else None)
        overrides.update(candidates=[successor], candidate_prompts=[prompt])
        record["retirement"] = {"model": first["model"], "retires": first["retires"], "days_left": first["days_left"],
                                "successor": successor}
        when = f"in {first['days_left']} days" if first["days_left"] >= 0 else f"{-first['days_left']} days ago"
        retire_text = (f"{first['model']} retires {first['retires']} ({when}; {lifecycle.name if lifecycle else 'litellm'}"
                       f"): report on its successor {successor}")
        trigger_text = retire_text if "drift" not in fired else f"{drift_text}; {retire_text}"
        if first["model"] != report_config.baseline:
            warnings.append(f"the retiring model {first['model']} is not the report's baseline "
                            f"{report_config.baseline}: the report compares the baseline with {successor}")
    if "alert" in fired and "drift" not in fired and not retire:
        trigger_text = f"{len(alerts)} alert(s): {alerts[0]['message']}"

    final = report_build(params_path, overrides)
    code, out_dir = run_report(final, reports_dir=reports, progress=progress)
    verdict = _read(out_dir / "verdict.json")
    manifest = _read(out_dir / "manifest.json")
    calls = (manifest.get("calls") or {}).get("made") if manifest else None
    record.update(dataset=str(report_dataset), report=str(out_dir), verdict=verdict.get("verdict"),
                  exit_code=code, calls_made=calls, candidates=final.candidates, baseline=final.baseline)
    outcome = (f"{verdict.get('verdict')} (exit {code})" if code != EXIT_COULD_NOT_RUN
               else f"no complete report: {verdict.get('error')} (exit {code})")
    summary = (f"cycle: {trigger_text}{refresh_text}; report {_rel(out_dir, base)}: {outcome}, "
               f"{calls if calls is not None else '?'} model call(s)")
    record["summary"] = summary
    _write(out_dir / CYCLE_JSON, record)
    _write(drift_dir / CYCLE_JSON, record)
    return CycleResult(code, summary, record, warnings)


def _rel(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
