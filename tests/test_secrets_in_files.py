"""A key planted in every configuration that can carry one appears in no file the workbench writes
(the store and its dump, the report notebook and HTML, verdict.json, manifest.json) and nowhere on
stdout or stderr: not whole, not base64-encoded (as Basic auth sends it), not URL-encoded, and not as
a long fragment, even when the server echoes it in every one of those forms, in its errors and in its
answers, and whatever the variable holding it is called (`LLM_CRED` has no KEY in its name).
Credentials written into a URL are refused with exit 3 and a message that says where keys go."""
import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

# characters that change under base64 and URL encoding; none of the names says KEY/TOKEN/SECRET
CRED_KEY = "Cr3d/Plant+ed=9xQ7&wK2LmZ8vR4"
DEPLOY_KEY = "Dpl0y-Q8r7+Z/w6!x5Tt4s3Uu2"
ENV_KEY = "sk-env-PLANTED-7Hq2Lz9Vw4Kc"
USERINFO_KEY = "ui-PLANTED-Rt5/Nb8+Xe3"
QUERY_KEY = "qk-PLANTED-Gm4Jd7Sp1Yf6"
PARAM_KEY = "sk-param-PLANTED-Wv3Bx8Kn2Hq5"
ALL = (CRED_KEY, DEPLOY_KEY, ENV_KEY, USERINFO_KEY, QUERY_KEY, PARAM_KEY)
FRAGMENT = 12  # no piece this long of a key may survive


def leaked_forms(key: str) -> list[str]:
    """What must never appear: the key, its encodings, Basic auth of user:key, and long fragments."""
    forms = [key, quote(key, safe=""), quote_plus(key), base64.b64encode(key.encode()).decode(),
             base64.b64encode(f"user:{key}".encode()).decode(), base64.urlsafe_b64encode(key.encode()).decode()]
    forms += [key[i:i + FRAGMENT] for i in range(len(key) - FRAGMENT + 1)]
    return forms


def assert_clean(text: str, where: str) -> None:
    for key in ALL:
        for form in leaked_forms(key):
            assert form not in text, f"{form!r} (from {key!r}) leaked into {where}"


