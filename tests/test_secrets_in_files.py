"""A key planted in every position a user can put one (inside --api-base as userinfo and as a query
parameter, in the environment, in a -p value) appears in no file the workbench writes: the store,
the report notebook and HTML, verdict.json, manifest.json, and nothing on stdout or stderr."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault_server import FaultServer

USERINFO_KEY = "sk-userinfo-PLANTED-111111111111"
QUERY_KEY = "qk-PLANTED-222222222222"
ENV_KEY = "sk-env-PLANTED-333333333333"
PARAM_KEY = "sk-param-PLANTED-444444444444"
ALL = (USERINFO_KEY, QUERY_KEY, ENV_KEY, PARAM_KEY)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OPENAI_API_KEY": ENV_KEY})


@pytest.mark.slow
def test_a_planted_key_reaches_no_written_file(tmp_path):
    rows = [{"item_id": f"q{k:02d}", "input": f"question {k}", "reference": f"answer {k}"} for k in range(12)]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with FaultServer() as server:
        host = server.url.split("//", 1)[1].split("/", 1)[0]
        proxy = f"http://user:{USERINFO_KEY}@{host}"  # a proxy with basic auth in its URL
        # litellm refuses credentials in the URL and a query string breaks the path: the calls fail,
        # and their recorded errors must not carry the keys either
        failing = _cli(tmp_path, "generate", "items.jsonl", "--model", "litellm/openai/other-model",
                       "--api-base", f"{proxy}/v1?api_key={QUERY_KEY}&region=eu", "--max-attempts", "1", "-q")
        assert failing.returncode == 1, failing.stderr[-2000:]
        report = _cli(tmp_path, "report", "-p", "dataset", "items.jsonl", "-p", "baseline", "openai/base-model",
                      "-p", "candidates", '["openai/cand-model"]', "-p", "baseline_prompt", "",
                      "-p", "candidate_prompts", '[""]', "-p", "judge", "", "-p", "api_base", f"{proxy}/v1",
                      "-p", "metrics", '["chrf"]', "-p", "report_name", "keys", "-p", "bootstrap_resamples", "100",
                      "-p", "gate", '{"min_items": 5, "metrics": {"chrf": {"max_drop": 100, "higher_is_better": true}}}')
        assert report.returncode == 0, report.stderr[-3000:]
        assert server.hits and server.total_hits() >= 24
        bad = _cli(tmp_path, "compare", "-p", "concurrency", PARAM_KEY)  # a key pasted into the wrong place
    assert bad.returncode == 3 and "parameter 'concurrency'" in bad.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"store.db", "report.ipynb", "report.html", "verdict.json", "manifest.json"}
    for path in written:
        data = path.read_bytes()
        for key in ALL:
            assert key.encode() not in data, f"{key} leaked into {path}"
    for proc in (failing, report, bad):
        for key in ALL:
            assert key not in proc.stdout + proc.stderr
    manifest = json.loads((tmp_path / "reports" / "keys" / "manifest.json").read_text())
    assert manifest["config"]["api_base"] == "env:WORKBENCH_API_BASE"
    stored = json.dumps(manifest["models"])
    assert "[REDACTED]@" in stored  # where calls went, without the credentials


def test_api_base_must_be_an_http_url(tmp_path):
    (tmp_path / "items.jsonl").write_text('{"item_id": "a", "input": "x"}\n', encoding="utf-8")
    proc = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--api-base", "ftp://host/v1")
    assert proc.returncode == 3 and "not an http(s) URL" in proc.stderr
    assert not (tmp_path / ".workbench").exists()
