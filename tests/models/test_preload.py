"""litellm is imported late: never by a command whose models are not `litellm/`, and, when a run
has a `litellm/` model, on a background thread begun before the dataset is read (the first call
waits for it). Each case runs in a fresh interpreter: `sys.modules` is the evidence."""
import json
import subprocess
import sys
from pathlib import Path

from tests.fault_server import FaultServer

ROOT = Path(__file__).resolve().parents[2]

# Runs the CLI in-process, after the hooks below, and prints what was imported when.
CLI_PROBE = r"""
import json, sys, threading
from workbench import data
events = []
load_items = data.load_items
def spy(*args, **kwargs):  # the dataset is read: is litellm's import under way already?
    events.append({"at": "load_items", "importing": sorted(t.name for t in threading.enumerate()
                                                          if t.name.startswith("workbench-import-"))})
    return load_items(*args, **kwargs)
data.load_items = spy
from workbench.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help
    code = exc.code
print(json.dumps({"code": code, "litellm": "litellm" in sys.modules, "events": events}))
"""


def _items(tmp_path: Path, n: int = 6) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"item_id": f"q{k}", "input": f"question {k}"}) + "\n" for k in range(n)),
                    encoding="utf-8")
    return path


def _probe(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180, cwd=ROOT,
                          env={**__import__("os").environ, "OPENAI_API_KEY": "sk-test-preload-000"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_imports_no_litellm():
    result = _probe(CLI_PROBE, "--help")
    assert result["code"] == 0 and result["litellm"] is False


def test_generate_through_openai_never_imports_litellm(tmp_path):
    with FaultServer() as server:
        result = _probe(CLI_PROBE, "generate", str(_items(tmp_path)), "--model", "openai/local-model",
                        "--api-base", server.url, "--store", str(tmp_path / "s.db"), "--no-progress")
        assert server.total_hits() == 6
    assert result["code"] == 0 and result["litellm"] is False
    assert result["events"] == [{"at": "load_items", "importing": []}]


def test_config_and_generation_through_openai_never_import_litellm(tmp_path):
    """The library path a notebook takes: a config built from parameters, its models' specs, generate."""
    code = r"""
import json, sys
from workbench.config import build_config
from workbench.data import load_items
from workbench.models import preload
from workbench.pipeline import model_specs
from workbench.runner import generate
from workbench.store import open_store
config = build_config(None, {"baseline": "openai/base-model", "candidates": ["openai/new-model"], "judge": None,
                             "baseline_prompt": None, "candidate_prompts": [None], "api_base": sys.argv[1]})
started = preload.start(config.models())
items = load_items(sys.argv[2])
with open_store(sys.argv[3]) as store:
    _, stats = generate(items, model_specs(config), store, progress=False)
print(json.dumps({"litellm": "litellm" in sys.modules, "started": started, "made": stats.calls_made}))
"""
    with FaultServer() as server:
        result = _probe(code, server.url, str(_items(tmp_path)), str(tmp_path / "s.db"))
    assert result == {"litellm": False, "started": [], "made": 12}


def test_a_litellm_model_starts_its_import_before_the_dataset_is_read_and_the_calls_wait_for_it(tmp_path):
    with FaultServer() as server:
        result = _probe(CLI_PROBE, "generate", str(_items(tmp_path)), "--model", "litellm/openai/local-model",
                        "--api-base", server.url, "--store", str(tmp_path / "s.db"), "--no-progress")
        assert server.total_hits() == 6
    assert result["code"] == 0 and result["litellm"] is True
    assert result["events"] == [{"at": "load_items", "importing": ["workbench-import-litellm"]}]


def test_start_once_per_module_group_and_wait_joins_it():
    code = r"""
import json, sys
from workbench.models import preload
first = preload.start(["litellm/openai/a", "litellm/openai/b", "openai/c", "replay/x.jsonl", "nope/x", "bad"])
again = preload.start(["litellm/openai/a"])
preload.wait()
print(json.dumps({"first": first, "again": again, "litellm": "litellm" in sys.modules,
                  "proxy_types": "litellm.proxy._types" in sys.modules}))
"""
    result = _probe(code)
    assert result == {"first": [["litellm", "openai.resources", "litellm.proxy._types"]], "again": [],
                      "litellm": True, "proxy_types": True}


def test_bad_input_found_while_litellm_is_importing_exits_3_cleanly(tmp_path):
    """The import is under way when the dataset turns out broken: one error, exit 3, and the process
    ends (a thread frozen halfway through an import at exit used to hang litellm's exit-time cleanup)."""
    data = tmp_path / "items.jsonl"
    data.write_text('{"item_id": "q0", "input": "fine"}\n{"item_id": "q1", "input": \n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "generate", str(data), "--model",
                           "litellm/openai/local-model", "--api-base", "http://127.0.0.1:9/v1",
                           "--store", str(tmp_path / "s.db"), "--no-progress"],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 3, proc.stderr
    assert str(data) in proc.stderr and "line 2" in proc.stderr
    assert not (tmp_path / "s.db").exists()


def test_a_process_ending_during_the_import_ends_cleanly():
    """Library use (not the `workbench` command): the interpreter's teardown never meets a half-done
    import and never hangs on one (Python stops the import at shutdown, or it finishes first)."""
    code = r"""
import atexit, json, sys
def state():
    litellm = sys.modules.get("litellm")
    print(json.dumps({"litellm": "absent" if litellm is None else "complete" if hasattr(litellm, "acompletion")
                      else "partial"}))
atexit.register(state)  # registered first: runs after the preload's own exit handler
from workbench.models import preload
preload.start(["litellm/openai/x"])
"""
    assert _probe(code)["litellm"] in ("absent", "complete")
