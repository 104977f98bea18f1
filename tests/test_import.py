"""`import workbench` is cheap and offline: no heavy library, no socket, nothing but its own modules
and the standard library. (How long it takes is a benchmark, not a test: bench/bench_import.py.)"""
import json
import subprocess
import sys

PROBE = r"""
import json, socket, sys, time
def refuse(*args, **kwargs):
    raise AssertionError(f"network access during import: {args!r}")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
start = time.perf_counter()
import workbench, workbench.cli, workbench.models, workbench.generation.runner, workbench.store, workbench.stats, workbench.metrics, workbench.judges
elapsed = time.perf_counter() - start
heavy = sorted({m.split('.')[0] for m in sys.modules} & {"torch", "transformers", "litellm", "datasets",
               "sentence_transformers", "sacrebleu", "openai", "papermill", "ipywidgets", "plotly"})
print(json.dumps({"elapsed": elapsed, "heavy": heavy, "core_elapsed": None}))
"""

CORE = r"""
import json, sys
before = set(sys.modules)
import workbench
new = sorted(set(sys.modules) - before)
print(json.dumps({"new": new, "third_party": [m for m in new if m.split(".")[0] != "workbench"
                                              and m.split(".")[0] not in sys.stdlib_module_names]}))
"""


def _run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_workbench_is_fast_and_pulls_in_no_heavy_library():
    result = _run(PROBE)
    assert result["heavy"] == [], f"imported at startup: {result['heavy']}"
    core = _run(CORE)
    assert core["third_party"] == [] and len(core["new"]) <= 5, core["new"]  # the package and its offline defaults


def test_import_sets_offline_defaults_without_overriding_the_user():
    code = ("import os; os.environ['HF_HUB_OFFLINE'] = '0'; import workbench; "
            "print(__import__('json').dumps({k: os.environ.get(k) for k in "
            "('HF_HUB_OFFLINE', 'LITELLM_LOCAL_MODEL_COST_MAP', 'HF_DATASETS_OFFLINE')}))")
    env = _run(code)
    assert env == {"HF_HUB_OFFLINE": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_DATASETS_OFFLINE": "1"}
