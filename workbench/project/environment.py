"""The environment a report was made in (package versions, platform, the project's git state), precisely
enough to reproduce or audit it; the manifest (`pipeline.build_manifest`) records it."""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = ("migration-workbench", "torch", "transformers", "litellm", "pandas", "numpy", "scipy", "sacrebleu",
            "rouge-score", "sentence-transformers", "papermill", "nbconvert", "plotly", "ipywidgets", "datasets")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: str | Path) -> dict[str, Any]:
    """Commit and dirty flag of the code that made the report (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": package_versions()}
