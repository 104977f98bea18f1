"""The workbench as users get it: a wheel installed into a fresh environment, run from an empty
folder with no checkout on sys.path. Everything it writes lands in the user's project."""
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with only the built wheel; third-party packages come from the dev venv's
    site-packages as a plain path (its editable-install hook is not run)."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next((root / "dist").glob("migration_workbench-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORKBENCH_PROJECT")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    # the dependencies' data files (nbconvert's templates) live in the dev venv's prefix, as the
    # packages themselves do; a normal install puts both in the same prefix
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _replay_files(project: Path) -> tuple[Path, Path]:
    """Recorded answers for the sample items: the baseline says the reference, the candidate a shorter cut."""
    rows = [json.loads(line) for line in (project / "data" / "sample.jsonl").read_text(encoding="utf-8").splitlines()]
    base, cand = project / "replay" / "base.jsonl", project / "replay" / "cand.jsonl"
    base.parent.mkdir()
    base.write_text("".join(json.dumps({"item_id": r["item_id"], "response": r["reference"]}, ensure_ascii=False) + "\n"
                            for r in rows), encoding="utf-8")
    cand.write_text("".join(json.dumps({"item_id": r["item_id"], "response": r["reference"][: len(r["reference"]) // 2]},
                                       ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return base, cand


def test_wheel_runs_init_report_and_compare_from_an_empty_folder(installed, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    where = _run(installed, work, "python", "-c", "import sys, workbench; print(workbench.__file__); print(sys.path)")
    assert str(installed) in where.stdout.splitlines()[0]
    paths = eval(where.stdout.splitlines()[1])  # noqa: S307 - our own subprocess printed a list literal
    assert not [p for p in paths if p.rstrip("/") in (str(REPO), str(REPO / "workbench"))]  # no checkout on sys.path

    init = _run(installed, work, "workbench", "init", "proj")
    assert init.returncode == 0, init.stderr
    project = work / "proj"
    assert {p.name for p in project.iterdir()} >= {"params.toml", "gate.toml", "prompts", "data", "notebooks"}
    base, cand = _replay_files(project)
    (project / "params.toml").write_text(f"""report_name = "migration"
dataset = "data/sample.jsonl"
baseline = "replay/{base}"
candidates = ["replay/{cand}"]
candidate_prompts = ["support_chat@v1"]
metrics = ["chrf", "rouge_l", "length_chars"]
gate_file = "gate.toml"
judge = ""
bootstrap_resamples = 200
""", encoding="utf-8")
    (project / "gate.toml").write_text("min_items = 20\n[metrics.chrf]\nmax_drop = 5.0\nhigher_is_better = true\n",
                                       encoding="utf-8")

    report = _run(installed, project, "workbench", "report", "--params", "params.toml")
    assert report.returncode == 1, report.stderr[-3000:]  # FAIL (below): the CI gate's exit code
    out = project / "reports" / "migration"
    assert {"report.ipynb", "report.html", "verdict.json", "manifest.json"} <= {p.name for p in out.iterdir()}
    assert (project / ".workbench" / "store.db").is_file()
    verdict = json.loads((out / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["verdict"] == "FAIL"  # half-length answers lose chrF far beyond the 5-point gate

    compare = _run(installed, work, "workbench", "compare", "--params", "proj/params.toml", "--json", "cmp.json")
    assert compare.returncode == 1, compare.stderr[-3000:]
    same = json.loads((work / "cmp.json").read_text(encoding="utf-8"))
    assert same["verdict"] == verdict["verdict"]
    assert same["candidates"] == verdict["candidates"]  # the same numbers, not just the same word

    site_files = subprocess.run(["find", str(installed), "-newer", str(project / "params.toml"), "-type", "f"],
                                capture_output=True, text=True).stdout.split()
    assert not [f for f in site_files if "__pycache__" not in f], site_files  # nothing written into the install
