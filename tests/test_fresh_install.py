"""A newcomer's first hour, as a test: build the wheel, install it with the README's one line into a
fresh virtual environment (nothing borrowed from the dev environment), then `workbench init`,
`doctor` and `report` in an empty folder. Slow: it installs every dependency from the package index
(torch's CPU build first, as the README says) and runs the real bundled models."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# 10-30 minutes (every dependency installed afresh, real models): run on request, not in every CI run,
# whose 90 minutes the rest of the suite needs: WORKBENCH_FRESH_INSTALL=1 pytest tests/test_fresh_install.py
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600),
              pytest.mark.skipif(os.environ.get("WORKBENCH_FRESH_INSTALL") != "1",
                                 reason="installs everything into a fresh venv (10-30 min): set WORKBENCH_FRESH_INSTALL=1")]


def readme_install_line() -> str:
    """The README's install line, with the wheel in place of `<this repo or its wheel>`."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if line.startswith('pip install "<this repo or its wheel>'))
    return line.split("#", 1)[0].strip()


def test_the_readme_install_line_then_init_doctor_report_in_an_empty_folder(tmp_path):
    dist, source = tmp_path / "dist", tmp_path / "source"
    # built from a copy: a build writes build/ and *.egg-info into its source folder, and a checkout on
    # PYTHONPATH holding them looks like an installed workbench to pip
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "reports",
                                                                 "test-artifacts", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(source)], check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("migration_workbench-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORKBENCH_PROJECT", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"

    def sh(command: str, cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)

    torch = sh("pip install -q torch==2.13.0", tmp_path)  # the README: torch's CPU build first
    assert torch.returncode == 0, torch.stderr[-3000:]
    line = readme_install_line().replace("<this repo or its wheel>", str(wheel)).replace("pip install", "pip install -q")
    install = sh(line, tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]

    work = tmp_path / "empty"
    work.mkdir()
    where = sh("python -c 'import workbench; print(workbench.__file__)'", work)
    assert str(venv) in where.stdout  # the installed wheel, not the checkout
    version = sh("workbench --version", work)
    assert version.returncode == 0 and re.fullmatch(r"workbench \d+\.\d+\.\d+\n", version.stdout)
    assert sh("workbench init proj", work).returncode == 0
    project = work / "proj"
    doctor = sh("workbench doctor", project)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr  # nothing missing after the one line
    assert "everything the report needs is here" in doctor.stdout
    report = sh("workbench report -p sample_size 8", project, timeout=1800)
    assert report.returncode in (0, 1, 2), report.stderr[-3000:]  # a verdict: a complete report
    assert "report notebook: notebooks/migration_report.ipynb (the project's own)" in report.stderr
    out = project / "reports" / "migration"
    verdict = json.loads((out / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["complete"] is True and verdict["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
    assert (out / "report.html").is_file()
    assert not (work / ".workbench").exists()  # everything went into the project