class EchoingServer:
    """An OpenAI-compatible server as careless as they come: items named `deny...` get a 401 that
    repeats the credentials in every form, `leak...` items an answer that repeats them, others an echo."""

    def __init__(self) -> None:
        self.hits = 0
        self.authorizations: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                outer.hits += 1
                auth = self.headers.get("Authorization", "")
                outer.authorizations.add(auth)
                key = auth.split(" ", 1)[-1]
                text = body.get("prompt") or body["messages"][-1]["content"]
                echo = (f"credentials {auth} | b64 {base64.b64encode(key.encode()).decode()} | basic "
                        f"{base64.b64encode(('user:' + key).encode()).decode()} | url {quote(key, safe='')} | "
                        f"pieces {key[:len(key) // 2]} .. {key[len(key) // 2:]}")
                if text.startswith("deny"):
                    self._send(401, {"error": {"message": f"invalid key: {echo}", "type": "authentication_error"}})
                    return
                content = f"you sent {echo}" if text.startswith("leak") else f"echo: {text}"
                self._send(200, {"id": "c1", "object": "chat.completion", "model": "echo-1",
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.host = self.url.split("//", 1)[1].split("/", 1)[0]

    def __enter__(self) -> "EchoingServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": ENV_KEY, "LLM_CRED": CRED_KEY, "DEPLOY_CRED": DEPLOY_KEY,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def _items(folder: Path) -> None:
    rows = [{"item_id": f"q{k:02d}", "input": (("deny " if k % 4 == 1 else "leak " if k % 4 == 2 else "") +
                                               f"question {k}"), "reference": f"echo: question {k}"}
            for k in range(16)]
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _sqlite_dump(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.slow
def test_a_planted_key_reaches_no_written_file_in_any_form(tmp_path):
    _items(tmp_path)
    options = {"openai/base-model": {"api_key_env": "LLM_CRED"},
               "litellm/openai/cand-model": {"api_key_env": "LLM_CRED"},
               "litellm/openai/routed": {"deployments": [{"api_base": None, "api_key_env": "DEPLOY_CRED"}]}}
    procs = []
    with EchoingServer() as server:
        options["litellm/openai/routed"]["deployments"][0]["api_base"] = server.url
        (tmp_path / "options.json").write_text(json.dumps(options), encoding="utf-8")
        del options["litellm/openai/routed"]
        (tmp_path / "report_options.json").write_text(json.dumps(options), encoding="utf-8")
        # generate: a key named by api_key_env (openai/ and litellm/), by a deployment, and OPENAI_API_KEY
        gen = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/base-model", "--model",
                   "litellm/openai/cand-model", "--model", "litellm/openai/routed", "--model", "openai/plain",
                   "--model-options", "options.json", "--api-base", server.url, "--max-attempts", "1", "-q")
        procs.append(gen)
        assert gen.returncode == 1, gen.stderr[-3000:]  # the deny items fail; their echoes are what we check
        assert "4 x auth" in gen.stderr and "[REDACTED]" in gen.stderr
        report = _cli(tmp_path, "report", "-p", "dataset", "items.jsonl", "-p", "baseline", "openai/base-model",
                      "-p", "candidates", '["litellm/openai/cand-model"]', "-p", "baseline_prompt", "",
                      "-p", "candidate_prompts", '[""]', "-p", "judge", "", "-p", "api_base", server.url,
                      "--model-options", "report_options.json", "-p", "metrics", '["chrf"]', "-p", "report_name", "keys",
                      "-p", "bootstrap_resamples", "100",
                      "-p", "gate", '{"min_items": 5, "metrics": {"chrf": {"max_drop": 100, "higher_is_better": true}}}')
        procs.append(report)
        assert report.returncode in (0, 1, 2), report.stderr[-3000:]
        assert {f"Bearer {k}" for k in (CRED_KEY, DEPLOY_KEY, ENV_KEY)} <= server.authorizations  # keys were sent
        hits = server.hits
        # credentials written into a URL: refused before any call, and told where keys go
        for url in (f"http://user:{USERINFO_KEY}@{server.host}/v1", f"{server.url}?api_key={QUERY_KEY}"):
            refused = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--api-base", url, "-q")
            procs.append(refused)
            assert refused.returncode == 3 and "environment variable" in refused.stderr, refused.stderr
            refused = _cli(tmp_path, "report", "-p", "dataset", "items.jsonl", "-p", "baseline", "openai/a",
                           "-p", "candidates", '["openai/b"]', "-p", "api_base", url, "-p", "report_name", "url")
            procs.append(refused)
            assert refused.returncode == 3 and "parameter 'api_base'" in refused.stderr, refused.stderr
        (tmp_path / "bad.json").write_text(json.dumps(
            {"openai/m": {"api_base": f"http://user:{USERINFO_KEY}@{server.host}/v1"}}), encoding="utf-8")
        refused = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--model-options", "bad.json")
        procs.append(refused)
        assert refused.returncode == 3 and "api_key_env" in refused.stderr
        assert server.hits == hits  # nothing refused was sent
    bad = _cli(tmp_path, "compare", "-p", "concurrency", PARAM_KEY)  # a key pasted into the wrong place
    procs.append(bad)
    assert bad.returncode == 3 and "parameter 'concurrency'" in bad.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not (p.suffix == ".json" and p.parent == tmp_path)]
    assert {p.name for p in written} >= {"store.db", "report.ipynb", "report.html", "verdict.json", "manifest.json"}
    for path in written:
        assert_clean(path.read_bytes().decode("utf-8", "replace"), str(path))
    dump = _sqlite_dump(tmp_path / ".workbench" / "store.db")
    assert "[REDACTED]" in dump  # the echoes were stored, without the keys
    assert_clean(dump, "the store's dump")
    for proc in procs:
        assert_clean(proc.stdout + proc.stderr, f"the output of {proc.args[3:5]}")


def test_api_base_must_be_an_http_url(tmp_path):
    (tmp_path / "items.jsonl").write_text('{"item_id": "a", "input": "x"}\n', encoding="utf-8")
    proc = _cli(tmp_path, "generate", "items.jsonl", "--model", "openai/m", "--api-base", "ftp://host/v1")
    assert proc.returncode == 3 and "must be an http(s) URL" in proc.stderr
    assert not (tmp_path / ".workbench").exists()
