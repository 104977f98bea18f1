"""Where things live: the user's project folder for everything written, the installed package's
`resources/` for everything bundled.

Why a project root rather than the current folder: a notebook opened from `notebooks/` runs in
that folder, and a relative store path there would silently create a second, empty store. The root
is found the way git finds a repository: the nearest folder upwards holding `params.toml` or
`.workbench/`. Bundled files (the demo dataset, prompt versions, notebooks, templates) are named
`bundled:<path>` so a parameter can point at them without knowing where the wheel was installed.
"""
from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

BUNDLED_PREFIX = "bundled:"
PROJECT_MARKERS = ("params.toml", ".workbench")
PROJECT_ENV = "WORKBENCH_PROJECT"
PROJECT_PARAMS = "params.toml"


def resources_dir() -> Path:
    """The package's bundled resources (a real folder: the wheel installs unzipped)."""
    return Path(str(files("workbench") / "resources"))


def bundled(relative: str) -> Path:
    """A bundled file: `bundled("data/support_reviews.jsonl")`."""
    return resources_dir() / relative


def display_path(path: str | Path) -> str:
    """A file as a parameter names it: `bundled:NAME` for packaged data, never its site-packages path."""
    try:
        return BUNDLED_PREFIX + Path(path).resolve().relative_to(bundled("data").resolve()).as_posix()
    except ValueError:
        return str(path)


def project_root(start: str | Path | None = None) -> Path:
    """The user's project: $WORKBENCH_PROJECT, else the nearest folder upwards from `start` (the
    current folder) with a project marker, else `start` itself."""
    if os.environ.get(PROJECT_ENV):
        return Path(os.environ[PROJECT_ENV]).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return here


def find_params_file(start: str | Path | None = None) -> Path | None:
    """The project's parameters file: `params.toml` in $WORKBENCH_PROJECT, else in the nearest folder
    upwards from `start` (the current folder) that has one; None outside a project. Every command
    and notebook finds the project this way, so a command run in `notebooks/` uses the same file."""
    if os.environ.get(PROJECT_ENV):
        candidate = Path(os.environ[PROJECT_ENV]).expanduser().resolve() / PROJECT_PARAMS
        return candidate if candidate.is_file() else None
    here = Path(start or Path.cwd()).resolve()
    return next((folder / PROJECT_PARAMS for folder in (here, *here.parents) if (folder / PROJECT_PARAMS).is_file()),
                None)


def shown_path(path: str | Path) -> str:
    """A path as a user can paste it from the current folder: relative when below it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


DATABASE_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(value: object) -> bool:
    """A server database URL (a store location), never a path to resolve."""
    return isinstance(value, str) and value.strip().lower().startswith(DATABASE_URL_SCHEMES)


def resolve(value: str | Path, base: str | Path) -> Path:
    """A path parameter as a real path: `bundled:` names a packaged file, an absolute path stays,
    anything else is relative to `base` (the parameters file's folder, or the project root). A
    database URL (`postgresql://...`) is returned untouched, as the string it is."""
    text = str(value)
    if is_database_url(value):
        return text  # type: ignore[return-value]  (a URL is a location, not a path)
    if text.startswith(BUNDLED_PREFIX):
        return bundled("data/" + text[len(BUNDLED_PREFIX):].lstrip("/"))
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(base) / path


def package_version() -> str:
    """The installed workbench's version (for --version and doctor)."""
    try:
        return version("migration-workbench")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def say_demo(where: str) -> None:
    """The first line of a command that runs the bundled demo's parameters outside a project."""
    print(f"no params.toml here or in a parent folder: using the bundled demo's parameters ({where}); "
          "`workbench init DIR` creates a project, --params FILE names one", file=sys.stderr)
