"""Model lifecycle: release and retirement dates, so a report warns before a model disappears.

Sources, later ones winning: litellm's model map (`deprecation_date`, where it has one) and a
user-editable TOML file (default: the bundled resources/data/model_lifecycle.toml) keyed by the workbench model name.
An entry may name its `successor` (the model a retirement-triggered `workbench cycle` reports on); the
file's top-level `checked = YYYY-MM-DD` says when someone last compared the dates with the providers'
pages, so a stale file is named in the report and the cycle instead of trusted silently.
"""
from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from workbench.errors import InputError
from workbench.project.lookup import display_path

WARN_DAYS = 90
MAX_AGE_DAYS = 180  # a lifecycle file checked longer ago than this is called stale


def today() -> dt.date:
    """Today's date (one place, so tests can pin it)."""
    return dt.date.today()


@dataclass(frozen=True)
class Lifecycle:
    model: str
    released: dt.date | None
    retires: dt.date | None
    source: str
    note: str | None = None
    successor: str | None = None

    def days_left(self, today: dt.date) -> int | None:
        return None if self.retires is None else (self.retires - today).days

    def status(self, today: dt.date, warn_days: int = WARN_DAYS) -> str:
        left = self.days_left(today)
        if left is None:
            return "no retirement date known"
        if left < 0:
            return f"RETIRED {-left} days ago"
        if left <= warn_days:
            return f"RETIRES SOON: in {left} days"
        return f"retires in {left} days"


def _date(value: object, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{where}: '{value}' is not a date (YYYY-MM-DD)") from None


def load_registry_file(path: str | Path) -> dict[str, Lifecycle]:
    """[models."litellm/openai/gpt-4o"] released = 2024-05-13, retires = ..., note = "..." """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: {exc}") from None
    entries = {}
    for model, fields in data.get("models", {}).items():
        if not isinstance(fields, dict):
            raise InputError(f"{path}, model '{model}': expected a table of released, retires, note and successor")
        unknown = set(fields) - {"released", "retires", "note", "successor"}
        if unknown:
            raise InputError(f"{path}, model '{model}': unknown field(s) {', '.join(sorted(unknown))}")
        entries[model] = Lifecycle(model, _date(fields.get("released"), f"{path}, {model}.released"),
                                   _date(fields.get("retires"), f"{path}, {model}.retires"), display_path(path),
                                   fields.get("note"), _successor(fields.get("successor"), f"{path}, {model}.successor"))
    return entries


def _successor(value: object, where: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or "/" not in value:
        raise InputError(f"{where}: '{value}' is not a model name (provider/model)")
    return value


def checked_on(path: str | Path) -> tuple[dt.date, str]:
    """When the file's dates were last checked: its `checked` key, else the day it was last modified."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from None
    if data.get("checked") not in (None, ""):
        return _date(data["checked"], f"{path}, checked"), "its `checked` date"
    return dt.date.fromtimestamp(path.stat().st_mtime), "its modification time"


def staleness_warning(path: str | Path | None, today: dt.date, max_age_days: int = MAX_AGE_DAYS) -> str | None:
    """A sentence naming the file and its age when its dates were checked more than max_age_days ago."""
    if path is None or not Path(path).is_file():
        return None
    when, basis = checked_on(path)
    age = (today - when).days
    if age <= max_age_days:
        return None
    return (f"the lifecycle file {path} was last checked {when.isoformat()} ({basis}), {age} days ago (more than "
            f"{max_age_days}): retirement dates may have changed; check them with the providers and set "
            f"`checked = {today.isoformat()}` at its top")


def from_litellm(model: str) -> Lifecycle | None:
    """litellm's own deprecation date for API model names, `litellm/<litellm model>` and
    `openai/<model>` (None for local models, which no provider retires)."""
    provider, _, name = model.partition("/")
    if provider not in ("litellm", "openai") or not name:
        return None
    import litellm

    info = litellm.model_cost.get(name) or litellm.model_cost.get(name.split("/")[-1])
    if not info or not info.get("deprecation_date"):
        return None
    return Lifecycle(model, None, _date(info["deprecation_date"], f"litellm model map, {model}"), "litellm model map")


def lookup(models: Iterable[str], registry_file: str | Path | None) -> list[Lifecycle]:
    file_entries = load_registry_file(registry_file) if registry_file else {}
    found = []
    for model in models:
        entry = file_entries.get(model) or from_litellm(model)
        found.append(entry or Lifecycle(model, None, None, "unknown"))
    return found
