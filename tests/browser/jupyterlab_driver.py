"""Drive a real JupyterLab from tests: start the server, copy and open notebooks, run cells, prefill stores.

Setup: `bash scripts/setup_browser.sh` (installs /usr/bin/chromium; never `playwright install`).
The server runs on 127.0.0.1 with a fixed token and private Jupyter dirs, so no user setting or
old workspace leaks in.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "workbench-browser-test"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Start the notebook's kernel without asking, and never fetch news or update checks (offline).
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A running JupyterLab server: URLs, its REST API and its kernel processes."""

    def __init__(self, base: Path, timeout_s: float = 90):
        self.root, self.runtime_dir = base / "root", base / "runtime"
        self.root.mkdir()
        env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1")
        for name, sub in {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
                          "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
                          "JUPYTERLAB_SETTINGS_DIR": "settings", "IPYTHONDIR": "ipython"}.items():
            (base / sub).mkdir(exist_ok=True)
            env[name] = str(base / sub)
        for plugin, values in SETTINGS.items():
            target = base / "settings" / f"{plugin}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "server.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
             "--ServerApp.port_retries=0", "--ServerApp.open_browser=False", f"--IdentityProvider.token={TOKEN}",
             f"--ServerApp.root_dir={self.root}", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.api("status")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab did not start:\n{self.log_path.read_text()[-3000:]}")
                time.sleep(0.3)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}?token={TOKEN}&reset"

    def api(self, path: str) -> object:
        request = urllib.request.Request(f"{self.base}/api/{path}", headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def kernel_pid(self, notebook: str) -> int:
        """Pid of the kernel of `notebook`, found by its connection file in our private runtime dir."""
        import psutil

        (kernel_id,) = [s["kernel"]["id"] for s in self.api("sessions") if s["path"] == notebook and s.get("kernel")]
        marker = str(self.runtime_dir / f"kernel-{kernel_id}.json")
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if marker in child.cmdline():
                    return child.pid
            except psutil.Error:
                continue
        raise LookupError(f"no running kernel for {notebook}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the server shuts its kernels down
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # our own session: this server and its kernels
                self.process.wait()
        self._log.close()


def copy_notebook(lab: Lab, source: Path, name: str, parameters: dict) -> str:
    """Copy a notebook into the server root with papermill-style injected parameters."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(source))
    nb = parameterize_notebook(nb, parameters, kernel_name="python3", language="python")
    nbformat.write(nb, lab.root / name)
    return name


def open_notebook(page, lab: Lab, name: str) -> None:
    page.goto(lab.url(f"lab/tree/{name}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    wait_kernel(lab, name)
    wait_idle(page)


def wait_kernel(lab: Lab, name: str, timeout_s: float = 90) -> str:
    """Wait until the notebook's kernel is running and idle (the page's indicator also reads idle
    before any kernel exists); returns the kernel id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for session in lab.api("sessions"):
            kernel = session.get("kernel") or {}
            if session["path"] == name and kernel.get("execution_state") == "idle":
                return kernel["id"]
        time.sleep(0.3)
    raise TimeoutError(f"no idle kernel for {name} after {timeout_s} s")


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=timeout_ms)


def run_all_cells(page) -> None:
    page.locator(".jp-Notebook .jp-Cell").first.click()  # the command acts on the active notebook
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()


def prefill_project(folder: Path, names: tuple[str, str], items: list[tuple[str, str]],
                    responses: dict[str, dict[str, str]], judge_url: str | None = None) -> tuple[Path, tuple[str, str]]:
    """A migration project whose baseline and candidate are replay models answering `responses[name]`
    for each item, generated into its store through the pipeline (and judged in both orders by the
    OpenAI-compatible judge at `judge_url`, when given). Returns (params.toml, model names)."""
    import json

    from workbench.task.config import build_config
    from workbench.pipeline import arm_labels, prepare

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps({"item_id": i, "input": text}) + "\n" for i, text in items),
                                        encoding="utf-8")
    models = []
    for name in names:
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"item_id": i, "response": t}) + "\n" for i, t in responses[name].items()),
                        encoding="utf-8")
        models.append(f"replay/{path}")
    params = folder / "params.toml"
    judge = (f'judge = "openai/judge"\njudge_template = "chat-v1"\njudge_criterion = "instruction_following"\n'
             f'api_base = "{judge_url}"\n' if judge_url
             else 'judge = ""\n')
    params.write_text(f'dataset = "items.jsonl"\nbaseline = "{models[0]}"\nbaseline_prompt = ""\n'
                      f'candidates = ["{models[1]}"]\ncandidate_prompts = [""]\n{judge}sample_size = ""\n'
                      'metrics = ["chrf"]\ngate = { min_items = 5, metrics = { chrf = { max_drop = 5.0, '
                      'higher_is_better = true } } }\n', encoding="utf-8")
    config = build_config(params)
    prepare(config)
    labels = arm_labels(config)
    return params, (labels[0], labels[1])
